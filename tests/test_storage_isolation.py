"""One article's storage failure never sinks the others (``ingest.commit``, ``ingest.runner``).

A request that still fails transiently after the store's retries makes that input ``failed`` with check
``storage``; the rest of the batch is stored and moved, the failing file stays in its source, and the next
run carries on from what was written. Run against the in-memory store, with requests to chosen keys made
to fail as ``S3Store`` fails once its retries are spent.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.api import open_sources
from ingest.archive import Archive
from ingest.commit import Committer
from ingest.errors import StoreDenied, StoreError, StoreUnavailable
from ingest.keys import Keys
from ingest.models import Document
from ingest.outcome import Outcome
from ingest.prepare import Prepared, prepare
from ingest.report import Reporter, RunReport
from ingest.rules import load_rules
from ingest.runner import run_once
from ingest.settings import ModuleSettings, SourceSettings, load_settings
from ingest.stores.base import Stored
from ingest.stores.memory import MemoryStore

RULES = load_rules(ModuleSettings())
PREFIX = "t/"
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
#: The runs' clock: an hour ahead of the real one, so files written by the test are settled.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


class Flaky(MemoryStore):
    """A memory store whose requests fail while ``broken(operation, key)`` says so: ``StoreUnavailable``
    (what ``S3Store`` raises once its retries are spent) unless another ``error`` type is given."""

    def __init__(self) -> None:
        super().__init__("ingest")
        self.broken: Callable[[str, str], bool] = lambda op, key: False
        self.error: type[StoreError] = StoreUnavailable
        self.failed: list[str] = []

    def _check(self, op: str, key: str) -> None:
        if self.broken(op, key):
            self.failed.append(f"{op} {key}")
            raise self.error(f"S3 {op} {key}: storage kept failing (SlowDown) after retrying", operation=op, key=key)

    def get(self, key: str) -> Stored | None:
        self._check("GET", key)
        return super().get(key)

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        self._check("PUT", key)
        return super().put_new(key, body, content_type)

    def replace(self, key: str, body: bytes, etag: str | None, content_type: str = "application/json") -> str | None:
        self._check("PUT", key)
        return super().replace(key, body, etag, content_type)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        self._check("PUT", key)
        super().put(key, body, content_type)


def story(name: str, text: str = "") -> Prepared:
    body = f"Story {name}\n\nFirst paragraph of {name}.{text}\n\nREAD MORE Another story\n"
    return prepare(body.encode(), f"{name}.txt", RULES, received_at=T0)


def committer(store: MemoryStore) -> Committer:
    return Committer(store, PREFIX, workers=4, clock=lambda: T0)


def feed(store: MemoryStore) -> set[tuple[str, int]]:
    return {(e.id, e.version) for e in Archive(store, PREFIX).changes()}


def latest_version(store: MemoryStore, article: str) -> int | None:
    stored = store.get(Keys(PREFIX, article).latest)
    return Document.model_validate_json(stored.body).version if stored else None


def storage_failure(outcome: Outcome) -> str:
    """The one-line reason of a ``failed`` outcome with check ``storage``."""
    assert outcome.outcome == "failed" and outcome.error is not None, outcome
    assert outcome.error.check == "storage"
    line = str(outcome.error)
    assert "\n" not in line and line.startswith(f"{outcome.path}: ")
    return line


def test_one_article_whose_requests_keep_failing_gets_its_own_failed_line_and_the_others_are_stored() -> None:
    store = Flaky()
    store.broken = lambda op, key: "/bad/" in key
    outcomes = committer(store).commit([story("a"), story("bad"), story("c")])
    assert [o.outcome for o in outcomes] == ["created", "failed", "created"]
    line = storage_failure(outcomes[1])
    assert line.startswith("bad.txt: not stored: S3 GET t/articles/bad/latest.json: storage kept failing")
    assert line.endswith("; left for the next run")
    assert feed(store) == {("a", 1), ("c", 1)}
    assert (latest_version(store, "a"), latest_version(store, "c")) == (1, 1)
    store.broken = lambda op, key: False
    (again,) = committer(store).commit([story("bad")])
    assert (again.outcome, again.version) == ("created", 1)
    assert feed(store) == {("a", 1), ("bad", 1), ("c", 1)}


# Where the failing article's writes stop: its version claim (1), its raw input (2), its latest pointer (4).
@pytest.mark.parametrize(
    ("operation", "key", "said"),
    [
        ("PUT", "articles/bad/v1.json", "not stored: S3 PUT t/articles/bad/v1.json"),
        ("PUT", "raw/bad/v1.txt", "v1 written, but not its raw input: S3 PUT t/raw/bad/v1.txt"),
        ("PUT", "articles/bad/latest.json", "v1 written and in the changes feed, but latest.json not moved: S3 PUT"),
    ],
    ids=["claim", "raw", "latest"],
)
def test_an_article_stopped_at_any_write_is_finished_by_the_next_run(operation: str, key: str, said: str) -> None:
    store = Flaky()
    store.broken = lambda op, k: (op, k) == (operation, PREFIX + key)
    outcomes = committer(store).commit([story("a"), story("bad")])
    assert outcomes[0].outcome == "created"
    line = storage_failure(outcomes[1])
    assert line.startswith(f"bad.txt: {said}")
    assert line.endswith("left for the next run" + (", which carries on from it" if "v1 written" in said else ""))
    assert latest_version(store, "bad") is None
    in_feed = ("bad", 1) in feed(store)
    assert in_feed == (key == "articles/bad/latest.json")  # announced only once its raw input is archived
    store.broken = lambda op, k: False
    (again,) = committer(store).commit([story("bad")])
    assert (again.outcome, again.version) == ("created", 1)  # its own v1 found and carried on
    assert latest_version(store, "bad") == 1
    assert store.get(Keys(PREFIX, "bad").raw(1, ".txt")) is not None
    assert store.get(Keys(PREFIX, "bad").version(2)) is None
    assert feed(store) == {("a", 1), ("bad", 1)}


def test_a_changes_object_that_cannot_be_written_fails_every_version_of_the_batch_and_moves_no_latest() -> None:
    store = Flaky()
    committer(store).commit([story("old")])
    store.broken = lambda op, key: "/changes/" in key
    outcomes = committer(store).commit([story("a"), story("old"), story("b")])
    assert [o.outcome for o in outcomes] == ["failed", "unchanged", "failed"]
    for outcome in (outcomes[0], outcomes[2]):
        assert "v1 written, but not its entry in the changes feed: S3 PUT t/changes/" in storage_failure(outcome)
    # Every input of a batch failing is not the store being down when it still answers: lines, no raise.
    assert [o.outcome for o in committer(store).commit([story("a"), story("b")])] == ["failed", "failed"]
    # A latest pointer ahead of the feed would make the next run say "unchanged" and never announce v1.
    assert (latest_version(store, "a"), latest_version(store, "b")) == (None, None)
    store.broken = lambda op, key: False
    again = committer(store).commit([story("a"), story("b")])
    assert [(o.outcome, o.version) for o in again] == [("created", 1), ("created", 1)]
    assert feed(store) == {("old", 1), ("a", 1), ("b", 1)}


def test_later_files_of_an_article_whose_earlier_file_failed_wait_so_the_next_run_keeps_their_order() -> None:
    store = Flaky()
    store.broken = lambda op, key: key == f"{PREFIX}raw/bad/v1.txt"
    outcomes = committer(store).commit([story("bad"), story("a"), story("bad", " Corrected.")])
    assert [o.outcome for o in outcomes] == ["failed", "created", "failed"]
    assert "not tried, as an earlier file of this article in the batch was not stored" in storage_failure(outcomes[2])
    store.broken = lambda op, key: False
    again = committer(store).commit([story("bad"), story("bad", " Corrected.")])
    assert [(o.outcome, o.version) for o in again] == [("created", 1), ("updated", 2)]
    assert latest_version(store, "bad") == 2


def test_a_single_file_whose_request_keeps_failing_gets_its_line_while_the_store_answers() -> None:
    store = Flaky()
    store.broken = lambda op, key: "/bad/" in key
    (bad,) = committer(store).commit([story("bad")])
    assert "not stored: S3 GET t/articles/bad/latest.json" in storage_failure(bad)


def test_a_batch_none_of_which_gets_through_to_a_store_that_no_longer_answers_raises() -> None:
    store = Flaky()
    store.broken = lambda op, key: True  # down (after the bucket was checked)
    with pytest.raises(StoreUnavailable, match=f"S3 GET {PREFIX}runs/"):  # the store's error, not one article's
        committer(store).commit([story("a"), story("b")])
    assert list(store.list_keys(f"{PREFIX}articles/")) == []


def test_a_terminal_storage_error_on_one_article_still_stops_the_batch() -> None:
    store = Flaky()
    store.broken = lambda op, key: "/bad/" in key
    store.error = StoreDenied
    with pytest.raises(StoreDenied):
        committer(store).commit([story("a"), story("bad"), story("c")])


def sweep(store: MemoryStore, drop: Path) -> RunReport:
    settings = load_settings({"prefix": PREFIX}, env={}).model_copy(
        update={"sources": [SourceSettings(name="drop", location=str(drop))]}
    )
    sources = open_sources(settings, open_store=lambda bucket: store)
    return run_once(settings, store, sources, Reporter("text", out=io.StringIO()), clock=lambda: NOW)


def test_a_run_leaves_the_file_storage_failed_for_in_its_source_and_moves_the_rest(tmp_path: Path) -> None:
    store = Flaky()
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("a", "bad", "c"):
        (drop / f"{name}.txt").write_text(f"Story {name}\n\nParagraph of {name}.\n")
        os.utime(drop / f"{name}.txt", ((NOW - timedelta(minutes=1)).timestamp(),) * 2)  # settled
    store.broken = lambda op, key: "/bad/" in key
    report = sweep(store, drop)
    assert (report.error, report.counts) == (None, {"created": 2, "failed": 1})
    [failed] = report.errors
    assert failed.path == str(drop / "bad.txt") and failed.error is not None
    assert failed.error["check"] == "storage" and "S3 GET t/articles/bad/latest.json" in str(failed.error["message"])
    assert (failed.moved_to, failed.message) == (None, "left in the source for the next run")
    assert sorted(p.name for p in drop.glob("*.txt")) == ["bad.txt"]  # neither processed/ nor failed/
    assert not (drop / "failed").exists()
    assert sorted(p.name for p in (drop / "processed").rglob("*.txt")) == ["a.txt", "c.txt"]

    store.broken = lambda op, key: False
    again = sweep(store, drop)
    assert [(f.path, f.outcome) for f in again.files] == [(str(drop / "bad.txt"), "created")]
    assert list(drop.glob("*.txt")) == []
    assert sorted(p.name for p in (drop / "processed").rglob("*.txt")) == ["a.txt", "bad.txt", "c.txt"]
    assert feed(store) == {("a", 1), ("bad", 1), ("c", 1)}
