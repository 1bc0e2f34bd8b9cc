"""Safe XML parsing, and namespace-agnostic access to elements, for any XML format.

Parsing goes through defusedxml: entity declarations and external references are refused, so an
entity bomb or an XXE payload never expands and nothing is fetched. A ``<!DOCTYPE>`` that only names
an external DTD (``<!DOCTYPE nitf SYSTEM "nitf-3-2.dtd">``, as NITF files often carry) is accepted
because the DTD is never read; a DOCTYPE with an internal subset (where entities are declared) is
refused outright. Input arrives as text already decoded by the reader, so an XML declaration's
``encoding`` is not used (the reader's recorded rule decides).

Tags are compared by local name: wire XML comes with and without namespaces (the same vocabulary is
namespaced when embedded in another document and often not when it stands alone).
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import cast

from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped]  # ships no type hints

from ingest.errors import Check, ParseError
from ingest.parsers._markup import BlockBuilder
from ingest.parsers._values import collapse
from ingest.parsers.base import RawBlock

REFUSED = "refused: XML with a DTD/entities is not accepted"
# The first element's name after the prolog (declaration, comments, processing instructions, DOCTYPE).
_ROOT = re.compile(r"\A\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^>\[]*>\s*)*<(?:[\w.-]+:)?([\w.-]+)[\s/>]", re.DOTALL)


class _Refused(ValueError):
    """Raised from inside expat when the document declares a DTD internal subset or entities."""


@functools.lru_cache(maxsize=1)
def root_name(text: str) -> str | None:
    """The local name of the root element, read from the start of the text without parsing it (sniffing).
    Cached: every XML format's sniffer asks about the same text."""
    found = _ROOT.match(text[:65536])
    return found.group(1) if found else None


def parse(text: str, name: str) -> ET.Element:
    """Parse XML text safely; any failure is one ``ParseError`` line naming the file."""
    parser = DefusedXMLParser(target=ET.TreeBuilder(), forbid_dtd=False, forbid_entities=True, forbid_external=True)
    parser.parser.StartDoctypeDeclHandler = _doctype
    try:
        parser.feed(text)
        return cast(ET.Element, parser.close())
    except _Refused as exc:
        raise ParseError(name, f"{REFUSED} ({exc})", check=Check.XML_SECURITY) from None
    except ET.ParseError as exc:
        raise ParseError(name, f"not well-formed XML: {exc}") from None
    except ValueError as exc:
        # defusedxml's EntitiesForbidden / ExternalReferenceForbidden are ValueErrors too.
        raise ParseError(name, f"{REFUSED} ({type(exc).__name__})", check=Check.XML_SECURITY) from None


def _doctype(name: str, sysid: str | None, pubid: str | None, has_internal_subset: int) -> None:
    if has_internal_subset:
        raise _Refused(f"DOCTYPE {name} has an internal subset")


def local(tag: object) -> str:
    """``{namespace}name`` -> ``name``; comments and processing instructions have no name."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def children(element: ET.Element | None, tag: str) -> list[ET.Element]:
    """Direct children with this local name."""
    return [] if element is None else [child for child in element if local(child.tag) == tag]


def child(element: ET.Element | None, *path: str) -> ET.Element | None:
    """The first element down a path of local names (direct children at each step)."""
    for tag in path:
        found = children(element, tag)
        element = found[0] if found else None
    return element


def descendants(element: ET.Element | None, tag: str) -> Iterator[ET.Element]:
    """Every descendant with this local name, in document order."""
    if element is not None:
        yield from (e for e in element.iter() if local(e.tag) == tag and e is not element)


def text_of(element: ET.Element | None, separator: str = "") -> str | None:
    """All text inside an element, whitespace collapsed; None when there is none."""
    if element is None:
        return None
    return collapse(separator.join(element.itertext())) or None


def attr(element: ET.Element | None, name: str) -> str | None:
    """An attribute by local name (``xml:lang`` is found as ``lang``), stripped; None when empty."""
    if element is None:
        return None
    for key, value in element.attrib.items():
        if local(key) == name and value.strip():
            return value.strip()
    return None


def blocks(element: ET.Element) -> list[RawBlock]:
    """Body blocks of a markup body element, XHTML or NITF (see ``_markup`` for the rules)."""
    builder = BlockBuilder()
    for kind, value in _events(element):
        if kind == "start":
            builder.start(value)
        elif kind == "link":
            builder.start("a", value or None)
        elif kind == "end":
            builder.end(value)
        else:
            builder.text(value)
    return builder.close()


def _events(root: ET.Element) -> Iterator[tuple[str, str]]:
    """Start, text and end events in document order, without recursion (bodies can nest deeply)."""
    stack: list[tuple[ET.Element, bool]] = [(root, False)]
    while stack:
        element, closing = stack.pop()
        tag = local(element.tag).lower()
        if closing:
            yield "end", tag
            if element is not root and element.tail:
                yield "text", element.tail
            continue
        if tag == "a":  # a link: its target rides with the start event
            yield "link", attr(element, "href") or ""
        else:
            yield "start", tag
        if element.text:
            yield "text", element.text
        stack.append((element, True))
        stack.extend((sub, False) for sub in reversed(element))
