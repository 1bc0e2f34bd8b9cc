"""ANPA 1312 wire takes, as the AP sends them: framing of control characters, typesetting codes in the text.

One take, as it arrives (control characters by name)::

    SYN SYN SOH W2870 US asian                        heading: service level, message number, selector
    f l DC3 DC1 BC-LT--Argentina-CancerB  11-13 1049  priority, category, format codes, keyword, take, date, words
    STX ^BC-LT--Argentina-Cancer Beauty,466<          the keyword line: slug, take ("1st Ld-Writethru"), words
    ^For Argentine chemo patients, mirrors can hurt < the headline
    ^AP Photo XNP101, XNP102<   ^Eds: With AP Photos.<   advice to the desk
    ^By PAUL BYRNE and ALMUDENA CALATRAVA=  ^Associated Press=   the byline and its credit line
    TAB   BUENOS AIRES, Argentina (AP) _ For cancer ...  one paragraph a line
    TAB   ETX AP-WF-11-13-13 1509GMT<                   after ETX: the sign-off with the time it was sent
    FF EOT

The framing (SOH, STX, ETX, EOT, SYN; US in the heading; DC1-DC4 in the second heading line) and the
typesetting codes of tables (BS starts a table row, DLE is a fixed space, RS and US pad table columns)
are what ``controls`` claims; any other control character refuses the file as binary, as for every format.

Mapping. The headline is the first ``^`` line after the keyword line. ``By ...`` lines (with the credit
line after them: "Associated Press", "AP Sports Writer") are the byline. The picture ids of "AP Photo ..."
are associations; "Eds: ..." lines and the take ("1st Ld-Writethru") are for the desk: ``internal_notes``.
AP's summary above the byline (it repeats the lead) is the abstract. An "EDITOR'S NOTE _ ..." (printed above
AP stories) and centred lines above the byline ("All Times EDT") open the body. Each tab-indented line (and
each table row) is a paragraph; ``^`` lines after the byline are sub-headings when centred (``=``),
paragraphs otherwise; a take with no indented text at all (AP's lists of top headlines) has its ``^`` lines
as paragraphs. End markers inside the text ("END", "-0-", "MORE" ...) stay in the body for the module
rules to take out as furniture. A take with no headline line (a news alert, a table sent under its slug)
gives a draft without one: ``compose`` takes the first sentence and the document records it was derived.

Typesetting: a leading ``^`` and a trailing quad code (``<`` flush left, ``=`` centred) are layout, not
text. AP's 7-bit conventions are read as what they stand for: two backquotes and two apostrophes are
curly double quotes, a backquote an opening single quote, `` _ `` a dash, ``{`` after a digit (or alone
in a table cell) one half ("7{" games back: the standings add up only so); table padding (RS, US) becomes
``;``, the column separator of AP's other agate tables, so every table reads the same.

Metadata: the keyword ("BC-LT--Argentina-Cancer Beauty", as AP's Media API gives it) is the slugline and
the tag, the priority letter the urgency (flash 1, bulletin 2, urgent 3, regular 5, deferred 7; others
none). The category letter is AP's routing code, not a section name, and is not kept. The sign-off time
after ETX ("11-13-13 1509GMT", zone as stated) is when this version was sent: ``updated_at``, and
``published_at`` too unless the take is a later version (a lead, write-through, correction or refile). A
lead number ("3rd Ld-Writethru") is the version, so an older lead arriving late is ``stale``. A take
marked "Kill" is withdrawn. "HOLD FOR RELEASE ..." or "Embargoed until ..." above the text is the embargo
when it names a definite time (clock, zone, month and day; the year from the sign-off when not given);
otherwise the line opens the body, where nobody can miss it.

No id: the message number counts transmissions and comes round again, so the file name names the story.
A file may hold several messages (SOH ... EOT, one after another): one document each. A take without STX
or ETX (a file cut short) is refused, naming what is missing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from ingest.errors import InputError, ParseError
from ingest.models import Association
from ingest.parsers._values import unique
from ingest.parsers._wire import KILL, EmbargoPhrases, Framing, Message, MessageText
from ingest.parsers.base import BlockKind, Draft, RawBlock
from ingest.reader import Decoded

log = logging.getLogger("ingest.parsers")

SYN = "\x16"
#: The heading: SOH, a service-level letter, a 4-digit message number, US, the selector.
_HEADING = re.compile(r"[A-Za-z]\d{4}\x1f")
_SNIFF = re.compile(r"\x16*\x01[A-Za-z]\d{4}\x1f")
#: The second heading line: priority, category, format codes (DC3/DC4, DC1/DC2), then keyword, take, date.
_CODES = re.compile(
    r"\s*(?P<priority>[A-Za-z]) (?P<category>[A-Za-z0-9]{1,2})[\x13\x14](?P<mode>[\x11\x12])(?P<rest>.*)"
)
_CODES_REST = re.compile(r"\s*(?P<keyword>\S+)(?:\s+(?P<take>.*?))?\s+\d\d-\d\d(?:\s+\d*)?\s*$")
_FRAMING = Framing(
    heading="ANPA 1312 heading",
    message="take",
    filler=SYN + " \t\n\x0c",
    not_a_heading="does not start with an ANPA 1312 heading (SYN SYN SOH, a letter and a 4-digit message number)",
    # Framing characters out of place: in the heading (before STX), and in the text (between STX and ETX).
    stray_heading=re.compile("[\x03\x04\x16]"),
    stray_text=re.compile("[\x01\x02\x04\x11-\x14\x16]"),
)
# Table padding (RS, US, with the spaces between them) and the other codes a line of text may carry.
_PADDING = re.compile(r" *[\x1e\x1f][\x1e\x1f ]*")
_DROPPED = str.maketrans("", "", "\x08\x10\x0c")
# "{" is AP's one-half in agate ("7{" games back, or "{" alone in a cell): the standings add up only so.
_HALF = re.compile(r"(?<=\d)\{|(?<![^;\s])\{(?![^;\s])")
_QUAD = ("<", "=")
_KEYWORD_LINE = re.compile(r"^(?:(?:AM|PM|BC)-\S|.*,\s*\d*\s*<?\s*$|.*<\s*\^)")
_BY = re.compile(r"^By\s")
_CREDIT = re.compile(
    r"^(?:(?:For )?(?:The )?Associated Press|AP(?: [A-Z][\w.'&-]*){1,5}"
    r"|.{1,50}\b(?:Writer|Correspondent|Editor|Reporter|Columnist|Critic)s?)$"
)
_MEDIA = re.compile(r"^AP (?P<kind>Photos?|Video)\b[:\s]*(?P<ids>[A-Z0-9]+(?:\s*,\s*[A-Z0-9]+)*)\s*$")
_MEDIA_IDS = re.compile(r"[A-Z0-9]+")
#: ANPA priority letters as urgency (1 most urgent): flash, bulletin, urgent, regular, deferred.
_PRIORITIES = {"f": 1, "b": 2, "u": 3, "r": 5, "d": 7}
_DESK_NOTE = re.compile(
    r"^\(?(?:Eds?|EDS|Editors|EDITORS)\b\.?\s*:|^AP (?:Photos?|Video|Graphics?|Audio|Interactive)\b"
)
_EDITORS_NOTE = re.compile(r"^EDITOR'?S NOTE\b", re.IGNORECASE)
_LEAD = re.compile(r"(\d+)\s*(?:st|nd|rd|th)\s*-?\s*(?:Ld|Lead)\b", re.IGNORECASE)
_LATER_VERSION = re.compile(r"\d+\s*(?:st|nd|rd|th)\s*-?\s*(?:Ld|Lead)\b|Writethru|Correct|Refile|Sub\b", re.IGNORECASE)
_SENT = re.compile(r"(?P<m>\d\d)-(?P<d>\d\d)-(?P<y>\d\d) (?P<hh>\d\d)(?P<mm>\d\d) ?(?P<zone>GMT|UTC|[ECMP][SD]T)\b")

#: The time zones AP's embargo lines and sign-offs name, as hours from GMT; English month names.
_HOURS = {"GMT": 0, "UTC": 0, "BST": 1, "CET": 1, "CEST": 2, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5}
_HOURS |= {"MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_MONTHS = {
    **{m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun"), 1)},
    **{m: i for i, m in enumerate(("jul", "aug", "sep", "oct", "nov", "dec"), 7)},
}


def _zone(zone: str) -> timezone:
    """A zone as stated: its fixed offset under its own name ("EST"); GMT and UTC are UTC."""
    hours = _HOURS[zone.upper()]
    return UTC if hours == 0 else timezone(timedelta(hours=hours), zone.upper())


_EMBARGO = EmbargoPhrases(_MONTHS, {zone: _zone(zone) for zone in _HOURS})


class ANPA1312Parser:
    name: str = "anpa-1312"
    extensions: tuple[str, ...] = (".tst", ".anpa")
    description: str = "ANPA 1312 wire takes (AP): headline, byline, paragraphs, tables; one document per message."
    controls: frozenset[str] = frozenset("\x01\x02\x03\x04\x16\x1f\x11\x12\x13\x14\x08\x10\x1e")

    def sniff(self, text: str) -> bool:
        return _SNIFF.match(text) is not None

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        return _FRAMING.read(decoded.text, name, lambda message: _draft(message, name))


@dataclass
class _Unit:
    """One line of the take's text (with the lines that continue it), as its leading code marks it."""

    #: ``head`` (a ``^`` line), ``para`` (tab-indented), ``row`` (a table row, BS) or ``cont``.
    kind: str
    raw: str
    text: str
    #: The quad code that ended it: ``<`` flush left, ``=`` centred, "" none.
    quad: str


