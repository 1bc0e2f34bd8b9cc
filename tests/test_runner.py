"""Sweeps (``ingest.runner``) over real folders and in-memory inboxes, with an injected clock: no waiting.

What needs the real S3 server or real processes (overlapping runs, an outage through a proxy, SIGTERM to
``ingest watch``) is in ``test_runner_s3.py``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.api import open_sources, retry_failed
from ingest.errors import ConfigError, NotFound, SourceError, StoreDenied, StoreUnavailable
from ingest.keys import Keys, run_key
from ingest.models import Document
from ingest.report import Reporter, RunReport
from ingest.runner import Reload, Watching, run_once, watch
from ingest.settings import Settings, SourceSettings, load_settings
from ingest.sources import Candidate, Source
from ingest.stores.base import Stored
from ingest.stores.faults import FaultyStore
from ingest.stores.memory import MemoryStore

#: The runs' clock: an hour ahead of the real one, so files this test writes are an hour old unless it says so.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
PREFIX = "t/"


def story(n: int) -> str:
    return f"Story {n}\n\nParagraph of story {n}.\n\nREAD MORE Another story\n"


def aged(path: Path, seconds: float = 60.0, now: datetime = NOW) -> Path:
    """Give ``path`` a modification time ``seconds`` before ``now`` (links themselves, not their targets)."""
    stamp = (now - timedelta(seconds=seconds)).timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


def fill(folder: Path, count: int, now: datetime = NOW) -> list[Path]:
    """``count`` stories in ``folder``, written a minute before ``now``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"story-{n:03d}.txt"
        path.write_text(story(n))
        paths.append(aged(path, now=now))
    return paths


def settings_with(*sources: SourceSettings, **extra: object) -> Settings:
    return load_settings({"prefix": PREFIX, **extra}, env={}).model_copy(update={"sources": list(sources)})


def sweep(
    store: MemoryStore,
    location: Path | str,
    *,
    at: datetime = NOW,
    source: Callable[[Source], Source] = lambda s: s,
    **conf: object,
) -> RunReport:
    """One run over one source, with the clock at ``at``."""
    settings = settings_with(SourceSettings(name="drop", location=str(location), **conf))  # type: ignore[arg-type]
    sources = [source(s) for s in open_sources(settings, open_store=lambda bucket: store)]
    return run_once(settings, store, sources, Reporter("text", out=io.StringIO()), clock=lambda: at)


def test_a_folder_run_moves_stored_and_refused_files(tmp_path: Path) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    fill(drop, 3)
    (drop / "empty.txt").write_text("")
    for name in (".hidden.txt", "upload.txt.part", "upload.crdownload"):
        (drop / name).write_text(story(9))
    (drop / "link-out.txt").symlink_to("/etc/hostname")
    (drop / "link-in.txt").symlink_to(drop / "story-000.txt")  # inside the folder: allowed
    for path in drop.iterdir():
        aged(path)
    report = sweep(store, drop, settle_seconds=1)
    assert report.counts == {"created": 4, "failed": 2}  # link-in.txt is its own article, "link-in"
    left = sorted(p.name for p in drop.iterdir() if p.is_file() or p.is_symlink())
    assert left == [".hidden.txt", "upload.crdownload", "upload.txt.part"]  # never taken
    day = drop / "processed" / NOW.strftime("%Y-%m-%d")
    assert {p.name for p in day.iterdir()} >= {"story-000.txt", "story-001.txt", "story-002.txt"}
    error = json.loads((drop / "failed" / "empty.txt.error.json").read_text())
    assert (error["check"], error["field"]) == ("headline", "headline")
    assert "empty" in error["message"]
    assert (drop / "failed" / "link-out.txt").is_symlink()  # the link moved, its target untouched
    assert Path("/etc/hostname").exists()
    stored = store.get(run_key(PREFIX, report.run_id))
    assert stored is not None
    saved = RunReport.model_validate_json(stored.body)
    assert saved.counts == report.counts
    assert set(saved.timings) == {"scan", "read_and_parse", "store", "move"}
    assert [f.error["check"] for f in saved.files if f.error] == ["headline", "refused"]


