"""NITF 3.x (News Industry Text Format), the XML story format of many wires.

Mapping: headline ``hedline/hl1`` (else ``head/title``); story ``body.content`` (``hl2`` sub-headings
become heading blocks); ``byline``; ``docdata``: ``doc-id/@id-string`` is the id,
``management-status="canceled"`` withdraws, ``key-list/keyword`` and ``tobject.subject`` are tags,
``date.issue`` is the version timestamp; ``pubdata``: ``date.publication`` (else ``docdata/date.release``,
else ``date.issue``) is the publication time, ``position.section`` the section, ``ex-ref`` the URL;
``nitf/@baselang`` (or ``xml:lang``) the language. ``ed-msg/@info`` is distribution advice more often than
a correction: it goes to ``internal_notes``, never into a correction note. Where the headline, byline and
story sit is ``_nitf``'s knowledge, shared with the formats that carry NITF bodies.

**Embargo.** NITF 3.x has no embargo element (``management-status="embargoed"`` says there is one, not
until when). ``docdata/date.release`` is the "date/time document is available to be released" (the
NITF 3.6 schema), on receipt when absent, and AAP, for one, sets it to the issue time on every story.
So it is the embargo only when it is later than ``date.issue`` (or there is no ``date.issue`` to compare
it with: a release time in the past holds nothing, one in the future must not be missed). PA's embargoed
story has ``date.issue`` 13:24, ``date.release`` 00:01 the next day, and the ``ed-msg`` "Embargoed to
0001 Friday September 9". A ``date.release`` that is not a date is left out, as every NITF date is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ingest.errors import Check, ParseError
from ingest.parsers import _nitf, _xml
from ingest.parsers._values import unique, urgency, version_hint, when_field
from ingest.parsers.base import Draft
from ingest.reader import Decoded


class NITFParser:
    name: str = "nitf"
    extensions: tuple[str, ...] = (".xml", ".nitf")
    description: str = "NITF 3.x XML: hedline, byline, body.content (hl2 sub-headings), docdata and pubdata."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        return _xml.root_name(text) == "nitf"

    def parse(self, decoded: Decoded, name: str) -> Draft:
        root = _xml.parse(decoded.text, name)
        if _xml.local(root.tag) != "nitf":
            raise ParseError(name, f"root element is <{_xml.local(root.tag)}>, not <nitf>", check=Check.FORMAT)
        return _draft(root, name)


def _draft(nitf: ET.Element, name: str) -> Draft:
    head = _xml.child(nitf, "head")
    docdata = _xml.child(head, "docdata")
    pubdata = _xml.child(head, "pubdata")
    issued = when_field(_xml.attr(_xml.child(docdata, "date.issue"), "norm"), name, "docdata/date.issue")
    released = when_field(_xml.attr(_xml.child(docdata, "date.release"), "norm"), name, "docdata/date.release")
    published = (
        when_field(_xml.attr(pubdata, "date.publication"), name, "pubdata/@date.publication") or released or issued
    )
    tags = unique(
        [_xml.attr(k, "key") or _xml.text_of(k) for k in _xml.descendants(_xml.child(docdata, "key-list"), "keyword")]
        + [_subject(s) for s in _xml.descendants(_xml.child(head, "tobject"), "tobject.subject")]
    )
    return Draft(
        headline=_nitf.headline(nitf),
        blocks=tuple(_nitf.blocks(nitf)),
        byline=_nitf.byline(nitf),
        section=_xml.attr(pubdata, "position.section"),
        tags=tags,
        language=_xml.attr(nitf, "baselang") or _xml.attr(nitf, "lang"),
        url=_xml.attr(pubdata, "ex-ref"),
        published_at=published,
        withdrawn=(_xml.attr(docdata, "management-status") or "").lower() in {"canceled", "cancelled"},
        embargoed=released if released is not None and (issued is None or released > issued) else None,
        # ed-msg is distribution advice more often than a correction: not a correction note, not for readers.
        internal_notes=unique(_xml.attr(m, "info") for m in _xml.children(docdata, "ed-msg")),
        slugline=_xml.attr(_xml.child(docdata, "du-key"), "key"),
        urgency=urgency(_xml.attr(_xml.child(docdata, "urgency"), "ed-urg")),
        abstract=_xml.text_of(_xml.child(nitf, "body", "body.head", "abstract"), " "),
        copyright=_copyright(_xml.child(docdata, "doc.copyright")),
        usage_terms=_xml.attr(_xml.child(docdata, "doc.rights"), "limitations"),
        id=_xml.attr(_xml.child(docdata, "doc-id"), "id-string"),
        version=version_hint(None, issued),
        headline_from="hedline/hl1 and head/title",
        body_from="body.content",
    )


def _copyright(element: ET.Element | None) -> str | None:
    """``doc.copyright`` holder and year as a notice: "© 2026 AAP"."""
    holder, year = _xml.attr(element, "holder"), _xml.attr(element, "year")
    return " ".join(part for part in ("©", year, holder) if part) if holder else None


def _subject(element: ET.Element) -> str | None:
    # The most specific label the subject carries.
    for name in ("tobject.subject.detail", "tobject.subject.matter", "tobject.subject.type"):
        if value := _xml.attr(element, name):
            return value
    return None


PARSER = NITFParser()
