"""Reading values the way every format needs them: whitespace, plain-text paragraphs, dates, versions, ids, tags.

Format-agnostic: nothing here knows which format a value came from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo

from ingest.errors import ParseError, printable
from ingest.parsers.base import RawBlock

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
            blocks.append(RawBlock("paragraph", "\n".join(current)))
            current = []
    return blocks


class _AssumedUTC(tzinfo):
    """UTC, assumed for a time the input gave without an offset: it compares and sorts as UTC, and marks
    the time so ``compose`` can read it in the source's own zone instead (the ``timezone`` setting)."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "UTC"

    def __repr__(self) -> str:
        return "ASSUMED_UTC"


ASSUMED_UTC = _AssumedUTC()


def assumed(moment: datetime | None) -> bool:
    """Whether ``moment`` came without an offset (and UTC was assumed for it)."""
    return moment is not None and moment.tzinfo is ASSUMED_UTC


def when(value: object) -> datetime:
    """An ISO 8601 date-time (extended or basic form, or a date), aware; a time with an offset keeps it.

    A time without an offset is marked ``ASSUMED_UTC``: it is read as UTC unless the source names its zone
    (``compose`` then reads it there), and the document says which zone was assumed.
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
    return found if found.tzinfo is not None else found.replace(tzinfo=ASSUMED_UTC)


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


def embargo(value: str | None, name: str, field: str) -> datetime | None:
    """An embargo time a wire states; empty is no embargo. Unlike ``when_field``, a value that is not a
    date-time refuses the item: leaving an embargo out would publish the story at once, and a story held
    back for a person to look at is the lesser harm."""
    if value is None or not value.strip():
        return None
    if re.fullmatch(r"\s*\d{4}-?\d{2}-?\d{2}\s*", value):
        # A day without a time: midnight UTC would lift it hours early for a desk east of Greenwich.
        reason = f"field {field}: embargo {value.strip()!r} has no time of day (an embargo must say when it lifts)"
        raise ParseError(name, printable(reason), field=field)
    try:
        return when(value)
    except ValueError as exc:
        reason = f"field {field}: embargo {exc} (an embargo that cannot be read is refused, not dropped)"
        raise ParseError(name, printable(reason), field=field) from None


def urgency(value: object) -> int | None:
    """A news urgency or priority, 1 (most urgent) to 9, given as a number or its digits; anything else
    (0, 10, a word, a boolean) is not one."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 9 else None


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


def unique(values: Iterable[str | None]) -> tuple[str, ...]:
    """Non-empty values, whitespace collapsed, first occurrence kept, order kept."""
    seen: dict[str, None] = {}
    for value in values:
        if value and (clean := collapse(value)):
            seen.setdefault(clean, None)
    return tuple(seen)
