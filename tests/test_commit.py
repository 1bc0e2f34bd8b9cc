"""The commit path against the in-memory store: versions, stale, corrections, rollback, crash points, budgets.

These are the rules of ``ingest.commit`` and ``ingest.versioning``; the in-memory store keeps S3's
conditional-write semantics (the contract suite in ``tests/stores`` proves it against SeaweedFS), so each
test runs in milliseconds. Storage behaviour itself (request budgets over HTTP, concurrent processes,
faults, kill -9) is proved against the real server in ``test_store_s3.py`` and ``test_faults.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from ingest.archive import Archive
from ingest.commit import MAX_RACES, Committer
from ingest.errors import NotFound, ReadError
from ingest.keys import Keys
from ingest.models import ChangeEntry, Document
from ingest.outcome import Outcome
from ingest.prepare import Prepared, prepare
from ingest.rules import load_rules
from ingest.settings import ModuleSettings
from ingest.stores.faults import FaultyStore
from ingest.stores.memory import MemoryStore

RULES = load_rules(ModuleSettings())
PREFIX = "t/"
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
STORY = "Bridge Closes for Repairs\n\nThe bridge closes on Friday.\n\nREAD MORE Ferry Times\n\nBuses will divert.\n"


class Clock:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self._ticks = count()

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=next(self._ticks))


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in ingest catches it."""


def item(text: str = STORY, name: str = "bridge.txt") -> Prepared:
    return prepare(text.encode(), name, RULES, received_at=T0)


#: One clock for every committer of the module: later commits are later, as in a newsroom.
CLOCK = Clock()


def committer(store: MemoryStore | FaultyStore) -> Committer:
    return Committer(store, PREFIX, workers=4, clock=CLOCK)


def doc(store: MemoryStore, key: str) -> Document:
    stored = store.get(key)
    assert stored is not None, key
    return Document.model_validate_json(stored.body)


def feed(store: MemoryStore) -> list[ChangeEntry]:
    return list(Archive(store, PREFIX).changes())


def versions(store: MemoryStore, article: str) -> list[int]:
    return [int(k.rsplit("/v", 1)[1].split(".")[0]) for k in store.list_keys(f"{PREFIX}articles/{article}/v")]


def test_a_new_article_is_v1_latest_raw_and_feed_then_unchanged_costs_one_read() -> None:
    store = MemoryStore()
    (first,) = committer(store).commit([item()])
    keys = Keys(PREFIX, "bridge")
    assert (first.outcome, first.version, first.key) == ("created", 1, keys.version(1))
    assert store.get(keys.latest) == store.get(keys.version(1))  # byte-identical, etag too
    raw = store.get(keys.raw(1, ".txt"))
    assert raw is not None and raw.body == STORY.encode()
    v1 = doc(store, keys.version(1))
    assert (v1.action, v1.source.raw_key) == ("created", keys.raw(1, ".txt"))
    assert v1.created_at > T0 and v1.source.received_at == T0  # stored when committed, received when read
    assert [(e.id, e.version, e.action) for e in feed(store)] == [("bridge", 1, "created")]
    store.calls.clear()
    (again,) = committer(store).commit([item()])
    assert (again.outcome, again.version) == ("unchanged", 1)
    assert store.calls == {"GET": 1}


def test_new_articles_cost_four_requests_each_plus_one_feed_object_per_batch() -> None:
    store = MemoryStore()
    store.calls.clear()
    outcomes = committer(store).commit([item(STORY.replace("Friday", f"day {i}"), f"s{i}.txt") for i in range(5)])
    assert [o.outcome for o in outcomes] == ["created"] * 5
    assert store.calls == {"GET": 5, "PUT": 5 * 3 + 1}


def test_a_content_change_makes_v2_with_summary_and_history() -> None:
    store = MemoryStore()
    committer(store).commit([item()])
    changed = STORY.replace("Buses will divert.", "Buses will divert via Mill Street.\n\nA new paragraph.")
    (outcome,) = committer(store).commit([item(changed)])
    assert (outcome.outcome, outcome.version) == ("updated", 2)
    v2 = doc(store, Keys(PREFIX, "bridge").latest)
    assert (v2.version, v2.action, v2.previous_version) == (2, "updated", 1)
    assert v2.change_summary is not None
    assert (v2.change_summary.paragraphs_changed, v2.change_summary.paragraphs_added) == (1, 1)
    assert [h.version for h in v2.history] == [1]
    assert doc(store, Keys(PREFIX, "bridge").version(1)).version == 1


