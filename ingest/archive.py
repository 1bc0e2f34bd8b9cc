"""The read side: stored documents, an article's history, the diff between versions, the changes feed.

What ``ingest show``, ``history``, ``diff`` and ``changes`` (``--follow``) print, and what other front ends (an
operator's page, renditions) read. Ids are taken as people type them and made key-safe the way ingest
made them ("ferry strike" finds ``ferry-strike``; "../x" is read as ``x``, never as a path).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

from pydantic import ValidationError

from ingest.errors import NotFound, StoreCorrupt, describe_validation
from ingest.feed import FeedCursor
from ingest.keys import Keys, changes_prefix, changes_start_after
from ingest.models import ChangeEntry, Document, VersionRecord
from ingest.stores.base import Store, Stored
from ingest.versioning import diff_lines, safe_id


def load_document(stored: Stored | None, key: str) -> Document | None:
    """A stored document, or None; a stored object that is not a valid document is ``StoreCorrupt``."""
    if stored is None:
        return None
    try:
        return Document.model_validate_json(stored.body)
    except ValidationError as exc:
        _, reason = describe_validation(exc)
        message = f"stored document {key} is not a valid document: {reason}"
        raise StoreCorrupt(message, operation="GET", key=key) from exc


def feed_entries(store: Store, key: str) -> list[ChangeEntry]:
    """The entries of one changes-feed object, in order (none when it is gone); ``StoreCorrupt`` for a line that
    is not an entry."""
    stored = store.get(key)
    entries = []
    for line in stored.body.decode("utf-8").splitlines() if stored else []:
        try:
            entries.append(ChangeEntry.model_validate_json(line))
        except ValidationError as exc:
            _, reason = describe_validation(exc)
            raise StoreCorrupt(f"{key}: not a valid changes-feed entry ({reason})", key=key) from exc
    return entries


class Archive:
    """Reads what ingest stored under one prefix of a store."""

    def __init__(self, store: Store, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def keys(self, article_id: str) -> Keys:
        """The keys of an article, from its id as a person typed it."""
        return Keys(self.prefix, safe_id(article_id, article_id))

    def stored(self, article_id: str, version: int | None = None) -> bytes:
        """The exact bytes of a stored version (the latest when ``version`` is None)."""
        return self._get(article_id, version)[1].body

    def document(self, article_id: str, version: int | None = None) -> Document:
        """A stored version (the latest when ``version`` is None)."""
        key, stored = self._get(article_id, version)
        doc = load_document(stored, key)
        assert doc is not None  # stored is not None, so neither is the document
        return doc

    def history(self, article_id: str) -> list[VersionRecord]:
        """Every version of an article, oldest first (one read: the latest carries its history)."""
        latest = self.document(article_id)
        return [*latest.history, latest.record()]

    def diff(self, article_id: str, a: int, b: int) -> list[str]:
        """A paragraph-level unified diff from version ``a`` to ``b``; empty when the content is the same."""
        old, new = self.document(article_id, a), self.document(article_id, b)
        return diff_lines(old.content(), new.content(), f"{article_id} v{a}", f"{article_id} v{b}")

    def changes(self, since: datetime | None = None) -> Iterator[ChangeEntry]:
        """Changes-feed entries, oldest object first, at or after ``since`` (aware) when given."""
        # Object names start with their write time, so the listing skips everything older than `since`.
        start_after = changes_start_after(self.prefix, since) if since else ""
        for key in self.store.list_keys(changes_prefix(self.prefix), start_after=start_after):
            for entry in feed_entries(self.store, key):
                if since is None or entry.time >= since:
                    yield entry

    def follow(
        self, stop: threading.Event, *, since: datetime | None = None, poll_seconds: float, lag: timedelta
    ) -> Iterator[ChangeEntry]:
        """``changes``, then every entry written after, as it comes, until ``stop`` is set (``ingest changes
        --follow``). Polls every ``poll_seconds``; an object that becomes visible late (up to ``lag`` behind names
        already read) is still read, and no object twice (``ingest.feed``). Costs one LIST a poll."""
        floor = changes_start_after(self.prefix, since) if since else ""
        cursor = FeedCursor(self.prefix, lag, floor=floor)
        while True:
            for key in self.store.list_keys(changes_prefix(self.prefix), start_after=cursor.start_after()):
                if cursor.skip(key) is None:
                    continue
                for entry in feed_entries(self.store, key):
                    if since is None or entry.time >= since:
                        yield entry
                cursor.read(key)
            if stop.wait(poll_seconds):
                return

    def _get(self, article_id: str, version: int | None) -> tuple[str, Stored]:
        keys = self.keys(article_id)
        key = keys.latest if version is None else keys.version(version)
        stored = self.store.get(key)
        if stored is None:
            raise NotFound(keys.id, f"no such document ({key})")
        return key, stored
