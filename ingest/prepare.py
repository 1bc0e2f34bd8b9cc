"""The pure half of the unit of work: one input's bytes in, its document content out.

::

    bytes --reader.decode--> text --parser (by content)--> Draft --compose (module rules)--> Content

Nothing here reads the clock, the file system or storage: the time an input was received is passed in,
so the same bytes always give the same content and hash, wherever a worker runs it. ``prepare`` raises
``InputError`` (and only that) for input it refuses; ``guarded`` contains everything else one file can
throw, so a bug in one parser never takes the other files of a batch down.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path, PurePath
from typing import Literal, TypedDict, Unpack
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from ingest.compose import compose
from ingest.errors import Check, InputError, InvalidDocument, ParseError, RunError, describe_validation
from ingest.keys import raw_extension
from ingest.models import Content, Document, SourceInfo
from ingest.outcome import Outcome
from ingest.parsers import registry
from ingest.parsers.base import Draft
from ingest.reader import Decoded, check_controls, decode, read_bytes
from ingest.split import Rules
from ingest.versioning import id_from_file_name, new_version, safe_id

log = logging.getLogger("ingest.prepare")


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
    #: The id came from the file name (the input declared none): such an id can be shared by unrelated
    #: stories (``bbc/001.txt`` and ``sport/001.txt``), so one must not silently replace the other.
    id_from_name: bool = False
    #: The source allows a story that shares nothing with the stored one to become its next version.
    replace_unrelated: bool = False

    @cached_property
    def content_sha256(self) -> str:
        # Cached: the commit needs it several times and it serialises the whole content.
        return self.content.sha256()


def prepare_items(
    data: bytes,
    file_name: str,
    rules: Rules,
    *,
    received_at: datetime,
    display: str | None = None,
    format: str | None = None,
    id_from: Literal["input", "file"] = "input",
    id_prefix: str = "",
    id_conflict: Literal["refuse", "replace"] = "refuse",
    timezone: str | None = None,
) -> list[Prepared | Outcome]:
    """Read, parse and compose one input: one ``Prepared`` per text item it holds, in order. Pure: the
    same arguments give the same content and hashes.

    An input with one item is that item (shown as the file). An input with several (a message, an
    envelope, a feed) gives one per item, shown as ``file#1``, ``file#2`` ..., each with its own id (the
    item's own, else ``<file stem>-<n>``); an item that breaks a document rule is a ``failed`` outcome of
    its own, the others stand. ``format`` forces a parser (default: detected from the content); ids come
    from the input (``id_from="input"``) or the file name, with ``id_prefix`` before them; ``id_conflict``
    says what becomes of a name-made id that holds an unrelated story already; ``timezone`` (an IANA name)
    is where times given without an offset are read (default UTC). A file that cannot be read or parsed
    at all raises ``InputError``.
    """
    shown = display or file_name
    with _refusals(shown):
        decoded = decode(data, shown, controls=None)
        parser = registry.get(format) if format else registry.detect(file_name, decoded.text)
        check_controls(decoded, shown, parser.controls)  # only the format's own framing may use them
        parsed = parser.parse(decoded, shown)
    drafts = parsed if isinstance(parsed, list) else [parsed]
    if not drafts:
        raise ParseError(shown, f"holds no text item ({parser.name})", check=Check.FORMAT)
    zone = ZoneInfo(timezone) if timezone else None
    read = _Input(data, file_name, decoded, parser.name, received_at, id_from, id_prefix, id_conflict, zone)
    if len(drafts) == 1:
        only = drafts[0]
        if isinstance(only, InputError):
            raise only
        return [read.item(only, rules, shown, None)]
    items: list[Prepared | Outcome] = []
    for n, draft in enumerate(drafts, 1):
        try:
            if isinstance(draft, InputError):  # the parser could not read this item: its own refusal
                raise type(draft)(f"{shown}#{n}", draft.reason, check=draft.check, field=draft.field)
            items.append(read.item(draft, rules, f"{shown}#{n}", n))
        except InputError as exc:
            items.append(Outcome.failed(f"{shown}#{n}", exc))
    return items


class ReadOptions(TypedDict, total=False):
    """How a source reads its files (``prepare_items``' keyword options, passed through ``prepare``)."""

    format: str | None
    id_from: Literal["input", "file"]
    id_prefix: str
    id_conflict: Literal["refuse", "replace"]
    timezone: str | None


def prepare(
    data: bytes,
    file_name: str,
    rules: Rules,
    *,
    received_at: datetime,
    display: str | None = None,
    **options: Unpack[ReadOptions],
) -> Prepared:
    """``prepare_items`` for an input that must hold exactly one item (an input with several is refused,
    naming how many)."""
    shown = display or file_name
    items = prepare_items(data, file_name, rules, received_at=received_at, display=shown, **options)
    if len(items) != 1 or not isinstance(items[0], Prepared):
        raise ParseError(shown, f"holds {len(items)} items, not one article", check=Check.FORMAT)
    return items[0]


@dataclass(frozen=True)
class _Input:
    """One input file as read: what every item taken from it shares."""

    data: bytes
    file_name: str
    decoded: Decoded
    format: str
    received_at: datetime
    id_from: Literal["input", "file"]
    id_prefix: str
    id_conflict: Literal["refuse", "replace"]
    zone: ZoneInfo | None

    @cached_property
    def raw_sha256(self) -> str:
        # Once per input, however many items share it.
        return hashlib.sha256(self.data).hexdigest()

    def item(self, draft: Draft, rules: Rules, shown: str, n: int | None) -> Prepared:
        """The ``n``-th item of the input (None: the input is one item)."""
        with _refusals(shown):
            composed = compose(draft, rules, shown, self.zone)
            declared = bool(draft.id) and self.id_from == "input"
            stem = PurePath(self.file_name).stem + (f"-{n}" if n is not None else "")
            if declared:
                article_id = safe_id(self.id_prefix + (draft.id or ""), shown)
            elif self.id_prefix or n is not None:
                article_id = safe_id(self.id_prefix + stem, shown)
            else:
                article_id = id_from_file_name(self.file_name, shown)
            source = SourceInfo(
                format=self.format,
                file_name=Path(self.file_name).name or self.file_name,
                raw_sha256=self.raw_sha256,
                size_bytes=len(self.data),
                received_at=self.received_at,
                encoding=self.decoded.encoding,
                encoding_rule=self.decoded.rule,
                line_endings=self.decoded.line_endings,
                input_version=draft.version,
                headline_repeated=composed.headline_repeated,
                headline_derived=composed.headline_derived,
                assumed_timezone=composed.assumed_timezone,
                internal_notes=list(draft.internal_notes),
            )
        return Prepared(
            path=shown,
            id=article_id,
            raw=self.data,
            raw_ext=raw_extension(self.file_name),
            content=composed.content,
            source=source,
            note=draft.note,
            editor=draft.editor,
            id_from_name=not declared,
            replace_unrelated=self.id_conflict == "replace",
        )


@contextmanager
def _refusals(display: str) -> Iterator[None]:
    """Input that breaks a model or nests too deeply is refused like any other bad input."""
    try:
        yield
    except ValidationError as exc:
        where, reason = describe_validation(exc)
        raise InvalidDocument(display, f"field {where}: {reason}", check=Check.SCHEMA, field=where) from exc
    except RecursionError:
        raise InvalidDocument(display, "is nested too deeply", check=Check.DEPTH) from None


def prepare_file(path: Path, rules: Rules, max_bytes: int, *, received_at: datetime) -> list[Prepared | Outcome]:
    """Read a file within the size limit and prepare its items."""
    return prepare_items(read_bytes(path, max_bytes), path.name, rules, display=str(path), received_at=received_at)


def preview(prepared: Prepared, now: datetime) -> Document:
    """The document ``prepared`` would become as a new article (what ``ingest parse`` prints). Its
    ``raw_key`` is None: nothing is archived, and a rendition must not name an object that does not exist."""
    return new_version(
        None,
        article_id=prepared.id,
        content=prepared.content,
        content_sha256=prepared.content_sha256,
        source=prepared.source,  # raw_key None: nothing is archived
        now=now,
        note=prepared.note,
        editor=prepared.editor,
    )


#: Exceptions that are never one file's failure, added by whoever raises them: a Celery worker adds its
#: soft time limit, which interrupts the task wherever it is, parsing included (``ingest.engine``).
PASS_THROUGH: list[type[Exception]] = []


def guarded(display: str, work: Callable[[], list[Prepared | Outcome]]) -> list[Prepared | Outcome]:
    """Run the pure part for one file; every per-file failure, bugs included, becomes ``failed``."""
    try:
        return work()
    except InputError as exc:
        return [Outcome.failed(display, exc)]
    except (RunError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug in one parser must not take the other files down
        if isinstance(exc, tuple(PASS_THROUGH)):
            raise
        log.exception("internal error while reading %s", display)
        reason = f"internal error ({type(exc).__name__}: {exc}); please report it"
        return [Outcome.failed(display, InputError(display, reason, check=Check.INTERNAL))]