def test_a_file_is_left_until_it_has_settled(tmp_path: Path) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "slow.txt"
    path.write_text("Slow Story\n\nFirst paragraph.\n")
    aged(path, seconds=1)  # written a second before NOW: still being written, as far as anyone can tell
    early = sweep(store, drop, settle_seconds=5)
    assert (early.files, early.waiting) == ([], [str(path)])
    assert "1 still being written" in early.summary()
    with path.open("a") as fh:
        fh.write("Second paragraph.\n")
    aged(path, seconds=1)
    assert sweep(store, drop, settle_seconds=5, at=NOW + timedelta(seconds=2)).files == []
    done = sweep(store, drop, settle_seconds=5, at=NOW + timedelta(seconds=5))
    assert [f.outcome for f in done.files] == ["created"]
    stored = store.get(Keys(PREFIX, "slow").latest)
    assert stored is not None and len(Document.model_validate_json(stored.body).body) == 2  # all of it


def test_retry_failed_puts_files_back_for_the_next_run(tmp_path: Path) -> None:


    store = MemoryStore()
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "fixme.txt").write_text("Only a headline\n")
    aged(drop / "fixme.txt")
    assert sweep(store, drop, settle_seconds=0).counts == {"failed": 1}
    settings = settings_with(SourceSettings(name="drop", location=str(drop)))
    [(_, names)] = retry_failed(settings)
    assert names == ["fixme.txt"]
    assert not (drop / "failed" / "fixme.txt.error.json").exists()
    (drop / "fixme.txt").write_text("Only a headline\n\nAnd now a body.\n")
    assert sweep(store, drop, settle_seconds=0).counts == {"created": 1}


def test_retry_failed_takes_names_and_a_dry_run_and_refuses_an_unknown_name_before_moving_any(
    tmp_path: Path,
) -> None:
    drop, inbox = tmp_path / "drop", MemoryStore("inbox-bucket")
    (drop / "failed").mkdir(parents=True)
    for name in ("fixme.txt", "other.txt"):
        (drop / "failed" / name).write_text(story(1))
        (drop / "failed" / f"{name}.error.json").write_text("{}")
        inbox.put(f"in/failed/{name}", story(2).encode())
        inbox.put(f"in/failed/{name}.error.json", b"{}")
    inbox.put("in/failed/inbox-only.txt", story(3).encode())
    settings = settings_with(
        SourceSettings(name="drop", location=str(drop)), SourceSettings(name="inbox", location="s3://inbox-bucket/in/")
    )

    def retry(names: list[str] | None = None, dry_run: bool = False) -> list[tuple[str, list[str]]]:
        back = retry_failed(settings, names, dry_run=dry_run, open_store=lambda bucket: inbox)
        return [(source.settings.name, names) for source, names in back]

    everything = [("drop", ["fixme.txt", "other.txt"]), ("inbox", ["fixme.txt", "inbox-only.txt", "other.txt"])]
    assert retry(dry_run=True) == everything
    assert retry(["inbox-only.txt"], dry_run=True) == [("drop", []), ("inbox", ["inbox-only.txt"])]
    with pytest.raises(NotFound, match=r"^nope\.txt, gone\.txt: not in failed/ of drop \(.*\), inbox \(s3://"):
        retry(["fixme.txt", "nope.txt", "gone.txt"])
    assert retry(dry_run=True) == everything  # nothing moved by a dry run, nor by a refused name
    # A name may be given as a path (copied from a run's output): it counts by its last part.
    assert retry([str(drop / "failed" / "fixme.txt")]) == [("drop", ["fixme.txt"]), ("inbox", ["fixme.txt"])]
    assert (drop / "fixme.txt").exists() and not (drop / "failed" / "fixme.txt.error.json").exists()
    assert inbox.exists("in/fixme.txt") and not inbox.exists("in/failed/fixme.txt.error.json")
    inbox.put("in/other.txt", b"a new other.txt arrived meanwhile")
    assert retry() == [("drop", ["other.txt"]), ("inbox", ["inbox-only.txt", "other-1.txt"])]  # never over it


