"""NewsML 1.2 (``newsml-1.2``): the wire files in ``../shared/corpus/wire/newsml-1.2/`` read in place, each giving
the documents a reader expects (``tests/formats/newsml-1.2/corpus/<file>.expected.json``) or refused with a
reason naming what it is; envelopes of several items; hostile XML. After a deliberate parser change, rewrite the
expected files with ``python -m tests.test_format_newsml12`` and read the diff.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.outcome import Outcome
from ingest.parsers import registry
from ingest.prepare import Prepared, prepare_items
from tests.conftest import CORPUS, RECEIVED, RULES, cli, need_shared
from tests.formats_corpus import Corpus, documents, documents_or_our_error, one_line_refusal

FORMAT = "newsml-1.2"
WIRE = CORPUS / "wire" / FORMAT
EXPECTED = Path(__file__).resolve().parent / "formats" / FORMAT / "corpus"
CORPUS_FILES = Corpus(WIRE, EXPECTED, documents)

#: Corpus files that are refused, with the words the one-line reason must contain.
REFUSED: dict[str, str] = {
    # Business Wire's Dell release is mojibake (UTF-8 read as cp1252 and re-encoded, more than once): its
    # apostrophes are three-letter garbage, and a C1 control character stands where cp1252 has no letter. The
    # reader refuses it before any parser sees it; publishing the garbage to readers would be worse.
    "newsinjson/examples/NewsML/businesswire-newsml-20130515006361.xml": "not clean text (control character U+009D",
}


# ---------------------------------------------------------------------------------------------- corpus


@pytest.mark.corpus
@pytest.mark.parametrize("rel", CORPUS_FILES.relative() or ["(corpus absent)"])
def test_every_corpus_file_gives_the_documents_a_reader_expects_or_is_refused(rel: str) -> None:
    CORPUS_FILES.check_file(rel, REFUSED)


@pytest.mark.corpus
def test_every_expected_file_belongs_to_a_corpus_file_and_the_counts_hold() -> None:
    CORPUS_FILES.check_no_orphans(REFUSED)
    # 9 files: 8 give one document each (AFP x3, ANA-MPA, Business Wire x4), 1 is refused.
    assert (len(CORPUS_FILES.relative()), len(CORPUS_FILES.expected_files()), len(REFUSED)) == (9, 8, 1)


@pytest.mark.corpus
def test_what_superdesk_asserts_for_these_fixtures_holds() -> None:
    """The values Superdesk's own tests assert for the AFP, ANA-MPA and Business Wire fixtures (facts, not code)."""
    afp = documents(need_shared(WIRE / "superdesk-core/tests/io/fixtures/afp.xml").read_bytes(), "afp.xml")[0]
    content = afp["content"]
    assert isinstance(content, dict)
    assert content["headline"] == "Sweden court accepts receivership for Saab carmaker"
    assert content["body"][0]["text"].startswith("STOCKHOLM, Aug 29, 2014 (AFP) - A Chinese-owned company")
    assert (content["slugline"], content["byline"], content["language"]) == ("Sweden-SAAB", None, "en")
    assert (content["urgency"], afp["input_version"]) == (4, "1")
    assert content["published_at"] == content["updated_at"] == "2014-08-29T13:49:51Z"
    assert content["usage_terms"] == "NO ARCHIVAL USE"
    assert afp["id"] == "afp.com-20140829T135002Z-TX-PAR-FXW86"  # PublicIdentifier without its revision

    afp20 = documents(need_shared(WIRE / "superdesk-core/tests/io/fixtures/afp20.xml").read_bytes(), "afp20.xml")[0]
    content = afp20["content"]
    assert isinstance(content, dict)
    # Declared iso-8859-1 but UTF-8: read as what it is (Superdesk's test asserts the mojibake).
    assert content["headline"] == "Décès de Naomi Musenga: l'opératrice du Samu définitivement condamnée"
    assert content["body"][0]["text"].startswith("Strasbourg, 10 juil 2024 (AFP) - L'opératrice du Samu condamnée")
    assert content["body"][1]["text"] == "L'opératrice, Corinne M."
    assert (content["language"], content["urgency"], content["slugline"]) == ("fr", None, "procès-santé-secours")
    assert content["published_at"] == "2024-07-10T12:59:02Z"

    bw_path = need_shared(WIRE / "superdesk-cp/server/tests/ingest/parser/fixtures/businesswire/20210130005024r1.xml")
    bw = documents(bw_path.read_bytes(), bw_path.name)[0]["content"]
    assert isinstance(bw, dict)
    assert bw["headline"] == "Interactive Brokers Lifts All Trading Restrictions on Options"
    assert bw["abstract"] == "Interactive Brokers lifts all trading restrictions on options"
    assert "Interactive Brokers Group" in bw["tags"]  # the issuing organisation (Source party)
    assert bw["body"][0]["text"].startswith("GREENWICH, Conn. - Interactive Brokers Group (Nasdaq: IBKR)")


