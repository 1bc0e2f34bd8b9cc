"""The read side: stored documents, an article's history, the diff between versions, the changes feed.

What ``ingest show``, ``history``, ``diff`` and ``changes`` print, and what other front ends (an
operator's page, renditions) read. Ids are taken as people type them and made key-safe the way ingest
made them ("ferry strike" finds ``ferry-strike``; "../x" is read as ``x``, never as a path).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pydantic import ValidationError

from ingest.errors import NotFound, StoreCorrupt, describe_validation
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
            stored = self.store.get(key)
            for line in stored.body.decode("utf-8").splitlines() if stored else []:
                try:
                    entry = ChangeEntry.model_validate_json(line)
                except ValidationError as exc:
                    _, reason = describe_validation(exc)
                    raise StoreCorrupt(f"{key}: not a valid changes-feed entry ({reason})", key=key) from exc
                if since is None or entry.time >= since:
                    yield entry

    def _get(self, article_id: str, version: int | None) -> tuple[str, Stored]:
        keys = self.keys(article_id)
        key = keys.latest if version is None else keys.version(version)
        stored = self.store.get(key)
        if stored is None:
            raise NotFound(keys.id, f"no such document ({key})")
        return key, stored
