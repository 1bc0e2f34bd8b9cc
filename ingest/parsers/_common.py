"""What the structured formats share: body assembly, the document rules, dates, ids, JSON and error text.

Every format hands its body to ``assemble`` as ``(kind, text)`` blocks in reading order, so the splitter
sees wire bodies exactly as it sees plain text (related-link modules are taken out of them too) and
sub-headings keep their place. ``finish`` applies the rules every document obeys (a headline, at least
one body paragraph) with the messages the plain-text parser uses.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import ValidationError

from ingest.errors import InvalidDocument, ParseError, printable
from ingest.models import Block, Content
from ingest.parsers.text import MAX_HEADLINE
from ingest.split import Rules, Split, split

BlockKind = Literal["paragraph", "heading"]
#: One body block as a format reads it: a paragraph (lines joined by LF) or a sub-heading.
RawBlock = tuple[BlockKind, str]

#: JSON inputs larger than this are refused before parsing (the reader's own limit may be set higher).
MAX_JSON_CHARS = 5 * 1024 * 1024
log = logging.getLogger("ingest.parsers")
_SPACE = re.compile(r"\s+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?://)?")


def collapse(text: str) -> str:
    """Markup whitespace: runs of spaces, tabs and newlines are one space; no leading or trailing space."""
    return _SPACE.sub(" ", text).strip()


def text_blocks(text: str) -> list[RawBlock]:
    """Plain-text body (paragraphs separated by blank lines) as paragraph blocks, line text unchanged."""
    blocks: list[RawBlock] = []
    current: list[str] = []
    for line in [*text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), ""]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(("paragraph", "\n".join(current)))
            current = []
    return blocks


def drop_repeat(blocks: list[RawBlock], headline: str | None) -> tuple[list[RawBlock], bool]:
    """Blocks without a first block that only repeats the headline (XHTML bodies often open with an
    ``h1`` of it), and whether there was one: recorded as ``source.headline_repeated``, as for text."""
    if blocks and headline and collapse(blocks[0][1]) == collapse(headline):
        return blocks[1:], True
    return blocks, False


def assemble(blocks: Iterable[RawBlock], rules: Rules, name: str) -> Split:
    """Body blocks through the splitter, run by run between sub-headings, positions counted over the whole.

    A sub-heading that reads like a module heading ("Related Coverage") is not story structure: it goes
    to the splitter with the paragraphs, which then also takes the links listed under it. A body of more
    than ``rules.max_lines`` lines is refused, as plain text is (bounded time and memory).
    """
    out = Split()
    run: list[str] = []
    count = 0

    def flush() -> None:
        if not run:
            return
        part = split(run, rules)
        offset = len(out.body)
        out.body.extend(part.body)
        out.related_links.extend(x.model_copy(update={"position": x.position + offset}) for x in part.related_links)
        out.module_headings.extend(x.model_copy(update={"position": x.position + offset}) for x in part.module_headings)
        out.boilerplate.extend(x.model_copy(update={"position": x.position + offset}) for x in part.boilerplate)
        run.clear()

    for kind, text in blocks:
        count += text.count("\n") + 1
        if count > rules.max_lines:
            limit = f"{rules.max_lines:,}"
            raise InvalidDocument(name, f"has a body of more lines than the {limit} limit", check="size-limit")
        if kind == "heading" and rules.classify(text) is None:
            flush()
            out.body.append(Block(type="heading", text=text))
        else:
            run.extend([*text.split("\n"), ""])
    flush()
    return out


def finish(
    name: str,
    headline: str | None,
    parts: Split,
    *,
    headline_from: str,
    body_from: str,
    **meta: Any,
) -> Content:
    """The document rules, then ``Content``. ``headline_from``/``body_from`` say where the format looked.

    The headline is one line: its whitespace is collapsed.
    """
    headline = collapse(headline or "")
    if len(headline) > MAX_HEADLINE:
        raise InvalidDocument(
            name,
            f"headline is {len(headline):,} characters, above the {MAX_HEADLINE:,} limit",
            check="headline",
            field="headline",
        )
    if not headline:
        if not parts.body:
            raise InvalidDocument(
                name,
                f"is empty: no headline ({headline_from}) and no body ({body_from})",
                check="headline",
                field="headline",
            )
        raise InvalidDocument(
            name, f"has no headline ({headline_from} is missing or empty)", check="headline", field="headline"
        )
    # A kill notice may carry no story at all: the withdrawal is the news, so it is stored.
    if not meta.get("withdrawn") and not any(block.type == "paragraph" for block in parts.body):
        taken = len(parts.related_links) + len(parts.module_headings) + len(parts.boilerplate)
        reason = (
            f"has a headline but no body paragraph (none in {body_from})"
            if taken == 0
            else f"has no body paragraph: all {taken} lines of {body_from} are link modules or boilerplate"
        )
        raise InvalidDocument(name, reason, check="body", field="body")
    try:
        return Content(
            headline=headline,
            body=parts.body,
            related_links=parts.related_links,
            module_headings=parts.module_headings,
            boilerplate=parts.boilerplate,
            **{key: value for key, value in meta.items() if value is not None},
        )
    except ValidationError as exc:
        field, message = first_error(exc)
        raise InvalidDocument(name, f"field {field}: {message}", field=field) from exc


# ---------------------------------------------------------------------------------------------- values


def when(value: object) -> datetime:
    """An ISO 8601 date-time (extended or basic form, or a date), aware; a time without offset is UTC.

    Reading a bare time as UTC is a guess, but the document schema promises RFC 3339 date-times, which
    always carry an offset; a time with an offset keeps it.
    """
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, date):
        found = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        try:
            found = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 date-time: {value.strip()[:40]!r}") from None
    else:
        raise ValueError(f"must be an ISO 8601 date-time, not {type(value).__name__}")
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def when_field(value: str | None, name: str, field: str) -> datetime | None:
    """``when`` for an optional wire date: a value that is not a date is left out, with a log line.

    Wires send placeholders ("YYYYMMDD000000-HHMM") in dates nobody reads; refusing the story for one
    would lose it. ingest's own formats (json, frontmatter) are strict instead.
    """
    if value is None or not value.strip():
        return None
    try:
        return when(value)
    except ValueError as exc:
        log.warning("%s: %s left out: %s", printable(name), field, exc)
        return None


def version_hint(version: object, timestamp: datetime | None) -> str | None:
    """The input's own version: an integer as given, else the version timestamp in UTC (sortable)."""
    if isinstance(version, int) and not isinstance(version, bool):
        return str(version)
    if isinstance(version, str) and version.strip().isdigit():
        return version.strip()
    if timestamp is not None:
        return timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return None