def test_an_s3_inbox_takes_objects_and_moves_them_by_prefix() -> None:
    store = MemoryStore("inbox-bucket")
    inbox = "inbox/"
    for n in range(3):
        store.put(f"{inbox}story-{n}.txt", story(n).encode(), "text/plain")
    store.put(f"{inbox}broken.txt", b"\x00\x00binary", "text/plain")
    store.put(f"{inbox}.hidden.txt", story(7).encode(), "text/plain")
    store.put(f"{inbox}nested/deep.txt", story(5).encode())
    report = sweep(store, f"s3://inbox-bucket/{inbox}")
    assert report.counts == {"created": 3, "failed": 1}
    keys = set(store.list_keys(inbox))
    day = NOW.strftime("%Y-%m-%d")
    assert {f"{inbox}processed/{day}/story-{n}.txt" for n in range(3)} <= keys
    assert {f"{inbox}failed/broken.txt", f"{inbox}failed/broken.txt.error.json", f"{inbox}.hidden.txt"} <= keys
    assert f"{inbox}nested/deep.txt" in keys  # like a drop folder's subfolders: not input
    assert f"{inbox}story-0.txt" not in keys
    error = store.get(f"{inbox}failed/broken.txt.error.json")
    assert error is not None and json.loads(error.body)["check"] == "binary"
    [inbox_source] = open_sources(
        settings_with(SourceSettings(name="inbox", location=f"s3://inbox-bucket/{inbox}")),
        open_store=lambda bucket: store,
    )
    assert inbox_source.retry_failed() == ["broken.txt"]
    keys = set(store.list_keys(inbox))
    assert f"{inbox}broken.txt" in keys and f"{inbox}failed/broken.txt" not in keys


def test_s3_inbox_moves_never_overwrite() -> None:
    store = MemoryStore("inbox-bucket")
    location = "s3://inbox-bucket/inbox2/"
    for n in range(2):
        store.put("inbox2/same.txt", f"Same Story\n\nRevision {n}.\n".encode())
        assert sweep(store, location).counts == {"created" if n == 0 else "updated": 1}
    day = NOW.strftime("%Y-%m-%d")
    assert set(store.list_keys("inbox2/processed/")) == {
        f"inbox2/processed/{day}/same.txt",
        f"inbox2/processed/{day}/same-1.txt",
    }


class ReplacedAfterRead:
    """Wraps a source: right after a file is read, a publisher replaces it (temp name, then rename)."""

    def __init__(self, inner: Source, replace: Callable[[Candidate], None]) -> None:
        self.inner, self.replace = inner, replace
        self.settings = inner.settings

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def read(self, candidate: Candidate, max_bytes: int, now: float) -> bytes | None:
        data = self.inner.read(candidate, max_bytes, now)
        self.replace(candidate)
        return data


def test_a_file_replaced_after_it_was_read_is_not_moved(tmp_path: Path) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "story.txt").write_text("Story\n\nFirst version.\n")

    def publish(candidate: Candidate) -> None:
        tmp = drop / "story.txt.tmp"
        tmp.write_text("Story\n\nCorrected version.\n")
        os.replace(tmp, drop / "story.txt")

    wrap = lambda s: ReplacedAfterRead(s, publish)  # type: ignore[return-value]  # noqa: E731
    report = sweep(store, drop, settle_seconds=0, source=wrap)
    (record,) = report.files
    assert record.outcome == "created" and record.moved_to is None
    assert "changed after it was read" in (record.message or "")
    assert (drop / "story.txt").read_text() == "Story\n\nCorrected version.\n"  # still there, not lost
    again = sweep(store, drop, settle_seconds=0)
    assert [(f.outcome, f.version) for f in again.files] == [("updated", 2)]


