"""IPTC ninjs 2.1 and 3.1 renditions of a document (the README's mapping table says field by field).

Both versions carry the same things; 3.x spells some names in camelCase (``versionCreated``,
``embargoedUntil``, ``altIds``) and lets an association say its ``rel``. The item's ``uri`` is made by the
``uri_template`` setting (a bare id is not a URI), and the id itself is in ``altids`` (role ``ingest-id``).

ninjs allows no property of its own making (its schemas close every object), so what it has no field for
is left out rather than smuggled in: the document, which a CMS can always fetch, keeps it. Where ninjs
leaves a field's vocabulary open (``role`` of ``descriptions`` and ``altids``), the roles used here are
named in the README. ``ednote`` is "not intended to be published": it carries the agency's notes to the
desk (``source.internal_notes``) and nothing else; corrections a reader may see go in ``descriptions``.
"""

from __future__ import annotations

from typing import Any, Literal

from ingest.models import Document, RelatedLink
from ingest.renditions._markup import body_html
from ingest.renditions._values import (
    as_uri,
    corrections,
    first_created,
    item_uri,
    safe_href,
    stamp,
    web_uri,
)

Version = Literal["2.1", "3.1"]
#: ninjs 3.x names for the 2.x names this module writes (every other name is spelled alike).
_CAMEL = {
    "altids": "altIds",
    "charcount": "charCount",
    "contentcreated": "contentCreated",
    "contenttype": "contentType",
    "copyrightnotice": "copyrightNotice",
    "ednote": "edNote",
    "embargoed": "embargoedUntil",
    "firstcreated": "firstCreated",
    "pubstatus": "pubStatus",
    "representationtype": "representationType",
    "usageterms": "usageTerms",
    "versioncreated": "versionCreated",
    "wordcount": "wordCount",
}
#: ninjs item types our association kinds are (``other`` has none, and is left untyped).
_TYPES = frozenset(("text", "picture", "video", "graphic", "audio"))


def render_21(document: Document, uri_template: str) -> dict[str, Any]:
    """The document as an IPTC ninjs 2.1 item."""
    return _item(document, uri_template, "2.1")


def render_31(document: Document, uri_template: str) -> dict[str, Any]:
    """The document as an IPTC ninjs 3.1 item."""
    item = _camel(_item(document, uri_template, "3.1"))
    assert isinstance(item, dict)
    return item


def version_of(item: dict[str, Any]) -> int | None:
    """The document version a ninjs item (2.1 or 3.1) of ours holds, or None when it holds none."""
    version = item.get("version")
    return int(version) if isinstance(version, str) and version.isdigit() else None


def _item(doc: Document, uri_template: str, version: Version) -> dict[str, Any]:
    uri = item_uri(uri_template, doc.id)
    item: dict[str, Any] = {
        "uri": uri,
        "standard": {
            "name": "ninjs",
            "version": version,
            "schema": f"http://www.iptc.org/std/ninjs/ninjs-schema_{version}.json#",
        },
        "type": "text",
        "representationtype": "full",
        "version": str(doc.version),
        "firstcreated": stamp(first_created(doc)),
        "versioncreated": stamp(doc.created_at),
    }
    if doc.published_at is not None:
        item["contentcreated"] = stamp(doc.published_at)
    if doc.embargoed is not None:
        item["embargoed"] = stamp(doc.embargoed)
    item["pubstatus"] = "canceled" if doc.withdrawn else "usable"
    _put(item, "urgency", doc.urgency)
    _put(item, "copyrightnotice", doc.copyright)
    _put(item, "usageterms", doc.usage_terms)
    # Internal advice from the agency to the desk, where ninjs keeps exactly that; never in a field a
    # reader sees.
    _put(item, "ednote", "\n".join(doc.source.internal_notes) or None)
    _put(item, "language", doc.language)
    item["headlines"] = [{"role": "main", "value": doc.headline}]
    _put(item, "by", doc.byline)
    _put(item, "slugline", doc.slugline)
    descriptions = [{"role": "summary", "value": doc.abstract}] if doc.abstract else []
    descriptions += [{"role": "correction", "value": r.note} for r in corrections(doc) if r.note]
    _put(item, "descriptions", descriptions)
    if doc.body:
        text = [block.text for block in doc.body]
        item["bodies"] = [
            {
                "contenttype": "text/html",
                "charcount": sum(len(t) for t in text),
                "wordcount": sum(len(t.split()) for t in text),
                "value": body_html(doc),
            }
        ]
    subjects = [{"name": tag} for tag in doc.tags]
    subjects += [{"name": doc.section, "rel": "section"}] if doc.section else []
    _put(item, "subjects", subjects)
    page = web_uri(doc.url)
    if page is not None:
        item["renditions"] = [{"name": "web", "href": page, "contenttype": "text/html"}]
    _put(item, "associations", _media(doc, uri, version) + _related(doc, uri, version))
    altids = [{"role": "ingest-id", "value": doc.id}]
    if page is None and (href := safe_href(doc.url)) is not None:
        altids.append({"role": "url", "value": href})  # a relative URL: not a uri, still the page
    if doc.source.input_version is not None:
        altids.append({"role": "source-version", "value": doc.source.input_version})
    if doc.source.raw_key is not None:
        altids.append({"role": "raw-key", "value": doc.source.raw_key})
    item["altids"] = altids
    return item


