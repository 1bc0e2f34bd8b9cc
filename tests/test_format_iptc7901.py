"""IPTC 7901: the dpa messages of the corpus give the documents a reader of them expects; what dpa marks not
for publication is nowhere; broken framing, stray control characters and binary tails are refused in one line.

Each corpus file ``../shared/corpus/wire/iptc-7901/**/<name>`` (read in place, never copied) has its expected
document in ``tests/formats/iptc-7901/corpus/<name>.expected.json``. After a deliberate parser change, rewrite
them with ``python -m tests.test_format_iptc7901`` and read the diff.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import InvalidDocument, ReadError
from ingest.prepare import prepare_items
from tests.conftest import CORPUS, RECEIVED, RULES, cli, need_shared
from tests.formats_corpus import Corpus, error_of, observed, refusal

FORMAT = "iptc-7901"
WIRE = CORPUS / "wire" / FORMAT
EXPECTED = Path(__file__).resolve().parent / "formats" / FORMAT / "corpus"
CORPUS_FILES = Corpus(WIRE, EXPECTED, observed)
#: Hostile input must be dealt with within this many seconds (a bound on runaway work, not a benchmark).
QUICK = 5.0

HEADING = "\x01eca0101 4 i 120  dpa 0101\r\n\r\nGermany/bridge/\r\n"
TEXT = (
    "\x021ST LEAD\r\n"
    "Bridge to close for repairs\r\n"
    "By Ann Lee, dpa =\r\n"
    "\r\n"
    "   Berlin (dpa) - The old bridge closes on Saturday\r\n"
    "for urgent repairs.\r\n"
    "\r\n"
    "The mayor said the work would take a week.\r\n"
    "\r\n"
    "# Notebook\r\n"
    "\r\n"
    "## Note to editors\r\n"
    "- adds mayor's comment\r\n"
    "- (c)2013 City Gazette\r\n"
    "\r\n"
    "## Internet links\r\n"
    "- [City statement](http://example.com/statement)\r\n"
    "\r\n"
    "* * * *\r\n"
    "The following information is not for publication\r\n"
    "\r\n"
    "## Editorial contacts\r\n"
    "- Reporting by: Ann Lee, +49 30 555 0199\r\n"
    "\r\n"
    "dpa al rmo\r\n"
    "\r\n"
    "\x03131137 GMT Nov 13\r\n"
    "\x7f\n\x7f\x04"
)
MESSAGE = HEADING + TEXT


def _message(**parts: str) -> bytes:
    return (parts.get("heading", HEADING) + parts.get("text", TEXT)).encode()


def _content(data: bytes, name: str = "m.txt") -> dict[str, object]:
    content = observed(data, name)["content"]
    assert isinstance(content, dict)
    return content


# ---------------------------------------------------------------------------------------------- corpus


@pytest.mark.corpus
def test_every_corpus_file_has_its_expected_document_and_no_expected_document_is_orphaned() -> None:
    CORPUS_FILES.check_each_has_one(count=6)


@pytest.mark.corpus
@pytest.mark.parametrize("expected", CORPUS_FILES.expected_files(), ids=lambda p: p.name.split(".")[0])
def test_corpus_file_gives_its_expected_document(expected: Path) -> None:
    CORPUS_FILES.check_expected(expected)


@pytest.mark.corpus
def test_the_odd_charset_file_is_windows_1252_and_reads_mueller_with_its_umlaut() -> None:
    path = need_shared(WIRE / "superdesk-core/tests/io/fixtures/IPTC7901_odd_charset.txt")
    doc = observed(path.read_bytes(), path.name)
    assert doc["encoding_rule"] == "cp1252-fallback"  # one byte 0xFC: not UTF-8, "ü" in Windows-1252
    assert "Thomas Müller" in json.dumps(doc["content"], ensure_ascii=False)


@pytest.mark.corpus
def test_nothing_dpa_marks_not_for_publication_reaches_a_document() -> None:
    need_shared(WIRE)
    for path in CORPUS_FILES.files():
        dumped = json.dumps(observed(path.read_bytes(), path.name), ensure_ascii=False)
        assert "Reporting by" not in dumped and "+49" not in dumped and "@dpa.com" not in dumped, path.name


# ---------------------------------------------------------------------------------------------- what a message gives


def test_a_message_gives_headline_byline_unwrapped_paragraphs_and_the_notebook_for_the_desk() -> None:
    doc = observed(_message(), "bridge.txt")
    content = doc["content"]
    assert isinstance(content, dict)
    assert content["headline"] == "Bridge to close for repairs"
    assert content["byline"] == "By Ann Lee, dpa"
    assert [b["text"] for b in content["body"]] == [
        "Berlin (dpa) - The old bridge closes on Saturday for urgent repairs.",
        "The mayor said the work would take a week.",
    ]
    assert [(b["kind"], b["text"]) for b in content["boilerplate"]] == [("page-furniture", "dpa al rmo")]
    assert [(link["title"], link["url"]) for link in content["related_links"]] == [
        ("City statement", "http://example.com/statement")
    ]
    assert content["copyright"] == "(c)2013 City Gazette"
    assert content["slugline"] == "Germany/bridge"
    assert content["urgency"] == 4
    assert content["updated_at"] == "2013-11-13T11:37:00Z"
    assert content["published_at"] is None  # a lead: not the first publication
    assert doc["id"] == "bridge"  # the message number comes round again: the file name names the story
    assert doc["input_version"] == "1"
    assert doc["internal_notes"] == ["1ST LEAD", "Note to editors: adds mayor's comment"]
    assert "555 0199" not in json.dumps(doc)  # not for publication: dropped entirely


def test_the_parser_is_picked_by_content_and_anpa_is_not_taken_for_7901() -> None:
    for name in ("story.txt", "story", "story.tst"):
        assert observed(_message(), name).get("format") == FORMAT, name
    anpa = "\x16\x16\x01W1234\x1fasian\n\x02^BC-Test<\n^Headline<\n\t   Text.\n\x03AP-WF-11-13-13 1509GMT<\n\x04"
    assert observed(anpa.encode(), "story.txt").get("format") == "anpa-1312"


def test_a_header_without_its_closing_mark_has_its_first_line_as_headline() -> None:
    text = TEXT.replace("1ST LEAD\r\n", "").replace("By Ann Lee, dpa =", "Second line of the story.")
    content = _content(_message(text=text))
    assert content["headline"] == "Bridge to close for repairs"
    assert content["body"][0]["text"] == "Second line of the story."  # type: ignore[index]


def test_a_kill_take_is_withdrawn() -> None:
    assert _content(_message(text=TEXT.replace("1ST LEAD", "KILL")))["withdrawn"] is True


def test_a_definite_embargo_is_held_and_an_indefinite_one_opens_the_body() -> None:
    doc = observed(_message(text=TEXT.replace("1ST LEAD", "Embargoed until 0001 GMT Nov 14")), "e.txt")
    content = doc["content"]
    assert isinstance(content, dict)
    assert content["embargoed"] == "2013-11-14T00:01:00Z"  # the year from the trailer
    assert "Embargoed until 0001 GMT Nov 14" in doc["internal_notes"]  # type: ignore[operator]
    content = _content(_message(text=TEXT.replace("1ST LEAD", "EMBARGOED until further notice")))
    assert content["embargoed"] is None
    assert content["body"][0]["text"] == "EMBARGOED until further notice"  # type: ignore[index]


def test_a_trailer_without_a_zone_is_read_as_gmt_and_german_months_are_months() -> None:
    content = _content(_message(text=TEXT.replace("131137 GMT Nov 13", "071341 Okt 15")))
    assert content["updated_at"] == datetime(2015, 10, 7, 13, 41, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def test_a_file_of_two_messages_gives_two_documents() -> None:
    second = MESSAGE.replace("Bridge to close", "Ferry to run")
    items = observed((MESSAGE + second).encode(), "two.txt")["items"]
    assert isinstance(items, list)
    assert [item["id"] for item in items] == ["two-1", "two-2"]
    assert [item["content"]["headline"] for item in items] == [
        "Bridge to close for repairs",
        "Ferry to run for repairs",
    ]


def test_ingest_formats_lists_iptc_7901() -> None:
    ran = cli("formats")
    assert ran.returncode == 0
    assert any(line.split()[0] == FORMAT for line in ran.stdout.splitlines())


# ---------------------------------------------------------------------------------------------- hostile


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (HEADING, "has no STX (start of text)"),
        (HEADING + TEXT[: TEXT.index("\x03")], "has no ETX (end of text): the message is cut off"),
        (HEADING + TEXT[:200], "has no ETX"),
        (MESSAGE.replace("The mayor", "The \x02mayor"), "stray STX (U+0002) inside its text, on line 11"),
        (MESSAGE + "garbage after the end\n", "has text after EOT"),
    ],
    ids=["heading-only", "cut-before-etx", "cut-mid-text", "stray-stx", "tail"],
)
def test_broken_framing_is_refused_naming_what_is_missing(data: str, words: str) -> None:
    message = str(refusal(data.encode(), "cut.txt"))
    assert words in message
    assert message.startswith("cut.txt: ") and "\n" not in message


def test_a_message_cut_after_etx_is_read_without_its_end_of_transmission() -> None:
    assert observed(MESSAGE[: MESSAGE.index("\x7f")].encode(), "noeot.txt").get("format") == FORMAT


@pytest.mark.parametrize(("char", "code"), [("\x07", "U+0007"), ("\x16", "U+0016"), ("\x1f", "U+001F")])
def test_a_control_character_7901_does_not_claim_is_refused_as_binary(char: str, code: str) -> None:
    # SYN and US are ANPA 1312's framing, not IPTC 7901's.
    with pytest.raises(ReadError, match=re.escape(f"not clean text (control character {code} on line 11)")):
        prepare_items(
            _message(text=TEXT.replace("The mayor", f"The {char}mayor")), "c.txt", RULES, received_at=RECEIVED
        )


def test_binary_bytes_after_a_valid_heading_are_refused_in_one_line() -> None:
    assert "\n" not in str(refusal(HEADING.encode() + bytes(range(256)) * 4, "bin.txt"))


def test_a_huge_message_over_the_line_limit_is_refused_quickly() -> None:
    paragraphs = "".join(f"Paragraph {n}.\r\n\r\n" for n in range(RULES.max_lines + 1))
    text = TEXT.replace("The mayor said the work would take a week.\r\n", paragraphs)
    started = time.monotonic()
    with pytest.raises(InvalidDocument, match="above the 20,000 limit"):
        prepare_items(_message(text=text), "huge.txt", RULES, received_at=RECEIVED)
    assert time.monotonic() - started < QUICK


def test_a_huge_wrapped_paragraph_is_read_quickly_as_one_paragraph() -> None:
    text = TEXT.replace("The mayor said the work would take a week.\r\n", "word word word\r\n" * 30_000)
    started = time.monotonic()
    content = _content(_message(text=text), "long.txt")
    assert time.monotonic() - started < QUICK
    assert len(content["body"]) == 2  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_property_any_bytes_after_a_valid_heading_give_a_document_or_our_one_line_error(tail: bytes) -> None:
    for head in (HEADING.encode(), HEADING.encode() + b"\x02Headline =\r\n\r\n"):
        assert "\n" not in error_of(head + tail, "p.txt")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("\r\n =#-*[]()/:ByKILdpa1ST.\x7f")), max_size=300))
def test_property_any_text_between_stx_and_etx_gives_a_document_or_our_error(text: str) -> None:
    assert "\n" not in error_of((HEADING + "\x02" + text + "\x03131137 GMT Nov 13\r\n\x04").encode(), "p.txt")


if __name__ == "__main__":
    CORPUS_FILES.write()


def test_a_cut_second_message_is_refused_on_its_own_and_the_first_stands() -> None:
    from ingest.outcome import Outcome
    from ingest.prepare import Prepared, prepare_items
    from tests.conftest import RECEIVED, RULES

    first, second = prepare_items((MESSAGE + MESSAGE[:60]).encode(), "cut.txt", RULES, received_at=RECEIVED)
    assert isinstance(first, Prepared) and first.path == "cut.txt#1"
    assert isinstance(second, Outcome) and second.error is not None
    assert str(second.error).startswith("cut.txt#2: ") and "has no ETX" in str(second.error)