def test_an_s3_object_reuploaded_after_it_was_read_is_not_moved() -> None:
    store = MemoryStore("inbox-bucket")
    store.put("inbox3/story.txt", b"Story\n\nFirst version.\n")

    def reupload(candidate: Candidate) -> None:
        store.put(candidate.ref, b"Story\n\nCorrected version.\n")

    wrap = lambda s: ReplacedAfterRead(s, reupload)  # type: ignore[return-value]  # noqa: E731
    report = sweep(store, "s3://inbox-bucket/inbox3/", source=wrap)
    assert report.files[0].moved_to is None
    stored = store.get("inbox3/story.txt")
    assert stored is not None and stored.body == b"Story\n\nCorrected version.\n"
    assert [k for k in store.list_keys("inbox3/") if "/processed/" in k] == []
    again = sweep(store, "s3://inbox-bucket/inbox3/")
    assert [(f.outcome, f.version) for f in again.files] == [("updated", 2)]


def test_an_s3_inbox_overlapping_the_document_store_is_refused() -> None:
    for location in ("s3://ingest/", f"s3://ingest/{PREFIX}", f"s3://ingest/{PREFIX}raw/"):
        with pytest.raises(ConfigError, match="overlaps the document store"):
            open_sources(settings_with(SourceSettings(name="inbox", location=location)))
    fine = settings_with(SourceSettings(name="inbox", location=f"s3://ingest/{PREFIX}inbox/"))
    assert len(open_sources(fine, open_store=lambda bucket: MemoryStore(bucket))) == 1


def test_an_unknown_source_format_is_a_config_error_naming_the_known_ones(tmp_path: Path) -> None:
    bad = settings_with(SourceSettings(name="drop", location=str(tmp_path), format="docx"))
    with pytest.raises(ConfigError, match="unknown input format 'docx' \\(known: text, "):
        open_sources(bad)


class Outage(MemoryStore):
    """Storage that fails while ``down`` is true: transiently, or (``denied``) for good."""

    def __init__(self) -> None:
        super().__init__("ingest")
        self.down = True
        self.denied = False
        self.failures = 0
        self.puts_fail = False  # writes fail too (the run report cannot be stored)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        if self.puts_fail:
            raise StoreUnavailable(f"storage unreachable: PUT {key} failed after retrying")
        super().put(key, body, content_type)

    def ensure_bucket(self) -> None:
        if self.denied:
            raise StoreDenied("S3 HEAD bucket ingest: access denied (403): check the S3 credentials")
        if self.down:
            self.failures += 1
            raise StoreUnavailable("storage unreachable: HEAD bucket failed after retrying")


