"""NewsML-G2 news items: a ``newsItem``, or a ``newsMessage`` carrying exactly one text ``newsItem``.

Mapping: ``@guid`` is the id and ``@version`` the version (else ``versionCreated``);
``itemMeta``: ``pubStatus`` ``stat:canceled`` withdraws, ``firstCreated`` is the publication time and
``versionCreated`` the update time (else ``contentMeta``'s ``contentCreated``/``contentModified``, as archive
items carry them; a time without an offset is read as UTC), ``embargoed`` the embargo (an empty element
is no embargo; a value
that is not a date-time refuses the item rather than publish it unheld), a ``sig:correction`` signal
makes the version a correction with the fixed note ``CORRECTION_SIGNALLED``; ``contentMeta``:
``headline``, ``by`` (byline), ``language/@tag``, ``slugline``, ``keyword`` and ``subject`` names (else
their codes) as tags. The body is the first ``inlineXML`` (XHTML, or NITF whose ``hl1``/``byline`` fill a
missing headline/byline) or ``inlineData`` (plain text) in ``contentSet``. Remote content is never fetched.

A ``newsMessage`` gives one draft per text ``newsItem`` it carries, in order (each becomes its own
document, with its own id); picture, video and package items beside them are not text and are left out.

``edNote`` is the agency's advice to editors, never text for readers: it is never the correction note
(dpa's carry reporters' e-mail addresses and phone numbers), only ``internal_notes``. An ``edNote`` whose
``pubconstraint`` says ``nonpublic`` is dropped entirely, as is any part of a note marked so (dpa's
XHTML notepad has a ``np-nonpublic`` section with the same contacts).
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

from ingest.errors import Check, InputError, ParseError
from ingest.models import Association
from ingest.parsers import _nitf, _xml
from ingest.parsers._markup import html_blocks
from ingest.parsers._values import (
    collapse,
    embargo,
    id_from_uri,
    text_blocks,
    unique,
    urgency,
    version_hint,
    when_field,
)
from ingest.parsers.base import Draft, RawBlock, per_item
from ingest.reader import Decoded

_ITEMS = frozenset(("newsItem", "packageItem", "conceptItem", "knowledgeItem", "planningItem", "catalogItem"))
_WITHDRAWN = frozenset(("canceled", "cancelled", "withdrawn"))
# "text/plain" inline data that is really HTML (ANSA sends <p> paragraphs in CDATA as text/plain).
_MARKUP = re.compile(r"\s*<(?:p|div|html|body|section|h[1-6])[\s>]", re.IGNORECASE)
_XHTML_ROOTS = frozenset(("html", "body", "p", "div", "section", "article", "h1", "h2", "h3", "ul", "ol", "table"))
#: The note used when the source signals a correction without saying what was corrected.
CORRECTION_SIGNALLED = "correction signalled by the source"


class NewsMLG2Parser:
    name: str = "newsml-g2"
    extensions: tuple[str, ...] = (".xml", ".newsml")
    description: str = "NewsML-G2 newsItem, or a newsMessage of text items (one document each): metadata, body."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        root = _xml.root_name(text)
        return root == "newsMessage" or root in _ITEMS

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        root = _xml.parse(decoded.text, name)
        items = _news_items(root, name)
        media = tuple(_media(root))  # pictures, video, graphics sent beside the stories of a message

        def read(item: ET.Element) -> Draft:
            draft = _draft(item, name)
            return dataclasses.replace(draft, associations=draft.associations + media) if media else draft

        return read(items[0]) if len(items) == 1 else per_item(items, read)


def _news_items(root: ET.Element, name: str) -> list[ET.Element]:
    """The text items of the input: the newsItem itself, or every text newsItem of a newsMessage."""
    kind = _xml.local(root.tag)
    if kind == "newsItem":
        return [root]
    if kind != "newsMessage":
        what = f"a NewsML-G2 {kind}" if kind in _ITEMS else f"<{kind}>"
        raise ParseError(name, f"is {what}, not a newsItem: only news text items are ingested", check=Check.FORMAT)
    items = list(_xml.descendants(root, "newsItem"))
    texts = [item for item in items if _is_text(item)]
    if not texts:
        classes = ", ".join(unique(_item_class(item) for item in items)) or "none"
        raise ParseError(name, f"newsMessage holds no text newsItem (item classes: {classes})", check=Check.FORMAT)
    return texts


_MEDIA_KINDS = {"picture": "picture", "photo": "picture", "video": "video", "graphic": "graphic", "audio": "audio"}


def _media(root: ET.Element) -> list[Association]:
    """The media newsItems of a newsMessage, as references the message's stories carry (never the media)."""
    if _xml.local(root.tag) != "newsMessage":
        return []
    found = []
    for item in _xml.descendants(root, "newsItem"):
        kind = _MEDIA_KINDS.get((_item_class(item) or "").rsplit(":", 1)[-1].lower())
        if kind is None:
            continue
        about = _xml.child(item, "contentMeta")
        caption = _xml.text_of(_xml.child(about, "description"), " ") or _xml.text_of(_xml.child(about, "headline"))
        found.append(
            Association(
                kind=kind,  # type: ignore[arg-type]  # one of the literals, by _MEDIA_KINDS
                uri=_xml.attr(item, "guid"),
                caption=caption,
                credit=_xml.text_of(_xml.child(about, "creditline")) or _xml.text_of(_xml.child(about, "by")),
                role="in the same message",
            )
        )
    return found