def test_a_correction_records_note_and_editor_and_a_note_alone_records_nothing() -> None:
    store = MemoryStore()
    committer(store).commit([item()])
    (same,) = committer(store).commit([item()], note="typo", editor="Ann")
    assert (same.outcome, same.message) == ("unchanged", "note not recorded: content unchanged")
    (fixed,) = committer(store).commit([item(STORY.replace("Friday", "Saturday"))], note="Day was wrong", editor="Ann")
    assert (fixed.outcome, fixed.version) == ("updated", 2)
    latest = doc(store, Keys(PREFIX, "bridge").latest)
    assert latest.action == "corrected"
    assert latest.correction is not None
    assert (latest.correction.note, latest.correction.editor) == ("Day was wrong", "Ann")
    assert [(e.version, e.action) for e in feed(store)] == [(1, "created"), (2, "corrected")]


def test_a_resend_of_superseded_content_is_stale_and_rollback_restores_it() -> None:
    store = MemoryStore()
    committer(store).commit([item()])
    committer(store).commit([item(STORY.replace("Friday", "Saturday"))], note="fixed day")
    store.calls.clear()
    (stale,) = committer(store).commit([item()])
    assert (stale.outcome, stale.version) == ("stale", 2)
    assert stale.message == "same content as superseded v1; latest is v2"
    assert store.calls == {"GET": 1}
    out = committer(store).rollback("bridge", 1, "editor asked", "Bo")
    assert (out.outcome, out.version, out.path) == ("rolled_back", 3, "bridge@v1")
    assert out.as_json()["outcome"] == "rolled_back" and out.line().startswith("rolled_back bridge@v1 -> ")
    keys = Keys(PREFIX, "bridge")
    v3 = doc(store, keys.latest)
    assert (v3.action, v3.rolled_back_to, v3.correction and v3.correction.note) == ("rolled_back", 1, "editor asked")
    assert v3.content_sha256 == doc(store, keys.version(1)).content_sha256
    assert store.get(keys.raw(3, ".txt")) is None  # a rollback archives no input
    assert feed(store)[-1].action == "rolled_back"


def test_rollback_to_the_latest_content_changes_nothing_and_to_a_missing_version_is_refused() -> None:
    store = MemoryStore()
    committer(store).commit([item()])
    same = committer(store).rollback("bridge", 1, "no-op", None)
    assert (same.outcome, same.version) == ("unchanged", 1)
    with pytest.raises(NotFound, match="has no version 7 to roll back to"):
        committer(store).rollback("bridge", 7, "nope", None)


def frontmatter(version: int, body: str, note: str = "") -> str:
    extra = f"note: {note}\neditor: Desk\n" if note else ""
    return f"---\nid: wire-42\nversion: {version}\n{extra}---\nMarkets Close Higher\n\n{body}\n"


def test_an_input_older_than_the_stored_version_is_stale() -> None:
    store = MemoryStore()
    assert committer(store).commit([item(frontmatter(3, "Rose 2 per cent."), "x.md")])[0].outcome == "created"
    (late,) = committer(store).commit([item(frontmatter(2, "Rose 1 per cent."), "x.md")])
    assert (late.outcome, late.version, late.message) == ("stale", 1, "input version 2 is older than stored 3")
    (newer,) = committer(store).commit([item(frontmatter(4, "Rose 2.5 per cent.", note="Corrects the rise"), "x.md")])
    assert (newer.outcome, newer.version) == ("updated", 2)
    latest = doc(store, Keys(PREFIX, "wire-42").latest)
    assert (latest.action, latest.source.input_version) == ("corrected", "4")