def id_from_uri(uri: str | None) -> str | None:
    """A readable id from a wire item's URI or GUID: the scheme goes (``urn:``, ``tag:``, ``http://``),
    the rest stays, so ids from different providers do not collide. The pipeline makes it key-safe."""
    if not uri or not uri.strip():
        return None
    return _SCHEME.sub("", uri.strip(), count=1) or uri.strip()


def unique(values: Iterable[str | None]) -> list[str]:
    """Non-empty values, whitespace collapsed, first occurrence kept, order kept."""
    seen: dict[str, None] = {}
    for value in values:
        if value and (clean := collapse(value)):
            seen.setdefault(clean, None)
    return list(seen)


# ---------------------------------------------------------------------------------------------- JSON


def load_json_object(text: str, name: str) -> dict[str, Any]:
    """Parse a JSON object with a size cap and a depth guard; every failure is one ``ParseError`` line."""
    if len(text) > MAX_JSON_CHARS:
        raise ParseError(name, f"JSON input is larger than {MAX_JSON_CHARS // (1024 * 1024)} MiB", check="size-limit")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(name, f"not well-formed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise ParseError(name, "not accepted: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal too long to convert
        raise ParseError(name, f"not well-formed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ParseError(name, f"JSON input must be an object, not {_json_type(value)}")
    return value


@functools.lru_cache(maxsize=1)
def sniff_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object ``text`` holds, or None. Cached: every JSON sniffer asks about the same text."""
    if not text.lstrip().startswith("{") or len(text) > MAX_JSON_CHARS:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------- errors


def first_error(exc: ValidationError, data: object = None) -> tuple[str, str]:
    """The first failing field of a pydantic error as (dotted path, one-line message).

    With ``data`` (the input that was validated), the path keeps only the keys and indexes that exist in
    it, so union-branch names pydantic adds ("body.0.constrained-str") do not reach the user; the
    messages of all branches for that field are kept, and other failing fields are counted.
    """
    by_field: dict[str, list[str]] = {}
    for error in exc.errors():
        field = _path(error["loc"], data) if data is not None else ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            message = "is not a known key"
        elif error["type"] == "missing":
            message = "is required"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        messages = by_field.setdefault(field or "(document)", [])
        if message not in messages:
            messages.append(message)
    field, messages = next(iter(by_field.items()))
    message = "; ".join(messages)
    if len(by_field) > 1:
        more = len(by_field) - 1
        message += f" (and {more} more field{'s' if more > 1 else ''})"
    return field, message.replace("\n", " ")


def _path(loc: tuple[int | str, ...], data: object) -> str:
    parts: list[str] = []
    current = data
    for i, part in enumerate(loc):
        inside = (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        )
        if inside:
            current = current[part]  # type: ignore[index]  # checked just above
        elif i < len(loc) - 1 or not isinstance(current, dict):
            continue  # a union branch name, not a place in the input
        parts.append(printable(str(part))[:60])
    return ".".join(parts)


def field_error(name: str, exc: ValidationError, data: object = None, prefix: str = "field ") -> ParseError:
    """A pydantic error on input as a ``ParseError`` naming the file and the field."""
    field, message = first_error(exc, data)
    return ParseError(name, f"{prefix}{field}: {message}", field=field)


def string_field(data: dict[str, Any], key: str, name: str, within: str = "") -> str | None:
    """A string member of a JSON object: None when absent or null, a ``ParseError`` when of another type.
    ``within`` is the path of ``data`` itself in the document ("bodies.0."), for the message."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        field = f"{within}{key}"
        raise ParseError(name, f"field {field}: must be a string, not {_json_type(value)}", field=field)
    return value


def list_field(data: dict[str, Any], key: str, name: str) -> Sequence[Any]:
    """An array member of a JSON object: empty when absent or null, a ``ParseError`` when of another type."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(name, f"field {key}: must be an array, not {_json_type(value)}", field=key)
    return value
