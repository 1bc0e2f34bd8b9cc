"""Ritzau news XML: the agency's own items and feed responses, read in place from the corpus."""

from __future__ import annotations

from ingest.prepare import Prepared, prepare_items
from tests.conftest import CORPUS, RECEIVED, RULES, cli, need_shared

FIXTURES = CORPUS / "wire/other-xml/ritzau/superdesk-core/tests/io/fixtures"


def items(file: str, **options: str) -> list[Prepared]:
    path = need_shared(FIXTURES / file)
    found = prepare_items(path.read_bytes(), path.name, RULES, received_at=RECEIVED, **options)  # type: ignore[arg-type]
    assert all(isinstance(i, Prepared) for i in found), found
    return [i for i in found if isinstance(i, Prepared)]


def test_a_flash_without_a_headline_takes_its_first_sentence_and_says_so() -> None:
    (flash,) = items("ritzau_news.xml", timezone="Europe/Copenhagen")
    content, source = flash.content, flash.source
    assert (flash.id, source.format, content.slugline, content.urgency, content.byline) == (
        "9a6955fc-11da-46b6-9903-439ebb288f2d",
        "ritzau",
        "NU/FLASH-U",
        3,
        "Peder Top Poulsen",
    )
    assert content.headline.startswith('Hollandske forskere har "i årevis" lavet forsøg')
    assert source.headline_derived == "first-sentence" and len(content.body) == 3
    assert content.published_at is not None and content.published_at.isoformat().endswith("+01:00")  # CET
    assert source.assumed_timezone == "Europe/Copenhagen"


def test_a_note_to_the_editors_is_internal_and_contact_details_are_never_read() -> None:
    (item,) = items("ritzau_news_test_ednote.xml")
    assert item.source.internal_notes and item.source.internal_notes[0].startswith("Lasse Norman Hansen skifter")
    everything = item.content.model_dump_json() + item.source.model_dump_json()
    assert "udland@ritzau.dk" not in everything and "33300412" not in everything
    assert "Lasse Norman" not in item.content.model_dump_json()  # the note is not in the story


def test_a_feed_response_gives_one_document_per_item() -> None:
    docs = items("ritzau_feed.xml")
    assert [(d.path, d.content.headline) for d in docs] == [
        ("ritzau_feed.xml#1", "PR / Spire Global, Inc."),
        ("ritzau_feed.xml#2", "Kort om sport"),
    ]
    assert docs[0].content.abstract is not None
    assert docs[0].content.abstract.startswith("UK Space Agency Backs Spire's Proposal")  # unescaped


def test_ingest_formats_lists_ritzau() -> None:
    assert "\nritzau " in cli("formats").stdout
