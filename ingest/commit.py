"""The writing half of the unit of work: prepared inputs become stored versions, in a crash-safe order.

For each article of a batch::

    0. GET articles/{id}/latest.json                       an unchanged or stale re-send stops here
    1. PUT articles/{id}/v{N}.json      If-None-Match: *   the version number is claimed exactly once
    2. PUT raw/{id}/v{N}{ext}           If-None-Match: *   only the winner of v{N} archives its input
       PUT articles/{id}/v{N}.{f}.json  If-None-Match: *   then each stored rendition {f} (none by default)
    3. PUT changes/{time}-{run}-{n}.jsonl                   one object per batch, after every version of it
    4. PUT articles/{id}/latest.{f}.json  If-Match          each rendition's pointer (read first, on an update),
       PUT articles/{id}/latest.json    If-Match: <etag>   then this, retried until it holds the highest version

A crash between any two writes is repaired by running again. A lost race on step 1 reads the winner:
when it holds our content it is ours (a retried request that had succeeded, or a run that died before
step 4) and we carry on from step 2; otherwise we try the next number. Rollback is the same claim and
publish, without an input to archive.

Stored renditions (the ``renditions`` setting: ninjs, ans ...) ride along with their version.
``v{N}.{f}.json`` is written by the winner of ``v{N}`` and before the feed entry, so a CMS acting on an
entry finds them all. A rendition is a pure function of the document and ``uri_template``: a re-run that
finds one already there holding the bytes it makes carries on; different bytes can only be this same
version rendered under another ``uri_template`` or mapping (or a leftover of a deleted version), and are
replaced (If-Match on what was read), so a version's rendition always matches it under the settings that
finished it. ``latest.{f}.json`` moves after the feed entry, so it never shows a version the feed has not
announced, and before ``latest.json``, which stays the commit point: while ``latest.json`` lags, the next
run does not take the input for unchanged, finds its version and finishes every pointer. (Moved after
``latest.json``, a crash between the two would leave ``latest.{f}.json`` a version behind for good: the
next run would see the input unchanged and write nothing.) A pointer never goes back: one that holds a
newer version's rendition is left as it is.

One article's storage failure never sinks the others. When a request for one article still fails
transiently after the store's retries (``StoreUnavailable``, or ``StoreConflict`` after ``MAX_RACES``),
that input's outcome is ``failed`` with check ``storage``, naming the request, and it is left for the
next run, which repairs it as it repairs a crash (it finds its own version and carries on). Which step
failed decides what else is held back:

* steps 0-2 (read, claim, raw, a rendition): nothing of it reaches the feed; later files of the same article
  in the batch are not tried either (``failed``, check ``storage``), so the next run writes them in their order;
* step 3 (the batch's changes object): every version written in steps 1-2 of the batch is ``failed``,
  and none of their latest pointers moves (a latest ahead of the feed would make the next run see
  ``unchanged`` and never announce the version);
* step 4 (one latest pointer): that article's newest input is ``failed``; its version is in the feed. When a
  rendition's pointer failed, the article's ``latest.json`` is not moved either (it is the commit point).

The feed thus lists every version whose input is reported stored, and a version that was written but
not announced is announced by the run that finishes it. When *every* input of the batch failed so, one
more read asks whether the store answers at all: if not, it is down rather than some requests unlucky,
and that error is raised as before (the run stops with nothing of the batch moved; ``watch`` waits and
tries again). A terminal error (``StoreDenied``, ``StoreCorrupt``) or an untyped ``StoreError`` always
stops the batch.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ingest.archive import load_document
from ingest.clock import Clock, utcnow
from ingest.errors import (
    Check,
    InputError,
    InvalidDocument,
    NotFound,
    StoreConflict,
    StoreError,
    Transient,
)
from ingest.keys import Keys, changes_key, raw_content_type, run_key
from ingest.models import ChangeEntry, Document
from ingest.outcome import Outcome, OutcomeWord
from ingest.prepare import Prepared
from ingest.renditions import check_extra, stored_bytes, stored_version
from ingest.stores.base import Store, Stored
from ingest.versioning import new_version, stale_reason, unrelated

if TYPE_CHECKING:
    from ingest.settings import Settings

log = logging.getLogger("ingest.run")

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
    #: The bytes of each stored rendition of this version, by format: what its latest pointer is given.
    renditions: Mapping[str, bytes] = field(default_factory=dict)


class Committer:
    """Writes prepared inputs to a store in batches, in the crash-safe order above."""

    def __init__(
        self,
        store: Store,
        prefix: str,
        *,
        workers: int = 8,
        run_id: str | None = None,
        clock: Clock = utcnow,
        renditions: Sequence[str] = (),
        uri_template: str | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        #: Articles written side by side within a batch.
        self.workers = workers
        self.clock = clock
        self.run_id = run_id or new_run_id(clock())
        #: Renditions stored beside each new version (``v{N}.{format}.json``, ``latest.{format}.json``).
        self.renditions = tuple(renditions)
        for fmt in self.renditions:
            check_extra(fmt)  # a ConfigError before anything is written
        if self.renditions and uri_template is None:
            raise ValueError("stored renditions need the uri_template that makes their URIs")
        self.uri_template = uri_template or ""
        self._batches = 0
        self._backfill = False

    @classmethod
    def configured(
        cls,
        store: Store,
        settings: Settings,
        *,
        prefix: str | None = None,
        run_id: str | None = None,
        clock: Clock = utcnow,
    ) -> Committer:
        """A committer as ``settings`` ask (their prefix unless ``prefix`` is given, workers, stored
        renditions): what every path that writes versions (``ingest file``, runs, lanes, workers) uses."""
        return cls(
            store,
            settings.prefix if prefix is None else prefix,
            workers=settings.workers,
            run_id=run_id,
            clock=clock,
            renditions=settings.renditions,
            uri_template=settings.uri_template,
        )

    def commit(
        self,
        batch: Sequence[Prepared | Outcome],
        *,
        note: str | None = None,
        editor: str | None = None,
        backfill: bool = False,
    ) -> list[Outcome]:
        """Commit one batch; one outcome per entry, in order. Entries that are already outcomes (refused
        files) pass through. ``note``/``editor`` apply to every item (an input can also carry them);
        ``backfill`` marks the batch's change entries as an archive load."""
        self._backfill = backfill
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
        unfinished: dict[int, _Unfinished] = {}  # by batch position: inputs left for the next run

        def write_group(group: list[tuple[int, Prepared]]) -> None:
            latest: _Latest | None = None
            for n, (index, item) in enumerate(group):
                try:
                    results[index], latest = self._write(item, note or item.note, editor or item.editor, latest)
                except _Unfinished as exc:
                    unfinished[index] = exc
                    for later, _ in group[n + 1 :]:  # not tried: the next run writes them in their order
                        unfinished[later] = _Unfinished(exc.error, _EARLIER_FILE)
                    return

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="commit") as pool:
            list(pool.map(write_group, groups.values()))  # re-raises any other failure; slots left: unfinished
            unfinished |= self._publish({i: r for i, r in enumerate(results) if isinstance(r, _Written)}, pool.map)
        inputs = {index: item for group in groups.values() for index, item in group}
        if unfinished and len(unfinished) == len(inputs) and (down := self._unreachable()) is not None:
            raise down  # nothing of the batch got through, and the store does not answer: it is down
        for index, left in unfinished.items():
            results[index] = left.outcome(inputs[index].path, inputs[index].id)
        return [r.outcome if isinstance(r, _Written) else r for r in results if r is not None]

    def close(self) -> None:
        """Nothing to let go of (it holds no processes or connections of its own); see ``runner.Commits``."""

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
        renditions = self._store_renditions(keys, doc)  # one article: any storage failure is the rollback's
        outcome = Outcome(path, _word(doc), article_id, doc.version, keys.version(doc.version))
        written = _Written(outcome, doc, body, latest.etag, renditions)
        self._write_changes([doc])
        for fmt in renditions:
            self._point_rendition(written, fmt)
        self._point_latest(written)
        return written.outcome

    # ---- steps 0-2

    def _write(
        self, item: Prepared, note: str | None, editor: str | None, latest: _Latest | None
    ) -> tuple[Outcome | _Written, _Latest]:
        """Steps 0-2 for one input. ``latest`` (from the previous file of the same article in this batch)
        saves re-reading ``latest.json``, which only moves in step 4. A transient storage failure is raised
        as ``_Unfinished``, saying what was written."""
        try:
            return self._write_steps(item, note, editor, latest)
        except StoreError as exc:
            if not isinstance(exc, Transient):
                raise
            raise _Unfinished(exc, "not stored") from exc

    def _write_steps(
        self, item: Prepared, note: str | None, editor: str | None, latest: _Latest | None
    ) -> tuple[Outcome | _Written, _Latest]:
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
        try:
            self.store.put_new(keys.raw(doc.version, item.raw_ext), item.raw, raw_content_type(item.raw_ext))
        except StoreError as exc:
            if not isinstance(exc, Transient):
                raise
            raise _Unfinished(exc, f"v{doc.version} written, but not its raw input", written=True) from exc
        try:
            renditions = self._store_renditions(keys, doc)
        except StoreError as exc:
            if not isinstance(exc, Transient):
                raise
            raise _Unfinished(exc, f"v{doc.version} written, but not all its renditions", written=True) from exc
        outcome = Outcome(item.path, _word(doc), item.id, doc.version, keys.version(doc.version))
        return _Written(outcome, doc, body, latest.etag, renditions), _Latest(doc, latest.etag)

    def _store_renditions(self, keys: Keys, doc: Document) -> dict[str, bytes]:
        """Step 2, continued: ``v{N}.{format}.json`` of each stored rendition, created once. Found already
        there with other bytes (another ``uri_template`` or mapping, see above), it is replaced while it
        holds what was read. Returns each rendition's bytes, for its latest pointer."""
        bodies: dict[str, bytes] = {}
        for fmt in self.renditions:
            key = keys.rendition(doc.version, fmt)
            body = stored_bytes(doc, fmt, self.uri_template)
            etag: str | None = None  # first: If-None-Match: *
            for _ in range(MAX_RACES):
                if self.store.replace(key, body, etag) is not None:
                    break
                current = self.store.get(key)
                if current is not None and current.body == body:
                    break  # ours: a retried request that had succeeded, or a run that died after it
                if current is not None:
                    log.warning("replacing %s: it holds another rendition of v%d than this run makes", key, doc.version)
                etag = current.etag if current else None
            else:
                raise StoreConflict(f"could not write {key} after {MAX_RACES} tries", operation="PUT", key=key)
            bodies[fmt] = body
        return bodies

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
        key = keys.version(prev.version + 1 if prev else 1)
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
            f"gave up on {keys.id} after losing {MAX_RACES} races in a row for {key}", operation="PUT", key=key
        )

    def _unreachable(self) -> StoreError | None:
        """Why the store does not answer a read (one that no batch writes to), or None when it does. Asked
        only when nothing of a batch could be stored: it tells a store that is down from unlucky requests."""
        try:
            self.store.get(run_key(self.prefix, self.run_id))
        except StoreError as exc:
            if not isinstance(exc, Transient):
                raise
            return exc
        return None

    # ---- steps 3-4

    def _publish(
        self, written: dict[int, _Written], mapper: Callable[..., Iterable[_Unfinished | None]]
    ) -> dict[int, _Unfinished]:
        """One changes object for the batch, then the latest pointer of each article (only its highest new
        version needs one). Returns, by batch position, the inputs a transient failure left unfinished:
        all of them when the changes object could not be written (no latest pointer moves then)."""
        try:
            self._write_changes([w.document for w in written.values()])
        except StoreError as exc:
            if not isinstance(exc, Transient):
                raise
            done = "written, but not its entry in the changes feed"
            return {i: _Unfinished(exc, f"v{w.document.version} {done}", written=True) for i, w in written.items()}
        newest: dict[str, int] = {}
        for index, w in written.items():
            mine = newest.get(w.document.id)
            if mine is None or w.document.version > written[mine].document.version:
                newest[w.document.id] = index

        def point(target: tuple[int, str | None]) -> _Unfinished | None:
            index, fmt = target  # fmt None: latest.json itself
            try:
                if fmt is None:
                    self._point_latest(written[index])
                else:
                    self._point_rendition(written[index], fmt)
            except StoreError as exc:
                if not isinstance(exc, Transient):
                    raise
                name = "latest.json" if fmt is None else f"latest.{fmt}.json"
                done = f"v{written[index].document.version} written and in the changes feed, but {name} not moved"
                return _Unfinished(exc, done, written=True)
            return None

        def stage(targets: list[tuple[int, str | None]]) -> dict[int, _Unfinished]:
            done = zip(targets, mapper(point, targets), strict=True)
            return {index: unfinished for (index, _), unfinished in done if unfinished is not None}

        # The renditions' pointers first, all side by side; an article's latest.json, the commit point,
        # moves only once every one of its renditions' has (see the module docstring).
        failed = stage([(index, fmt) for index in newest.values() for fmt in written[index].renditions])
        return failed | stage([(index, None) for index in newest.values() if index not in failed])

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
                backfill=self._backfill,
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

    def _point_rendition(self, written: _Written, fmt: str) -> None:
        """``latest.{fmt}.json`` to this version's rendition, unless it holds that already or a newer one.
        An update reads it first for its ETag (2 requests); an article with no ``latest.json`` yet tries to
        create it (1 request), and reads only when that loses."""
        key = Keys(self.prefix, written.document.id).latest_rendition(fmt)
        body = written.renditions[fmt]
        current: Stored | None = None
        read = written.latest_etag is not None
        for _ in range(MAX_RACES):
            if read:
                current = self.store.get(key)
                held = stored_version(fmt, current.body) if current is not None else None
                if current is not None and (current.body == body or (held or 0) > written.document.version):
                    return  # ours already (a retried or repaired write), or a newer version's
            if self.store.replace(key, body, current.etag if current else None) is not None:
                return
            read = True
        raise StoreConflict(f"could not update {key} after {MAX_RACES} tries", operation="PUT", key=key)


