"""The unit of work: one input file in, one outcome out. Never exits, never prints.

``prepare`` is pure (bytes in, document content out) so it can run anywhere. Committing to storage
is idempotent and ordered so that a crash between any two writes is repaired by running again::

    1. articles/{id}/v{N}.json     If-None-Match: *   (the version number is claimed exactly once)
    2. raw/{id}/v{N}{ext}          If-None-Match: *   (only the winner of v{N} archives its input)
    3. changes/{time}-{run}.jsonl  one object per batch, after every version of the batch is written
    4. articles/{id}/latest.json   If-Match: <etag read in step 0>, retried until it holds the highest

Step 0 is one GET of ``latest.json``; an unchanged re-send stops there (one request). A lost race on
step 1 reads the winner: if it holds our content it is ours (a retried request that had succeeded,
or a run that died before step 4) and we carry on from step 2; otherwise we try the next number.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path, PurePath
from typing import Literal

from pydantic import ValidationError

from ingest.errors import InputError, InvalidDocument, RunError, StoreConflict, StoreError, printable
from ingest.models import ChangeEntry, Content, Correction, Document, SourceInfo
from ingest.parsers import registry
from ingest.reader import decode, read_bytes
from ingest.settings import Settings
from ingest.split import Rules
from ingest.stores.s3 import S3Store, Stored
from ingest.versioning import (
    Keys,
    changes_prefix,
    id_from_file_name,
    is_older,
    raw_extension,
    safe_id,
    summarize,
)

log = logging.getLogger("ingest.pipeline")

OutcomeWord = Literal["created", "updated", "unchanged", "stale", "failed"]
#: Races lost in a row on one article before giving up (each loss means another writer progressed).
MAX_RACES = 64


@dataclass(frozen=True)
class Prepared:
    """One input, read and parsed, ready to be versioned. Holds no storage state."""

    path: str
    id: str
    raw: bytes
    raw_ext: str
    content: Content
    source: SourceInfo
    note: str | None = None
    editor: str | None = None

    @cached_property
    def content_sha256(self) -> str:
        # Cached: the hash is needed several times per commit and serialises the whole content.
        return self.content.sha256()


@dataclass(frozen=True)
class Outcome:
    """What happened to one input. ``outcome`` and the JSON field names are a public contract."""

    path: str
    outcome: OutcomeWord
    id: str | None = None
    version: int | None = None
    key: str | None = None
    error: InputError | None = None
    message: str | None = None

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "path": self.path,
            "id": self.id,
            "version": self.version,
            "outcome": self.outcome,
            "key": self.key,
        }
        if self.error is not None:
            data["error"] = self.error.as_dict()
        if self.message:
            data["message"] = self.message
        return data

    def line(self) -> str:
        """One human line: ``created  path -> key (v1)``."""
        if self.error is not None:
            return f"failed     {self.error}"
        extra = f" ({self.message})" if self.message else ""
        return f"{self.outcome:<10} {printable(self.path)} -> {self.key}{extra}"


def prepare(
    data: bytes,
    file_name: str,
    rules: Rules,
    *,
    display: str | None = None,
    received_at: datetime | None = None,
    doc_id: str | None = None,
    format: str | None = None,
    id_from: Literal["input", "file"] = "input",
    id_prefix: str = "",
) -> Prepared:
    """Read, parse and split one input. Pure: the same bytes give the same content and hash.

    ``format`` forces a parser (default: detected from the content); the id is ``doc_id`` when given,
    else the input's own id (``id_from="input"``) or the file name stem, with ``id_prefix`` before it.
    """
    shown = display or file_name
    decoded = decode(data, shown)
    parser = registry.get(format) if format else registry.detect(file_name, decoded.text)
    parsed = parser.parse(decoded, shown, rules)
    if doc_id:
        article_id = safe_id(doc_id, shown)
    elif parsed.id and id_from == "input":
        article_id = safe_id(id_prefix + parsed.id, shown)
    else:
        article_id = (
            safe_id(id_prefix + PurePath(file_name).stem, shown) if id_prefix else id_from_file_name(file_name, shown)
        )
    source = SourceInfo(
        format=parser.name,
        file_name=Path(file_name).name or file_name,
        raw_sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        received_at=received_at or _now(),
        encoding=decoded.encoding,
        encoding_rule=decoded.rule,
        line_endings=decoded.line_endings,
        input_version=parsed.version,
        headline_repeated=parsed.headline_repeated,
    )
    return Prepared(
        path=shown,
        id=article_id,
        raw=data,
        raw_ext=raw_extension(file_name),
        content=parsed.content,
        source=source,
        note=parsed.note,
        editor=parsed.editor,
    )


def prepare_file(path: Path, settings: Settings) -> Prepared:
    """Read a file within the size limit and prepare it."""
    return prepare(read_bytes(path, settings.max_bytes), path.name, settings.rules, display=str(path))


def draft(prepared: Prepared) -> Document:
    """The document ``prepared`` would become as a new article (what ``ingest parse`` prints)."""
    return _build(prepared, None, 1, _now(), prefix="", note=prepared.note, editor=prepared.editor)


# ---------------------------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class _Known:
    """The newest version of an article this process has seen, and the ETag of ``latest.json`` it read."""

    doc: Document | None
    latest_etag: str | None


@dataclass
class _Pending:
    """A version written in step 1-2 whose feed entry and latest pointer are still to come."""

    outcome: Outcome
    document: Document
    body: bytes
    latest_etag: str | None


@dataclass
class Committer:
    """Writes prepared inputs to storage in batches, in the crash-safe order described above."""

    store: S3Store
    prefix: str
    #: Articles written side by side within a batch.
    workers: int = 8
    run_id: str = field(default_factory=lambda: new_run_id())
    _batches: int = 0

    def commit(
        self, batch: Sequence[Prepared | Outcome], *, note: str | None = None, editor: str | None = None
    ) -> list[Outcome]:
        """Commit one batch and return one outcome per entry, in order; entries that are already
        outcomes (refused files) pass through. ``note``/``editor`` apply to every item (front matter
        can also carry them)."""
        items = [(i, entry) for i, entry in enumerate(batch) if isinstance(entry, Prepared)]
        results: list[_Pending | Outcome | None] = [e if isinstance(e, Outcome) else None for e in batch]
        if items:
            self.store.ensure_bucket()
        # Articles are independent (races on one id are settled by conditional writes), so their
        # requests run side by side; files of one article keep their input order (the later one is
        # the newer version) and pass what they wrote along instead of re-reading latest.json.
        groups: dict[str, list[tuple[int, Prepared]]] = {}
        for index, item in items:
            groups.setdefault(item.id, []).append((index, item))

        def write_group(group: list[tuple[int, Prepared]]) -> None:
            known: _Known | None = None
            for i, item in group:
                results[i], known = self._write_version(item, note or item.note, editor or item.editor, known=known)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="commit") as pool:
            list(pool.map(write_group, groups.values()))
            self._publish([r for r in results if isinstance(r, _Pending)], pool.map)
        outcomes = [r.outcome if isinstance(r, _Pending) else r for r in results]
        assert all(o is not None for o in outcomes)  # every group ran, or pool.map raised
        return [o for o in outcomes if o is not None]

    def rollback(self, article_id: str, to: int, note: str, editor: str | None) -> Outcome:
        """Make a new version whose content is version ``to``'s."""
        self.store.ensure_bucket()
        keys = Keys(self.prefix, article_id)
        old = load_document(self.store.get(keys.version(to)), keys.version(to))
        if old is None:
            raise InvalidDocument(article_id, f"has no version {to} to roll back to", check="rollback")
        prepared = Prepared(
            path=f"{article_id}@v{to}",
            id=article_id,
            raw=b"",
            raw_ext="",
            content=old.content(),
            source=old.source,
            note=note,
            editor=editor,
        )
        result, _ = self._write_version(prepared, note, editor, rolled_back_to=to)
        if isinstance(result, _Pending):
            self._publish([result], map)
            return result.outcome
        return result

    def _publish(self, pending: list[_Pending], mapper: Callable[..., Iterable[object]]) -> None:
        """Steps 3-4: one changes object for the batch, then the latest pointer of each article
        (only its highest new version needs one)."""
        self._write_changes([p.document for p in pending])
        newest: dict[str, _Pending] = {}
        for p in pending:
            if p.document.id not in newest or p.document.version > newest[p.document.id].document.version:
                newest[p.document.id] = p
        list(mapper(self._point_latest, newest.values()))

    # ---- step 0-2

    def _write_version(
        self,
        item: Prepared,
        note: str | None,
        editor: str | None,
        rolled_back_to: int | None = None,
        known: _Known | None = None,
    ) -> tuple[_Pending | Outcome, _Known]:
        """Steps 0-2 for one item. ``known`` (from the previous file of the same article in this batch)
        saves re-reading ``latest.json``, which only moves in step 4."""
        keys = Keys(self.prefix, item.id)
        sha = item.content_sha256
        if known is None:
            latest = self.store.get(keys.latest)
            known = _Known(load_document(latest, keys.latest), latest.etag if latest else None)
        prev = known.doc
        for _ in range(MAX_RACES):
            if prev is not None and prev.content_sha256 == sha:
                msg = "note not recorded: content unchanged" if note else None
                done = Outcome(item.path, "unchanged", item.id, prev.version, keys.version(prev.version), message=msg)
                return done, _Known(prev, known.latest_etag)
            stale = _stale_reason(item, prev) if prev is not None and rolled_back_to is None else None
            if stale is not None and prev is not None:
                done = Outcome(item.path, "stale", item.id, prev.version, keys.version(prev.version), message=stale)
                return done, _Known(prev, known.latest_etag)
            number = prev.version + 1 if prev else 1
            doc = _build(
                item, prev, number, _now(), self.prefix, note=note, editor=editor, rolled_back_to=rolled_back_to
            )
            body = doc.to_json()
            if self.store.put_new(keys.version(number), body):
                break
            winner = self.store.get(keys.version(number))
            theirs = load_document(winner, keys.version(number))
            if theirs is None:  # vanished between the two requests: try the same number again
                continue
            if (
                theirs.content_sha256 == sha
                and winner is not None
                and (rolled_back_to is None or prev is None or theirs.rolled_back_to == rolled_back_to)
            ):
                # Ours already: a retried PUT that had succeeded, or an earlier run that died after step 1.
                doc, body = theirs, winner.body
                break
            prev = theirs
        else:
            raise StoreConflict(
                f"gave up on {item.id} after losing {MAX_RACES} races in a row", operation="PUT", key=keys.version(0)
            )
        if item.raw:
            self.store.put_new(keys.raw(doc.version, item.raw_ext), item.raw, _raw_type(item.raw_ext))
        word: OutcomeWord = "created" if doc.version == 1 else "updated"
        outcome = Outcome(item.path, word, item.id, doc.version, keys.version(doc.version))
        return _Pending(outcome, doc, body, known.latest_etag), _Known(doc, known.latest_etag)

    # ---- step 3

    def _write_changes(self, docs: Iterable[Document]) -> None:
        lines = [
            ChangeEntry(
                id=d.id,
                version=d.version,
                key=Keys(self.prefix, d.id).version(d.version),
                action=d.action,
                content_sha256=d.content_sha256,
                time=d.created_at,
            ).model_dump_json()
            for d in docs
        ]
        if not lines:
            return
        self._batches += 1
        stamp = _now().strftime("%Y%m%dT%H%M%S%fZ")  # names sort by write time, so `--since` can skip by name
        key = f"{changes_prefix(self.prefix)}{stamp}-{self.run_id}-{self._batches:05d}.jsonl"
        self.store.put(key, ("\n".join(lines) + "\n").encode("utf-8"), "application/x-ndjson")

    # ---- step 4

    def _point_latest(self, p: _Pending) -> None:
        key = Keys(self.prefix, p.document.id).latest
        etag = p.latest_etag
        for _ in range(MAX_RACES):
            if self.store.replace(key, p.body, etag):
                return
            current = self.store.get(key)
            doc = load_document(current, key)
            if doc is not None and doc.version >= p.document.version:
                return  # a newer (or our own retried) write is already there
            etag = current.etag if current else None
        raise StoreConflict(f"could not update {key} after {MAX_RACES} tries", operation="PUT", key=key)


