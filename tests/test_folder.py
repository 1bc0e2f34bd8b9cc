"""Drop folders never store half a file and never archive a correction unread (issue 9, points 5 and 6);
a sweep lists only the top level, and counts what sub-folders hold (issue 11).

Real folders, the in-memory store and an injected clock: the writer is simulated between the steps of a
run (after the listing, during the read, just before the move), so every window is hit on purpose. The
same promise against the real SeaweedFS, with a real writer thread, is in ``test_folder_s3.py``.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import ingest.sources.folder
from ingest.api import open_sources
from ingest.errors import SourceChanged, SourceError
from ingest.keys import Keys, run_key
from ingest.models import Document
from ingest.reader import read_file
from ingest.report import JsonFormatter, LogFormat, Reporter, RunReport
from ingest.runner import run_once
from ingest.settings import SourceSettings
from ingest.sources import Candidate, Source
from ingest.sources.folder import Folder
from ingest.stores.memory import MemoryStore
from tests.test_runner import NOW, PREFIX, ReplacedAfterRead, aged, fill, settings_with, story, sweep

DAY = NOW.strftime("%Y-%m-%d")
LEFT = "; left for the next run"


def long_story(n: int, paragraphs: int = 40) -> str:
    """Revision ``n`` of one article: long enough that half of it is visibly not all of it."""
    return "Bridge Story\n\n" + "".join(f"Revision {n}, paragraph {p}.\n\n" for p in range(paragraphs))


def versions(store: MemoryStore, article: str = "bridge") -> list[Document]:
    keys, docs, n = Keys(PREFIX, article), [], 1
    while (stored := store.get(keys.version(n))) is not None:
        docs.append(Document.model_validate_json(stored.body))
        n += 1
    return docs


def paragraphs(doc: Document) -> list[str]:
    return [block.text for block in doc.body]


def complete(n: int) -> list[str]:
    return [f"Revision {n}, paragraph {p}." for p in range(40)]


def left_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().endswith(LEFT)]


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


# --- 5a: what was read is what settled -------------------------------------------------------------


@pytest.fixture
def rewrite_during_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path, str], None]]:
    """Arm a writer that rewrites a file in place (same inode, O_TRUNC) right after the reader took its bytes."""
    armed: dict[Path, str] = {}

    def reading(path: Path, max_bytes: int, *, follow_symlinks: bool = True) -> tuple[bytes, os.stat_result]:
        result = read_file(path, max_bytes, follow_symlinks=follow_symlinks)
        if Path(path) in armed:
            Path(path).write_text(armed.pop(Path(path)))  # the writer was still going
        return result

    monkeypatch.setattr(ingest.sources.folder, "read_file", reading)
    yield lambda path, text: armed.__setitem__(path, text)
    assert not armed, "the armed writer never ran"


def test_a_file_rewritten_in_place_while_read_is_left_and_taken_whole_next_run(
    drop: Path, rewrite_during_read: Callable[[Path, str], None], caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    path = drop / "bridge.txt"
    path.write_text(long_story(1))
    aged(path)
    assert sweep(store, drop, settle_seconds=5).counts == {"created": 1}
    # The publisher rewrites the next revision in place; it had written the first lines, paused, and
    # goes on while the run reads: what the run holds is a truncated revision 2.
    path.write_text(long_story(2)[:200])
    aged(path)
    rewrite_during_read(path, long_story(2))
    with caplog.at_level(logging.WARNING, logger="ingest.run"):
        during = sweep(store, drop, settle_seconds=5)
    assert during.files == []  # not stored, not moved, not refused
    [line] = left_lines(caplog)
    assert line.startswith(f"{path} changed while it was read (size ")
    assert path.read_text() == long_story(2)  # still there, whole
    aged(path)
    after = sweep(store, drop, settle_seconds=5, at=NOW + timedelta(minutes=2))
    assert [(f.outcome, f.version) for f in after.files] == [("updated", 2)]
    assert [paragraphs(doc) for doc in versions(store)] == [complete(1), complete(2)]  # never a partial one
    latest = store.get(Keys(PREFIX, "bridge").latest)
    assert latest is not None and paragraphs(Document.model_validate_json(latest.body)) == complete(2)


class ChangedAfterListing:
    """Wraps a source: between the listing and the read, a writer touches the file (or replaces it)."""

    def __init__(self, inner: Source, change: Callable[[Candidate], None]) -> None:
        self.inner, self.change, self.settings = inner, change, inner.settings

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def read(self, candidate: Candidate, max_bytes: int, now: float) -> bytes | None:
        self.change(candidate)
        return self.inner.read(candidate, max_bytes, now)


@pytest.mark.parametrize(
    ("how", "detail"),
    [
        ("appended", "size "),
        ("replaced", "replaced by another file"),
        ("touched", "modified again"),
    ],
)
def test_a_file_changed_between_listing_and_reading_is_left(
    drop: Path, how: str, detail: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    path = drop / "bridge.txt"
    path.write_text(long_story(1, paragraphs=3))
    aged(path)

    def change(candidate: Candidate) -> None:
        if how == "appended":
            with path.open("a") as fh:
                fh.write("Revision 1, paragraph 3.\n")
            aged(path)  # even an old-looking mtime does not hide a size change
        elif how == "replaced":
            (drop / "new.tmp").write_text(long_story(1, paragraphs=3))
            aged(drop / "new.tmp")
            os.replace(drop / "new.tmp", path)
        else:
            aged(path, seconds=59)

    wrap = lambda s: ChangedAfterListing(s, change)  # type: ignore[return-value]  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="ingest.run"):
        report = sweep(store, drop, settle_seconds=5, source=wrap)
    assert report.files == []
    [line] = left_lines(caplog)
    assert line.startswith(f"{path} changed after it was listed ({detail}")
    assert versions(store) == []
    assert sweep(store, drop, settle_seconds=5).counts == {"created": 1}  # the next run takes it


def test_a_file_too_recent_at_read_time_is_left(drop: Path) -> None:
    path = drop / "bridge.txt"
    path.write_text(long_story(1))
    aged(path, seconds=60)
    folder = Folder(SourceSettings(name="drop", location=str(drop), settle_seconds=5))
    [candidate] = folder.scan(NOW.timestamp()).ready
    # Read by a clock only 2 s past the file's mtime (a clock stepped back, a candidate listed elsewhere):
    # too recent to trust, whatever the listing said.
    with pytest.raises(SourceChanged, match=r"was modified 2\.0 s before it was read, under settle_seconds \(5 s\)"):
        folder.read(candidate, 1 << 20, (NOW - timedelta(seconds=58)).timestamp())
    assert path.read_text() == long_story(1)
    assert folder.read(candidate, 1 << 20, NOW.timestamp()) == long_story(1).encode()


# --- 5b: writers that pause: done markers and a minimum age ------------------------------------------


def test_a_done_marker_announces_its_file_and_moves_with_it(drop: Path) -> None:
    store = MemoryStore()
    for name in ("bridge.txt", "budget.txt", "orphan.txt.done"):
        (drop / name).write_text(story(1) if name != "orphan.txt.done" else "")
        aged(drop / name)
    (drop / "bridge.txt.done").touch()
    aged(drop / "bridge.txt.done", seconds=30)  # written after its file: announces it
    report = sweep(store, drop, settle_seconds=5, done_marker=".done")
    assert [f.path for f in report.files] == [str(drop / "bridge.txt")]
    assert report.waiting == [str(drop / "budget.txt")]  # no marker yet: its writer may only have paused
    day = drop / "processed" / DAY
    assert sorted(p.name for p in day.iterdir()) == ["bridge.txt", "bridge.txt.done"]  # the marker went along
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == ["budget.txt", "orphan.txt.done"]  # never input
    # A marker older than its file belongs to an earlier revision: the file was written again since.
    (drop / "budget.txt.done").touch()
    aged(drop / "budget.txt.done", seconds=90)
    assert sweep(store, drop, settle_seconds=5, done_marker=".done").waiting == [str(drop / "budget.txt")]
    aged(drop / "budget.txt.done", seconds=10)
    assert sweep(store, drop, settle_seconds=5, done_marker=".done").counts == {"created": 1}


def test_a_refused_file_takes_its_marker_to_failed_and_back(drop: Path) -> None:
    store = MemoryStore()
    (drop / "fixme.txt").write_text("Only a headline\n")
    (drop / "fixme.txt.done").touch()
    for path in drop.iterdir():
        aged(path)
    assert sweep(store, drop, settle_seconds=0, done_marker=".done").counts == {"failed": 1}
    assert sorted(p.name for p in (drop / "failed").iterdir()) == [
        "fixme.txt",
        "fixme.txt.done",
        "fixme.txt.error.json",
    ]
    names = Folder(SourceSettings(name="drop", location=str(drop), done_marker=".done")).retry_failed()
    assert names == ["fixme.txt"]  # the marker is not a file of its own
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == ["fixme.txt", "fixme.txt.done"]


def test_retry_failed_puts_back_only_the_names_asked_for_and_a_dry_run_moves_nothing(drop: Path) -> None:
    failed = drop / "failed"
    failed.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (failed / name).write_text(story(1))
        (failed / f"{name}.error.json").write_text("{}")
        (failed / f"{name}.done").touch()
    folder = Folder(SourceSettings(name="drop", location=str(drop), done_marker=".done"))
    before = sorted(p.name for p in failed.iterdir())
    assert folder.retry_failed(dry_run=True) == ["a.txt", "b.txt", "c.txt"]  # never its error file or marker
    assert folder.retry_failed({"c.txt", "a.txt", "nope.txt"}, dry_run=True) == ["a.txt", "c.txt"]
    assert sorted(p.name for p in failed.iterdir()) == before  # a dry run moves nothing
    (drop / "a.txt").write_text("a new a.txt arrived meanwhile")
    assert folder.retry_failed({"a.txt"}) == ["a-1.txt"]  # back beside it, never over it
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == ["a-1.txt", "a-1.txt.done", "a.txt"]
    assert sorted(p.name for p in failed.iterdir()) == [n for n in before if not n.startswith("a.")]
    assert folder.retry_failed(set()) == []
    assert folder.retry_failed() == ["b.txt", "c.txt"]


def test_min_age_holds_files_of_writers_that_pause_longer_than_settling(drop: Path) -> None:
    store = MemoryStore()
    path = drop / "bridge.txt"
    path.write_text(long_story(1)[:300])  # the writer stalled 60 s ago, half-way
    aged(path, seconds=60)
    stalled = sweep(store, drop, settle_seconds=5, min_age_seconds=120)
    assert (stalled.files, stalled.waiting) == ([], [str(path)])  # settled, by settle_seconds; too young
    path.write_text(long_story(1))  # it resumed and finished
    aged(path, seconds=60)
    assert sweep(store, drop, settle_seconds=5, min_age_seconds=120).files == []
    done = sweep(store, drop, settle_seconds=5, min_age_seconds=120, at=NOW + timedelta(seconds=60))
    assert done.counts == {"created": 1}
    assert [paragraphs(doc) for doc in versions(store)] == [complete(1)]


# --- 6: move first, then check what moved --------------------------------------------------------------


@pytest.mark.parametrize("name_taken_meanwhile", [False, True])
def test_a_correction_renamed_over_the_input_just_before_the_move_is_put_back(
    drop: Path, monkeypatch: pytest.MonkeyPatch, name_taken_meanwhile: bool
) -> None:
    store = MemoryStore()
    path = drop / "bridge.txt"
    path.write_text(long_story(1))
    aged(path)
    real_replace = os.replace
    raced: list[bool] = []

    def publish_then_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """The publisher renames its correction over the input at the last instant before the move."""
        if Path(src) == path and not raced:
            raced.append(True)
            (drop / "correction.tmp").write_text(long_story(2))
            real_replace(drop / "correction.tmp", path)
            real_replace(src, dst)
            if name_taken_meanwhile:  # and, just after, yet another revision under the same name
                path.write_text(long_story(3))
            return
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", publish_then_replace)
    report = sweep(store, drop, settle_seconds=0)
    monkeypatch.undo()
    [record] = report.files
    assert (record.outcome, record.moved_to) == ("created", None)
    assert (record.message or "").startswith(f"{path} changed after it was read")
    assert (record.message or "").endswith(LEFT)
    assert not list((drop / "processed").rglob("*.txt"))  # nothing archived unread
    if name_taken_meanwhile:  # put back beside it, never over it
        assert "put back as bridge-1.txt" in (record.message or "")
        assert (path.read_text(), (drop / "bridge-1.txt").read_text()) == (long_story(3), long_story(2))
        return
    assert path.read_text() == long_story(2)
    for file in drop.iterdir():
        aged(file)
    again = sweep(store, drop, settle_seconds=0)
    assert [(f.outcome, f.version) for f in again.files] == [("updated", 2)]
    assert [paragraphs(doc) for doc in versions(store)] == [complete(1), complete(2)]
    assert (drop / "processed" / DAY / "bridge.txt").read_text() == long_story(2)


def test_a_correction_renamed_over_the_input_after_reading_is_stored_next_run(drop: Path) -> None:
    store = MemoryStore()
    path = drop / "bridge.txt"
    path.write_text(long_story(1))
    aged(path)

    def publish(candidate: Candidate) -> None:
        (drop / "bridge.txt.tmp").write_text(long_story(2))
        aged(drop / "bridge.txt.tmp")  # an mtime as old as the original's: only the inode tells them apart
        os.replace(drop / "bridge.txt.tmp", path)

    wrap = lambda s: ReplacedAfterRead(s, publish)  # type: ignore[return-value]  # noqa: E731
    assert sweep(store, drop, settle_seconds=0, source=wrap).files[0].moved_to is None
    again = sweep(store, drop, settle_seconds=0)
    assert [(f.outcome, f.version) for f in again.files] == [("updated", 2)]
    assert [paragraphs(doc) for doc in versions(store)] == [complete(1), complete(2)]


def test_a_symlink_inside_the_folder_moves_as_itself(drop: Path) -> None:
    store = MemoryStore()
    (drop / "target.txt").write_text(story(1))
    (drop / "link.txt").symlink_to("target.txt")  # relative: meaningless once moved, so the link is checked
    for path in drop.iterdir():
        aged(path)
    assert sweep(store, drop, settle_seconds=0).counts == {"created": 2}
    assert (drop / "processed" / DAY / "link.txt").is_symlink()


@pytest.mark.parametrize("when", ["before-copy", "after-copy"])
def test_an_s3_reupload_racing_the_move_is_never_archived_unread(when: str) -> None:
    """The S3 inbox's move is a copy conditional on the ETag read, then a delete conditional on it too."""

    class Racing(MemoryStore):
        raced = False

        def copy(self, source_key: str, target_key: str, if_match: str | None = None) -> bool:
            if when == "before-copy" and not self.raced and source_key == "in/bridge.txt":
                self.raced = True
                self.put(source_key, long_story(2).encode())
            copied = super().copy(source_key, target_key, if_match)
            if when == "after-copy" and not self.raced and source_key == "in/bridge.txt":
                self.raced = True
                self.put(source_key, long_story(2).encode())
            return copied

    store = Racing("inbox")
    store.put("in/bridge.txt", long_story(1).encode())
    first = sweep(store, "s3://inbox/in/")
    [record] = first.files
    processed = f"in/processed/{DAY}/"
    if when == "before-copy":  # the copy's If-Match failed: nothing archived, the correction stays
        assert record.moved_to is None and (record.message or "").endswith(LEFT)
        assert list(store.list_keys(processed)) == []
    else:  # the copy of what was read succeeded; the delete's If-Match failed: the correction stays
        stored = store.get(processed + "bridge.txt")
        assert stored is not None and stored.body == long_story(1).encode()
    inbox = store.get("in/bridge.txt")
    assert inbox is not None and inbox.body == long_story(2).encode()
    again = sweep(store, "s3://inbox/in/")
    assert [(f.outcome, f.version) for f in again.files] == [("updated", 2)]
    assert [paragraphs(doc) for doc in versions(store)] == [complete(1), complete(2)]
    assert store.get("in/bridge.txt") is None


