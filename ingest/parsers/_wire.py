"""Reading wire formats framed by control characters: a file of messages, each ``SOH heading STX text ETX
trailer EOT``, and the embargo phrases ("HOLD FOR RELEASE ...", "Embargoed until ...") their texts carry.

Format-agnostic: nothing here knows a heading's fields, a trailer's layout or an agency's conventions. A
format module says what its own framing calls things (the heading's name, the idle characters between
messages, which framing characters are out of place where) and which month names and time zones its
agency writes; what is the same for every such format (cutting a file into messages, refusing broken
framing with the line it is on, reading an embargo phrase into a time) is done once, here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from ingest.errors import Check, InputError, ParseError
from ingest.parsers.base import Draft, RawBlock, per_item

SOH, STX, ETX, EOT = "\x01", "\x02", "\x03", "\x04"
#: ASCII's names of the control characters: a refusal names the stray one as a wire engineer would.
_C0 = (
    *("NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI"),
    *("DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US"),
)
CONTROL_NAMES = {chr(code): name for code, name in enumerate(_C0)} | {"\x7f": "DEL"}
#: A take or message marked so is withdrawn ("Kill", "KILLED", "WITHDRAWN", "Withdrawal").
KILL = re.compile(r"\b(?:kill(?:ed)?|withdrawn?|withdrawal)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Message:
    """One message of a file, cut at its framing characters."""

    #: Between SOH and STX (neither included).
    heading: str
    #: Between STX and ETX: what the reader gets.
    text: str
    #: Between ETX and EOT (or the end of the file): the sign-off or trailer, with the time it was sent.
    trailer: str
    #: How reasons name this message: "" when it is alone in its file, "message 2 of 3 " otherwise.
    what: str


@dataclass(frozen=True)
class Framing:
    """How one format frames its messages, as far as cutting and checking them goes.

    The reasons use the format's own words ("has no STX (start of text) after its <format> heading: the
    take is cut off"), so that a desk reading a refusal knows which wire sent it and what was lost.
    """

    #: What reasons call the heading ("<format> heading") and one message ("take", "message").
    heading: str
    message: str
    #: Characters that may stand before the first SOH and after an EOT: blanks and the format's idle or
    #: fill characters. Anything else there is not this format (before) or broken framing (after).
    filler: str
    #: The reason for a file that does not start with a heading. Its check is FORMAT: the file is refused
    #: for this format, which another format may still read.
    not_a_heading: str
    #: Framing characters out of place before STX, and between STX and ETX.
    stray_heading: re.Pattern[str]
    stray_text: re.Pattern[str]

    def read(self, text: str, name: str, draft: Callable[[Message], Draft]) -> Draft | list[Draft | InputError]:
        """Every message of a file, each cut, checked and read by ``draft`` in turn: one draft, or one per
        message when the file holds several (SOH ... EOT, one after another), where a message that is cut
        or broken is refused on its own."""
        chunks = self._chunks(text, name)
        if len(chunks) == 1:
            line, chunk = chunks[0]
            return draft(self._message(chunk, line, name, ""))
        return per_item(
            enumerate(chunks, 1),
            lambda numbered: draft(self._message(numbered[1][1], numbered[1][0], name, "")),
        )

    def _chunks(self, text: str, name: str) -> list[tuple[int, str]]:
        """The messages of a file, each from its SOH up to the next one, with the line it starts on; only
        filler may come first."""
        starts = [found.start() for found in re.finditer(SOH, text)]
        if not starts or text[: starts[0]].strip(self.filler):
            raise ParseError(name, self.not_a_heading, check=Check.FORMAT)
        ends = [*starts[1:], len(text)]
        return [(text.count("\n", 0, a) + 1, text[a:b]) for a, b in zip(starts, ends, strict=True)]

    def _message(self, chunk: str, line: int, name: str, what: str) -> Message:
        """Cut one message starting on ``line`` of the file at STX, ETX and EOT, refusing it when one is
        missing (a file cut short) or a framing character stands where it cannot (broken framing)."""
        stx = chunk.find(STX)
        if stx < 0:
            reason = f"has no STX (start of text) after its {self.heading}: the {self.message} is cut off"
            raise ParseError(name, what + reason)
        etx = chunk.find(ETX, stx)
        if etx < 0:
            raise ParseError(name, what + f"has no ETX (end of text): the {self.message} is cut off")
        eot = chunk.find(EOT, etx)
        if eot >= 0 and chunk[eot + 1 :].strip(self.filler):
            reason = "has text after EOT (end of transmission) that does not start another message"
            raise ParseError(name, what + reason)
        _no_stray(chunk[: stx + 1], self.stray_heading, "before STX", line, name, what)
        _no_stray(chunk[:etx], self.stray_text, "inside its text", line, name, what, start=stx + 1)
        return Message(
            heading=chunk[1:stx],
            text=chunk[stx + 1 : etx],
            trailer=chunk[etx + 1 : eot if eot >= 0 else len(chunk)],
            what=what,
        )


def _no_stray(
    chunk: str, stray: re.Pattern[str], where_in: str, line: int, name: str, what: str, start: int = 1
) -> None:
    """Refuse a framing character out of place in ``chunk[start:]``, naming it and its line in the file."""
    if (found := stray.search(chunk, start)) is not None:
        at = line + chunk.count("\n", 0, found.start())
        char = found.group()
        reason = f"{what}has a stray {CONTROL_NAMES[char]} (U+{ord(char):04X}) {where_in}, on line {at}: broken framing"
        raise ParseError(name, reason)


# Embargo phrases: a trigger, then a definite time (ISO 8601; or clock, zone and date in either order).
_HOLD = re.compile(
    r"\b(?:HOLD FOR RELEASE|EMBARGOED|EMBARGO\s+(?:UNTIL|TILL|TO))\b(?:\s+(?:UNTIL|TILL|TO)\b)?[\s:,]*", re.I
)
_ISO = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)")
#: The hour, minute and a.m. or p.m. of a clock time the phrase gave.
_CLOCK_PARTS = re.compile(r"(\d{1,2}):?(\d\d)?\s*(?:([ap])\.?\s?m\.?)?", re.I)


def _clock(zones: str) -> str:
    """A clock time and its zone ("12:01 a.m. EST", "0001 GMT"), ``zones`` the alternatives of the zone."""
    return r"(?P<clock>\d{1,2}(?::\d\d)?\s*[ap]\.?\s?m\.?|\d{1,2}:\d\d|\d{4})\s*(?P<zone>" + zones + r")\b"


def _date(letters: str) -> str:
    """A month and day in either order, a weekday before and a year after optional ("Tuesday, Nov. 19",
    "14 Nov 2013"), ``letters`` the character class of a month name's letters."""
    month = letters + "{3,9}"
    return (
        r"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?"
        r"(?:(?P<month>" + month + r")\.?\s+(?P<day>\d{1,2})|(?P<day2>\d{1,2})\.?\s+(?P<month2>" + month + r")\.?)"
        r"(?:,?\s+(?P<year>\d{4}))?"
    )