def _draft(message: Message, name: str) -> Draft:
    """One message, its framing checked: the heading's codes and the sign-off's time, then the take's text."""
    lines = message.heading.split("\n")
    if not _HEADING.match(lines[0]):
        raise ParseError(
            name, message.what + "does not start with an ANPA 1312 heading (a letter and a 4-digit message number, US)"
        )
    codes = next((found for second in lines[1:] if (found := _CODES.match(second))), None)
    rest = _CODES_REST.match(codes["rest"]) if codes else None
    take = _Take(tabular=codes is not None and codes["mode"] == "\x12", sent=_sent(message.trailer, name))
    return take.read(
        message.text,
        priority=codes["priority"] if codes else None,
        keyword=rest["keyword"] if rest else None,
        take=(rest["take"] or None) if rest else None,
    )


class _Take(MessageText):
    """Reads the text of one take into a draft."""

    def __init__(self, *, tabular: bool, sent: datetime | None) -> None:
        super().__init__(_EMBARGO, sent)
        self.tabular = tabular
        self.summaries: list[str] = []
        self.associations: list[Association] = []

    def read(self, text: str, *, priority: str | None, keyword: str | None, take: str | None) -> Draft:
        units = self._units(text)
        slugline = keyword  # the second heading line's short form, when the text has no keyword line
        if units and units[0].kind == "head" and _KEYWORD_LINE.match(units[0].raw.lstrip("^")):
            slugline, keyword_take = _keyword(units.pop(0).raw)
            take = keyword_take or take
        if take:
            self.notes.append(take)
        head = []
        while units and units[0].kind == "head":
            head.append(units.pop(0))
        headline = head.pop(0).text if head else None
        byline, lead, after = self._header(head, has_text=bool(units))
        later = bool(take and _LATER_VERSION.search(take))
        lead_number = _LEAD.search(take or "")
        return Draft(
            headline=headline,
            blocks=(*lead, *after, *self._body(units)),
            byline=byline,
            tags=unique([slugline]),
            published_at=None if later else self.sent,
            updated_at=self.sent,
            withdrawn=bool(take and KILL.search(take)),
            embargoed=self.embargoed,
            slugline=slugline,
            urgency=_PRIORITIES.get((priority or "").lower()),
            abstract=" ".join(self.summaries) or None,
            associations=tuple(self.associations),
            internal_notes=unique(self.notes),
            version=str(int(lead_number.group(1))) if lead_number else None,
            headline_from=f"the headline line after the keyword line{f' ({slugline})' if slugline else ''}",
            body_from="the take's text",
        )

    def _units(self, text: str) -> list[_Unit]:
        units: list[_Unit] = []
        for line in text.split("\n"):
            if not line.strip(" \t\x0c"):
                continue
            if line.startswith("^"):
                kind = "head"
            elif line.startswith("\t"):
                kind = "para"
            elif line.startswith("\x08"):
                kind = "row"
            else:
                kind = "cont"
            clean, quad = _clean(line)
            if not clean:
                continue
            if kind == "cont" and units and not self.tabular:
                units[-1].text += " " + clean
                continue
            units.append(_Unit("para" if kind == "cont" else kind, line, clean, quad))
        return units

    def _header(self, head: list[_Unit], has_text: bool) -> tuple[str | None, list[RawBlock], list[RawBlock]]:
        """The ``^`` lines between the headline and the text: byline, lines opening the body, sub-headings
        after the byline; desk advice goes to the notes."""
        bylines: list[str] = []
        lead: list[RawBlock] = []
        after: list[RawBlock] = []
        i = 0
        while i < len(head):
            unit = head[i]
            i += 1
            if _BY.match(unit.text):
                byline = unit.text
                while i < len(head) and head[i].quad == "=" and _CREDIT.match(head[i].text):
                    byline += ", " + head[i].text
                    i += 1
                bylines.append(byline)
                continue
            if self.embargo_line(unit.text, lead):
                continue
            if (media := _MEDIA.match(unit.text)) and (ids := _MEDIA_IDS.findall(media["ids"])):
                kind: Literal["picture", "video"] = "video" if media["kind"] == "Video" else "picture"
                self.associations += [Association(kind=kind, uri=found) for found in ids]
            elif _DESK_NOTE.match(unit.text):
                self.notes.append(unit.text)
            elif bylines or not has_text:
                # After the byline, or in a take with no indented text (a list of headlines): the story.
                after.append(RawBlock("heading" if unit.quad == "=" and has_text else "paragraph", unit.text))
            elif _EDITORS_NOTE.match(unit.text) or unit.quad == "=":
                lead.append(RawBlock("paragraph", unit.text))
            else:
                # AP's summary of the story, sent above the byline (it repeats the lead): the abstract.
                self.summaries.append(unit.text)
        return "; ".join(bylines) or None, lead, after

    def _body(self, units: list[_Unit]) -> list[RawBlock]:
        blocks: list[RawBlock] = []
        for unit in units:
            if self.embargo_paragraph(unit.text, blocks):
                continue
            kind: BlockKind = "heading" if unit.kind == "head" and unit.quad == "=" else "paragraph"
            blocks.append(RawBlock(kind, unit.text))
        return blocks


