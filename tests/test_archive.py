"""The read side against the in-memory store: stored bytes, history, diff, the changes feed, bad data."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ingest.archive import Archive
from ingest.errors import NotFound, StoreCorrupt
from ingest.keys import Keys
from ingest.stores.memory import MemoryStore
from tests.test_commit import PREFIX, STORY, T0, committer, item


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    committer(store).commit([item()])
    committer(store).commit([item(STORY.replace("Friday", "Saturday"))], note="Wrong day", editor="Ann Lee")
    return store


def test_stored_bytes_are_exactly_what_was_written(store: MemoryStore) -> None:
    archive = Archive(store, PREFIX)
    latest = store.get(Keys(PREFIX, "bridge").latest)
    assert latest is not None and archive.stored("bridge") == latest.body
    assert archive.document("bridge", 1).version == 1
    with pytest.raises(NotFound, match=r"bridge: no such document \(t/articles/bridge/v9.json\)"):
        archive.stored("bridge", 9)


def test_ids_are_read_the_way_ingest_made_them(store: MemoryStore) -> None:
    archive = Archive(store, PREFIX)
    assert archive.keys("../bridge").id == "bridge"  # never a path
    assert archive.document("../bridge").id == "bridge"


def test_history_lists_every_version_with_note_and_editor(store: MemoryStore) -> None:
    rows = Archive(store, PREFIX).history("bridge")
    assert [(r.version, r.action, r.note, r.editor) for r in rows] == [
        (1, "created", None, None),
        (2, "corrected", "Wrong day", "Ann Lee"),
    ]


def test_diff_shows_changed_paragraphs_and_nothing_for_equal_content(store: MemoryStore) -> None:
    archive = Archive(store, PREFIX)
    lines = archive.diff("bridge", 1, 2)
    assert "-The bridge closes on Friday." in lines and "+The bridge closes on Saturday." in lines
    assert lines[:2] == ["--- bridge v1", "+++ bridge v2"]
    assert archive.diff("bridge", 2, 2) == []


def test_changes_since_a_time_skips_older_entries(store: MemoryStore) -> None:
    archive = Archive(store, PREFIX)
    entries = list(archive.changes())
    assert [(e.id, e.version) for e in entries] == [("bridge", 1), ("bridge", 2)]
    later = list(archive.changes(since=entries[1].time))
    assert [(e.id, e.version) for e in later] == [("bridge", 2)]
    assert list(archive.changes(since=T0 + timedelta(days=365))) == []


def test_corrupt_stored_data_is_a_store_error_naming_the_key() -> None:
    store = MemoryStore()
    store.put(f"{PREFIX}articles/broken/latest.json", b'{"not": "a document"}')
    store.put(f"{PREFIX}changes/20260101T000000000000Z-x-00001.jsonl", b"not json\n")
    archive = Archive(store, PREFIX)
    with pytest.raises(StoreCorrupt, match=r"articles/broken/latest\.json is not a valid document"):
        archive.history("broken")
    with pytest.raises(StoreCorrupt, match="not a valid changes-feed entry"):
        list(archive.changes())