# ---------------------------------------------------------------------------------------------- envelopes

_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n<NewsML Version="1.2">'
    "<NewsEnvelope><DateAndTime>20260101T000000Z</DateAndTime></NewsEnvelope>"
)


def _item(
    item_id: str,
    content: str,
    *,
    headline: str = "Ferry service resumes",
    status: str = "Usable",
    revision: str = "1",
    management: str = "",
    created: str = "20260105T101500+0000",
) -> str:
    return (
        f"<NewsItem><Identification><NewsIdentifier><ProviderId>wire.example</ProviderId><DateId>20260105</DateId>"
        f"<NewsItemId>{item_id}</NewsItemId><RevisionId PreviousRevision='0' Update='N'>{revision}</RevisionId>"
        f"<PublicIdentifier>urn:newsml:wire.example:20260105:{item_id}:{revision}</PublicIdentifier>"
        f"</NewsIdentifier></Identification><NewsManagement><NewsItemType FormalName='News'/>"
        f"<FirstCreated>{created}</FirstCreated><ThisRevisionCreated>{created}</ThisRevisionCreated>"
        f"<Status FormalName='{status}'/>{management}</NewsManagement>"
        f"<NewsComponent><NewsLines><HeadLine>{headline}</HeadLine><DateLine>HARBOUR TOWN -</DateLine></NewsLines>"
        f"{content}</NewsComponent></NewsItem>"
    )


_TEXT = (
    "<ContentItem><MediaType FormalName='Text'/><Format FormalName='NITF3.1'/><DataContent><nitf><body>"
    "<body.content><p>The ferry runs again from Monday.</p><p>Tickets are on sale.</p></body.content>"
    "</body></nitf></DataContent></ContentItem>"
)
_PHOTO = (
    "<NewsComponent><Role FormalName='Photo'/><NewsLines><HeadLine>The ferry at the pier</HeadLine>"
    "<CreditLine>Ann Lee/Wire</CreditLine></NewsLines><ContentItem Href='http://wire.example/p/1.jpg'>"
    "<MediaType FormalName='Photo'/><MimeType FormalName='image/jpeg'/></ContentItem></NewsComponent>"
)
_PHOTO_ITEM = (
    "<ContentItem Href='http://wire.example/p/2.jpg'><MediaType FormalName='Photo'/>"
    "<MimeType FormalName='image/jpeg'/></ContentItem>"
)


def _envelope(*items: str) -> bytes:
    return (_HEAD + "".join(items) + "</NewsML>").encode()


def _one(data: bytes, name: str = "story.xml") -> Prepared:
    items = prepare_items(data, name, RULES, received_at=RECEIVED)
    assert len(items) == 1 and isinstance(items[0], Prepared), items
    return items[0]


def test_an_envelope_of_several_items_gives_one_document_per_text_item_and_leaves_pictures_out() -> None:
    data = _envelope(
        _item("ferry-1", _TEXT + _PHOTO),
        _item("pier-pic", _PHOTO_ITEM, headline="Pier"),
        _item("ferry-2", _TEXT, headline="Ferry timetable"),
    )
    items = prepare_items(data, "batch.xml", RULES, received_at=RECEIVED)
    docs = [i for i in items if isinstance(i, Prepared)]
    assert [d.path for d in docs] == ["batch.xml#1", "batch.xml#2"] and len(items) == 2
    assert [d.id for d in docs] == ["wire.example-20260105-ferry-1", "wire.example-20260105-ferry-2"]
    assert [d.content.headline for d in docs] == ["Ferry service resumes", "Ferry timetable"]
    assert docs[0].content.body[0].text == "HARBOUR TOWN - The ferry runs again from Monday."
    picture = docs[0].content.associations[0]
    assert (picture.kind, picture.uri, picture.caption, picture.role) == (
        "picture",
        "http://wire.example/p/1.jpg",
        "The ferry at the pier",
        "Photo",
    )
    assert picture.credit == "Ann Lee/Wire"


