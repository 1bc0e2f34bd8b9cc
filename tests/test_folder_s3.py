"""A drop folder over the real SeaweedFS, with a real writer thread rewriting a file in place, slowly,
while runs sweep it again and again: no partial version is ever stored, and the complete revision ends up
latest. The windows the writer hits are hit on purpose (just after the listing, just after the read); the
cases one by one, fast, are in ``test_folder.py``. And an S3 inbox sweep that lists only its top level.
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from ingest.api import open_sources
from ingest.devserver import LocalS3
from ingest.keys import Keys
from ingest.models import Document
from ingest.report import Reporter
from ingest.runner import run_once
from ingest.settings import Settings, SourceSettings
from ingest.sources import Candidate, Scan, Source
from ingest.sources.folder import Folder
from ingest.stores.s3 import S3Store
from tests.conftest import stored_versions

pytestmark = pytest.mark.s3

SETTLE = 0.2  # seconds a file must be quiet; the writer never pauses that long
PAUSE = 0.02  # between the writer's chunks
CHUNKS = 12


def revision(n: int) -> list[str]:
    """The paragraphs of revision ``n``: 150 of them, about 20 KB in all."""
    return [f"Revision {n}, paragraph {p}: " + " ".join(["words"] * 20) for p in range(150)]


def text(n: int) -> str:
    return "Bridge Story\n\n" + "".join(p + "\n\n" for p in revision(n))


class SlowWriter(threading.Thread):
    """Rewrites a file in place (same inode, truncated first) in chunks, pausing between them."""

    def __init__(self, path: Path, data: bytes) -> None:
        super().__init__(daemon=True)
        self.path, self.data = path, data
        self.first_chunk = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.path.open("r+b") as fh:
                fh.truncate(0)
                step = -(-len(self.data) // CHUNKS)
                for start in range(0, len(self.data), step):
                    fh.write(self.data[start : start + step])
                    fh.flush()
                    self.first_chunk.set()
                    time.sleep(PAUSE)
        except BaseException as exc:  # handed to the test
            self.error = exc
            self.first_chunk.set()


class RacingWriter:
    """A drop folder whose writer starts at the worst moment: just after the file was listed as settled
    (so the run reads it mid-rewrite), or just after the run read it (so it changes before it is moved)."""

    def __init__(self, inner: Source) -> None:
        self.inner, self.settings = inner, inner.settings
        self.armed: tuple[str, Path, bytes] | None = None
        self.writer: SlowWriter | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def arm(self, when: str, path: Path, data: bytes) -> None:
        self.armed = (when, path, data)

    def _start(self, when: str) -> None:
        if self.armed is None or self.armed[0] != when:
            return
        _, path, data = self.armed
        self.armed = None
        self.writer = SlowWriter(path, data)
        self.writer.start()
        assert self.writer.first_chunk.wait(5)

    def scan(self, now: float) -> Scan:
        scan = self.inner.scan(now)
        if scan.ready:
            self._start("after-listing")
        return scan

    def read(self, candidate: Candidate, max_bytes: int, now: float) -> bytes | None:
        data = self.inner.read(candidate, max_bytes, now)
        if data is not None:
            self._start("after-reading")
        return data


def test_a_file_rewritten_in_place_slowly_never_yields_a_partial_version(
    tmp_path: Path, settings: Settings, store: S3Store, prefix: str
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "bridge.txt"
    conf = settings.model_copy(
        update={"sources": [SourceSettings(name="drop", location=str(drop), settle_seconds=SETTLE)]}
    )
    source = RacingWriter(Folder(conf.sources[0]))
    keys = Keys(prefix, "bridge")
    written: list[int] = []
    expected: list[int] = []  # the revisions that must become versions, in order
    started = time.monotonic()
    for round_, when in enumerate(["after-listing", "after-reading", "after-listing", "after-reading"]):
        old, new = 2 * round_, 2 * round_ + 1
        path.write_text(text(old))
        settled = time.time() - 10
        os.utime(path, (settled, settled))
        written += [old, new]
        expected += [old, new] if when == "after-reading" else [new]  # read whole before it changed: stored
        source.arm(when, path, text(new).encode())
        deadline = time.monotonic() + 5
        while True:
            run_once(conf, store, [source], Reporter("text", out=io.StringIO()))
            docs = stored_versions(store, keys)
            partial = [d.version for d in docs if [b.text for b in d.body] not in [revision(n) for n in written]]
            assert partial == [], f"round {round_} ({when}): partial versions stored: {partial}"
            writer = source.writer
            if writer is not None and not writer.is_alive() and not path.exists() and len(docs) == len(expected):
                break
            assert time.monotonic() < deadline, f"round {round_} ({when}): {len(docs)} versions, {expected}"
            time.sleep(0.02)
        assert writer.error is None
        source.writer = None
    assert [[b.text for b in d.body] for d in docs] == [revision(n) for n in expected]
    latest = store.get(keys.latest)
    assert latest is not None
    assert [b.text for b in Document.model_validate_json(latest.body).body] == revision(expected[-1])
    archived = sorted(p.read_text() for p in (drop / "processed").rglob("bridge*.txt"))
    assert archived == sorted(text(2 * r + 1) for r in range(4))  # each complete revision, moved once
    assert time.monotonic() - started < 10


def test_an_s3_inbox_sweep_lists_one_level_and_counts_a_sub_prefix(
    local_s3: LocalS3, settings: Settings, prefix: str
) -> None:
    """Issue 11 over the real server: however much processed/ holds, a sweep lists the top level only
    (pages of two here, so that listing processed/ would show), and a file in a sub-prefix is counted."""
    store = S3Store(settings.bucket, attempts=3, max_seconds=10, page_size=2)
    inbox = f"{prefix}in/"
    for n in range(20):
        store.put(f"{inbox}processed/2026-01-01/old-{n}.txt", b"taken long ago")
    for n in range(3):
        store.put(f"{inbox}story-{n}.txt", text(n).encode())
    store.put(f"{inbox}sub/x.txt", text(9).encode())
    listed: list[tuple[str, str]] = []
    store.client.meta.events.register(
        "provide-client-params.s3.ListObjectsV2",
        lambda params, **_: listed.append((params["Prefix"], params.get("Delimiter", ""))),
    )
    location = f"s3://{settings.bucket}/{inbox}"
    conf = settings.model_copy(update={"sources": [SourceSettings(name="inbox", location=location)]})
    out = io.StringIO()
    report = run_once(conf, store, open_sources(conf, open_store=lambda bucket: store), Reporter("text", out=out))
    assert report.counts == {"created": 3}
    assert report.not_taken == {f"{location}sub/": 1}
    assert out.getvalue().splitlines()[-1] == (
        f"note: 1 file in a sub-folder is not taken (only the top level is read): {location}sub/ (1)"
    )
    # 5 entries (3 objects, processed/, sub/) in pages of two; then sub/ itself, to count it. Never processed/.
    inbox_lists = [entry for entry in listed if entry[0].startswith(inbox)]
    assert inbox_lists == [(inbox, "/")] * 3 + [(f"{inbox}sub/", "")]
    assert store.exists(f"{inbox}sub/x.txt")
    assert len(list(store.list_keys(f"{inbox}processed/"))) == 23
