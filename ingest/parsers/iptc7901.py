"""IPTC 7901 wire messages, as dpa's English service sends them: a heading line, a keyword line, the text.

One message, as it arrives (control characters by name)::

    SOH eca062 4 i 211 ccccb   dpa 061        heading: source and message number, priority, category, words
    Germany-politics/                         keyword line (the slugline; more lines may follow)
    STX 1ST LEAD                              the text: takes such as "1ST LEAD", "REFILE", "EXTRA" first,
    Germany Social Democrats: ... could fail  then the headline,
    By Manuel Schwarz, dpa =                  and bylines; " =" ends this header
        Berlin (dpa) - Negotiations ...       paragraphs, separated by blank lines, wrapped at ~70 columns
    # Notebook / ## Note to editors ...       dpa's notebook for the desk
    * * * *  The following information is not intended for publication ...
    dpa wsz jln npr                           the sign-off: agency and editors' initials
    ETX 131137 GMT Nov 13                     after ETX: day, hour and minute, zone, month, year
    DEL DEL EOT

``controls`` claims SOH, STX, ETX, EOT and DEL (dpa fills the end of a message with DEL, the teleprinter's
"ignore this character"); any other control character refuses the file as binary.

Mapping. The headline is the last line of the header before its bylines; lines above it are the take
("1ST LEAD", "REFILE 1ST LEAD"): a note for the desk, a lead number the version, "KILL" or "WITHDRAWN" a
withdrawal. A header without the closing " =" has its first line as the headline. Paragraphs are unwrapped:
their lines joined by one space, as dpa wraps at word boundaries. The keyword line is the slugline and the
tag, the priority digit the urgency (1 most urgent).

dpa's notebook (``# Notebook``) is for the desk: each ``## Section`` with its items is one internal note,
its "Internet links" are the document's related links, a copyright line ("(c)2018 The San Diego
Union-Tribune") its ``copyright``. What follows "The following information is not (intended) for
publication" (reporters' and editors' contacts and phone numbers) is dropped entirely, as a non-public
NewsML-G2 edNote is. The sign-off line stays in the body for the module rules, which take it out as
furniture.

Time. The trailer after ETX ("131137 GMT Nov 13": the 13th, 11:37 GMT, November 2013; German month names
such as "Okt" too) is when this version was sent: ``updated_at``, and ``published_at`` unless the take says
it is a later version (a lead, a refile, a correction). A trailer without a zone ("211259 Nov 18") is read
as GMT, the zone dpa's trailers state, and a log line says so. An embargo line above the text or opening it
("Embargoed until 0001 GMT Nov 14") is the embargo when it names a definite time (clock, zone, month and day;
the year from the trailer when not given); otherwise the line opens the body, where nobody can miss it.

No id: the message number counts transmissions and comes round again, so the file name names the story.
A file may hold several messages (SOH ... EOT): one document each. A message without STX or ETX (a file cut
short) is refused, naming what is missing.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta, timezone

from ingest.errors import InputError, ParseError
from ingest.parsers._values import unique, urgency
from ingest.parsers._wire import EOT, ETX, KILL, SOH, STX, EmbargoPhrases, Framing, Message, MessageText
from ingest.parsers.base import Draft, Link, RawBlock
from ingest.reader import Decoded

log = logging.getLogger("ingest.parsers")

DEL = "\x7f"
#: The heading: source letters and message number, priority, category, word count, then free routing text.
_HEADING = re.compile(
    r"(?P<source>[A-Za-z]{1,8})(?P<number>\d{1,6}) (?P<priority>[0-9A-Za-z]) (?P<category>[A-Za-z]{1,3})"
    r" (?P<words>\d{1,6})\b(?P<rest>[^\n]*)"
)
_SNIFF = re.compile("\x01" + _HEADING.pattern)
_FRAMING = Framing(
    heading="IPTC 7901 heading",
    message="message",
    filler=" \t\n\x0c" + DEL,
    not_a_heading="does not start with an IPTC 7901 heading (SOH, source and message number, priority, category)",
    # Framing characters out of place: in the heading (before STX), and in the text (between STX and ETX).
    stray_heading=re.compile("[\x03\x04]"),
    stray_text=re.compile("[\x01\x02\x04]"),
)
_BY = re.compile(r"^By\s")
_INITIALS = re.compile(r"^[a-z]{1,4}$")
_NOTEBOOK = re.compile(r"^#\s+(?:\w+\s+)?notebook\s*$", re.IGNORECASE)
_SECTION = re.compile(r"^##\s+(?P<title>.+?)\s*$")
_NOT_PUBLIC = re.compile(r"^The following information is not (?:intended )?for publication", re.IGNORECASE)
_RULE = re.compile(r"^[*\s]+$")
_LINK = re.compile(r"^\[(?P<title>[^\]]+)\]\((?P<url>[^)\s]+)\)$")
_COPYRIGHT = re.compile(r"^(?:\(c\)|©|copyright\b)", re.IGNORECASE)
_LEAD = re.compile(r"\b(\d+)\s*(?:st|nd|rd|th)\s+LEAD\b", re.IGNORECASE)
_LATER_VERSION = re.compile(r"\b(?:\d+\s*(?:st|nd|rd|th)\s+LEAD|REFILE|CORRECT\w*|WRITETHRU)\b", re.IGNORECASE)
_SENT = re.compile(
    r"(?P<day>\d\d)(?P<hh>\d\d)(?P<mm>\d\d)\s+(?:(?P<zone>GMT|UTC)\s+)?(?P<month>[A-Za-zä]{3,9})\.?\s+(?P<year>\d\d)\b"
)

# English and German month abbreviations (dpa's trailers use its own language: "Okt 15").
_MONTHS = {
    **{m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun"), 1)},
    **{m: i for i, m in enumerate(("jul", "aug", "sep", "oct", "nov", "dec"), 7)},
    **{"mär": 3, "mrz": 3, "mai": 5, "okt": 10, "dez": 12},
}
#: The time zones dpa's embargo lines name, as hours from GMT (German ones too: MEZ, MESZ).
_HOURS = {"GMT": 0, "UTC": 0, "BST": 1, "CET": 1, "MEZ": 1, "CEST": 2, "MESZ": 2, "EST": -5, "EDT": -4}
_HOURS |= {"CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_EMBARGO = EmbargoPhrases(
    _MONTHS, {zone: UTC if hours == 0 else timezone(timedelta(hours=hours)) for zone, hours in _HOURS.items()}
)


class IPTC7901Parser:
    name: str = "iptc-7901"
    extensions: tuple[str, ...] = (".txt", ".7901")
    description: str = "IPTC 7901 wire messages (dpa): headline, byline, paragraphs, notebook; one document each."
    controls: frozenset[str] = frozenset((SOH, STX, ETX, EOT, DEL))

    def sniff(self, text: str) -> bool:
        return _SNIFF.match(text) is not None

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        return _FRAMING.read(decoded.text, name, lambda message: _draft(message, name))


def _draft(message: Message, name: str) -> Draft:
    """One message, its framing checked: the heading's fields and the trailer's time, then the text."""
    first, *keywords = message.heading.split("\n")
    found = _HEADING.match(first)
    if found is None:
        raise ParseError(
            name, message.what + "does not start with an IPTC 7901 heading (source and message number, priority ...)"
        )
    slugline = "/".join(k.strip().strip("/").strip() for k in keywords if k.strip().strip("/").strip()) or None
    agencies = {token.lower() for token in re.findall(r"[A-Za-z]+", found["rest"])}
    return _Message(sent=_sent(message.trailer.replace(DEL, ""), name)).read(
        message.text.replace(DEL, ""),
        slugline=slugline,
        urgency=urgency(found["priority"]),
        agencies=agencies,
    )


class _Message(MessageText):
    """Reads the text of one message into a draft."""

    def __init__(self, *, sent: datetime | None) -> None:
        super().__init__(_EMBARGO, sent)
        self.links: list[Link] = []
        self.copyright: str | None = None

    def read(self, text: str, *, slugline: str | None, urgency: int | None, agencies: set[str]) -> Draft:
        lines = [line.strip() for line in text.split("\n")]
        sign_off = _sign_off(lines, agencies)
        for i, line in enumerate(lines):
            if _NOT_PUBLIC.match(line):
                # Not for publication (contacts, phone numbers): dropped with the separator above it.
                del lines[i:]
                while lines and (not lines[-1] or _RULE.match(lines[-1])):
                    lines.pop()
                break
        notebook = next((i for i, line in enumerate(lines) if _NOTEBOOK.match(line)), len(lines))
        paragraphs = _paragraphs(lines[:notebook])
        headline, bylines, takes, rest = _header(paragraphs[0] if paragraphs else [])
        take = " ".join(takes) or None
        if take:
            self.notes.append(take)
        self._notebook(lines[notebook + 1 :])
        body: list[RawBlock] = []
        for line in takes:
            self.embargo_line(line, body)
        for paragraph in ([rest] if rest else []) + paragraphs[1:]:
            text = " ".join(paragraph)
            if not self.embargo_paragraph(text, body):
                body.append(RawBlock("paragraph", text))
        if sign_off:
            body.append(RawBlock("paragraph", sign_off))
        later = bool(take and _LATER_VERSION.search(take))
        lead_number = _LEAD.search(take or "")
        return Draft(
            headline=headline,
            blocks=tuple(body),
            links=tuple(self.links),
            byline="; ".join(bylines) or None,
            tags=unique([slugline]),
            published_at=None if later else self.sent,
            updated_at=self.sent,
            withdrawn=bool(take and KILL.search(take)),
            embargoed=self.embargoed,
            slugline=slugline,
            urgency=urgency,
            copyright=self.copyright,
            internal_notes=unique(self.notes),
            version=str(int(lead_number.group(1))) if lead_number else None,
            headline_from="the headline line after STX",
            body_from="the message's text",
        )

    def _notebook(self, lines: list[str]) -> None:
        """dpa's notebook: one note per ``## Section`` ("Note to editors: adds comments ..."); links and a
        copyright line go where a document keeps them."""
        sections: list[tuple[str | None, list[str]]] = [(None, [])]
        for line in lines:
            if not line:
                continue
            if found := _SECTION.match(line):
                sections.append((found["title"], []))
            elif line.startswith("- ") or not sections[-1][1]:
                sections[-1][1].append(line.removeprefix("- ").strip())
            else:
                sections[-1][1][-1] += " " + line  # a wrapped item
        for title, items in sections:
            kept = []
            for item in items:
                if (link := _LINK.match(item)) is not None:
                    self.links.append(Link(title=link["title"], url=link["url"]))
                elif _COPYRIGHT.match(item) and self.copyright is None:
                    self.copyright = item
                else:
                    kept.append(item)
            if title is not None and (kept or not items):
                self.notes.append(f"{title}: {'; '.join(kept)}" if kept else title)
            elif kept:
                self.notes.append("; ".join(kept))


def _sign_off(lines: list[str], agencies: set[str]) -> str | None:
    """Take the sign-off ("dpa wsz jln npr": an agency named in the heading, then initials) off the end."""
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        return None
    agency, *initials = lines[-1].split()
    if (
        agency.split("-")[0].lower() in agencies
        and 1 <= len(initials) <= 8
        and all(_INITIALS.match(w) for w in initials)
    ):
        return lines.pop()
    return None


def _paragraphs(lines: list[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if line:
            current.append(line)
        elif current:
            groups.append(current)
            current = []
    return groups


def _header(first: list[str]) -> tuple[str | None, list[str], list[str], list[str]]:
    """The first paragraph: takes, headline and bylines up to the closing " =" (then nothing is left of
    it); without that mark the first line is the headline and the rest is story."""
    if not first:
        return None, [], [], []
    if not first[-1].endswith("="):
        return first[0], [], [], first[1:]
    lines = [*first[:-1], first[-1].removesuffix("=").rstrip()]
    by = next((i for i, line in enumerate(lines) if _BY.match(line)), len(lines))
    bylines = [line for line in lines[by:] if line]
    if by == 0:
        return None, bylines, [], []
    return lines[by - 1], bylines, lines[: by - 1], []


def _sent(after: str, name: str) -> datetime | None:
    """The trailer's time ("131137 GMT Nov 13"); one without a zone is read as GMT."""
    found = _SENT.search(after)
    if found is None:
        return None
    month = _MONTHS.get(found["month"][:3].lower())
    if month is None:
        log.warning("%s: trailer time %r left out: unknown month", name, found.group())
        return None
    if found["zone"] is None:
        log.info("%s: trailer time %r states no zone: read as GMT, as dpa's trailers state", name, found.group())
    year = int(found["year"])
    try:
        return datetime(
            (1900 if year >= 70 else 2000) + year,
            month,
            int(found["day"]),
            int(found["hh"]),
            int(found["mm"]),
            tzinfo=UTC,
        )
    except ValueError as exc:
        log.warning("%s: trailer time %r left out: %s", name, found.group(), exc)
        return None


PARSER = IPTC7901Parser()