def _clean(line: str) -> tuple[str, str]:
    """A line's text without its leading code (tab, BS, ``^``) and trailing quad code, typeset codes read."""
    text = line.lstrip("\x08\t \x0c")
    text = text.removeprefix("^")
    text = text.rstrip(" \t\x0c\x10")
    quad = ""
    if text.endswith(_QUAD):
        quad, text = text[-1], text[:-1].rstrip()
    text = _HALF.sub("½", _PADDING.sub(";", text).translate(_DROPPED))
    text = text.replace("``", "“").replace("''", "”").replace("`", "‘").replace(" _ ", " — ")
    return text.strip(), quad


def _keyword(raw: str) -> tuple[str | None, str | None]:
    """The keyword and take of the keyword line ("^BC-US--Giant Lobster Death, 1st Ld-Writethru,127<")."""
    segments = [s.strip(" ^\t") for s in raw.split("<")]
    keyword = next((s for s in reversed(segments) if s), "")
    parts = [p.strip() for p in keyword.split(",")]
    if len(parts) > 1 and (parts[-1].isdigit() or not parts[-1]):
        parts.pop()  # the word count
    take = ", ".join(p for p in parts[1:] if p)
    return parts[0] or None, take or None


def _sent(after: str, name: str) -> datetime | None:
    """The time in the sign-off after ETX ("AP-WF-11-13-13 1509GMT"), in the zone it states."""
    found = _SENT.search(after)
    if found is None:
        return None
    year = int(found["y"])
    try:
        return datetime(
            (1900 if year >= 70 else 2000) + year,
            int(found["m"]),
            int(found["d"]),
            int(found["hh"]),
            int(found["mm"]),
            tzinfo=_zone(found["zone"]),
        )
    except ValueError as exc:
        log.warning("%s: sign-off time %r left out: %s", name, found.group(), exc)
        return None


PARSER = ANPA1312Parser()