def _item_class(item: ET.Element) -> str | None:
    return _xml.attr(_xml.child(item, "itemMeta", "itemClass"), "qcode")


def _is_text(item: ET.Element) -> bool:
    # ninat:text (IPTC), icls:text (Reuters) and the like.
    return (_item_class(item) or "").rsplit(":", 1)[-1].lower() == "text"


def _draft(item: ET.Element, name: str) -> Draft:
    """What a ``newsItem`` element says."""
    meta = _xml.child(item, "itemMeta")
    about = _xml.child(item, "contentMeta")
    nitf = _inline_nitf(item)
    created = when_field(_xml.text_of(_xml.child(meta, "firstCreated")), name, "itemMeta/firstCreated")
    versioned = when_field(_xml.text_of(_xml.child(meta, "versionCreated")), name, "itemMeta/versionCreated")
    # Archive items (STT) carry the story's own times in contentMeta: read them when itemMeta has none.
    created = created or when_field(_xml.text_of(_xml.child(about, "contentCreated")), name, "contentCreated")
    modified = when_field(_xml.text_of(_xml.child(about, "contentModified")), name, "contentMeta/contentModified")
    status = (_xml.attr(_xml.child(meta, "pubStatus"), "qcode") or "").rsplit(":", 1)[-1].lower()
    tags = unique(
        [_xml.text_of(_xml.child(about, "slugline"))]
        + [_xml.text_of(k) for k in _xml.children(about, "keyword")]
        + [_label(s) for s in _xml.children(about, "subject")]
    )
    return Draft(
        headline=_xml.text_of(_xml.child(about, "headline")) or (_nitf.headline(nitf) if nitf is not None else None),
        blocks=tuple(_body(item, nitf, name)),
        byline=_xml.text_of(_xml.child(about, "by")) or (_nitf.byline(nitf) if nitf is not None else None),
        tags=tags,
        language=_xml.attr(_xml.child(about, "language"), "tag") or _xml.attr(item, "lang"),
        published_at=created,
        updated_at=versioned or modified,
        withdrawn=status in _WITHDRAWN,
        embargoed=embargo(_xml.text_of(_xml.child(meta, "embargoed")), name, "itemMeta/embargoed"),
        internal_notes=unique(_public_text(n) for n in _xml.children(meta, "edNote") if not _non_public(n)),
        slugline=_xml.text_of(_xml.child(about, "slugline")),
        urgency=urgency(_xml.text_of(_xml.child(about, "urgency"))),
        abstract=_summary(about),
        copyright=_xml.text_of(_xml.child(item, "rightsInfo", "copyrightNotice"))
        or _xml.text_of(_xml.child(item, "rightsInfo", "copyrightHolder", "name"))
        or _xml.attr(_xml.child(item, "rightsInfo", "copyrightHolder"), "literal"),
        usage_terms=_xml.text_of(_xml.child(item, "rightsInfo", "usageTerms")),
        id=id_from_uri(_xml.attr(item, "guid")),
        # versionCreated first: some agencies' @version numbers are not sequential, times always are.
        version=version_hint(None, versioned) if versioned else version_hint(_xml.attr(item, "version"), None),
        note=_note(meta),
        headline_from="contentMeta/headline",
        body_from="contentSet inlineXML/inlineData",
    )


