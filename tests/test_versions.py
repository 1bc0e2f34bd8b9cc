"""Exactly-once versions under concurrency and crashes, against the real SeaweedFS."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from ingest.pipeline import ingest_files
from ingest.settings import Settings, load_settings
from ingest.stores.s3 import S3Store
from ingest.versioning import Keys
from tests.conftest import BUCKET, read_feed, stored_versions

pytestmark = pytest.mark.s3

WRITERS = 8
REVISIONS = 3


def revision(writer: int, n: int) -> str:
    return f"Budget Vote\n\nRevision {n} from writer {writer}.\n\nSecond paragraph stays.\n"


def _writer(args: tuple[int, str, str, dict[str, str]]) -> list[str]:
    writer, prefix, folder, env = args
    os.environ.update(env)
    settings = load_settings({"bucket": BUCKET, "prefix": prefix}, env={})
    store = S3Store(settings.bucket, attempts=5, max_seconds=30)
    outcomes = []
    for n in range(REVISIONS):
        path = Path(folder) / f"w{writer}" / "budget.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(revision(writer, n), encoding="utf-8")
        (outcome,) = ingest_files([path], settings, store)
        outcomes.append(outcome.outcome)
    return outcomes


def test_concurrent_writers_make_contiguous_unique_versions(
    tmp_path: Path, settings: Settings, store: S3Store, local_s3: object
) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    jobs = [(w, settings.prefix, str(tmp_path), env) for w in range(WRITERS)]
    with multiprocessing.get_context("spawn").Pool(WRITERS) as pool:
        results = pool.map(_writer, jobs)
    assert all(outcome in {"created", "updated"} for outcomes in results for outcome in outcomes)
    keys = Keys(settings.prefix, "budget")
    docs = stored_versions(store, keys)
    total = WRITERS * REVISIONS
    assert [d.version for d in docs] == list(range(1, total + 1))  # contiguous, none lost
    bodies = sorted(d.body[0].text for d in docs)
    assert bodies == sorted(f"Revision {n} from writer {w}." for w in range(WRITERS) for n in range(REVISIONS))
    latest = store.get(keys.latest)
    assert latest is not None and latest == store.get(keys.version(total))
    assert {(e.id, e.version) for e in read_feed(store, settings.prefix)} == {
        ("budget", v) for v in range(1, total + 1)
    }
    for doc in docs:  # every version's history is exactly the versions before it
        assert [h.version for h in doc.history] == list(range(1, doc.version))
        assert store.get(keys.raw(doc.version, ".txt")) is not None


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in ingest catches it."""


class CrashingStore(S3Store):
    """Dies just before its ``crash_at``-th write (1-based), or right after it with ``after=True``."""

    def __init__(self, bucket: str, crash_at: int, after: bool = False) -> None:
        super().__init__(bucket, attempts=2, max_seconds=5)
        self.crash_at, self.after, self.writes = crash_at, after, 0

    def _write(self, do):  # type: ignore[no-untyped-def]
        self.writes += 1
        if self.writes == self.crash_at and not self.after:
            raise Crash
        result = do()
        if self.writes == self.crash_at and self.after:
            raise Crash
        return result

    def put_new(self, key, body, content_type="application/json"):  # type: ignore[no-untyped-def]
        return self._write(lambda: super(CrashingStore, self).put_new(key, body, content_type))

    def replace(self, key, body, etag, content_type="application/json"):  # type: ignore[no-untyped-def]
        return self._write(lambda: super(CrashingStore, self).replace(key, body, etag, content_type))

    def put(self, key, body, content_type="application/json"):  # type: ignore[no-untyped-def]
        return self._write(lambda: super(CrashingStore, self).put(key, body, content_type))


# Writes for one new version: 1 version, 2 raw, 3 changes batch, 4 latest.
@pytest.mark.parametrize("after", [False, True], ids=["before-write", "after-write"])
@pytest.mark.parametrize("crash_at", [1, 2, 3, 4])
@pytest.mark.parametrize("existing", [0, 1], ids=["new-article", "new-version"])
def test_a_run_killed_between_any_two_writes_is_repaired_by_running_again(
    tmp_path: Path, settings: Settings, store: S3Store, crash_at: int, after: bool, existing: int
) -> None:
    path = tmp_path / "story.txt"
    if existing:
        path.write_text("Story\n\nFirst version.\n")
        ingest_files([path], settings, store)
    path.write_text("Story\n\nThe version being written when the process dies.\n")
    with pytest.raises(Crash):
        ingest_files([path], settings, CrashingStore(settings.bucket, crash_at, after))
    (rerun,) = ingest_files([path], settings, store)
    target = existing + 1
    assert rerun.version == target
    assert rerun.outcome == ("unchanged" if (crash_at, after) == (4, True) else "created" if target == 1 else "updated")
    keys = Keys(settings.prefix, "story")
    docs = stored_versions(store, keys)
    assert [d.version for d in docs] == list(range(1, target + 1))
    assert store.get(keys.latest) == store.get(keys.version(target))
    raw = store.get(keys.raw(target, ".txt"))
    assert raw is not None and raw.body == path.read_bytes()
    versions_in_feed = [e.version for e in read_feed(store, settings.prefix)]
    assert set(versions_in_feed) == set(range(1, target + 1))  # complete; a repeat is allowed (at-least-once)