def test_the_dateline_opens_the_story_not_a_credit_line_and_links_keep_their_words() -> None:
    xhtml = (
        "<ContentItem><MimeType FormalName='text/xhtml'/><DataContent><html><body><p>By Ann Lee</p>"
        "<p>The <a href='http://wire.example/f'>ferry</a> runs again.</p></body></html></DataContent></ContentItem>"
    )
    content = _one(_envelope(_item("ferry", xhtml))).content
    assert content.byline == "By Ann Lee"  # a credit opening the body (compose's rule), the dateline after it
    assert [b.text for b in content.body] == ["HARBOUR TOWN - The ferry runs again."]
    link = content.inline_links[0]
    assert (link.text, link.url) == ("ferry", "http://wire.example/f")
    assert content.body[link.block].text[link.start : link.end] == "ferry"


def test_an_input_of_pictures_only_is_refused_naming_what_it_holds() -> None:
    error = one_line_refusal(_envelope(_item("pic", _PHOTO_ITEM, headline="Pier")), "photos.xml")
    assert error.reason == "is a NewsML 1.2 package of photo items, no text"


def test_a_photo_with_its_caption_beside_it_is_not_a_story() -> None:
    caption = (
        "<ContentItem><MediaType FormalName='Text'/>"
        "<DataContent><p>The ferry at the pier.</p></DataContent></ContentItem>"
    )
    error = one_line_refusal(_envelope(_item("pic", _PHOTO_ITEM + caption, headline="Pier")), "photo.xml")
    assert error.reason == "is a NewsML 1.2 package of photo, captioned media items, no text"


def test_in_an_envelope_a_story_with_remote_content_is_refused_on_its_own() -> None:
    remote = "<ContentItem Href='http://wire.example/story.xml'><MediaType FormalName='Text'/></ContentItem>"
    items = prepare_items(
        _envelope(_item("ferry-1", _TEXT), _item("ferry-2", remote)), "b.xml", RULES, received_at=RECEIVED
    )
    assert isinstance(items[0], Prepared) and isinstance(items[1], Outcome) and items[1].error is not None
    assert "its content is remote (http://wire.example/story.xml) and is not fetched" in str(items[1].error)


def test_an_item_with_two_headlined_text_components_gives_two_stories() -> None:
    stories = (
        f"<NewsComponent><NewsLines><HeadLine>First</HeadLine></NewsLines>{_TEXT}</NewsComponent>"
        f"<NewsComponent><NewsLines><HeadLine>Second</HeadLine></NewsLines>{_TEXT}</NewsComponent>"
    )
    items = prepare_items(_envelope(_item("pair", stories)), "pair.xml", RULES, received_at=RECEIVED)
    docs = [i for i in items if isinstance(i, Prepared)]
    assert [(d.id, d.content.headline) for d in docs] == [
        ("wire.example-20260105-pair-1", "First"),
        ("wire.example-20260105-pair-2", "Second"),
    ]


def test_of_equivalent_renditions_only_the_first_is_read() -> None:
    plain = (
        "<ContentItem><MediaType FormalName='Text'/><MimeType FormalName='text/plain'/>"
        "<DataContent>The ferry runs again from Monday.</DataContent></ContentItem>"
    )
    equivalents = f"<NewsComponent EquivalentsList='yes'><NewsComponent>{_TEXT}</NewsComponent>{plain}</NewsComponent>"
    body = _one(_envelope(_item("eq", equivalents))).content.body
    assert [b.text for b in body] == ["HARBOUR TOWN - The ferry runs again from Monday.", "Tickets are on sale."]


def test_the_id_stays_across_revisions_and_the_revision_is_the_version() -> None:
    first = _one(_envelope(_item("ferry", _TEXT, revision="1")))
    second = _one(_envelope(_item("ferry", _TEXT, revision="2")))
    assert first.id == second.id == "wire.example-20260105-ferry"
    assert (first.source.input_version, second.source.input_version) == ("1", "2")


def test_a_time_without_a_zone_is_read_as_utc() -> None:
    content = _one(_envelope(_item("ferry", _TEXT, created="20260105T101500"))).content
    assert content.published_at is not None and content.published_at.isoformat() == "2026-01-05T10:15:00+00:00"


def test_a_canceled_item_is_withdrawn_even_without_content() -> None:
    content = _one(_envelope(_item("ferry", "", status="Canceled"))).content
    assert content.withdrawn is True and content.body == []