def _summary(about: ET.Element | None) -> str | None:
    """``contentMeta/description`` in the summary role (else one without a role)."""
    described = _xml.children(about, "description")
    chosen = [d for d in described if (_xml.attr(d, "role") or "").endswith("summary")]
    chosen += [d for d in described if not _xml.attr(d, "role")]
    return _xml.text_of(chosen[0], " ") if chosen else None


def _label(subject: ET.Element) -> str | None:
    return _xml.text_of(_xml.child(subject, "name")) or _xml.attr(subject, "literal") or _xml.attr(subject, "qcode")


def _note(meta: ET.Element | None) -> str | None:
    # The edNotes beside the signal are advice to editors, not a note for readers: the note is fixed.
    signals = [(_xml.attr(s, "qcode") or "").lower() for s in _xml.children(meta, "signal")]
    return CORRECTION_SIGNALLED if "sig:correction" in signals else None


def _non_public(element: ET.Element) -> bool:
    """Marked not for publication: a ``pubconstraint`` (any case, any prefix) or, in an XHTML note, a
    ``class`` that says ``nonpublic`` (dpa: ``dpapconstraint:nonpublic``, ``np-nonpublic``)."""
    return any(
        _xml.local(key).lower() in ("pubconstraint", "class") and "nonpublic" in value.lower()
        for key, value in element.attrib.items()
    )


def _public_text(note: ET.Element) -> str | None:
    """A note's text without the parts marked non-public, whitespace collapsed; None when nothing is left."""
    parts: list[str] = []
    stack: list[tuple[ET.Element, bool]] = [(note, False)]  # no recursion: markup can nest deeply
    while stack:
        element, done = stack.pop()
        if done:
            if element is not note:
                parts.append(element.tail or "")
            continue
        if _non_public(element):
            parts.append(element.tail or "")
            continue
        parts.append(element.text or "")
        stack.append((element, True))
        stack.extend((sub, False) for sub in reversed(element))
    return collapse("".join(parts)) or None


def _inline_nitf(item: ET.Element) -> ET.Element | None:
    for inline in _xml.children(_xml.child(item, "contentSet"), "inlineXML"):
        for element in inline:
            if _xml.local(element.tag) == "nitf":
                return element
    return None


def _body(item: ET.Element, nitf: ET.Element | None, name: str) -> list[RawBlock]:
    """The first inline content of the item that has text; remote content is refused, not fetched."""
    content_set = _xml.child(item, "contentSet")
    others: list[str] = []
    for inline in content_set if content_set is not None else []:
        kind = _xml.local(inline.tag)
        contenttype = (_xml.attr(inline, "contenttype") or "").lower()
        if kind == "inlineXML":
            if nitf is not None and nitf in list(inline):
                found = _nitf.blocks(nitf)
            elif _is_text_markup(inline, contenttype):
                found = _xml.blocks(inline)
            else:
                # Other XML vocabularies (SportsML, event data) are data, not story text.
                others.append(contenttype or "XML of no stated type")
                continue
        elif kind == "inlineData":
            data = inline.text or ""
            is_html = "html" in contenttype or _MARKUP.match(data) is not None
            found = html_blocks(data, name) if is_html else text_blocks(data)
        else:
            continue
        if found:
            return found
    if others:
        raise ParseError(name, f"has no text body: its inline content is {others[0]}, not text", field="body")
    remote = _xml.children(content_set, "remoteContent")
    if remote and content_set is not None and not any(_xml.local(e.tag).startswith("inline") for e in content_set):
        href = _xml.attr(remote[0], "href") or _xml.attr(remote[0], "residref") or "?"
        raise ParseError(name, f"has no inline text: its content is remote ({href}) and is not fetched", field="body")
    return []


def _is_text_markup(inline: ET.Element, contenttype: str) -> bool:
    # XHTML however the provider spells its type, NITF without its root (an empty listing), or
    # untyped content that is XHTML by its elements.
    marked = "html" in contenttype or "nitf" in contenttype
    return marked or (not contenttype and any(_xml.local(e.tag) in _XHTML_ROOTS for e in inline))


PARSER = NewsMLG2Parser()