def ingest_files(
    paths: Sequence[Path],
    settings: Settings,
    store: S3Store,
    *,
    note: str | None = None,
    editor: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Ingest files in batches of ``settings.batch_size``. Bad files become ``failed`` outcomes;
    a storage failure raises ``StoreError`` (the run cannot go on)."""
    committer = Committer(store, settings.prefix, settings.workers)
    outcomes: list[Outcome] = []
    for start in range(0, len(paths), settings.batch_size):
        batch = [safe_prepare(path, settings) for path in paths[start : start + settings.batch_size]]
        for outcome in committer.commit(batch, note=note, editor=editor):
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes


def safe_prepare(path: Path, settings: Settings) -> Prepared | Outcome:
    """``prepare_file``, with any per-file failure turned into a ``failed`` outcome."""
    return guarded(str(path), lambda: prepare_file(path, settings))


def guarded(display: str, work: Callable[[], Prepared]) -> Prepared | Outcome:
    """Run the pure part for one file; every per-file failure, bugs included, becomes ``failed``."""
    try:
        return work()
    except InputError as exc:
        return Outcome(display, "failed", error=exc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err = InvalidDocument(display, f"field {where}: {first['msg']}", check="schema", field=where)
        return Outcome(display, "failed", error=err)
    except RecursionError:
        return Outcome(display, "failed", error=InvalidDocument(display, "is nested too deeply", check="depth"))
    except (RunError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug in one parser must not take the other files down
        log.exception("internal error while reading %s", display)
        bug = InputError(display, f"internal error ({type(exc).__name__}: {exc}); please report it", check="internal")
        return Outcome(display, "failed", error=bug)


def _stale_reason(item: Prepared, prev: Document) -> str | None:
    """Why ``item`` must not become a new version after ``prev``; only an explicit rollback may go back."""
    declared, stored = item.source.input_version, prev.source.input_version
    if declared and stored and is_older(declared, stored):
        return f"input version {declared} is older than stored {stored}"
    earlier = [h.version for h in prev.history if h.content_sha256 == item.content_sha256]
    if earlier:
        return f"same content as superseded v{earlier[-1]}; latest is v{prev.version}"
    return None


def _build(
    item: Prepared,
    prev: Document | None,
    number: int,
    now: datetime,
    prefix: str,
    *,
    note: str | None = None,
    editor: str | None = None,
    rolled_back_to: int | None = None,
) -> Document:
    if rolled_back_to is not None:
        action: Literal["created", "updated", "corrected", "rolled_back"] = "rolled_back"
    elif prev is None:
        action = "created"
    elif note:
        action = "corrected"
    else:
        action = "updated"
    history = [*prev.history, prev.record()] if prev else []
    source = item.source
    if item.raw:
        source = source.model_copy(update={"raw_key": Keys(prefix, item.id).raw(number, item.raw_ext)})
    return Document(
        **item.content.model_dump(),
        id=item.id,
        version=number,
        content_sha256=item.content_sha256,
        action=action,
        created_at=now,
        previous_version=prev.version if prev else None,
        correction=Correction(note=note, editor=editor) if note else None,
        rolled_back_to=rolled_back_to,
        change_summary=summarize(prev.content(), item.content) if prev else None,
        source=source,
        history=history,
    )


def load_document(stored: Stored | None, key: str) -> Document | None:
    """A stored document, or None; a stored object that is not a valid document is a ``StoreError``."""
    if stored is None:
        return None
    try:
        return Document.model_validate_json(stored.body)
    except ValidationError as exc:
        raise StoreError(
            f"stored document {key} is not a valid document: {exc.errors()[0]['msg']}", operation="GET", key=key
        ) from exc


def _raw_type(ext: str) -> str:
    return {".json": "application/json", ".xml": "application/xml", ".txt": "text/plain", ".md": "text/markdown"}.get(
        ext, "application/octet-stream"
    )


def new_run_id() -> str:
    """A run id that sorts by start time: ``20261124T083000-1a2b3c``."""
    return _now().strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _now() -> datetime:
    return datetime.now(UTC)