def test_an_embargoed_item_is_held_until_its_status_changes() -> None:
    change = (
        "<StatusWillChange><FutureStatus FormalName='Usable'/>"
        "<DateAndTime>20260106T060000+0100</DateAndTime></StatusWillChange>"
    )
    content = _one(_envelope(_item("ferry", _TEXT, status="Embargoed", management=change))).content
    assert content.embargoed is not None and content.embargoed.isoformat() == "2026-01-06T06:00:00+01:00"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("", "is embargoed (Status) with no release time in StatusWillChange"),
        ("<StatusWillChange><DateAndTime>when told</DateAndTime></StatusWillChange>", "embargo not an ISO 8601"),
    ],
)
def test_an_embargo_without_a_definite_time_is_refused(change: str, words: str) -> None:
    error = one_line_refusal(_envelope(_item("ferry", _TEXT, status="Embargoed", management=change)), "held.xml")
    assert words in error.reason


def test_remote_content_is_refused_not_fetched() -> None:
    remote = "<ContentItem Href='http://wire.example/story.xml'><MediaType FormalName='Text'/></ContentItem>"
    error = one_line_refusal(_envelope(_item("ferry", remote)), "remote.xml")
    href = "http://wire.example/story.xml"
    assert error.reason == f"has no inline text: its content is remote ({href}) and is not fetched"


def test_newsml_is_picked_by_content_and_listed() -> None:
    assert registry.detect("feed", _envelope(_item("x", _TEXT)).decode()).name == FORMAT
    assert registry.detect("story.xml", '<?xml version="1.0"?>\n<!-- wire -->\n<NewsML/>').name == FORMAT
    assert FORMAT in [line.split()[0] for line in cli("formats").stdout.splitlines()]


# ---------------------------------------------------------------------------------------------- hostile

_LAUGHS = "".join(f'  <!ENTITY l{i} "{f"&l{i - 1};" * 10}">\n' for i in range(1, 10))
HOSTILE = {
    "billion-laughs.xml": f'<?xml version="1.0"?>\n<!DOCTYPE NewsML [\n  <!ENTITY l0 "lol">\n{_LAUGHS}]>\n'
    + _item("x", _TEXT, headline="&l9;").join(["<NewsML>", "</NewsML>"]),
    "xxe.xml": '<?xml version="1.0"?>\n<!DOCTYPE NewsML [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    + _item("x", _TEXT, headline="&x;").join(["<NewsML>", "</NewsML>"]),
    "parameter-entity.xml": '<!DOCTYPE NewsML [<!ENTITY % p SYSTEM "http://wire.example/evil.dtd"> %p;]><NewsML/>',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_entity_bombs_and_external_entities_are_refused_quickly_in_one_line(name: str) -> None:
    started = time.monotonic()
    error = one_line_refusal(HOSTILE[name].encode(), name)
    assert time.monotonic() - started < 5
    assert "refused: XML with a DTD/entities is not accepted" in error.reason
    assert "root:" not in str(error)  # nothing of /etc/passwd


def test_an_external_dtd_is_never_read(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY x "PWNED">', encoding="utf-8")
    story = _item("x", _TEXT, headline="&x;")
    text = f'<!DOCTYPE NewsML SYSTEM "{dtd.as_uri()}"><NewsML>{story}</NewsML>'
    assert "undefined entity" in one_line_refusal(text.encode(), "dtd.xml").reason


def test_deeply_nested_components_give_a_document_without_recursion() -> None:
    depth = 20_000
    nested = "<NewsComponent>" * depth + _TEXT + "</NewsComponent>" * depth
    started = time.monotonic()
    content = _one(_envelope(_item("deep", nested))).content
    assert time.monotonic() - started < 10
    assert content.body[0].text == "HARBOUR TOWN - The ferry runs again from Monday."


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            _HEAD.encode(),
            (_HEAD + "<NewsItem><NewsComponent><NewsLines><HeadLine>H</HeadLine></NewsLines><ContentItem>").encode(),
            (_HEAD + "<NewsItem><NewsComponent><ContentItem><DataContent><nitf><body><body.content><p>").encode(),
            (_HEAD + "<NewsItem><NewsComponent><ContentItem><MimeType FormalName='text/html'/><DataContent>").encode(),
        ]
    ),
    st.binary(max_size=300),
)
def test_property_any_bytes_after_a_newsml_start_give_documents_or_our_error(start: bytes, tail: bytes) -> None:
    documents_or_our_error(start + tail, "n.xml")


if __name__ == "__main__":
    CORPUS_FILES.write(refused=REFUSED)