def _media(doc: Document, uri: str, version: Version) -> list[dict[str, Any]]:
    """Pictures, video, graphics and audio the story refers to: references, as the document has them."""
    out: list[dict[str, Any]] = []
    for n, media in enumerate(doc.associations, 1):
        ref = f"{media.kind}-{n}"
        given = as_uri(media.uri) if media.uri else None
        entry: dict[str, Any] = {"name": media.role or ref}
        if version != "2.1" and media.role:
            entry["rel"] = media.role
        entry["uri"] = given or f"{uri}#{ref}"
        if media.kind in _TYPES:
            entry["type"] = media.kind
        entry["representationtype"] = "partial"
        _put(entry, "by", media.credit)
        _put(entry, "descriptions", [{"role": "caption", "value": media.caption}] if media.caption else [])
        if media.uri and given != media.uri:
            entry["altids"] = [{"role": "ref", "value": media.uri}]  # the id as the input gave it
        out.append(entry)
    return out


def _related(doc: Document, uri: str, version: Version) -> list[dict[str, Any]]:
    """Related links in document order, each with where it stood (``position``: body blocks before it)."""
    out: list[dict[str, Any]] = []
    for n, link in enumerate(doc.related_links, 1):
        name = f"related-{n}"
        page = web_uri(link.url)
        entry: dict[str, Any] = {"name": name}
        if version != "2.1":
            entry["rel"] = "related"
        # A link with no absolute address (most scraped "READ MORE" lines have none) still needs a uri.
        entry["uri"] = page or f"{uri}#{name}"
        entry["type"] = "text"
        entry["representationtype"] = "partial"
        if link.title:
            entry["headlines"] = [{"role": "main", "value": link.title}]
        entry["descriptions"] = _placed(link)
        href = safe_href(link.url)
        if page is not None:
            entry["renditions"] = [{"name": "web", "href": page, "contenttype": "text/html"}]
        elif href is not None:  # a relative link: not a uri, still where it goes
            entry["altids"] = [{"role": "url", "value": href}]
        out.append(entry)
    return out


def _placed(link: RelatedLink) -> list[dict[str, str]]:
    found = [{"role": "position", "value": str(link.position)}]
    for role, value in (("heading", link.heading), ("label", link.label), ("media", link.media)):
        if value:
            found.append({"role": role, "value": value})
    found.append({"role": "line", "value": link.text})
    return found


def _put(item: dict[str, Any], key: str, value: object) -> None:
    if value is not None and value != [] and value != "":
        item[key] = value


def _camel(value: object) -> object:
    if isinstance(value, dict):
        return {_CAMEL.get(k, k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value
