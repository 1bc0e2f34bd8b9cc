"""Atom feeds: one document per entry (WENN's real feed, read in place), and what is refused, in one line."""

from __future__ import annotations

import pytest

from ingest.errors import InputError
from ingest.prepare import Prepared, prepare_items
from tests.conftest import CORPUS, RECEIVED, RULES, cli, need_shared

WENN = CORPUS / "wire/other-xml/atom/superdesk-core/tests/io/fixtures/wenn.xml"
ATOM = "http://www.w3.org/2005/Atom"


def items(text: str | bytes, name: str = "feed.xml") -> list[Prepared]:
    data = text.encode() if isinstance(text, str) else text
    found = prepare_items(data, name, RULES, received_at=RECEIVED)
    assert all(isinstance(i, Prepared) for i in found), found
    return [i for i in found if isinstance(i, Prepared)]


def test_the_wenn_feed_gives_one_document_per_entry_with_the_full_story() -> None:
    docs = items(need_shared(WENN).read_bytes(), "wenn.xml")
    assert [(d.path, d.id, d.source.format) for d in docs] == [
        ("wenn.xml#1", "feed-wenn-com-newsfeedarticle-2-2222-1", "atom"),
        ("wenn.xml#2", "feed-wenn-com-newsfeedarticle-2-2222-3", "atom"),
    ]
    first = docs[0].content
    assert first.headline == "Suge Knight involved in fatal hit and run incident"
    assert first.body[0].text.startswith("Police officials in Los Angeles are investigating a fatal hit and run")
    assert first.body[1].text.startswith("The embattled hip-hop mogul's lawyer James Blatt")  # indent dropped
    assert len(first.body) == 5 and first.tags == ["Music"]
    assert docs[0].source.input_version == "2015-01-30T00:33:06Z"  # the entry's <updated>: older re-sends are stale


def test_a_plain_atom_entry_reads_its_html_content_and_author() -> None:
    feed = (
        f'<feed xmlns="{ATOM}"><entry><id>tag:example.org,2026:1</id><title>Bridge Opens</title>'
        "<author><name>Ann Lee</name></author><published>2026-11-24T08:00:00Z</published>"
        '<content type="html">&lt;p&gt;The bridge opened.&lt;/p&gt;&lt;p&gt;Traffic flowed.&lt;/p&gt;</content>'
        "</entry></feed>"
    )
    (doc,) = items(feed)
    assert (doc.id, doc.content.byline, [b.text for b in doc.content.body]) == (
        "example.org-2026-1",
        "Ann Lee",
        ["The bridge opened.", "Traffic flowed."],
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f'<feed xmlns="{ATOM}"><title>Empty</title></feed>', "is an Atom feed without entries"),
        (
            f'<feed xmlns="{ATOM}"><entry><id>x</id><title>T</title><content src="http://x/y"/></entry></feed>',
            "content is remote (http://x/y) and is not fetched",
        ),
        (
            f'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            f'<feed xmlns="{ATOM}"><entry><title>&x;</title></entry></feed>',
            "refused: XML with a DTD/entities is not accepted",
        ),
    ],
)
def test_what_is_refused_gets_one_line(text: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        prepare_items(text.encode(), "feed.xml", RULES, received_at=RECEIVED)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_ingest_formats_lists_atom() -> None:
    assert "atom " in cli("formats").stdout
