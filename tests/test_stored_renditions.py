"""Stored renditions (the ``renditions`` setting): ``v{N}.{format}.json`` and ``latest.{format}.json`` beside
each version, in the crash-safe order of ``ingest.commit``.

The rules run fast against the in-memory store; the end of the module runs ``ingest file``, a correction,
crashes at every write, lanes and the request budgets over the real SeaweedFS.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest

from ingest.api import ingest_files
from ingest.archive import Archive
from ingest.commit import Committer
from ingest.engine import _WorkerState
from ingest.errors import ConfigError
from ingest.keys import Keys
from ingest.lanes import MIN_ITEMS, LaneCommitter
from ingest.models import Document
from ingest.prepare import Prepared, prepare
from ingest.renditions import stored_bytes
from ingest.rules import load_rules
from ingest.settings import ModuleSettings, Settings
from ingest.stores.base import Store
from ingest.stores.faults import FaultyStore
from ingest.stores.memory import MemoryStore
from ingest.stores.s3 import S3Store
from tests.conftest import RequestCounter, cli, read_feed
from tests.test_storage_isolation import Flaky, storage_failure

RULES = load_rules(ModuleSettings())
PREFIX = "t/"
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TEMPLATE = "urn:newsml:example.com:{id}"
FORMATS = ("ninjs", "ans")
STORY = "Bridge Closes for Repairs\n\nThe bridge closes on Friday.\n\nREAD MORE Ferry Times\n\nBuses will divert.\n"


class Clock:
    """A clock that moves one second each time it is read: later commits are later."""

    def __init__(self) -> None:
        self._ticks = count()

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=next(self._ticks))


CLOCK = Clock()


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in ingest catches it."""


def item(text: str = STORY, name: str = "bridge.txt") -> Prepared:
    return prepare(text.encode(), name, RULES, received_at=T0)


def committer(store: Store, renditions: tuple[str, ...] = FORMATS, template: str = TEMPLATE) -> Committer:
    return Committer(store, PREFIX, workers=4, clock=CLOCK, renditions=renditions, uri_template=template)


def body(store: Store, key: str) -> bytes:
    stored = store.get(key)
    assert stored is not None, key
    return stored.body


def assert_renditions(store: Store, prefix: str, article: str, versions: int, template: str = TEMPLATE) -> None:
    """Every version 1..``versions`` has each format's rendition of its own stored document, and each
    ``latest.{format}.json`` is byte-identical to the newest one's, as ``latest.json`` is to its version."""
    keys = Keys(prefix, article)
    for n in range(1, versions + 1):
        doc = Document.model_validate_json(body(store, keys.version(n)))
        for fmt in FORMATS:
            assert body(store, keys.rendition(n, fmt)) == stored_bytes(doc, fmt, template), (n, fmt)
    assert store.get(keys.version(versions + 1)) is None
    for fmt in FORMATS:
        assert body(store, keys.latest_rendition(fmt)) == body(store, keys.rendition(versions, fmt))
    assert body(store, keys.latest) == body(store, keys.version(versions))


def article_keys(store: Store, prefix: str, article: str) -> list[str]:
    return sorted(k.rsplit("/", 1)[1] for k in store.list_keys(f"{prefix}articles/{article}/"))


# ---------------------------------------------------------------------------------------------- in memory


def test_each_version_stores_its_renditions_and_latest_moves_with_it() -> None:
    store = MemoryStore()
    (first,) = committer(store).commit([item()])
    assert (first.outcome, first.key) == ("created", f"{PREFIX}articles/bridge/v1.json")  # the feed names the document
    assert_renditions(store, PREFIX, "bridge", 1)
    ninjs = json.loads(body(store, Keys(PREFIX, "bridge").latest_rendition("ninjs")))
    assert (ninjs["uri"], ninjs["version"]) == ("urn:newsml:example.com:bridge", "1")
    (fixed,) = committer(store).commit([item(STORY.replace("Friday", "Saturday"))], note="Day was wrong")
    assert (fixed.outcome, fixed.version) == ("updated", 2)
    assert_renditions(store, PREFIX, "bridge", 2)
    ans = json.loads(body(store, Keys(PREFIX, "bridge").latest_rendition("ans")))
    assert ans["revision"] == {"revision_id": "2", "parent_id": "1"}
    assert [c["text"] for c in ans["corrections"]] == ["Day was wrong"]
    assert [(e.version, e.key) for e in Archive(store, PREFIX).changes()] == [
        (1, f"{PREFIX}articles/bridge/v1.json"),
        (2, f"{PREFIX}articles/bridge/v2.json"),
    ]