class EmbargoPhrases:
    """Reads an embargo phrase ("HOLD FOR RELEASE 12:01 a.m. EST Tuesday, Nov. 19", "Embargoed until 0001
    GMT Nov 14") into the time it names, when it names a definite one: a clock, a zone and a month and day.

    ``months`` are the month names (by their first three letters, lower case) and ``zones`` the time zone
    abbreviations (upper case, each with the zone it stands for) the agency writes; only these are read,
    so a phrase naming any other is not definite. A phrase without a year takes the year of ``sent`` (when
    the message was sent), or the next one when that would put the embargo more than two days before the
    message ("Jan 2" sent on Dec 30); without ``sent`` it is not definite.
    """

    def __init__(self, months: Mapping[str, int], zones: Mapping[str, tzinfo]) -> None:
        self.months = dict(months)
        self.zones = dict(zones)
        # A month name is letters a to z, and any other letter a month of the table is written with ("mär");
        # a zone is one of the table's, the longest tried first.
        letters = "[a-z" + "".join(sorted({c for m in months for c in m if not "a" <= c <= "z"})) + "]"
        alternatives = "|".join(sorted(map(re.escape, zones), key=len, reverse=True))
        clock, date = _clock(alternatives), _date(letters)
        self._times = (
            re.compile(clock + r"[\s,]*(?:on\s+)?" + date, re.I),
            re.compile(date + r"[\s,]*(?:at\s+)?" + clock, re.I),
        )

    @staticmethod
    def opens(text: str) -> bool:
        """Whether a paragraph opens with an embargo phrase (after any "(" or spaces). A paragraph of the
        story that only mentions an embargo further in is story, not an embargo line."""
        return _HOLD.match(text.lstrip("( ")) is not None

    def read(self, line: str, sent: datetime | None) -> tuple[bool, datetime | None]:
        """Whether ``line`` holds an embargo phrase, and its time when definite (None: it is not)."""
        trigger = _HOLD.search(line)
        if trigger is None:
            return False, None
        rest = line[trigger.end() :]
        if (iso := _ISO.match(rest)) is not None:
            try:
                return True, datetime.fromisoformat(iso.group().replace(" ", "T"))
            except ValueError:
                return True, None
        for pattern in self._times:
            if (found := pattern.match(rest)) is not None:
                return True, self._definite(found, sent)
        return True, None

    def _definite(self, found: re.Match[str], sent: datetime | None) -> datetime | None:
        month = self.months.get((found["month"] or found["month2"] or "")[:3].lower())
        clock = _CLOCK_PARTS.fullmatch(found["clock"].strip())
        if month is None or clock is None:
            return None
        hour, minute = int(clock[1]), int(clock[2] or 0)
        if clock[3]:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if clock[3].lower() == "p" else 0)
        day = int(found["day"] or found["day2"])
        zone = self.zones[found["zone"].upper()]
        years = [int(found["year"])] if found["year"] else ([sent.year, sent.year + 1] if sent else [])
        for year in years:
            try:
                when = datetime(year, month, day, hour, minute, tzinfo=zone)
            except ValueError:
                return None
            if found["year"] or sent is None or when >= sent - timedelta(days=2):
                return when
        return None


class MessageText:
    """What reading one message's text gathers besides its blocks: when it was sent, the notes for the
    desk (in the order the text gives them) and the embargo its lines state."""

    def __init__(self, phrases: EmbargoPhrases, sent: datetime | None) -> None:
        self.phrases = phrases
        self.sent = sent
        self.notes: list[str] = []
        self.embargoed: datetime | None = None

    def embargo_line(self, text: str, body: list[RawBlock]) -> bool:
        """An embargo line: a definite time becomes the embargo (the line a note); else the line goes to
        ``body``, where nobody can miss it. False when the line is no embargo line."""
        found, when = self.phrases.read(text, self.sent)
        if not found:
            return False
        if when is not None:
            self.embargoed = self.embargoed or when
            self.notes.append(text)
        else:
            body.append(RawBlock("paragraph", text))
        return True

    def embargo_paragraph(self, text: str, body: list[RawBlock]) -> bool:
        """A paragraph of the text read as an embargo line when it opens with an embargo phrase (see
        ``EmbargoPhrases.opens``); False when it is story."""
        return self.phrases.opens(text) and self.embargo_line(text, body)
