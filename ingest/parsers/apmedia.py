"""AP Media API JSON: an item response, a feed (or search) response of several items, or an item on its own.

**Shapes.** An item response is ``{"data": {"item": {...}}}``, a feed response
``{"data": {"items": [{"item": {...}}, ...]}}``; an item may also come on its own (``altids.itemid`` with
members only AP sends, such as ``signals``, ``bylines`` or ``editorialpriority``: without them it is
indistinguishable from ninjs 1.x, which AP's format follows, and ``ninjs`` reads it). A feed gives one draft
per text item, in order. Items of ``type`` ``picture``, ``video``, ``graphic``, ``audio`` or ``composite`` are not
text: left out beside text items, and an input holding only such items is refused, naming them.

**The body.** The Media API sends an item's text as a link, not inline: ``renditions.nitf.href`` (and
``anpa``) must be downloaded with the API key. ingest never fetches: an item with no inline text is refused,
saying its body is remote (in a feed, that item alone). Inline text is read where Superdesk's AP ingest puts
the rendition it fetched: ``nitf`` beside ``data`` in the response (or beside ``item`` in a feed entry),
either ``{"body_html": "<p>...</p>"}`` or the NITF document as a string.

**Mapping.** ``headline``; ``bylines[].by`` with its ``title`` ("By MATT OTT, AP Business Writer"; several
joined with "; "), else the fetched NITF's byline; the id is ``altids.itemid`` (stable across versions; the
``uri`` carries session parameters), the version ``version``; ``firstcreated`` is the publication time and
``versioncreated`` the update time; ``pubstatus`` ``canceled``/``withdrawn`` withdraws; ``embargoed`` is the
embargo (``pubstatus: embargoed`` with no readable time is refused rather than published unheld);
``slugline``, ``urgency``, ``description_summary`` (abstract), ``copyrightnotice``, ``usageterms``, ``language``;
``slugline``, ``keywords`` and the names of the subjects AP marks ``direct`` are tags (not the ``ancestor``
subjects it adds above them, nor its one-letter ``category`` codes); ``associations`` are references with
their headlines. ``ednote`` ("Eds: UPDATES: With AP Photos.") is advice to the desk: ``internal_notes`` only.
A member of the wrong JSON type is refused with one line naming it (``field data.item.headline: must be a
string, not a number``).
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.errors import Check, InputError, ParseError
from ingest.models import Association
from ingest.parsers import _nitf, _xml
from ingest.parsers._json import load_json_object, sniff_json_object, string_field
from ingest.parsers._markup import html_blocks
from ingest.parsers._values import embargo, unique, urgency, version_hint, when_field
from ingest.parsers.base import Draft, RawBlock, per_item
from ingest.reader import Decoded

#: Members AP Media API items carry and no ninjs version defines: with ``altids.itemid``, one of them makes a
#: JSON object an AP item even without the response around it.
AP_ONLY = frozenset(
    (
        *("bylines", "signals", "editorialpriority", "editorialrole", "editorialtypes", "textformat"),
        *("datelinelocation", "photographer", "audiences", "fixture", "foreignkeys", "provider"),
    )
)
_NOT_TEXT = frozenset(("picture", "video", "graphic", "audio", "composite", "photo"))
_WITHDRAWN = frozenset(("canceled", "cancelled", "withdrawn"))
_KINDS = {"picture": "picture", "photo": "picture", "video": "video", "graphic": "graphic", "audio": "audio"}
_KINDS |= {"text": "text"}


class APMediaParser:
    name: str = "ap-media"
    extensions: tuple[str, ...] = (".json",)
    description: str = "AP Media API JSON: an item or a feed response, one document per text item."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        data = sniff_json_object(text)
        return data is not None and (is_response(data) or is_ap_item(data))

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        data = load_json_object(decoded.text, name)
        if not is_response(data):
            return _single(_Entry(data, data.get("nitf"), "", "nitf"), name)
        inner = _object(data["data"], "data", name)
        if "item" in inner:
            item = _object(inner["item"], "data.item", name)
            return _single(_Entry(item, data.get("nitf"), "data.item.", "nitf"), name)
        return _feed(inner, name)


def is_response(data: dict[str, Any]) -> bool:
    """An AP Media API response: ``data`` holding an ``item`` or ``items``."""
    inner = data.get("data")
    return isinstance(inner, dict) and ("item" in inner or "items" in inner)


def is_ap_item(data: dict[str, Any]) -> bool:
    """An AP item on its own: ``altids.itemid`` and a member only AP sends."""
    altids = data.get("altids")
    return isinstance(altids, dict) and "itemid" in altids and not AP_ONLY.isdisjoint(data)


@dataclass(frozen=True)
class _Entry:
    """One item of the input, with the NITF text fetched for it (if any), and where both are, for messages."""

    item: dict[str, Any]
    nitf: object
    #: The item's path in the input, ending in "." ("data.item."; "" for an item on its own).
    path: str
    #: Where the fetched NITF is ("nitf", "data.items.0.nitf").
    nitf_path: str

    def text(self, key: str, name: str) -> str | None:
        value = string_field(self.item, key, name, self.path)
        return value.strip() or None if value is not None else None

    def kind(self, name: str) -> str:
        return (self.text("type", name) or "text").lower()


def _single(entry: _Entry, name: str) -> Draft:
    kind = entry.kind(name)
    if kind in _NOT_TEXT:
        raise ParseError(name, f"is an AP {kind} item, not text: only text items are ingested", check=Check.FORMAT)
    draft = _draft(entry, name)
    if not draft.blocks and not draft.withdrawn and (rendition := _remote(entry, name)):
        raise ParseError(name, f"has no inline text: its body is remote ({rendition}) and is not fetched", field="body")
    return draft


def _feed(inner: dict[str, Any], name: str) -> Draft | list[Draft | InputError]:
    entries: list[_Entry] = []
    for i, wrapped in enumerate(_list(inner, "items", name, "data.")):
        path = f"data.items.{i}."
        wrapper = _object(wrapped, path[:-1], name)
        item = _object(wrapper.get("item"), f"{path}item", name)
        entries.append(_Entry(item, wrapper.get("nitf"), f"{path}item.", f"{path}nitf"))
    texts = [entry for entry in entries if entry.kind(name) not in _NOT_TEXT]
    if not texts:
        kinds = ", ".join(unique(entry.kind(name) for entry in entries))
        what = f"of {len(entries)} {kinds} item{'s' if len(entries) > 1 else ''}" if entries else "with no items"
        raise ParseError(name, f"is an AP feed {what}, no text", check=Check.FORMAT)
    if len(texts) == 1:
        return _single(texts[0], name)
    drafts = per_item(texts, lambda entry: _draft(entry, name))
    read = [d for d in drafts if isinstance(d, Draft)]
    nothing_inline = read and len(read) == len(drafts) and all(not d.blocks and not d.withdrawn for d in read)
    if nothing_inline and all(_remote(e, name) for e in texts):
        reason = f"holds {len(texts)} text items whose bodies are all remote (renditions), not fetched"
        raise ParseError(name, reason, field="body")
    return [
        _with_remote_reason(d, e, name) if isinstance(d, Draft) else d for d, e in zip(drafts, texts, strict=True)
    ]


def _with_remote_reason(draft: Draft, entry: _Entry, name: str) -> Draft:
    """A feed item with no inline text is refused on its own; its refusal says why."""
    if draft.blocks or draft.withdrawn or not (rendition := _remote(entry, name)):
        return draft
    return dataclasses.replace(draft, body_from=f"the item: its body is remote ({rendition}) and is not fetched")


def _remote(entry: _Entry, name: str) -> str | None:
    """Which text rendition the item links to instead of carrying its text (``renditions.nitf``)."""
    renditions = entry.item.get("renditions")
    if not isinstance(renditions, dict):
        return None
    for key, rendition in renditions.items():
        if isinstance(rendition, dict) and (rendition.get("type") == "text" or key in ("nitf", "anpa")):
            return f"{entry.path}renditions.{key}, a link"
    return None


def _draft(entry: _Entry, name: str) -> Draft:
    versioned = when_field(entry.text("versioncreated", name), name, f"{entry.path}versioncreated")
    created = when_field(entry.text("firstcreated", name), name, f"{entry.path}firstcreated")
    status = (entry.text("pubstatus", name) or "").lower()
    fetched = _fetched(entry, name)
    slugline = entry.text("slugline", name)
    return Draft(
        headline=entry.text("headline", name) or _fetched_text(fetched, "headline", entry, name),
        blocks=tuple(_body(fetched, entry, name)),
        byline=_bylines(entry, name) or _fetched_text(fetched, "byline", entry, name),
        tags=unique([slugline, *_strings(entry, "keywords", name), *_subjects(entry, name)]),
        language=entry.text("language", name),
        published_at=created,
        updated_at=versioned,
        withdrawn=status in _WITHDRAWN,
        embargoed=_embargo(entry, status, name),
        slugline=slugline,
        urgency=urgency(entry.item.get("urgency")),
        abstract=entry.text("description_summary", name),
        copyright=entry.text("copyrightnotice", name),
        usage_terms=" ".join(unique(_strings(entry, "usageterms", name))) or None,
        associations=tuple(_associations(entry, name)),
        internal_notes=unique([entry.text("ednote", name)]),
        id=_itemid(entry, name),
        version=version_hint(entry.item.get("version"), versioned),
        headline_from=f"{entry.path}headline",
        body_from=f"{entry.path[:-1] or 'the item'}: no inline text",
    )


def _fetched(entry: _Entry, name: str) -> dict[str, Any] | ET.Element | None:
    """The NITF rendition fetched beside the item: ``{"body_html": ...}``, or the NITF document (parsed)."""
    nitf = entry.nitf
    if nitf is None or isinstance(nitf, dict):
        return nitf
    if isinstance(nitf, str):
        return _xml.parse(nitf, name) if nitf.strip() else None
    field = entry.nitf_path
    raise ParseError(name, f"field {field}: must be an object or a string, not {_json_type(nitf)}", field=field)


def _fetched_text(fetched: dict[str, Any] | ET.Element | None, key: str, entry: _Entry, name: str) -> str | None:
    if isinstance(fetched, dict):
        value = string_field(fetched, key, name, f"{entry.nitf_path}.")
        return value.strip() or None if value else None
    if fetched is not None:
        return _nitf.headline(fetched) if key == "headline" else _nitf.byline(fetched)
    return None


def _body(fetched: dict[str, Any] | ET.Element | None, entry: _Entry, name: str) -> list[RawBlock]:
    if isinstance(fetched, dict):
        html = string_field(fetched, "body_html", name, f"{entry.nitf_path}.")
        return html_blocks(html, name) if html else []
    if fetched is not None:
        return _nitf.blocks(fetched) if _xml.local(fetched.tag) == "nitf" else _xml.blocks(fetched)
    return []


def _bylines(entry: _Entry, name: str) -> str | None:
    found = []
    for i, byline in enumerate(_list(entry.item, "bylines", name, entry.path)):
        given = _object(byline, f"{entry.path}bylines.{i}", name)
        by = string_field(given, "by", name, f"{entry.path}bylines.{i}.")
        title = string_field(given, "title", name, f"{entry.path}bylines.{i}.")
        found.append(", ".join(part.strip() for part in (by, title) if part and part.strip()) if by else None)
    return "; ".join(unique(found)) or None


def _itemid(entry: _Entry, name: str) -> str | None:
    altids = entry.item.get("altids")
    if altids is None:
        return None
    given = string_field(_object(altids, f"{entry.path}altids", name), "itemid", name, f"{entry.path}altids.")
    return given.strip() or None if given else None


def _embargo(entry: _Entry, status: str, name: str) -> datetime | None:
    held = embargo(entry.text("embargoed", name), name, f"{entry.path}embargoed")
    if held is None and status == "embargoed":
        reason = "is embargoed (pubstatus) with no embargo time: refused rather than published unheld"
        raise ParseError(name, reason, field=f"{entry.path}embargoed")
    return held


def _strings(entry: _Entry, key: str, name: str) -> list[str | None]:
    """A member that is a string or an array of strings (AP sends ``usageterms`` both ways)."""
    value = entry.item.get(key)
    if isinstance(value, str):
        return [value]
    values = _list(entry.item, key, name, entry.path)
    for i, found in enumerate(values):
        if not isinstance(found, str):
            field = f"{entry.path}{key}.{i}"
            raise ParseError(name, f"field {field}: must be a string, not {_json_type(found)}", field=field)
    return list(values)


def _subjects(entry: _Entry, name: str) -> list[str | None]:
    found: list[str | None] = []
    for i, subject in enumerate(_list(entry.item, "subject", name, entry.path)):
        given = _object(subject, f"{entry.path}subject.{i}", name)
        rels = given.get("rels")
        if isinstance(rels, list) and "direct" not in rels:
            continue  # AP's ancestors of a direct subject, and its category letters
        found.append(string_field(given, "name", name, f"{entry.path}subject.{i}."))
    return found


def _associations(entry: _Entry, name: str) -> list[Association]:
    """``associations``: an object of numbered references to pictures and video (the media are not fetched)."""
    given = entry.item.get("associations")
    if not isinstance(given, dict):
        return []
    out = []
    for role, associated in given.items():
        if not isinstance(associated, dict):
            continue
        altids = associated.get("altids")
        itemid = altids.get("itemid") if isinstance(altids, dict) else None
        kind = associated.get("type")
        headline = associated.get("headline")
        out.append(
            Association(
                kind=_KINDS.get(kind.lower(), "other") if isinstance(kind, str) else "other",  # type: ignore[arg-type]
                uri=itemid if isinstance(itemid, str) else None,
                caption=headline.strip() or None if isinstance(headline, str) else None,
                role=role,
            )
        )
    return out


def _object(value: object, field: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(name, f"field {field}: must be an object, not {_json_type(value)}", field=field)
    return value


def _list(data: dict[str, Any], key: str, name: str, within: str) -> Sequence[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        field = f"{within}{key}"
        raise ParseError(name, f"field {field}: must be an array, not {_json_type(value)}", field=field)
    return value


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    names[dict] = "an object"
    return "null" if value is None else names.get(type(value), type(value).__name__)


PARSER = APMediaParser()
