"""Arc XP ANS 0.10.12 rendition of a document: a ``story`` (the README's mapping table says field by field).

The body becomes ``content_elements`` in reading order: ``text`` for paragraphs and ``header`` for
sub-headings (their ``content`` is HTML, escaped, with the inline links), and each related-link module a
``link_list`` where it stood (a module of more than ten links, ANS's limit, is several lists one after the
other). Corrections are the ``corrections`` list of ``correction`` elements. An embargo is
``content_restrictions.embargo``; a kill is ``status: withdrawn`` (ANS has no kill flag of its own).

What ANS has no field for goes in its own extension place, ``additional_properties``, under the names the
document uses (``urgency``, ``boilerplate``, ``history`` ...); how the input was read is under
``source.additional_properties``. The agency's notes to the desk (``source.internal_notes``) go only to
``planning.internal_note``, "for shared communication inside the newsroom", never to ``editor_note``,
which ANS displays "near the content".
"""

from __future__ import annotations

import itertools
import re
from html import escape
from typing import Any

from ingest.models import Document, RelatedLink
from ingest.renditions._markup import inner_html, links_by_block
from ingest.renditions._values import (
    correction_kind,
    corrections,
    first_created,
    item_uri,
    safe_href,
    stamp,
)

ANS_VERSION = "0.10.12"
#: ``link_list.items`` holds at most this many links (``story_elements/link_list.json``).
_LIST_MAX = 10


def render(document: Document, uri_template: str) -> dict[str, Any]:
    """The document as an ANS 0.10.12 story."""
    doc = document
    extra: dict[str, Any] = {
        "version": doc.version,
        "action": doc.action,
        "content_sha256": doc.content_sha256,
    }
    story: dict[str, Any] = {"type": "story", "version": ANS_VERSION, "_id": item_uri(uri_template, doc.id)}
    _put(story, "language", doc.language)
    _put(story, "copyright", doc.copyright)
    if doc.url and re.fullmatch(r"https?://\S*", doc.url):
        story["canonical_url_external"] = doc.url
    elif doc.url and doc.url.startswith("/"):
        story["canonical_url"] = doc.url  # ANS's own: a path on the canonical website
    else:
        _put(extra, "url", doc.url)
    story["created_date"] = stamp(first_created(doc))
    story["last_updated_date"] = stamp(doc.created_at)
    if doc.published_at is not None:
        story["first_publish_date"] = stamp(doc.published_at)
    if doc.updated_at is not None:
        story["publish_date"] = stamp(doc.updated_at)
    shown = doc.updated_at or doc.published_at
    if shown is not None:
        story["display_date"] = stamp(shown)
    story["headlines"] = {"basic": doc.headline}
    if doc.abstract:
        story["description"] = {"basic": doc.abstract}
    if doc.byline:
        story["credits"] = {"by": [{"type": "author", "name": doc.byline}]}
    taxonomy: dict[str, Any] = {}
    _put(taxonomy, "tags", [{"text": tag} for tag in doc.tags])
    if doc.section:
        taxonomy["sections"] = [{"type": "section", "version": ANS_VERSION, "name": doc.section}]
    _put(story, "taxonomy", taxonomy)
    _put(story, "slug", doc.slugline)
    if doc.withdrawn:
        story["status"] = "withdrawn"
    if doc.embargoed is not None:
        story["content_restrictions"] = {"embargo": {"active": True, "end_time": stamp(doc.embargoed)}}
    if doc.source.internal_notes:
        story["planning"] = {"internal_note": "\n".join(doc.source.internal_notes)}
    story["revision"] = {"revision_id": str(doc.version)}
    if doc.previous_version is not None:
        story["revision"]["parent_id"] = str(doc.previous_version)
    story["source"] = {
        "source_id": doc.id,
        "system": "ingest",
        "additional_properties": doc.source.model_dump(mode="json", exclude={"internal_notes"}),
    }
    _put(story, "corrections", _corrections(doc))
    story["content_elements"] = _elements(doc)
    extra["withdrawn"] = doc.withdrawn
    for key in ("previous_version", "rolled_back_to", "urgency", "usage_terms"):
        _put(extra, key, getattr(doc, key))
    for key in ("correction", "change_summary"):  # this version's note, a rollback's reason included
        if (value := getattr(doc, key)) is not None:
            extra[key] = value.model_dump(mode="json")
    for key in ("associations", "boilerplate"):
        _put(extra, key, [item.model_dump(mode="json") for item in getattr(doc, key)])
    # A heading whose links were all something else (page furniture) heads no link_list.
    headings = {link.heading for link in doc.related_links}
    orphans = [h.model_dump(mode="json") for h in doc.module_headings if h.text not in headings]
    _put(extra, "module_headings", orphans)
    _put(extra, "history", [record.model_dump(mode="json") for record in doc.history])
    story["additional_properties"] = extra
    return story


def version_of(story: dict[str, Any]) -> int | None:
    """The document version an ANS story of ours holds (its ``revision_id``), or None when it holds none."""
    revision = story.get("revision")
    found = revision.get("revision_id") if isinstance(revision, dict) else None
    return int(found) if isinstance(found, str) and found.isdigit() else None


def _corrections(doc: Document) -> list[dict[str, Any]]:
    out = []
    for record in corrections(doc):
        about: dict[str, Any] = {"version": record.version, "time": stamp(record.created_at)}
        _put(about, "editor", record.editor)
        out.append(
            {
                "type": "correction",
                "correction_type": correction_kind(record),
                "text": record.note,
                "additional_properties": about,
            }
        )
    return out


def _elements(doc: Document) -> list[dict[str, Any]]:
    """Body blocks in order, each related-link module as ``link_list`` elements where it stood."""
    modules: dict[int, list[dict[str, Any]]] = {}
    # One module: consecutive links at one position under one heading.
    for (position, heading), group in itertools.groupby(doc.related_links, key=lambda k: (k.position, k.heading)):
        links = list(group)
        for start in range(0, len(links), _LIST_MAX):
            element: dict[str, Any] = {"type": "link_list"}
            _put(element, "title", heading)
            element["items"] = [_link(link) for link in links[start : start + _LIST_MAX]]
            modules.setdefault(position, []).append(element)
    inline = links_by_block(doc)
    out: list[dict[str, Any]] = []
    for i, block in enumerate(doc.body):
        out += modules.pop(i, [])
        content = inner_html(block.text, inline.get(i, ()))
        if block.type == "heading":
            out.append({"type": "header", "level": 2, "content": content})
        else:
            out.append({"type": "text", "content": content})
    for position in sorted(modules):  # after the last block
        out += modules[position]
    return out


def _link(link: RelatedLink) -> dict[str, Any]:
    """One link of a ``link_list``: an ``interstitial_link``, or ``text`` when there is nowhere to go."""
    about: dict[str, Any] = {}
    for key in ("label", "media", "text"):
        _put(about, key, getattr(link, key))
    title = escape(link.title or link.text, quote=False)
    href = safe_href(link.url)
    if href is not None:
        return {"type": "interstitial_link", "url": href, "content": title, "additional_properties": about}
    _put(about, "url", link.url)  # a target no reader may be sent to (javascript:) is kept, not linked
    return {"type": "text", "content": title, "additional_properties": about}


def _put(item: dict[str, Any], key: str, value: object) -> None:
    if value is not None and value != [] and value != "" and value != {}:
        item[key] = value