def test_a_rollback_publishes_its_renditions_too() -> None:
    store = MemoryStore()
    committer(store).commit([item()])
    committer(store).commit([item(STORY.replace("Friday", "Saturday"))])
    out = committer(store).rollback("bridge", 1, "Legal asked to restore v1", None)
    assert (out.outcome, out.version) == ("rolled_back", 3)
    assert_renditions(store, PREFIX, "bridge", 3)


def test_with_renditions_off_nothing_else_is_written_and_the_budget_is_unchanged() -> None:
    store = MemoryStore()
    store.calls.clear()
    committer(store, ()).commit([item(STORY.replace("Friday", f"day {i}"), f"s{i}.txt") for i in range(5)])
    assert store.calls == {"GET": 5, "PUT": 5 * 3 + 1}
    store.calls.clear()
    committer(store, ()).commit([item(STORY.replace("Friday", "day 0 and 1"), "s0.txt")])
    assert store.calls == {"GET": 1, "PUT": 4}
    assert article_keys(store, PREFIX, "s0") == ["latest.json", "v1.json", "v2.json"]


def test_request_cost_two_puts_a_format_for_a_new_article_and_one_read_more_for_an_update() -> None:
    store = MemoryStore()
    store.calls.clear()
    committer(store).commit([item(STORY.replace("Friday", f"day {i}"), f"s{i}.txt") for i in range(5)])
    assert store.calls == {"GET": 5, "PUT": 5 * (3 + 2 * len(FORMATS)) + 1}
    store.calls.clear()
    committer(store).commit([item(STORY.replace("Friday", "day 0 and 1"), "s0.txt")])
    assert store.calls == {"GET": 1 + len(FORMATS), "PUT": 4 + 2 * len(FORMATS)}  # a pointer's ETag is read
    store.calls.clear()
    committer(store).commit([item(STORY.replace("Friday", "day 0 and 1"), "s0.txt")])
    assert store.calls == {"GET": 1}  # unchanged: still one read