def test_files_of_one_article_in_one_batch_keep_their_order_in_linear_requests() -> None:
    store = MemoryStore()
    batch = [item(f"Live Blog\n\nUpdate number {n}.\n", "live.txt") for n in range(70)]  # more than MAX_RACES
    store.calls.clear()
    outcomes = committer(store).commit(batch)
    assert [o.version for o in outcomes] == list(range(1, 71))
    assert sum(store.calls.values()) == 1 + 70 * 2 + 1 + 1  # one latest read, 70 x (version + raw), feed, latest
    assert doc(store, Keys(PREFIX, "live").latest).body[0].text == "Update number 69."


def test_refused_entries_pass_through_in_order() -> None:
    store = MemoryStore()
    refused = Outcome.failed("bad.txt", ReadError("bad.txt", "is binary"))
    outcomes = committer(store).commit([refused, item(), refused])
    assert [o.outcome for o in outcomes] == ["failed", "created", "failed"]


def test_a_version_someone_else_claimed_first_is_skipped_and_ours_is_next() -> None:
    store = MemoryStore()
    committer(store).commit([item()])
    # Another writer claimed v2 and died before moving latest: our different content becomes v3.
    dying = FaultyStore(store, fail_at=1, exc_type=Crash, when="after")
    with pytest.raises(Crash):
        committer(dying).commit([item(STORY.replace("Friday", "Monday"))])
    (ours,) = committer(store).commit([item(STORY.replace("Friday", "Sunday"))])
    assert (ours.outcome, ours.version) == ("updated", 3)
    assert versions(store, "bridge") == [1, 2, 3]
    assert doc(store, Keys(PREFIX, "bridge").latest).version == 3


def test_losing_every_race_gives_up_on_that_article_with_a_storage_failure() -> None:
    class AlwaysTaken(MemoryStore):
        """Another writer always claims the version number just before we do, with other content."""

        def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
            if key.startswith(f"{PREFIX}articles/"):
                theirs = Document.model_validate_json(body).model_copy(update={"content_sha256": "0" * 64})
                super().put_new(key, theirs.to_json())
            return super().put_new(key, body, content_type)

    (lost,) = committer(AlwaysTaken()).commit([item()])  # that article's own failure; the store answers
    assert lost.outcome == "failed" and lost.error is not None and lost.error.check == "storage"
    assert f"after losing {MAX_RACES} races in a row for t/articles/bridge/v" in lost.error.reason


# Writes of one new version, in order: 1 version, 2 raw, 3 changes batch, 4 latest.
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("crash_at", [1, 2, 3, 4])
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
    assert rerun.version == target
    done = (crash_at, when) == (4, "after")
    assert rerun.outcome == ("unchanged" if done else "created" if target == 1 else "updated")
    keys = Keys(PREFIX, "story")
    assert versions(store, "story") == list(range(1, target + 1))
    assert store.get(keys.latest) == store.get(keys.version(target))
    raw = store.get(keys.raw(target, ".txt"))
    assert raw is not None and raw.body == text.encode()
    assert {e.version for e in feed(store)} == set(range(1, target + 1))  # complete; a repeat is allowed


def test_a_race_lost_to_a_newer_version_is_known_to_the_next_file_of_the_batch() -> None:
    class Racing(MemoryStore):
        """Another run writes v2 (input version 5) right after our read of latest.json."""

        raced = False

        def get(self, key: str) -> object:
            found = super().get(key)
            if key.endswith("latest.json") and not self.raced:
                self.raced = True
                committer(self.inner_view()).commit([item(frontmatter(5, "Rose 5 per cent."), "x.md")])
            return found

        def inner_view(self) -> MemoryStore:
            view = MemoryStore.__new__(MemoryStore)
            view.__dict__ = self.__dict__  # the same objects, without the racing read
            view.get = lambda key: MemoryStore.get(self, key)  # type: ignore[method-assign]
            return view

    store = Racing()
    store.raced = True
    committer(store).commit([item(frontmatter(3, "Rose 3 per cent."), "x.md")])
    store.raced = False
    batch = [item(frontmatter(4, "Rose 4 per cent."), "x.md"), item(frontmatter(6, "Rose 5 per cent."), "x.md")]
    outcomes = committer(store).commit(batch)
    assert [(o.outcome, o.version) for o in outcomes] == [("stale", 2), ("unchanged", 2)]
    assert [e.version for e in feed(store)] == [1, 2]  # v2 announced once, by the run that wrote it