def test_an_s3_inbox_done_marker_announces_its_object() -> None:
    store = MemoryStore("inbox")
    store.put("in/bridge.txt", story(1).encode())
    store.put("in/budget.txt", story(2).encode())
    store.put("in/bridge.txt.done", b"")
    report = sweep(store, "s3://inbox/in/", done_marker=".done")
    assert [f.outcome for f in report.files] == ["created"]
    assert report.waiting == ["s3://inbox/in/budget.txt"]
    assert set(store.list_keys("in/")) == {
        "in/budget.txt",
        f"in/processed/{DAY}/bridge.txt",
        f"in/processed/{DAY}/bridge.txt.done",
    }


# --- 9 (part): reserved names ------------------------------------------------------------------------


class Keep(Reporter):
    def __init__(self) -> None:
        super().__init__("text", out=io.StringIO())
        self.reports: list[RunReport] = []

    def finished(self, report: RunReport) -> None:
        super().finished(report)
        self.reports.append(report)


@pytest.mark.parametrize(
    ("name", "make", "what", "kept"),
    [
        ("processed", lambda p: p.write_text(story(9)), "a file", "stored inputs"),
        ("failed", lambda p: p.symlink_to(p.parent.parent), "a symlink", "refused inputs"),
    ],
)
def test_a_reserved_name_that_is_not_a_folder_stops_its_source(
    drop: Path, name: str, make: Callable[[Path], object], what: str, kept: str
) -> None:
    store = MemoryStore()
    for n in range(2):
        (drop / f"story-{n}.txt").write_text(story(n))
    make(drop / name)
    for path in drop.iterdir():
        aged(path)
    cause = f"{drop / name} is {what}, not a folder: ingest keeps {kept} there; move it away"
    with pytest.raises(SourceError, match=cause):
        Folder(SourceSettings(name="drop", location=str(drop))).scan(NOW.timestamp())
    settings = settings_with(SourceSettings(name="drop", location=str(drop), settle_seconds=0))
    reporter = Keep()
    with pytest.raises(SourceError):
        run_once(settings, store, [Folder(settings.sources[0])], reporter, clock=lambda: NOW)
    [report] = reporter.reports
    assert report.source_errors == {"drop": f"source drop: {cause}"}
    assert report.files == []  # nothing stored that could not then be moved, and the stray is not input
    assert list(store.list_keys(f"{PREFIX}articles/")) == []
    assert sorted(p.name for p in drop.iterdir()) == [name, "story-0.txt", "story-1.txt"]