class Recording(MemoryStore):
    """Remembers the order in which objects came to be: the order a reader could see them in."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def _write(self, key: str, body: bytes) -> str:  # called under the store's lock
        self.written.append(key.rsplit("/", 1)[1] if "/changes/" not in key else "changes")
        return super()._write(key, body)


def test_a_rendition_is_written_after_its_version_and_its_pointer_after_the_feed_and_before_latest() -> None:
    store = Recording()
    committer(store).commit([item()])
    order = store.written
    assert order[:2] == ["v1.json", "v1.txt"]
    assert set(order[2:4]) == {"v1.ninjs.json", "v1.ans.json"}  # then the feed may name it
    assert order[4] == "changes"  # no pointer shows a version the feed has not announced
    assert set(order[5:7]) == {"latest.ninjs.json", "latest.ans.json"}
    assert order[7:] == ["latest.json"]  # the commit point, last


# Writes of one new version with two renditions, in order: 1 version, 2 raw, 3-4 renditions, 5 changes
# batch, 6-7 the renditions' latest pointers, 8 latest.json.
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("crash_at", range(1, 9))
@pytest.mark.parametrize("existing", [0, 1], ids=["new-article", "new-version"])
def test_a_run_killed_between_any_two_writes_is_repaired_by_running_again(
    crash_at: int, when: str, existing: int
) -> None:
    store = MemoryStore()
    if existing:
        committer(store).commit([item("Story\n\nFirst version.\n", "story.txt")])
    text = "Story\n\nThe version being written when the process dies.\n"
    dying = FaultyStore(store, fail_at=crash_at, exc_type=Crash, when=when)  # type: ignore[arg-type]
    with pytest.raises(Crash):
        committer(dying).commit([item(text, "story.txt")])
    (rerun,) = committer(store).commit([item(text, "story.txt")])
    target = existing + 1
    done = (crash_at, when) == (8, "after")
    assert (rerun.outcome, rerun.version) == ("unchanged" if done else "created" if target == 1 else "updated", target)
    assert_renditions(store, PREFIX, "story", target)
    assert {e.version for e in Archive(store, PREFIX).changes()} == set(range(1, target + 1))


def test_a_rendition_a_crashed_run_made_under_another_uri_template_is_replaced_by_the_run_that_finishes() -> None:
    store = MemoryStore()
    dying = FaultyStore(store, fail_at=5, exc_type=Crash)  # dies before the changes object
    with pytest.raises(Crash):
        committer(dying).commit([item()])
    keys = Keys(PREFIX, "bridge")
    assert store.get(keys.rendition(1, "ninjs")) is not None and store.get(keys.latest) is None
    # The re-run runs with another uri_template: the version's renditions follow the settings that finish it.
    other = "https://news.example.com/a/{id}"
    (rerun,) = committer(store, template=other).commit([item()])
    assert (rerun.outcome, rerun.version) == ("created", 1)
    assert_renditions(store, PREFIX, "bridge", 1, template=other)


def test_a_rendition_pointer_never_goes_back_to_an_older_version() -> None:
    class Overtaken(MemoryStore):
        """Another writer stores v3 completely while our v2 waits between its feed entry and its pointers."""

        def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
            super().put(key, body, content_type)
            if "/changes/" in key and not self.raced:
                self.raced = True
                committer(self).commit([item(STORY.replace("Friday", "Sunday"))])

        raced = True

    store = Overtaken()
    committer(store).commit([item()])
    store.raced = False
    (ours,) = committer(store).commit([item(STORY.replace("Friday", "Saturday"))])
    assert (ours.outcome, ours.version) == ("updated", 2)
    assert_renditions(store, PREFIX, "bridge", 3)  # the pointers stay at v3, the newest


def test_a_rendition_write_that_keeps_failing_fails_only_its_article_and_the_next_run_finishes_it() -> None:
    store = Flaky()
    store.broken = lambda op, key: key.endswith("bad/v1.ans.json") or key.endswith("worse/latest.ninjs.json")
    outcomes = committer(store).commit([item("Good\n\nStored.\n", "good.txt"), item(STORY, "bad.txt")])
    outcomes += committer(store).commit([item("Worse\n\nStored.\n", "worse.txt")])
    assert [o.outcome for o in outcomes] == ["created", "failed", "failed"]
    bad, worse = storage_failure(outcomes[1]), storage_failure(outcomes[2])
    assert "v1 written, but not all its renditions: S3 PUT t/articles/bad/v1.ans.json" in bad
    assert "v1 written and in the changes feed, but latest.ninjs.json not moved: S3 PUT" in worse
    assert store.get(Keys(PREFIX, "bad").latest) is None and store.get(Keys(PREFIX, "worse").latest) is None
    feed = {(e.id, e.version) for e in Archive(store, PREFIX).changes()}
    assert feed == {("good", 1), ("worse", 1)}  # bad is not announced before its renditions are there
    assert_renditions(store, PREFIX, "good", 1)
    store.broken = lambda op, key: False
    again = committer(store).commit([item(STORY, "bad.txt"), item("Worse\n\nStored.\n", "worse.txt")])
    assert [(o.outcome, o.version) for o in again] == [("created", 1), ("created", 1)]
    for article in ("bad", "worse"):
        assert_renditions(store, PREFIX, article, 1)


def test_a_committer_refuses_a_rendition_it_cannot_store() -> None:
    with pytest.raises(ConfigError, match="unknown rendition 'nitf'"):
        committer(MemoryStore(), ("nitf",))
    with pytest.raises(ConfigError, match="always stored"):
        committer(MemoryStore(), ("document",))
    with pytest.raises(ValueError, match="uri_template"):
        Committer(MemoryStore(), PREFIX, renditions=("ninjs",))


def test_workers_and_lanes_build_their_committers_from_the_settings(settings: Settings) -> None:
    chosen = settings.model_copy(update={"renditions": ["ans"], "uri_template": TEMPLATE})
    state = _WorkerState(settings=chosen, pid=os.getpid(), stores={"b": MemoryStore()})
    worker = state.committer("b", "p/")
    assert (worker.prefix, worker.renditions, worker.uri_template) == ("p/", ("ans",), TEMPLATE)
    lanes = LaneCommitter(chosen, MemoryStore(), 2)
    assert (lanes.local.renditions, lanes.local.uri_template) == (("ans",), TEMPLATE)


# ---------------------------------------------------------------------------------------------- SeaweedFS


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


@pytest.mark.s3
def test_ingest_file_and_a_correction_store_each_formats_rendition_over_s3(
    drop: Path, cli_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    env = {**cli_env, "INGEST_RENDITIONS": "ninjs,ans", "INGEST_URI_TEMPLATE": TEMPLATE}
    story = drop / "bridge.txt"
    story.write_text(STORY)
    first = cli("file", str(story), env=env)
    assert first.returncode == 0, first.stderr
    assert_renditions(store, prefix, "bridge", 1)
    story.write_text(STORY.replace("Friday", "Saturday"))
    fixed = cli("file", str(story), "--note", "Day was wrong", "--editor", "Ann", env=env)
    assert fixed.returncode == 0, fixed.stderr
    assert_renditions(store, prefix, "bridge", 2)
    # What a CMS fetches is what `ingest show --as` prints.
    shown = cli("show", "bridge", "--as", "ninjs", env=env)
    assert shown.stdout.encode() == body(store, Keys(prefix, "bridge").latest_rendition("ninjs"))
    assert [(e.version, e.action) for e in read_feed(store, prefix)] == [(1, "created"), (2, "corrected")]
    # Off (the default): the next article has its document, and nothing beside it.
    (drop / "quiet.txt").write_text("Quiet Day\n\nNothing happened.\n")
    assert cli("file", str(drop / "quiet.txt"), env=cli_env).returncode == 0
    assert article_keys(store, prefix, "quiet") == ["latest.json", "v1.json"]


@pytest.mark.s3
def test_request_cost_per_version_over_s3_with_renditions_on_and_off(
    drop: Path, settings: Settings, store: S3Store, requests: RequestCounter, prefix: str
) -> None:
    paths = []
    for i in range(5):
        paths.append(drop / f"story-{i}.txt")
        paths[-1].write_text(STORY.replace("Friday", f"day {i}"))
    requests.reset()
    ingest_files(paths, settings, store)
    assert requests.calls == {"GET": 5, "PUT": 5 * 3 + 1}  # off: as before renditions existed
    on = settings.model_copy(update={"renditions": list(FORMATS), "uri_template": TEMPLATE, "prefix": f"on-{prefix}"})
    requests.reset()
    ingest_files(paths, on, store)
    assert requests.calls == {"GET": 5, "PUT": 5 * (3 + 2 * len(FORMATS)) + 1}
    paths[0].write_text(STORY.replace("Friday", "day 0, corrected"))
    requests.reset()
    ingest_files(paths[:1], on, store)
    assert requests.calls == {"GET": 1 + len(FORMATS), "PUT": 4 + 2 * len(FORMATS)}
    requests.reset()
    ingest_files(paths[:1], on, store)
    assert requests.calls == {"GET": 1}
    assert_renditions(store, on.prefix, "story-0", 2)


@pytest.mark.s3
@pytest.mark.parametrize("crash_at", range(1, 9))
def test_a_crash_at_any_write_over_s3_is_repaired_by_running_again(
    crash_at: int, settings: Settings, store: S3Store
) -> None:
    on = settings.model_copy(update={"renditions": list(FORMATS), "uri_template": TEMPLATE})
    Committer.configured(store, on).commit([item("Story\n\nFirst version.\n", "story.txt")])
    text = "Story\n\nThe version being written when the process dies.\n"
    dying = FaultyStore(store, fail_at=crash_at, exc_type=Crash, when="after")
    with pytest.raises(Crash):
        Committer.configured(dying, on).commit([item(text, "story.txt")])
    (rerun,) = Committer.configured(store, on).commit([item(text, "story.txt")])
    assert (rerun.outcome, rerun.version) == ("unchanged" if crash_at == 8 else "updated", 2)
    assert_renditions(store, settings.prefix, "story", 2)
    assert {e.version for e in read_feed(store, settings.prefix)} == {1, 2}


@pytest.mark.s3
def test_lane_processes_store_renditions_too(settings: Settings, store: S3Store, prefix: str) -> None:
    on = settings.model_copy(update={"renditions": list(FORMATS), "uri_template": TEMPLATE, "processes": 2})
    batch: list[Prepared] = [item(f"Story {n}\n\nParagraph {n}.\n", f"s-{n:03d}.txt") for n in range(MIN_ITEMS + 4)]
    lanes = LaneCommitter(on, store, 2)
    try:
        outcomes = lanes.commit(list(batch))
    finally:
        lanes.close()
    assert {o.outcome for o in outcomes} == {"created"}
    for n in range(0, MIN_ITEMS + 4, 7):
        assert_renditions(store, prefix, f"s-{n:03d}", 1)