class _Unfinished(Exception):
    """One input's writes stopped at a transient storage failure, ``error``; ``done`` says how far they got."""

    def __init__(self, error: StoreError, done: str, *, written: bool = False) -> None:
        super().__init__(done)
        self.error = error
        self.done = done
        #: A version was written: the next run finds it and carries on from it.
        self.written = written

    def outcome(self, path: str, article_id: str) -> Outcome:
        """``failed``, check ``storage``: one line naming the request that kept failing and what was written."""
        detail = " ".join(str(self.error).split())  # one line, whatever the store's message holds
        if self.error.key and self.error.key not in detail:
            detail = f"{self.error.operation} {self.error.key}: {detail}".strip()
        then = ", which carries on from it" if self.written else ""
        reason = f"{self.done}: {detail}; left for the next run{then}"
        return Outcome(path, "failed", article_id, error=InputError(path, reason, check=Check.STORAGE))


_EARLIER_FILE = "not tried, as an earlier file of this article in the batch was not stored"


def _word(doc: Document) -> OutcomeWord:
    # A kill and a rollback are announced as such (their document's action), never as a plain update.
    if doc.action == "withdrawn":
        return "withdrawn"
    if doc.action == "rolled_back":
        return "rolled_back"
    return "created" if doc.version == 1 else "updated"


def _conflict(item: Prepared, prev: Document) -> InvalidDocument:
    reason = (
        f"its id {item.id!r}, made from its file name, is already the article {prev.headline!r} (v{prev.version}), "
        "and it shares no headline or paragraph with it: not stored as its next version. Give the source an "
        "id_prefix, let the file declare its id, or set id_conflict: replace on the source"
    )
    return InvalidDocument(item.path, reason, check=Check.ID_CONFLICT, field="id")