# --- 11: only the top level is listed; files in sub-folders are counted, never ignored silently ----------


def sweep_printing(store: MemoryStore, location: Path | str, fmt: LogFormat = "text") -> tuple[RunReport, str]:
    """One run over one source, with what its reporter printed."""
    settings = settings_with(SourceSettings(name="drop", location=str(location), settle_seconds=0))
    out = io.StringIO()
    sources = open_sources(settings, open_store=lambda bucket: store)
    return run_once(settings, store, sources, Reporter(fmt, out=out), clock=lambda: NOW), out.getvalue()


def inbox_listings(store: MemoryStore) -> dict[tuple[str, str], int]:
    """The inbox's LIST requests, by (prefix, delimiter): the run's own (leases, feed) left out."""
    return {listed: n for listed, n in store.listings.items() if listed[0].startswith("in/")}


def test_an_s3_inbox_sweep_lists_only_its_top_level() -> None:
    store = MemoryStore("inbox")
    for n in range(2500):  # three LIST requests' worth, had processed/ been listed
        store.put(f"in/processed/2026-01-{n % 28 + 1:02d}/old-{n}.txt", b"taken long ago")
    store.put("in/failed/bad.txt", b"refused long ago")
    for n in range(3):
        store.put(f"in/story-{n}.txt", story(n).encode())
    report = sweep(store, "s3://inbox/in/")
    assert report.counts == {"created": 3}
    assert (report.not_taken, report.summary().count("\n")) == ({}, 0)
    assert inbox_listings(store) == {("in/", "/"): 1}  # one request, one level: processed/ was not listed
    idle = sweep(store, "s3://inbox/in/")
    assert (idle.files, inbox_listings(store)) == ([], {("in/", "/"): 2})


