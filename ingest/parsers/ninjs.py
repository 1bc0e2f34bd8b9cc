"""IPTC ninjs (News in JSON) 1.x, 2.x and 3.x items.

1.x has ``headline`` (or ``headline_*``) and ``body_*`` members (``body_text``, ``body_html``,
``body_xhtml``, ...); 2.x and 3.x have ``headlines[{role, value}]`` and
``bodies[{role, contenttype, value}]`` (3.x spells some names in camelCase: ``contentType``,
``versionCreated``, ``pubStatus``). Of several bodies the markup one is read (it keeps paragraphs; a
plain-text body is often one long line), NITF bodies included; of several headlines the ``main`` one.

Mapping: ``uri`` (else ``guid``) is the id, ``version`` (else ``versioncreated``) the version;
``by``/``byline``; ``firstcreated`` (else ``contentcreated``) is the publication time and
``versioncreated`` the update time; ``pubstatus`` ``canceled``/``withdrawn`` withdraws; ``embargoed``
(3.x: ``embargoedUntil``) is the embargo (a value that is not a date-time refuses the item rather than
publish it unheld); ``slugline``, ``keywords`` and ``subject``/``subjects`` names are tags. ``ednote``
(3.x: ``edNote``) is a note "read by internal staff, not intended to be published" (the schema) and
mostly distribution advice: it goes to ``internal_notes``, never into a correction note.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.errors import Check, InputError, ParseError
from ingest.models import Association
from ingest.parsers import _nitf, _xml
from ingest.parsers._json import list_field, load_json_object, sniff_json_object, string_field
from ingest.parsers._markup import html_blocks
from ingest.parsers._values import embargo, id_from_uri, text_blocks, unique, urgency, version_hint, when_field
from ingest.parsers.base import Draft, RawBlock, per_item
from ingest.reader import Decoded

#: Members only ninjs has; one of them at the top level makes a JSON object ninjs (``json`` claims only
#: objects whose every key is its own, and none of these is).
MARKERS = frozenset(
    (
        *("uri", "guid", "type", "headlines", "bodies", "by", "ednote"),
        *("pubstatus", "pubStatus", "versioncreated", "versionCreated", "firstcreated", "firstCreated"),
    )
)
#: Item types that are media, not story text (ninjs 1.x-3.x `type`).
_NOT_TEXT = frozenset(("picture", "video", "audio", "graphic"))
_WITHDRAWN = frozenset(("canceled", "cancelled", "withdrawn"))
# 1.x body members in order of preference: markup first.
_MARKUP_KEYS = ("body_xhtml", "body_html", "body_richtext")
_BODY_KEYS = (*_MARKUP_KEYS, "body_text", "body_main")


class NinjsParser:
    name: str = "ninjs"
    extensions: tuple[str, ...] = (".json",)
    description: str = "IPTC ninjs 1.x-3.x JSON: headline(s), bodies (HTML, NITF or text), by, subjects."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        data = sniff_json_object(text)
        return data is not None and is_ninjs(data)

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        data = load_json_object(decoded.text, name)
        if not is_wrapper(data):
            _require_text(data, name)
            return _draft(data, name)
        # A search or feed response ({"total", "item": [...]}): one draft per text item, in order.
        items = [_entry(item, "item", i, name) for i, item in enumerate(list_field(data, "item", name))]
        texts = [item for item in items if _item_type(item) not in _NOT_TEXT]
        if not texts:
            kinds = ", ".join(sorted({_item_type(item) or "untyped" for item in items})) or "no items"
            raise ParseError(name, f"is a ninjs response holding no text item ({kinds})", check=Check.FORMAT)
        return per_item(texts, lambda item: _draft(item, name))


def _draft(data: dict[str, Any], name: str) -> Draft:
    """One ninjs item."""
    versioned = when_field(_get(data, name, "versioncreated", "versionCreated"), name, "versioncreated")
    created = when_field(_get(data, name, "firstcreated", "firstCreated"), name, "firstcreated") or when_field(
        _get(data, name, "contentcreated", "contentCreated"), name, "contentcreated"
    )
    return Draft(
        headline=_headline(data, name),
        blocks=tuple(_body(data, name)),
        byline=_get(data, name, "by", "byline"),
        tags=unique([_get(data, name, "slugline"), *_keywords(data, name), *_subjects(data, name)]),
        language=_get(data, name, "language"),
        published_at=created,
        updated_at=versioned,
        withdrawn=(_get(data, name, "pubstatus", "pubStatus") or "").lower() in _WITHDRAWN,
        embargoed=_embargo(data, name),
        # ednote is mostly distribution advice ("For global distribution"), not a correction:
        # it must not turn every update into a "corrected" version, nor reach readers.
        internal_notes=unique([_get(data, name, "ednote", "edNote")]),
        slugline=_get(data, name, "slugline"),
        urgency=urgency(data.get("urgency")),
        abstract=_abstract(data, name),
        copyright=_get(data, name, "copyrightnotice", "copyrightNotice", "copyrightholder", "copyrightHolder"),
        usage_terms=_get(data, name, "usageterms", "usageTerms"),
        associations=tuple(_associations(data)),
        id=id_from_uri(_get(data, name, "uri") or _get(data, name, "guid")),
        version=version_hint(data.get("version"), versioned),
        headline_from="headline/headlines",
        body_from="body_*/bodies",
    )


def is_ninjs(data: dict[str, Any]) -> bool:
    """True for a JSON object with a ninjs-only member (``body_*`` and ``headline_*`` included), or a
    response wrapping ninjs items."""
    return any(key in MARKERS or key.startswith(("body_", "headline_")) for key in data) or is_wrapper(data)


def is_wrapper(data: dict[str, Any]) -> bool:
    """A ninjs API response: ``{"total": n, "item": [ninjs items]}`` (as the BBC and Superdesk send)."""
    items = data.get("item")
    return (
        isinstance(items, list)
        and bool({"total", "limit", "offset"} & set(data))
        and all(isinstance(item, dict) and is_ninjs(item) for item in items)
    )


def _item_type(data: dict[str, Any]) -> str | None:
    kind = data.get("type")
    return kind.lower() if isinstance(kind, str) else None


def _require_text(data: dict[str, Any], name: str) -> None:
    if (kind := _item_type(data)) in _NOT_TEXT:
        raise ParseError(name, f"is a ninjs {kind} item, not text: only text items are ingested", check=Check.FORMAT)


def _get(data: dict[str, Any], name: str, *keys: str) -> str | None:
    """The first of these string members present; a member of another type is a ``ParseError``."""
    for key in keys:
        value = string_field(data, key, name)
        if value is not None and value.strip():
            return value.strip()
    return None


def _embargo(data: dict[str, Any], name: str) -> datetime | None:
    for key in ("embargoed", "embargoedUntil"):  # 1.x and 2.x; 3.x
        if (value := _get(data, name, key)) is not None:
            return embargo(value, name, key)
    return None


def _headline(data: dict[str, Any], name: str) -> str | None:
    entries = [(i, _entry(e, "headlines", i, name)) for i, e in enumerate(list_field(data, "headlines", name))]
    main = [(i, e) for i, e in entries if (e.get("role") or "main") == "main"] + entries
    for i, entry in main:
        if value := string_field(entry, "value", name, f"headlines.{i}."):
            return value
    numbered = sorted(key for key in data if key.startswith("headline_"))
    return _get(data, name, "headline", *numbered)


def _body(data: dict[str, Any], name: str) -> list[RawBlock]:
    bodies = [_entry(e, "bodies", i, name) for i, e in enumerate(list_field(data, "bodies", name))]
    candidates = [(_type(b, name), string_field(b, "value", name, f"bodies.{i}.") or "") for i, b in enumerate(bodies)]
    others = sorted(key for key in data if key.startswith("body_") and key not in _BODY_KEYS)
    for key in (*_BODY_KEYS, *others):
        value = string_field(data, key, name)
        if value:
            candidates.append(("text/html" if key in _MARKUP_KEYS else "text/plain", value))
    ranked = sorted((c for c in candidates if c[1].strip()), key=lambda c: 0 if _is_markup(c[0]) else 1)
    for contenttype, value in ranked:
        if "nitf" in contenttype:
            found = _nitf.blocks(_xml.parse(value, name))
        elif _is_markup(contenttype):
            found = html_blocks(value, name)
        else:
            found = text_blocks(value)
        if found:
            return found
    return []


def _type(body: dict[str, Any], name: str) -> str:
    given = body.get("contenttype", body.get("contentType"))
    return given.lower() if isinstance(given, str) else "text/plain"


def _is_markup(contenttype: str) -> bool:
    return "html" in contenttype or "xml" in contenttype or "nitf" in contenttype


def _entry(value: object, field: str, index: int, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(name, f"field {field}.{index}: must be an object", field=f"{field}.{index}")
    return value


def _keywords(data: dict[str, Any], name: str) -> list[str | None]:
    return [k if isinstance(k, str) else None for k in list_field(data, "keywords", name)]


def _subjects(data: dict[str, Any], name: str) -> list[str | None]:
    found: list[str | None] = []
    for field in ("subject", "subjects"):
        for i, entry in enumerate(list_field(data, field, name)):
            subject = _entry(entry, field, i, name)
            label = subject.get("name") or subject.get("literal") or subject.get("code") or subject.get("uri")
            found.append(label if isinstance(label, str) else None)
    return found


def _abstract(data: dict[str, Any], name: str) -> str | None:
    """1.x ``description_text`` (else ``description_html`` as text); 2.x/3.x ``descriptions`` of role summary."""
    for i, entry in enumerate(list_field(data, "descriptions", name)):
        described = _entry(entry, "descriptions", i, name)
        value = described.get("value")
        if (described.get("role") or "summary") in ("summary", "drol:summary") and isinstance(value, str):
            return " ".join(b.text for b in html_blocks(value, name)) or None
    if text := _get(data, name, "description_text"):
        return text
    html = _get(data, name, "description_html")
    return " ".join(b.text for b in html_blocks(html, name)) or None if html else None


_KINDS = {"picture": "picture", "photo": "picture", "image": "picture", "video": "video", "graphic": "graphic"}
_KINDS |= {"audio": "audio", "text": "text"}


def _associations(data: dict[str, Any]) -> list[Association]:
    """1.x: an object of named associations; 2.x/3.x: a list (each may carry its ``name``/``rel``)."""
    found = data.get("associations")
    entries: list[tuple[str | None, object]] = []
    if isinstance(found, dict):
        entries = list(found.items())
    elif isinstance(found, list):
        entries = [(None, entry) for entry in found]
    out = []
    for role, entry in entries:
        if not isinstance(entry, dict):
            continue
        text = {k: v.strip() for k, v in entry.items() if isinstance(v, str) and v.strip()}
        kind = _KINDS.get((text.get("type") or "").lower(), "other")
        out.append(
            Association(
                kind=kind,  # type: ignore[arg-type]  # one of the literals, by _KINDS
                uri=text.get("uri") or text.get("guid"),
                caption=text.get("headline") or text.get("description_text") or text.get("body_text"),
                credit=text.get("creditline") or text.get("byline") or text.get("by") or text.get("copyrightholder"),
                role=role or text.get("rel") or text.get("name"),
            )
        )
    return out


PARSER = NinjsParser()
