"""The writing half of the unit of work: prepared inputs become stored versions, in a crash-safe order.

For each article of a batch::

    0. GET articles/{id}/latest.json                       an unchanged or stale re-send stops here
    1. PUT articles/{id}/v{N}.json      If-None-Match: *   the version number is claimed exactly once
    2. PUT raw/{id}/v{N}{ext}           If-None-Match: *   only the winner of v{N} archives its input
    3. PUT changes/{time}-{run}-{n}.jsonl                   one object per batch, after every version of it
    4. PUT articles/{id}/latest.json    If-Match: <etag>   retried until it holds the highest version

A crash between any two writes is repaired by running again. A lost race on step 1 reads the winner:
when it holds our content it is ours (a retried request that had succeeded, or a run that died before
step 4) and we carry on from step 2; otherwise we try the next number. Rollback is the same claim and
publish, without an input to archive.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from ingest.archive import load_document
from ingest.clock import Clock, utcnow
from ingest.errors import Check, InvalidDocument, NotFound, StoreConflict
from ingest.keys import Keys, changes_key, raw_content_type
from ingest.models import ChangeEntry, Document
from ingest.outcome import Outcome, OutcomeWord
from ingest.prepare import Prepared
from ingest.stores.base import Store
from ingest.versioning import new_version, stale_reason, unrelated

#: Races lost in a row on one article before giving up (each loss means another writer progressed).
MAX_RACES = 64
def new_run_id(now: datetime) -> str:
    """A run id that sorts by start time: ``20261124T083000-1a2b3c``."""
    return now.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class _Latest:
    """The newest version of an article this process has seen, and the ETag of ``latest.json`` it read."""

    doc: Document | None
    etag: str | None


@dataclass(frozen=True)
class _Written:
    """A version written in steps 1-2 whose feed entry and latest pointer are still to come."""

    outcome: Outcome
    document: Document
    body: bytes
    latest_etag: str | None


class Committer:
    """Writes prepared inputs to a store in batches, in the crash-safe order above."""

    def __init__(
        self, store: Store, prefix: str, *, workers: int = 8, run_id: str | None = None, clock: Clock = utcnow
    ) -> None:
        self.store = store
        self.prefix = prefix
        #: Articles written side by side within a batch.
        self.workers = workers
        self.clock = clock
        self.run_id = run_id or new_run_id(clock())
        self._batches = 0

    def commit(
        self, batch: Sequence[Prepared | Outcome], *, note: str | None = None, editor: str | None = None
    ) -> list[Outcome]:
        """Commit one batch; one outcome per entry, in order. Entries that are already outcomes (refused
        files) pass through. ``note``/``editor`` apply to every item (an input can also carry them)."""
        results: list[Outcome | _Written | None] = [e if isinstance(e, Outcome) else None for e in batch]
        # Articles are independent (races on one id are settled by conditional writes), so their requests
        # run side by side; files of one article keep their input order (the later one is the newer
        # version) and pass on what they wrote instead of re-reading latest.json.
        groups: dict[str, list[tuple[int, Prepared]]] = {}
        for index, item in enumerate(batch):
            if isinstance(item, Prepared):
                groups.setdefault(item.id, []).append((index, item))
        if groups:
            self.store.ensure_bucket()

        def write_group(group: list[tuple[int, Prepared]]) -> None:
            latest: _Latest | None = None
            for index, item in group:
                results[index], latest = self._write(item, note or item.note, editor or item.editor, latest)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="commit") as pool:
            list(pool.map(write_group, groups.values()))  # re-raises the first failure: no slot stays None
            self._publish([r for r in results if isinstance(r, _Written)], pool.map)
        return [r.outcome if isinstance(r, _Written) else r for r in results if r is not None]

    def rollback(self, article_id: str, to: int, note: str, editor: str | None) -> Outcome:
        """A new version whose content is version ``to``'s; history keeps every step."""
        self.store.ensure_bucket()
        keys = Keys(self.prefix, article_id)
        old = load_document(self.store.get(keys.version(to)), keys.version(to))
        if old is None:
            raise NotFound(article_id, f"has no version {to} to roll back to", check=Check.ROLLBACK)
        content, sha = old.content(), old.content_sha256
        path = f"{article_id}@v{to}"
        latest = self._read_latest(keys)

        def build(prev: Document | None) -> Document:
            return new_version(
                prev,
                article_id=article_id,
                content=content,
                content_sha256=sha,
                source=old.source,
                now=self.clock(),
                note=note,
                editor=editor,
                rolled_back_to=to,
            )

        claimed = self._claim(
            keys,
            latest.doc,
            build,
            settle=lambda prev: self._unchanged(path, keys, prev, sha, note),
            # With no latest.json (a run died before step 4) the version found is the one to repair.
            ours=lambda prev, theirs: theirs.content_sha256 == sha and (prev is None or theirs.rolled_back_to == to),
        )
        if isinstance(claimed, Outcome):
            return claimed
        doc, body = claimed
        outcome = Outcome(path, _word(doc), article_id, doc.version, keys.version(doc.version))
        written = _Written(outcome, doc, body, latest.etag)
        self._publish([written], map)
        return written.outcome

    # ---- steps 0-2

    def _write(
        self, item: Prepared, note: str | None, editor: str | None, latest: _Latest | None
    ) -> tuple[Outcome | _Written, _Latest]:
        """Steps 0-2 for one input. ``latest`` (from the previous file of the same article in this batch)
        saves re-reading ``latest.json``, which only moves in step 4."""
        keys = Keys(self.prefix, item.id)
        latest = latest or self._read_latest(keys)
        content, sha = item.content, item.content_sha256
        if item.source.headline_derived == "stored-version" and latest.doc is not None:
            # A kill that names no story: it withdraws the stored one, under that story's headline.
            content = content.model_copy(update={"headline": latest.doc.headline})
            sha = content.sha256()

        def settle(prev: Document | None) -> Outcome | None:
            done = self._unchanged(item.path, keys, prev, sha, note)
            if done is not None or prev is None:
                return done
            reason = stale_reason(prev, sha, item.source.input_version, item.content.withdrawn)
            if reason is not None:
                return Outcome(item.path, "stale", item.id, prev.version, keys.version(prev.version), message=reason)
            if item.id_from_name and not item.replace_unrelated and unrelated(prev.content(), content):
                return Outcome.failed(item.path, _conflict(item, prev))
            return None

        def build(prev: Document | None) -> Document:
            number = prev.version + 1 if prev else 1
            source = item.source.model_copy(update={"raw_key": keys.raw(number, item.raw_ext)})
            return new_version(
                prev,
                article_id=item.id,
                content=content,
                content_sha256=sha,
                source=source,
                now=self.clock(),
                note=note,
                editor=editor,
            )

        seen: list[Document] = []  # the newest version the claim learned of, for the next file of the batch
        claimed = self._claim(
            keys, latest.doc, build, settle, ours=lambda prev, theirs: theirs.content_sha256 == sha, seen=seen
        )
        if isinstance(claimed, Outcome):
            return claimed, _Latest(seen[-1], latest.etag) if seen else latest
        doc, body = claimed
        self.store.put_new(keys.raw(doc.version, item.raw_ext), item.raw, raw_content_type(item.raw_ext))
        outcome = Outcome(item.path, _word(doc), item.id, doc.version, keys.version(doc.version))
        return _Written(outcome, doc, body, latest.etag), _Latest(doc, latest.etag)

    def _read_latest(self, keys: Keys) -> _Latest:
        stored = self.store.get(keys.latest)
        return _Latest(load_document(stored, keys.latest), stored.etag if stored else None)

    @staticmethod
    def _unchanged(path: str, keys: Keys, prev: Document | None, sha: str, note: str | None) -> Outcome | None:
        if prev is None or prev.content_sha256 != sha:
            return None
        message = "note not recorded: content unchanged" if note else None
        return Outcome(path, "unchanged", keys.id, prev.version, keys.version(prev.version), message=message)

    def _claim(
        self,
        keys: Keys,
        prev: Document | None,
        build: Callable[[Document | None], Document],
        settle: Callable[[Document | None], Outcome | None],
        ours: Callable[[Document | None, Document], bool],
        seen: list[Document] | None = None,
    ) -> tuple[Document, bytes] | Outcome:
        """Step 1: write the next version number, or learn that nothing is to be written.

        ``settle`` answers for content that needs no new version (unchanged, stale); ``ours(prev, theirs)``
        recognises a version that holds what we were writing (a retried request that had succeeded, or a
        run that died after this step), which is then carried on with rather than written again. Versions
        other writers won are appended to ``seen``.
        """
        for _ in range(MAX_RACES):
            done = settle(prev)
            if done is not None:
                return done
            doc = build(prev)
            body = doc.to_json()
            key = keys.version(doc.version)
            if self.store.put_new(key, body):
                return doc, body
            winner = self.store.get(key)
            theirs = load_document(winner, key)
            if winner is None or theirs is None:  # removed between the two requests: try the number again
                continue
            if ours(prev, theirs):
                return theirs, winner.body
            prev = theirs
            if seen is not None:
                seen.append(theirs)
        raise StoreConflict(
            f"gave up on {keys.id} after losing {MAX_RACES} races in a row", operation="PUT", key=keys.version(0)
        )

    # ---- steps 3-4

    def _publish(self, written: list[_Written], mapper: Callable[..., Iterable[object]]) -> None:
        """One changes object for the batch, then the latest pointer of each article (only its highest new
        version needs one)."""
        self._write_changes([w.document for w in written])
        newest: dict[str, _Written] = {}
        for w in written:
            if w.document.id not in newest or w.document.version > newest[w.document.id].document.version:
                newest[w.document.id] = w
        list(mapper(self._point_latest, newest.values()))

    def _write_changes(self, docs: list[Document]) -> None:
        if not docs:
            return
        lines = [
            ChangeEntry(
                id=d.id,
                version=d.version,
                key=Keys(self.prefix, d.id).version(d.version),
                action=d.action,
                content_sha256=d.content_sha256,
                time=d.created_at,
                embargoed=d.embargoed,
            ).model_dump_json()
            for d in docs
        ]
        self._batches += 1
        key = changes_key(self.prefix, self.clock(), self.run_id, self._batches)
        self.store.put(key, ("\n".join(lines) + "\n").encode("utf-8"), "application/x-ndjson")

    def _point_latest(self, written: _Written) -> None:
        key = Keys(self.prefix, written.document.id).latest
        etag = written.latest_etag
        for _ in range(MAX_RACES):
            if self.store.replace(key, written.body, etag):
                return
            current = self.store.get(key)
            doc = load_document(current, key)
            if doc is not None and doc.version >= written.document.version:
                return  # a newer (or our own retried) write is already there
            etag = current.etag if current else None
        raise StoreConflict(f"could not update {key} after {MAX_RACES} tries", operation="PUT", key=key)


def _word(doc: Document) -> OutcomeWord:
    # A kill is announced as such (its document's action), never as a plain update.
    if doc.action == "withdrawn":
        return "withdrawn"
    return "created" if doc.version == 1 else "updated"


def _conflict(item: Prepared, prev: Document) -> InvalidDocument:
    reason = (
        f"its id {item.id!r}, made from its file name, is already the article {prev.headline!r} (v{prev.version}), "
        "and it shares no headline or paragraph with it: not stored as its next version. Give the source an "
        "id_prefix, let the file declare its id, or set id_conflict: replace on the source"
    )
    return InvalidDocument(item.path, reason, check=Check.ID_CONFLICT, field="id")
