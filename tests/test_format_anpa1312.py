"""ANPA 1312: the AP takes of the corpus give the documents a reader of them expects; broken framing, stray
control characters and binary tails are refused in one line.

Each corpus file ``../shared/corpus/wire/anpa-1312/**/<name>`` (read in place, never copied) has its expected
document in ``tests/formats/anpa-1312/corpus/<name>.expected.json`` (or the refusal it must get). After a
deliberate parser change, rewrite them with ``python -m tests.test_format_anpa1312`` and read the diff.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import InvalidDocument, ParseError, ReadError
from ingest.prepare import Prepared, prepare_items
from tests.conftest import CORPUS, RECEIVED, RULES, cli, need_shared
from tests.formats_corpus import Corpus, error_of, observed, refusal

FORMAT = "anpa-1312"
WIRE = CORPUS / "wire" / FORMAT
EXPECTED = Path(__file__).resolve().parent / "formats" / FORMAT / "corpus"
CORPUS_FILES = Corpus(WIRE, EXPECTED, observed)
#: Hostile input must be dealt with within this many seconds (a bound on runaway work, not a benchmark).
QUICK = 5.0

HEADING = "\x16\x16\x01W1234\x1fasian\nr a\x13\x11 BC-US--Bridge-Closure 1stLd-Writethru   11-13 0120\n"
TEXT = (
    "\x02^BC-US--Bridge-Closure, 1st Ld-Writethru,120<\n"
    "^Bridge to close for repairs<\n"
    "^AP Photo NYAB101, NYAB102<\n"
    "^Eds: Updates with mayor's comment. With AP Photos.<\n"
    "^By ANN LEE=\n"
    "^Associated Press=\n"
    "\t   SPRINGFIELD (AP) _ The old bridge closes on Saturday for ``urgent'' repairs.\n"
    " \n"
    "\t   The mayor said the work would take a week.\n"
    "\t   -0-\n"
    "\n"
    "\t   \x03AP-WF-11-13-13 1509GMT<\n"
    "\n\x0c\n\x04"
)
TAKE = HEADING + TEXT


def _take(**parts: str) -> bytes:
    return (parts.get("heading", HEADING) + parts.get("text", TEXT)).encode()


# ---------------------------------------------------------------------------------------------- corpus


@pytest.mark.corpus
def test_every_corpus_file_has_its_expected_document_and_no_expected_document_is_orphaned() -> None:
    CORPUS_FILES.check_each_has_one(count=11)


@pytest.mark.corpus
@pytest.mark.parametrize("expected", CORPUS_FILES.expected_files(), ids=lambda p: p.name.split(".")[0])
def test_corpus_file_gives_its_expected_document(expected: Path) -> None:
    CORPUS_FILES.check_expected(expected)


@pytest.mark.corpus
def test_the_corpus_gives_eleven_documents_and_headlines_derived_where_a_take_has_none() -> None:
    from ingest.prepare import prepare
    from tests.conftest import RECEIVED, RULES

    need_shared(WIRE)
    results = {p.name: observed(p.read_bytes(), p.name) for p in CORPUS_FILES.files()}
    assert not [name for name, r in results.items() if "refused" in r]
    assert all(r.get("format") == FORMAT for r in results.values())
    # A weather table and a news alert come with no headline line: the first sentence is the headline,
    # and the document says so.
    for path in CORPUS_FILES.files():
        source = prepare(path.read_bytes(), path.name, RULES, received_at=RECEIVED).source
        expected = "first-sentence" if path.name in ("anpa-3.tst", "ap_anpa-5.tst") else None
        assert source.headline_derived == expected, path.name


# ---------------------------------------------------------------------------------------------- what a take gives


def test_a_take_gives_headline_byline_paragraphs_and_desk_notes() -> None:
    doc = observed(_take(), "bridge.tst")
    content = doc["content"]
    assert isinstance(content, dict)
    assert content["headline"] == "Bridge to close for repairs"
    assert content["byline"] == "By ANN LEE, Associated Press"
    assert [b["text"] for b in content["body"]] == [
        "SPRINGFIELD (AP) — The old bridge closes on Saturday for “urgent” repairs.",
        "The mayor said the work would take a week.",
    ]
    assert [(b["kind"], b["text"]) for b in content["boilerplate"]] == [("page-furniture", "-0-")]  # end marker
    assert content["slugline"] == "BC-US--Bridge-Closure"
    assert content["urgency"] == 5
    assert [a["uri"] for a in content["associations"]] == ["NYAB101", "NYAB102"]
    assert content["updated_at"] == "2013-11-13T15:09:00Z"
    assert content["published_at"] is None  # a lead: not the first publication
    assert doc["id"] == "bridge"  # the message number comes round again: the file name names the story
    assert doc["input_version"] == "1"
    assert doc["internal_notes"] == ["1st Ld-Writethru", "Eds: Updates with mayor's comment. With AP Photos."]


def test_the_parser_is_picked_by_content_whatever_the_file_is_called() -> None:
    for name in ("story.txt", "story", "story.xml"):
        doc = observed(_take(), name)
        assert doc.get("format") == FORMAT, (name, doc)


def test_a_kill_take_is_withdrawn() -> None:
    heading = HEADING.replace("1stLd-Writethru", "Kill")
    text = TEXT.replace(", 1st Ld-Writethru,", ", Kill,")
    content = observed(_take(heading=heading, text=text), "kill.tst")["content"]
    assert isinstance(content, dict) and content["withdrawn"] is True


def test_a_definite_hold_for_release_is_the_embargo_and_an_indefinite_one_opens_the_body() -> None:
    held = TEXT.replace("^Eds: Updates", "^Eds: HOLD FOR RELEASE 12:01 a.m. EST Tuesday, Nov. 19. Updates")
    doc = observed(_take(text=held), "held.tst")
    content = doc["content"]
    assert isinstance(content, dict)
    assert content["embargoed"] == datetime(2013, 11, 19, 0, 1, tzinfo=timezone(timedelta(hours=-5))).isoformat()
    assert any("HOLD FOR RELEASE" in note for note in doc["internal_notes"])  # type: ignore[attr-defined]
    vague = TEXT.replace("^Eds: Updates", "^Eds: HOLD FOR RELEASE until further notice. Updates")
    content = observed(_take(text=vague), "vague.tst")["content"]
    assert isinstance(content, dict)
    assert content["embargoed"] is None
    assert content["body"][0]["text"].startswith("Eds: HOLD FOR RELEASE until further notice")


def test_a_table_take_keeps_its_rows_and_reads_the_padding() -> None:
    heading = HEADING.replace("\x13\x11", "\x14\x12")
    rows = "\x08^\x1f\x1e W\x1e \x1e L\n\x08Tampa\x10 Bay\x1f\x1e 73\x1e \x1e 52\n"
    text = TEXT.replace("\t   The mayor said", rows + "\t   The mayor said")
    content = observed(_take(heading=heading, text=text), "table.tst")["content"]
    assert isinstance(content, dict)
    assert [b["text"] for b in content["body"]][1:3] == [";W;L", "Tampa Bay;73;52"]


def test_a_file_of_two_messages_gives_two_documents() -> None:
    second = TAKE.replace("Bridge to close", "Ferry to run").replace("W1234", "W1235")
    doc = observed((TAKE + second).encode(), "two.tst")
    items = doc["items"]
    assert isinstance(items, list)
    assert [item["id"] for item in items] == ["two-1", "two-2"]
    assert [item["content"]["headline"] for item in items] == [
        "Bridge to close for repairs",
        "Ferry to run for repairs",
    ]


def test_ingest_formats_lists_anpa_1312() -> None:
    ran = cli("formats")
    assert ran.returncode == 0
    assert any(line.split()[0] == FORMAT for line in ran.stdout.splitlines())


# ---------------------------------------------------------------------------------------------- hostile


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (HEADING, "has no STX (start of text)"),
        (HEADING + TEXT[: TEXT.index("\x03")], "has no ETX (end of text): the take is cut off"),
        (HEADING + TEXT[: len(TEXT) // 2], "has no ETX"),
        (TAKE.replace("The mayor", "The \x02mayor"), "stray STX (U+0002) inside its text, on line 11"),
        (TAKE.replace("\t   The mayor", "\x16\t   The mayor"), "stray SYN"),
        (TAKE + "garbage after the end\n", "has text after EOT"),
        ("\x01W12\x1fx\n\x02^H<\n\t   P.\n\x03\x04", "does not start with an ANPA 1312 heading"),
    ],
    ids=["heading-only", "cut-before-etx", "cut-mid-text", "stray-stx", "stray-syn", "tail", "bad-heading"],
)
def test_broken_framing_is_refused_naming_what_is_missing(data: str, words: str) -> None:
    message = str(refusal(data.encode(), "cut.tst", format=FORMAT))
    assert words in message
    assert message.startswith("cut.tst") and "\n" not in message


def test_a_take_cut_after_etx_is_read_without_its_end_of_transmission() -> None:
    doc = observed(TAKE[: TAKE.index("\x04")].encode(), "noeot.tst")
    assert doc.get("format") == FORMAT


@pytest.mark.parametrize(("char", "code"), [("\x07", "U+0007"), ("\x7f", "U+007F"), ("\x1b", "U+001B")])
def test_a_control_character_anpa_does_not_claim_is_refused_as_binary(char: str, code: str) -> None:
    with pytest.raises(ReadError, match=re.escape(f"not clean text (control character {code} on line 11)")):
        prepare_items(_take(text=TEXT.replace("The mayor", f"The {char}mayor")), "bel.tst", RULES, received_at=RECEIVED)


def test_text_that_only_starts_like_a_wire_is_refused_as_binary_not_claimed() -> None:
    with pytest.raises(ReadError, match="control character U\\+0001"):
        prepare_items(b"\x01not a heading\n\x02text\x03\x04", "odd.txt", RULES, received_at=RECEIVED)


def test_binary_bytes_after_a_valid_heading_are_refused_in_one_line() -> None:
    assert "\n" not in str(refusal(HEADING.encode() + bytes(range(256)) * 4, "bin.tst"))


def test_a_huge_take_over_the_line_limit_is_refused_quickly() -> None:
    lines = "".join(f"\t   Paragraph {n}.\n" for n in range(RULES.max_lines + 1))
    text = TEXT.replace("\t   The mayor said the work would take a week.\n", lines)
    started = time.monotonic()
    with pytest.raises(InvalidDocument, match="above the 20,000 limit"):
        prepare_items(_take(text=text), "huge.tst", RULES, received_at=RECEIVED)
    assert time.monotonic() - started < QUICK


def test_a_huge_paragraph_is_read_quickly() -> None:
    text = TEXT.replace("The mayor said", "word " * 400_000 + "The mayor said")
    started = time.monotonic()
    doc = observed(_take(text=text), "long.tst")
    assert doc.get("format") == FORMAT
    assert time.monotonic() - started < QUICK


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_property_any_bytes_after_a_valid_heading_give_a_document_or_our_one_line_error(tail: bytes) -> None:
    for head in (HEADING.encode(), HEADING.encode() + b"\x02^H<\n"):
        assert "\n" not in error_of(head + tail, "p.tst")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("\t ^<=_`'\n\x08\x10\x1e\x1fAbc1.,;:()-")), max_size=300))
def test_property_any_text_between_stx_and_etx_gives_a_document_or_our_error(text: str) -> None:
    data = (HEADING + "\x02" + text + "\x03AP-WF-11-13-13 1509GMT<\n\x04").encode()
    try:
        items = prepare_items(data, "p.tst", RULES, received_at=RECEIVED)
    except (ParseError, InvalidDocument) as exc:  # anything else fails the test
        refused = str(exc)
        assert "\n" not in refused
        return
    for item in items:
        assert isinstance(item, Prepared)
        texts = [item.content.headline, *(b.text for b in item.content.body)]
        assert not any(c in t for t in texts for c in "\x08\x10\x1e\x1f")  # typesetting codes never reach a reader
        assert item.content.updated_at == datetime(2013, 11, 13, 15, 9, tzinfo=UTC)


if __name__ == "__main__":
    CORPUS_FILES.write()
