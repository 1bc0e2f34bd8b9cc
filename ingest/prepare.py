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
from typing import Literal

from pydantic import ValidationError

from ingest.compose import compose
from ingest.errors import Check, InputError, InvalidDocument, RunError, describe_validation
from ingest.keys import Keys, raw_extension
from ingest.models import Content, Document, SourceInfo
from ingest.outcome import Outcome
from ingest.parsers import registry
from ingest.reader import decode, read_bytes
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


def prepare(
    data: bytes,
    file_name: str,
    rules: Rules,
    *,
    received_at: datetime,
    display: str | None = None,
    doc_id: str | None = None,
    format: str | None = None,
    id_from: Literal["input", "file"] = "input",
    id_prefix: str = "",
    id_conflict: Literal["refuse", "replace"] = "refuse",
) -> Prepared:
    """Read, parse and compose one input. Pure: the same arguments give the same content and hash.

    ``format`` forces a parser (default: detected from the content); the id is ``doc_id`` when given,
    else the input's own id (``id_from="input"``) or the file name stem, with ``id_prefix`` before it.
    ``id_conflict`` says what becomes of a file whose name-made id holds an unrelated story already.
    """
    shown = display or file_name
    with _refusals(shown):
        decoded = decode(data, shown)
        parser = registry.get(format) if format else registry.detect(file_name, decoded.text)
        draft = parser.parse(decoded, shown)
        composed = compose(draft, rules, shown)
        if doc_id:
            article_id = safe_id(doc_id, shown)
        elif draft.id and id_from == "input":
            article_id = safe_id(id_prefix + draft.id, shown)
        elif id_prefix:
            article_id = safe_id(id_prefix + PurePath(file_name).stem, shown)
        else:
            article_id = id_from_file_name(file_name, shown)
        source = SourceInfo(
            format=parser.name,
            file_name=Path(file_name).name or file_name,
            raw_sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            received_at=received_at,
            encoding=decoded.encoding,
            encoding_rule=decoded.rule,
            line_endings=decoded.line_endings,
            input_version=draft.version,
            headline_repeated=composed.headline_repeated,
            internal_notes=list(draft.internal_notes),
        )
    return Prepared(
        path=shown,
        id=article_id,
        raw=data,
        raw_ext=raw_extension(file_name),
        content=composed.content,
        source=source,
        note=draft.note,
        editor=draft.editor,
        id_from_name=not doc_id and not (draft.id and id_from == "input"),
        replace_unrelated=id_conflict == "replace",
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


def prepare_file(path: Path, rules: Rules, max_bytes: int, *, received_at: datetime) -> Prepared:
    """Read a file within the size limit and prepare it."""
    return prepare(read_bytes(path, max_bytes), path.name, rules, display=str(path), received_at=received_at)


def preview(prepared: Prepared, now: datetime) -> Document:
    """The document ``prepared`` would become as a new article (what ``ingest parse`` prints); its raw key
    is shown as it would be under no prefix."""
    raw_key = Keys("", prepared.id).raw(1, prepared.raw_ext)
    return new_version(
        None,
        article_id=prepared.id,
        content=prepared.content,
        content_sha256=prepared.content_sha256,
        source=prepared.source.model_copy(update={"raw_key": raw_key}),
        now=now,
        note=prepared.note,
        editor=prepared.editor,
    )


def guarded(display: str, work: Callable[[], Prepared]) -> Prepared | Outcome:
    """Run the pure part for one file; every per-file failure, bugs included, becomes ``failed``."""
    try:
        return work()
    except InputError as exc:
        return Outcome.failed(display, exc)
    except (RunError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug in one parser must not take the other files down
        log.exception("internal error while reading %s", display)
        reason = f"internal error ({type(exc).__name__}: {exc}); please report it"
        return Outcome.failed(display, InputError(display, reason, check=Check.INTERNAL))