def test_watch_rides_out_a_storage_outage(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    fill(drop, 2)
    store = Outage()
    settings = settings_with(SourceSettings(name="drop", location=str(drop), settle_seconds=0), poll_seconds=0.01)
    stop = threading.Event()

    def recover_then_stop(report: RunReport) -> None:
        if report.files:
            stop.set()

    class Watching(Reporter):
        def finished(self, report: RunReport) -> None:
            super().finished(report)
            if store.failures >= 3:
                store.down = False
            recover_then_stop(report)

    reporter = Watching("text", out=io.StringIO())
    watched = watch(settings, store, open_sources(settings), reporter, stop, clock=lambda: NOW)
    assert (watched.refused, watched.failing) == (0, None)  # the last sweep worked: green
    assert store.failures >= 3  # it really was down at first
    assert len(list((drop / "processed").rglob("*.txt"))) == 2


def test_watch_stops_on_a_terminal_storage_error(tmp_path: Path) -> None:
    store = Outage()
    store.denied = True
    settings = settings_with(SourceSettings(name="drop", location=str(tmp_path), settle_seconds=0))
    with pytest.raises(StoreDenied, match="access denied"):
        watch(settings, store, open_sources(settings), Reporter("text", out=io.StringIO()), threading.Event())


def test_leases_are_keyed_by_where_a_file_is_not_by_the_source_name(tmp_path: Path) -> None:
    from ingest.claims import shard_for
    from ingest.stores.leases import Leases

    store = MemoryStore()
    drop = tmp_path / "drop"
    paths = fill(drop, 40)
    # Another run holds story-000's group through a source of another name (a --source beside the configured one).
    held = shard_for(str(drop / "story-000.txt"))
    other = Leases(store, PREFIX, "other-run", 60, clock=lambda: NOW)
    assert other.acquire(held)
    theirs = [str(p) for p in paths if shard_for(str(p)) == held]
    report = sweep(store, drop)  # this source is called "drop"
    assert report.leased_elsewhere == len(theirs) >= 1
    assert sorted(f.path for f in report.files) == sorted(str(p) for p in paths if str(p) not in theirs)
    assert all(Path(p).exists() for p in theirs)


def test_a_sweep_leases_a_few_groups_not_every_file(tmp_path: Path) -> None:
    from ingest.claims import SHARDS

    store = MemoryStore()
    drop = tmp_path / "drop"
    fill(drop, 200)
    report = sweep(store, drop)
    assert report.counts == {"created": 200}
    # Per file: version, raw and latest; per batch of 100 a changes object; the report and the source's state;
    # then one lease create and one release per group, not a create, a renewal and a release per file.
    assert store.calls["PUT"] <= 3 * 200 + 2 + 1 + 1 + SHARDS
    assert 0 < store.calls["DELETE"] <= SHARDS
    assert list(store.list_keys(f"{PREFIX}locks/")) == []  # released


def test_a_release_that_fails_after_the_work_does_not_fail_the_run(tmp_path: Path) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    fill(drop, 3)
    # Every delete fails: the leases cannot be released once the files are stored and moved.
    failing = FaultyStore(store, operations=frozenset({"delete"}), rate=1.0, after=False)
    settings = settings_with(SourceSettings(name="drop", location=str(drop)))
    sources = open_sources(settings)
    report = run_once(settings, failing, sources, Reporter("text", out=io.StringIO()), clock=lambda: NOW)
    assert (report.error, report.counts) == (None, {"created": 3})
    assert len(list((drop / "processed").rglob("*.txt"))) == 3
    assert store.get(run_key(PREFIX, report.run_id)) is not None  # the report was stored
    from ingest.claims import shard_for

    groups = {shard_for(str(drop / p.name)) for p in (drop / "processed").rglob("*.txt")}
    assert len(list(store.list_keys(f"{PREFIX}locks/"))) == len(groups)  # left to expire


def test_a_bad_source_does_not_stop_a_good_one_and_the_run_is_not_green(tmp_path: Path) -> None:
    store = MemoryStore()
    good = tmp_path / "good"
    fill(good, 2)
    settings = settings_with(
        SourceSettings(name="typo", location=str(tmp_path / "no-such-folder")),
        SourceSettings(name="good", location=str(good)),
    )
    out = io.StringIO()
    with pytest.raises(SourceError, match="1 source\\(s\\) could not be swept: typo"):
        run_once(settings, store, open_sources(settings), Reporter("text", out=out), clock=lambda: NOW)
    assert len(list((good / "processed").rglob("*.txt"))) == 2  # the good source was swept
    assert len([line for line in out.getvalue().splitlines() if line.startswith("created ")]) == 2
    [key] = store.list_keys(f"{PREFIX}runs/")
    stored = store.get(key)
    assert stored is not None
    saved = RunReport.model_validate_json(stored.body)
    assert "no-such-folder" in saved.source_errors["typo"] and saved.error is not None
    assert saved.counts == {"created": 2}


def test_idle_and_failed_runs_store_their_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    drop.mkdir()
    idle = sweep(store, drop)
    assert idle.files == [] and store.get(run_key(PREFIX, idle.run_id)) is not None
    down = Outage()
    settings = settings_with(SourceSettings(name="drop", location=str(drop)))
    with pytest.raises(StoreUnavailable):
        run_once(settings, down, open_sources(settings), Reporter("text", out=io.StringIO()), clock=lambda: NOW)
    # The bucket check failed, a write still went through: the failed run's report is stored.
    [key] = down.list_keys(f"{PREFIX}runs/")
    stored = down.get(key)
    assert stored is not None and "unreachable" in (RunReport.model_validate_json(stored.body).error or "")
    gone = Outage()
    gone.puts_fail = True
    with caplog.at_level("WARNING", logger="ingest.run"), pytest.raises(StoreUnavailable):  # the run's own error
        run_once(settings, gone, open_sources(settings), Reporter("text", out=io.StringIO()), clock=lambda: NOW)
    assert list(gone.list_keys(f"{PREFIX}runs/")) == [] and "not stored" in caplog.text  # said, not raised


def test_a_watch_stopped_while_a_source_is_wedged_does_not_end_green(tmp_path: Path) -> None:
    good = tmp_path / "good"
    fill(good, 1)
    settings = settings_with(
        SourceSettings(name="typo", location=str(tmp_path / "no-such-folder")),
        SourceSettings(name="good", location=str(good)),
        poll_seconds=0.01,
    )
    stop = threading.Event()

    class StopAfterOne(Reporter):
        def finished(self, report: RunReport) -> None:
            super().finished(report)
            stop.set()

    reporter = StopAfterOne("text", out=io.StringIO())
    watched = watch(settings, MemoryStore(), open_sources(settings), reporter, stop, clock=lambda: NOW)
    assert watched.failing is not None and "typo" in watched.failing
    assert len(list((good / "processed").rglob("*.txt"))) == 1  # the good source was swept all the same


def test_a_reload_asked_of_a_watch_swaps_its_settings_and_one_that_fails_keeps_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    first, second = tmp_path / "first", tmp_path / "second"
    fill(first, 1)
    second.mkdir()
    (second / "late.txt").write_text(story(7))
    aged(second / "late.txt")
    stop = threading.Event()
    sweeps: list[str] = []

    def swept(name: str) -> None:
        sweeps.append(name)
        if len(sweeps) <= 2:  # asked while the watch waits out its 60 s pause: the pause ends for it
            threading.Timer(0.05, reload.request).start()
        elif name == "second":
            stop.set()

    def watching(location: Path, poll_seconds: float) -> Watching:
        source = SourceSettings(name=location.name, location=str(location), settle_seconds=0)
        settings = settings_with(source, poll_seconds=poll_seconds)
        sources = open_sources(settings, open_store=lambda bucket: store)
        return Watching(settings, store, sources, after_sweep=lambda: swept(location.name))

    loads: list[Watching | ConfigError] = [
        ConfigError("config/ingest.yaml: not valid YAML: mapping values are not allowed here"),
        watching(second, 0.01),
    ]

    def load() -> Watching:
        loaded = loads.pop(0)
        if isinstance(loaded, ConfigError):
            raise loaded
        return loaded

    reload = Reload(load)
    start = watching(first, 60.0)
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="ingest.run"):
        watched = watch(
            start.settings,
            store,
            start.sources,
            Reporter("text", out=io.StringIO()),
            stop,
            clock=lambda: NOW,
            after_sweep=start.after_sweep,
            reload=reload,
        )
    assert time.monotonic() - began < 30  # neither reload waited for the 60 s pause to end
    assert sweeps == ["first", "first", "second"]  # the reload that failed kept the old sources
    assert (watched.refused, watched.failing, loads) == (0, None, [])
    assert len(list((first / "processed").rglob("*.txt"))) == len(list((second / "processed").rglob("*.txt"))) == 1
    [kept] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert kept.getMessage() == (
        "config not reloaded, still watching as before: config/ingest.yaml: not valid YAML: mapping values are "
        "not allowed here"
    )
    [done] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("config reloaded")]
    assert f"watching {second} every 0.0 s" in done and "bucket s3://ingest/t/" in done


