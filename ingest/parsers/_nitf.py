"""Where an NITF document keeps its headline, byline and story: the NITF vocabulary, not a format.

NITF arrives on its own (the ``nitf`` format) and inside other formats (a ninjs body of an NITF content
type, a NewsML-G2 ``inlineXML``), so its layout is read here, once, for all three. Elements are matched
by local name (``_xml``), so namespaced and bare NITF read alike.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ingest.parsers import _xml
from ingest.parsers._values import collapse, unique
from ingest.parsers.base import RawBlock


def headline(nitf: ET.Element) -> str | None:
    """The ``hl1`` in ``body.head`` (inside ``hedline``), else ``head/title``."""
    hl1 = next(_xml.descendants(_xml.child(nitf, "body", "body.head"), "hl1"), None)
    return _xml.text_of(hl1) or _xml.text_of(_xml.child(nitf, "head", "title"))


def byline(nitf: ET.Element) -> str | None:
    """``body.head/byline`` (several are joined with "; "); a ``byttl`` job title follows after a comma."""
    bylines = [_byline(b) for b in _xml.children(_xml.child(nitf, "body", "body.head"), "byline")]
    return "; ".join(unique(bylines)) or None


def _byline(element: ET.Element) -> str | None:
    # Parts are joined with spaces: bylines mark up names ("By<person>Ann Lee</person>") without them.
    names, titles = [element.text or ""], []
    for sub in element:
        if _xml.local(sub.tag) == "byttl":
            titles.append(_xml.text_of(sub))
        else:
            names.append(" ".join(sub.itertext()))
        names.append(sub.tail or "")
    name = collapse(" ".join(names)).replace(" ,", ",").rstrip(" ,")
    return ", ".join(part for part in [name, *titles] if part) or None


def blocks(nitf: ET.Element) -> list[RawBlock]:
    """The story: every ``body.content`` in order (``body.head`` and ``body.end`` are not story text)."""
    out: list[RawBlock] = []
    for content in _xml.children(_xml.child(nitf, "body"), "body.content"):
        out.extend(_xml.blocks(content))
    return out
