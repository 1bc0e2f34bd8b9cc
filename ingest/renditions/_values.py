"""Values every rendition writes the same way: URIs, times, safe link targets, published corrections.

No format lives here. The URI grammar is RFC 3986's, written out so that a rendition never claims a ``uri``
the official schemas' format checker would reject (``jsonschema``'s checker is a dev dependency only).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import string
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ingest.errors import ConfigError
from ingest.models import Document, VersionRecord

# ---------------------------------------------------------------------------------------------- URIs (RFC 3986)

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
# An IPv6 literal: its characters here, its form checked by ``ipaddress`` (see ``is_uri``).
_HOST = rf"(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|{_IPV4}|{_REG_NAME})"
_AUTHORITY = rf"(?:{_USERINFO}@)?{_HOST}(?::[0-9]*)?"
_HIER = rf"(?://{_AUTHORITY}(?:/{_PCHAR}*)*|/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?|{_PCHAR}+(?:/{_PCHAR}*)*|)"
_QUERY = rf"(?:{_PCHAR}|[/?])*"
_URI = re.compile(rf"[A-Za-z][A-Za-z0-9+\-.]*:{_HIER}(?:\?{_QUERY})?(?:#{_QUERY})?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")
#: Characters a URI may hold as they are (anything else is percent-encoded); brackets only around an IPv6 host.
_URI_CHARS = frozenset(string.ascii_letters + string.digits + "-._~" + ":/?#@" + "!$&'()*+,;=")
_HEX = frozenset(string.hexdigits)


def is_uri(value: str) -> bool:
    """True when ``value`` is an absolute URI by RFC 3986 (a scheme, then nothing a URI may not hold)."""
    found = _URI.fullmatch(value)
    if found is None:
        return False
    if (ip6 := found.group("ip6")) is not None:
        try:
            ipaddress.IPv6Address(ip6)
        except ValueError:
            return False
    return True


def as_uri(value: str) -> str | None:
    """``value`` as an absolute URI: characters a URI may not hold (spaces, non-ASCII letters, a stray
    ``%``, a second ``#``) percent-encoded as UTF-8, as RFC 3987 maps an IRI to a URI. None when it has no
    scheme (a relative link such as ``/news/x``) or is still not a URI."""
    text = value.strip()
    scheme = _SCHEME.match(text)
    if scheme is None:
        return None
    rest = text[scheme.end() :]
    # Brackets are allowed only around an IPv6 host, right after "//".
    host_end = len(rest)
    if rest.startswith("//"):
        host_end = next((i for i in range(2, len(rest)) if rest[i] in "/?#"), len(rest))
    out = [scheme.group()]
    fragment = False
    for i, char in enumerate(rest):
        escape = rest[i + 1 : i + 3]
        if char == "%" and len(escape) == 2 and set(escape) <= _HEX:  # already an escape: kept
            out.append(char)
        elif char == "#" and not fragment:
            fragment = True
            out.append(char)
        elif (char in _URI_CHARS and char != "#") or (char in "[]" and i < host_end):
            out.append(char)
        else:
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
    uri = "".join(out)
    return uri if is_uri(uri) else None


def item_uri(uri_template: str, article_id: str) -> str:
    """The article's URI from the ``uri_template`` setting; a template that makes no URI is a ``ConfigError``."""
    uri = uri_template.replace("{id}", article_id)
    if not is_uri(uri):
        raise ConfigError(f"uri_template {uri_template!r} does not make a URI for id {article_id!r}: {uri!r}")
    return uri


#: Link targets a reader may be sent to; any other scheme (``javascript:``, ``data:``) is never a link.
_SAFE_SCHEMES = frozenset(("", "http", "https", "mailto", "ftp", "tel"))
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def safe_href(url: str | None) -> str | None:
    """``url`` as a rendition may make a link of it, else None (no target, or a scheme no reader may be
    sent to). It is cleaned the way a browser reads a URL first (WHATWG URL): surrounding spaces and
    controls dropped, tabs and line breaks removed (a tab inside ``javascript:`` does not hide it), any
    other control percent-encoded; what it points at is unchanged."""
    if url is None:
        return None
    href = re.sub(r"[\t\n\r]", "", url.strip(_C0_AND_SPACE))
    href = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"%{ord(m[0]):02X}", href)
    try:
        scheme = urlsplit(href).scheme.lower()
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    return href if href and scheme in _SAFE_SCHEMES else None


def web_uri(url: str | None) -> str | None:
    """``url`` as an absolute URI when it is a safe absolute link (for a ``format: uri`` field), else None."""
    href = safe_href(url)
    return as_uri(href) if href is not None else None  # None for a relative link: it has no scheme


# ---------------------------------------------------------------------------------------------- times


def stamp(value: datetime) -> str:
    """An RFC 3339 date-time in UTC (``...Z``); a time without a zone is read as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    # Year 1 or 9999 with an offset cannot move to UTC: it keeps its offset (still RFC 3339).
    with contextlib.suppress(OverflowError):
        aware = aware.astimezone(UTC)
    text = aware.isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


def first_created(document: Document) -> datetime:
    """When the first version of the article was stored."""
    return document.history[0].created_at if document.history else document.created_at


# ---------------------------------------------------------------------------------------------- corrections


def corrections(document: Document) -> list[VersionRecord]:
    """The notes a reader may see, oldest first: the correction notes of the versions whose content this one
    continues (this one's included).

    That is every version back to the first, except what a rollback undid: a rollback to vN continues vN, so
    the corrections of the versions after N that it restored away are not this content's; a correction made
    after the rollback is. A rollback's own note says why the desk restored a version ("Legal asked to restore
    v1"): it is the newsroom's, not a correction, and is never published. Agency notes
    (``source.internal_notes``) are never here: they are not correction notes.
    """
    return [r for r in _content_line(document) if r.note and r.action != "rolled_back"]


def _content_line(document: Document) -> list[VersionRecord]:
    """The versions whose content ``document`` continues, oldest first, ending with its own.

    Each version continues the one before it, and a rollback the version it restored. A document names only
    its own rollback's version (``rolled_back_to``); an earlier rollback in ``history`` is followed to the
    first version with the content it restored. Only a rollback makes a version with an earlier version's
    content (any other input equal to a superseded version is stale), so that first version is the one the
    rollback restored or the one that version's own line leads back to: the same corrections either way.
    """
    records = {r.version: r for r in (*document.history, document.record())}
    first_with: dict[str, int] = {}
    for record in sorted(records.values(), key=lambda r: r.version):
        first_with.setdefault(record.content_sha256, record.version)
    line: list[VersionRecord] = []
    number = document.version
    while number in records and len(line) < len(records):  # the count: a malformed history cannot loop
        record = records[number]
        line.append(record)
        if record.action != "rolled_back":
            number -= 1
        elif number == document.version and document.rolled_back_to is not None:
            number = document.rolled_back_to
        else:
            restored = first_with[record.content_sha256]
            number = restored if restored < number else number - 1  # not found: as if it continued the last
    return line[::-1]


def correction_kind(record: VersionRecord) -> str:
    """ANS ``correction_type``: a note on the version that withdrew the story retracts it."""
    return "retraction" if record.action == "withdrawn" else "correction"