def test_a_run_names_its_config_and_bucket_under_the_summary_once(tmp_path: Path) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    settings = settings_with(SourceSettings(name="drop", location=str(drop)), bucket="news-docs")
    sources = open_sources(settings, open_store=lambda bucket: store)
    out = io.StringIO()
    reporter = Reporter("text", out=out, in_use_note=True)
    for n in range(2):
        fill(drop, n + 1)
        report = run_once(settings, store, sources, reporter, clock=lambda: NOW)
    config = Path("config/ingest.yaml").absolute()  # the tests run from the checkout, which has one
    assert (report.config_file, report.bucket, report.prefix) == (str(config), "news-docs", PREFIX)
    lines = out.getvalue().splitlines()
    note = f"note: config {config}, bucket s3://news-docs/{PREFIX}"
    assert [line for line in lines if line.startswith(("run ", "note: "))] == [
        lines[1],
        note,  # under the first summary only: the watch's later sweeps used the same
        lines[-1],
    ]
    assert lines[-1].startswith("run ") and lines[1].startswith("run ")
    quiet = io.StringIO()
    run_once(settings, store, sources, Reporter("text", out=quiet), clock=lambda: NOW)
    assert "note:" not in quiet.getvalue()  # a library caller's reporter says it only when asked
    stored = store.get(run_key(PREFIX, report.run_id))
    assert stored is not None and RunReport.model_validate_json(stored.body).bucket == "news-docs"