def test_files_in_an_s3_inbox_sub_prefix_are_counted_not_taken(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore("inbox")
    store.put("in/story.txt", story(1).encode())
    for key in ("in/sub/x.txt", "in/sub/2024/y.txt", "in/sub/.hidden", "in/sub/z.txt.part", "in/tmp/w.txt"):
        store.put(key, story(2).encode())
    store.put("in/.trash/old.txt", b"a hidden sub-prefix: not input, not counted")
    store.put("in/empty/", b"")  # a folder marker, and nothing else in it
    report, printed = sweep_printing(store, "s3://inbox/in/")
    assert [f.path for f in report.files] == ["s3://inbox/in/story.txt"]
    assert report.not_taken == {"s3://inbox/in/sub/": 2, "s3://inbox/in/tmp/": 1}
    assert printed.splitlines()[-1] == (
        "note: 3 files in sub-folders are not taken (only the top level is read): "
        "s3://inbox/in/sub/ (2), s3://inbox/in/tmp/ (1)"
    )
    assert store.get("in/sub/x.txt") is not None  # counted, not taken, not moved
    # The sub-prefixes are listed (whole: they are normally absent or small), processed/ never.
    assert inbox_listings(store) == {
        ("in/", "/"): 1,
        ("in/sub/", ""): 1,
        ("in/tmp/", ""): 1,
        ("in/empty/", ""): 1,
    }
    stored = store.get(run_key(PREFIX, report.run_id))
    assert stored is not None and RunReport.model_validate_json(stored.body).not_taken == report.not_taken
    # With JSON logs, the note is its own event, and the run event carries the counts too.
    store.put("in/story.txt", story(3).encode())
    with caplog.at_level(logging.INFO, logger="ingest.run"):
        sweep_printing(store, "s3://inbox/in/", fmt="json")
    events = {r.event["event"]: r for r in caplog.records if hasattr(r, "event")}
    run, note = events["run"], events["not_taken"]
    assert run.event["not_taken"] == note.event["not_taken"] == report.not_taken
    assert note.getMessage() == printed.splitlines()[-1]
    assert json.loads(JsonFormatter().format(note))["not_taken"] == report.not_taken


def test_files_in_drop_folder_subfolders_are_counted_not_taken(drop: Path, tmp_path: Path) -> None:
    store = MemoryStore()
    (drop / "story.txt").write_text(story(1))
    aged(drop / "story.txt")
    elsewhere = tmp_path / "elsewhere"
    fill(elsewhere, 5)
    for relative in ("2024/x.txt", "2024/jan/y.txt", "2024/.DS_Store", "2024/.git/config", "tmp/z.txt"):
        (drop / relative).parent.mkdir(parents=True, exist_ok=True)
        (drop / relative).write_text(story(2))
    (drop / "2024" / "linked").symlink_to(elsewhere, target_is_directory=True)  # one entry, never followed
    (drop / "empty").mkdir()
    (drop / ".cache").mkdir()
    (drop / ".cache" / "q.txt").write_text(story(3))
    fill(drop / "processed" / "2026-01-01", 3)
    fill(drop / "failed", 1)
    report, printed = sweep_printing(store, drop)
    assert [f.path for f in report.files] == [str(drop / "story.txt")]
    assert report.not_taken == {f"{drop}{os.sep}2024{os.sep}": 3, f"{drop}{os.sep}tmp{os.sep}": 1}
    assert printed.splitlines()[-1] == (
        f"note: 4 files in sub-folders are not taken (only the top level is read): {drop}/2024/ (3), {drop}/tmp/ (1)"
    )
    assert (drop / "2024" / "x.txt").exists()  # counted, not taken


def test_the_not_taken_note_is_one_line_in_words() -> None:
    def note(not_taken: dict[str, int]) -> str | None:
        return RunReport(run_id="r", started_at=NOW, not_taken=not_taken).not_taken_note()

    assert note({}) is None
    said = "not taken (only the top level is read)"
    assert note({"/drop/a/": 1}) == f"note: 1 file in a sub-folder is {said}: /drop/a/ (1)"
    assert note({"/drop/a/": 12}) == f"note: 12 files in a sub-folder are {said}: /drop/a/ (12)"
    two = note({"/drop/b/": 2, "/drop/a/": 1})
    assert two == f"note: 3 files in sub-folders are {said}: /drop/a/ (1), /drop/b/ (2)"  # by location
    many = note({f"/drop/{n:02d}\n/": 1 for n in range(12)})
    assert many is not None and "\n" not in many  # a control character in a name cannot break the line
    assert many.startswith(f"note: 12 files in sub-folders are {said}: /drop/00")
    assert many.endswith("/drop/09\\n/ (1), and 2 more")
