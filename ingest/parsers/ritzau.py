"""Ritzau (the Danish agency) news XML: an ``RBNews`` item, or a feed response (``XMLNewsQueuedResponse``)
whose ``ListOfRBNews`` holds several, one document each.

Mapping, per ``RBNews``: ``NewsID`` is the id and ``version`` the version; ``headline`` (empty on flashes:
the first sentence is then the headline, and the document says so), ``subtitle`` the abstract,
``strapline`` the slugline, ``section`` the section, ``byLine`` the byline, ``Priority`` the urgency,
``PublishDate`` the publication time (Ritzau sends it without an offset: it is read in the source's
``timezone``, UTC by default, and the document records the zone), ``content`` the body (an HTML string),
``Annuleret`` ("cancelled") withdraws, ``TilRedaktionen`` ("to the editors") is an internal note. The
reporter's e-mail and phone number are contact details for the desk: they are never read.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from ingest.errors import Check, InputError, ParseError
from ingest.parsers import _xml
from ingest.parsers._markup import html_blocks
from ingest.parsers._values import urgency, version_hint, when_field
from ingest.parsers.base import Draft, per_item
from ingest.reader import Decoded

_ROOTS = ("RBNews", "XMLNewsQueuedResponse")


class RitzauParser:
    name: str = "ritzau"
    extensions: tuple[str, ...] = (".xml",)
    description: str = "Ritzau news XML (RBNews, or a feed response of several): one document per item."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        return _xml.root_name(text) in _ROOTS

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        root = _xml.parse(decoded.text, name)
        kind = _xml.local(root.tag)
        if kind == "RBNews":
            return _draft(root, name)
        if kind not in _ROOTS:
            raise ParseError(name, f"root element is <{kind}>, not Ritzau RBNews", check=Check.FORMAT)
        items = list(_xml.descendants(root, "RBNews"))
        if not items:
            raise ParseError(name, "is a Ritzau feed response without news items", check=Check.FORMAT)
        return _draft(items[0], name) if len(items) == 1 else per_item(items, lambda item: _draft(item, name))


def _draft(news: ET.Element, name: str) -> Draft:
    def text(tag: str) -> str | None:
        # Ritzau escapes some entities twice ("Spire&amp;apos;s"): a reader sees "Spire's".
        found = _xml.text_of(_xml.child(news, tag))
        return html.unescape(found) if found else None

    published = when_field(text("PublishDate"), name, "PublishDate")
    version = text("version")
    priority = text("Priority")
    content = _xml.child(news, "content")
    return Draft(
        headline=text("headline"),
        blocks=tuple(html_blocks(content.text or "", name) if content is not None else ()),
        byline=text("byLine"),
        section=text("section"),
        slugline=text("strapline"),
        urgency=urgency(priority),
        abstract=text("subtitle"),
        published_at=published,
        withdrawn=(text("Annuleret") or "").lower() == "true",
        internal_notes=tuple(_notes(_xml.child(news, "TilRedaktionen"), name)),
        id=text("NewsID"),
        version=version_hint(version, published) if version and version.isdigit() else version_hint(None, published),
        headline_from="RBNews/headline",
        body_from="RBNews/content",
    )


def _notes(element: ET.Element | None, name: str) -> list[str]:
    """``TilRedaktionen``: a note to the editors, HTML in a string."""
    if element is None or not (element.text or "").strip():
        return []
    return [" ".join(block.text.replace("\n", " ") for block in html_blocks(element.text or "", name))]


PARSER = RitzauParser()
