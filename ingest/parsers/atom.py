"""Atom feeds (RFC 4287) of news entries, as agencies such as WENN send them: one document per entry.

Mapping, per ``entry``: ``id`` is the id, ``title`` the headline, ``content`` the body (``type="text"``
as plain text, ``html`` through the HTML reader, ``xhtml`` as markup), else ``summary``; ``author/name``
the byline (several joined with "; "), ``published`` the publication time and ``updated`` the update
time (also the entry's version, so an older re-send is stale), ``category/@term`` the tags. Where a
provider's extension carries the full story beside a placeholder ``content`` (WENN's ``ContentMetadata``:
``first_line``, then ``body``), that is the body: it is what the provider's readers see. Entries
without any text (a title only) are refused one by one; a feed without entries is refused. Remote
content (``content/@src``) is never fetched: such an entry has no body and is refused, saying so.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ingest.errors import Check, InputError, ParseError
from ingest.parsers import _xml
from ingest.parsers._markup import html_blocks
from ingest.parsers._values import id_from_uri, text_blocks, unique, version_hint, when_field
from ingest.parsers.base import Draft, RawBlock, per_item
from ingest.reader import Decoded

_ATOM = "http://www.w3.org/2005/Atom"


class AtomParser:
    name: str = "atom"
    extensions: tuple[str, ...] = (".xml", ".atom")
    description: str = "Atom feed of news entries (WENN and the like): one document per entry."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        return _xml.root_name(text) in ("feed", "entry") and _ATOM in text[:4096]

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        root = _xml.parse(decoded.text, name)
        kind = _xml.local(root.tag)
        if kind == "entry":
            return _entry(root, name)
        if kind != "feed":
            raise ParseError(name, f"root element is <{kind}>, not an Atom <feed>", check=Check.FORMAT)
        entries = _xml.children(root, "entry")
        if not entries:
            raise ParseError(name, "is an Atom feed without entries", check=Check.FORMAT)
        return _entry(entries[0], name) if len(entries) == 1 else per_item(entries, lambda e: _entry(e, name))


def _entry(entry: ET.Element, name: str) -> Draft:
    updated = when_field(_xml.text_of(_xml.child(entry, "updated")), name, "entry/updated")
    authors = [_xml.text_of(_xml.child(author, "name")) for author in _xml.children(entry, "author")]
    return Draft(
        headline=_xml.text_of(_xml.child(entry, "title")),
        blocks=tuple(_body(entry, name)),
        byline="; ".join(unique(authors)) or None,
        tags=tuple(unique(_xml.attr(c, "term") for c in _xml.children(entry, "category"))),
        published_at=when_field(_xml.text_of(_xml.child(entry, "published")), name, "entry/published"),
        updated_at=updated,
        id=id_from_uri(_xml.text_of(_xml.child(entry, "id"))),
        version=version_hint(None, updated),
        headline_from="entry/title",
        body_from="entry/content and entry/summary",
    )


def _body(entry: ET.Element, name: str) -> list[RawBlock]:
    extension = next((e for e in entry if _xml.local(e.tag) == "ContentMetadata"), None)
    if extension is not None and (story := _xml.child(extension, "body")) is not None and (story.text or "").strip():
        first = _xml.child(extension, "first_line")
        lines = text_blocks(first.text or "" if first is not None else "") + text_blocks(story.text or "")
        # Its paragraphs come indented: the indent is layout, not text.
        return [RawBlock(kind, "\n".join(line.strip() for line in text.split("\n"))) for kind, text, _ in lines]
    for tag in ("content", "summary"):
        element = _xml.child(entry, tag)
        if element is None:
            continue
        if _xml.attr(element, "src"):
            if tag == "content":
                raise ParseError(
                    name, f"has an entry whose content is remote ({_xml.attr(element, 'src')}) and is not fetched"
                )
            continue
        kind = (_xml.attr(element, "type") or "text").lower()
        if kind == "xhtml":
            found = _xml.blocks(element)
        elif "html" in kind:
            found = html_blocks(element.text or "", name)
        else:
            found = text_blocks(element.text or "")
        if found:
            return found
    return []


PARSER = AtomParser()