def test_rollback_repairs_a_missing_latest_pointer() -> None:
    store = MemoryStore()
    committer(store).commit([item()])
    keys = Keys(PREFIX, "bridge")
    store.delete(keys.latest)  # as if the run had died before step 4
    out = committer(store).rollback("bridge", 1, "repair", None)
    assert (out.outcome, out.version) == ("created", 1)
    assert store.get(keys.latest) == store.get(keys.version(1))


OTHER = "Markets Rally on Rate Hopes\n\nShares rose across Europe on Tuesday.\n\nBanks led the gains.\n"


def test_an_unrelated_story_with_the_same_file_name_is_refused_not_made_the_next_version() -> None:
    store = MemoryStore()
    committer(store).commit([item(STORY, "001.txt")])  # bbc/001.txt
    (clash,) = committer(store).commit([item(OTHER, "001.txt")])  # sport/001.txt
    assert clash.outcome == "failed" and clash.error is not None
    assert (clash.error.check, clash.error.field) == ("id-conflict", "id")
    assert "is already the article 'Bridge Closes for Repairs' (v1)" in clash.error.reason
    assert versions(store, "001") == [1]  # nothing written
    # A heavy rewrite that keeps its headline, or one paragraph, is a correction, not a clash.
    rewrite = "Bridge Closes for Repairs\n\nEverything below was rewritten by the desk.\n"
    assert committer(store).commit([item(rewrite, "001.txt")])[0].outcome == "updated"


def test_a_declared_id_or_a_source_that_allows_it_replaces_an_unrelated_story() -> None:
    store = MemoryStore()
    committer(store).commit([item(STORY, "001.txt")])
    allowed = prepare(OTHER.encode(), "001.txt", RULES, received_at=T0, id_conflict="replace")
    assert committer(store).commit([allowed])[0].outcome == "updated"
    committer(store).commit([item(frontmatter(1, "Shares rose."), "a.md")])  # declares id wire-42
    moved_on = frontmatter(2, "Completely different text.").replace("Markets Close Higher", "Another Headline")
    assert committer(store).commit([item(moved_on, "b.md")])[0].outcome == "updated"  # the input said so


def test_a_kill_is_final_until_a_newer_version_reinstates_the_story() -> None:
    store = MemoryStore()
    committer(store).commit([item(frontmatter(3, "Rose 3 per cent."), "x.md")])
    kill = '{"uri": "wire-42", "version": 4, "pubstatus": "canceled", "headline": "Markets Close Higher"}'
    assert committer(store).commit([item(kill, "x.json")])[0].outcome == "withdrawn"
    (late,) = committer(store).commit([item(frontmatter(3, "Rose 3.5 per cent."), "x.md")])
    assert (late.outcome, late.message) == ("stale", "input version 3 is older than stored 4")
    unversioned = "---\nid: wire-42\n---\nMarkets Close Higher\n\nRose 3.5 per cent.\n"
    (again,) = committer(store).commit([item(unversioned, "y.md")])
    assert again.outcome == "stale" and "v2 withdrew the story" in (again.message or "")
    (back,) = committer(store).commit([item(frontmatter(5, "Rose 3.5 per cent, the source says."), "x.md")])
    assert (back.outcome, back.version) == ("updated", 3)


def test_a_kill_notice_without_a_headline_withdraws_the_story_under_its_stored_headline() -> None:
    store = MemoryStore()
    committer(store).commit([item(frontmatter(3, "Rose 3 per cent."), "x.md")])
    kill = '{"uri": "wire-42", "version": 4, "pubstatus": "canceled"}'  # no headline, no body: only the kill
    (killed,) = committer(store).commit([item(kill, "kill.json")])
    assert (killed.outcome, killed.version) == ("withdrawn", 2)
    latest = doc(store, Keys(PREFIX, "wire-42").latest)
    assert (latest.headline, latest.withdrawn, latest.body) == ("Markets Close Higher", True, [])
    assert latest.source.headline_derived == "stored-version"