def test_a_run_report_streams_its_records_and_reads_back_whole(tmp_path: Path) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    fill(drop, 250)
    (drop / "empty.txt").write_text("")
    aged(drop / "empty.txt")
    settings = settings_with(SourceSettings(name="drop", location=str(drop)), batch_size=40)
    sources = open_sources(settings, open_store=lambda bucket: store)
    report = run_once(settings, store, sources, Reporter("text", out=io.StringIO()), clock=lambda: NOW)
    assert report.total == 251 and len(report.errors) == 1
    stored = store.get(run_key(PREFIX, report.run_id))
    assert stored is not None
    raw = json.loads(stored.body)
    assert len(raw["files"]) == 251 and raw["counts"] == {"created": 250, "failed": 1}
    saved = RunReport.model_validate_json(stored.body)
    assert [f.path for f in saved.files] == [f.path for f in report.files]
    assert saved.errors[0].path.endswith("empty.txt")


def test_no_sources_names_the_config_file_in_use(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("sources: []\n")
    for settings, where in [
        (load_settings(config=empty, env={}), str(empty)),
        (Settings(), "a config file (--config, $INGEST_CONFIG or ./config/ingest.yaml)"),
    ]:
        with pytest.raises(ConfigError) as err:
            open_sources(settings)
        assert str(err.value) == f"no sources configured: add `sources:` to {where} or pass --source PATH"


class MoveFailsOnce:
    """Wraps a source: the first move waits until the next batch is stored (``stored`` set), then fails."""

    def __init__(self, inner: Source, stored: threading.Event) -> None:
        self.inner, self.stored, self.failed = inner, stored, False
        self.settings = inner.settings

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def done(self, candidate: Candidate, when: datetime) -> str:
        if not self.failed:
            self.failed = True
            assert self.stored.wait(10)
            raise SourceError(f"source drop: cannot move {candidate.display}: disk full")
        return self.inner.done(candidate, when)


class LatestCounter(MemoryStore):
    """Sets ``event`` once ``after`` latest pointers were written; ``fail_after`` makes later reads fail."""

    def __init__(self, after: int, event: threading.Event, *, fail_after: bool = False) -> None:
        super().__init__("ingest")
        self.after, self.event, self.fail_after, self.latest = after, event, fail_after, 0
        self.refused = threading.Event()  # a read failed (``fail_after``)

    def replace(self, key: str, body: bytes, etag: str | None, content_type: str = "application/json") -> str | None:
        got = super().replace(key, body, etag, content_type)
        if key.endswith("/latest.json"):
            self.latest += 1
            if self.latest >= self.after:
                self.event.set()
        return got

    def get(self, key: str) -> Stored | None:
        if self.fail_after and self.event.is_set():
            self.refused.set()
            raise StoreUnavailable(f"storage unreachable: GET {key} failed after retrying")
        return super().get(key)

    def ensure_bucket(self) -> None:
        if self.fail_after and self.event.is_set():
            self.refused.set()
            raise StoreUnavailable("storage unreachable: HEAD bucket failed after retrying")
        super().ensure_bucket()


def test_a_move_that_fails_after_the_next_batch_is_stored_leaves_that_batch_reported_not_lost(
    tmp_path: Path,
) -> None:
    drop = tmp_path / "drop"
    fill(drop, 3)
    stored = threading.Event()
    store = LatestCounter(2, stored)  # the second batch is stored while the first one's move hangs
    out = io.StringIO()
    settings = settings_with(SourceSettings(name="drop", location=str(drop)), batch_size=1)
    sources = [MoveFailsOnce(s, stored) for s in open_sources(settings, open_store=lambda bucket: store)]
    with pytest.raises(SourceError, match="could not be swept: drop"):
        run_once(settings, store, sources, Reporter("text", out=out), clock=lambda: NOW)  # type: ignore[arg-type]
    # Two articles stored, none moved; the second is reported (left for the next run), the third never read.
    assert store.latest == 2
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == ["story-000.txt", "story-001.txt", "story-002.txt"]
    assert "story-001.txt" in out.getvalue()
    assert "story-002.txt" not in out.getvalue()
    again = sweep(store, drop)  # the next run finds them stored and moves them
    assert sorted(f.outcome for f in again.files) == ["created", "unchanged", "unchanged"]


def test_a_storage_error_is_the_one_raised_when_a_move_failed_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    drop = tmp_path / "drop"
    fill(drop, 3)
    stored = threading.Event()
    store = LatestCounter(1, stored, fail_after=True)  # storage goes down once the first batch is stored
    settings = settings_with(SourceSettings(name="drop", location=str(drop)), batch_size=1)
    # The first batch's move fails once the second batch's storage has failed.
    sources = [MoveFailsOnce(s, store.refused) for s in open_sources(settings, open_store=lambda bucket: store)]
    with pytest.raises(StoreUnavailable):
        run_once(settings, store, sources, Reporter("text", out=io.StringIO()), clock=lambda: NOW)  # type: ignore[arg-type]
    assert "moving stored files failed too" in caplog.text and "disk full" in caplog.text


def test_a_failing_after_sweep_step_never_stops_the_watch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    drop = tmp_path / "drop"
    fill(drop, 1)
    store, stop, calls = MemoryStore(), threading.Event(), []

    def deliver() -> None:
        calls.append(1)
        if len(calls) == 2:
            stop.set()
        raise StoreDenied("S3 GET webhooks/cms/cursor.json: access denied (403)")

    settings = settings_with(SourceSettings(name="drop", location=str(drop)), poll_seconds=0.01)
    sources = open_sources(settings, open_store=lambda bucket: store)
    watch(settings, store, sources, Reporter("text", out=io.StringIO()), stop, clock=lambda: NOW, after_sweep=deliver)
    assert len(calls) == 2  # it swept again after the first failure
    assert "access denied" in caplog.text and "the watch goes on" in caplog.text
