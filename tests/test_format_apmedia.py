"""AP Media API JSON (``ap-media``): the item and feed responses in ``../shared/corpus/wire/agency-json/ap-media-api/``
read in place, each giving the documents a reader expects (``tests/formats/ap-media/corpus/<file>.expected.json``)
or refused with a reason naming what it is (a picture, a body AP sends only as a link); feeds; wrong types. After
a deliberate parser change, rewrite the expected files with ``python -m tests.test_format_apmedia`` and read the diff.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import InputError
from ingest.outcome import Outcome
from ingest.parsers import registry
from ingest.prepare import Prepared, prepare_items
from ingest.reader import decode
from tests.conftest import CORPUS, RECEIVED, RULES, cli, need_shared
from tests.formats_corpus import Corpus, documents, documents_or_our_error, one_line_refusal

FORMAT = "ap-media"
WIRE = CORPUS / "wire" / "agency-json" / "ap-media-api"
EXPECTED = Path(__file__).resolve().parent / "formats" / FORMAT / "corpus"
CORPUS_FILES = Corpus(WIRE, EXPECTED, documents)
_CP = "superdesk-cp/server/tests/ingest/parser/fixtures/ap/"
_CORE = "superdesk-core/tests/io/fixtures/"
_REMOTE = "has no inline text: its body is remote (data.item.renditions.nitf, a link) and is not fetched"
_FEED_REMOTE = "its body is remote (data.items.0.item.renditions.nitf, a link) and is not fetched"

#: Corpus files that are refused, with the words the one-line reason must contain. The Media API sends a text
#: item's story as a download link (renditions.nitf.href); only Superdesk CP's fixtures that carry the fetched
#: rendition beside the response (``nitf``) have their text in the file.
REFUSED: dict[str, str] = {
    _CORE + "ap_media_feed.json": "is an AP feed of 1 picture item, no text",
    _CORE + "ap_media_item.json": "is an AP picture item, not text",
    _CORE + "ap_media_picture.json": "is an AP picture item, not text",
    _CORE + "ap_media_text_feed.json": _FEED_REMOTE,
    _CORE + "ap_media_text_item.json": _REMOTE,
    _CP + "ap-agate.json": _REMOTE,
    _CP + "ap-aps-mi-right-now.json": _REMOTE,
    _CP + "ap-aps.json": _REMOTE,
    _CP + "ap-category.json": _REMOTE,
    _CP + "ap-getty-picture.json": "is an AP picture item, not text",
    _CP + "ap-picture.json": "is an AP picture item, not text",
    _CP + "ap-sports.json": _REMOTE,
    _CP + "ap-subject.json": _REMOTE,
    _CP + "ap-table.json": _REMOTE,
    _CP + "apv.json": _REMOTE,
    _CP + "picture.json": "is an AP picture item, not text",
    _CP + "politics.json": _REMOTE,
}


def _fixture(rel: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(need_shared(WIRE / rel).read_text(encoding="utf-8"))
    return loaded


# ---------------------------------------------------------------------------------------------- corpus


@pytest.mark.corpus
@pytest.mark.parametrize("rel", CORPUS_FILES.relative() or ["(corpus absent)"])
def test_every_corpus_file_gives_the_documents_a_reader_expects_or_is_refused(rel: str) -> None:
    CORPUS_FILES.check_file(rel, REFUSED)


@pytest.mark.corpus
def test_every_expected_file_belongs_to_a_corpus_file_and_the_counts_hold() -> None:
    CORPUS_FILES.check_no_orphans(REFUSED)
    # 20 files: 3 carry their text (one document each); 6 are pictures or a feed of pictures; 11 link to it.
    assert (len(CORPUS_FILES.relative()), len(CORPUS_FILES.expected_files()), len(REFUSED)) == (20, 3, 17)


@pytest.mark.corpus
def test_what_superdesk_asserts_for_these_fixtures_holds() -> None:
    """The values Superdesk's own AP tests assert (facts, not code): item.json and the picture's headline."""
    docs = documents(need_shared(WIRE / _CP / "item.json").read_bytes(), "item.json")
    assert len(docs) == 1
    doc = docs[0]
    content = doc["content"]
    assert isinstance(content, dict)
    assert doc["id"] == "ba7d03f0cd24a17faa81bebc724bcf3f" and doc["input_version"] == "0"
    assert content["headline"] == "headline1"
    assert content["byline"] == "By MARGARET AUSTIN, Wyoming Tribune Eagle"
    assert "copyright information" in content["copyright"] and "editorial use only" in content["usage_terms"]
    assert "General news" in content["tags"]
    assert content["body"][0]["text"].startswith("CHEYENNE, Wyo. (AP) — Across the state of Wyoming")
    assert doc["internal_notes"] == ["Eds: UPDATES: With AP Photos."]  # for the desk, in no reader-facing field
    assert "UPDATES" not in json.dumps(content)
    assert [a["uri"] for a in content["associations"]] == [
        "80bc4c5694394e23b3d1d5f24a726571",
        "9d878f94b2c3477193a0f84a61c11484",
    ]
    picture = one_line_refusal(need_shared(WIRE / _CORE / "ap_media_picture.json").read_bytes(), "p.json")
    assert picture.reason == "is an AP picture item, not text: only text items are ingested"


# ---------------------------------------------------------------------------------------------- shapes


def _text_item(itemid: str, headline: str, **extra: object) -> dict[str, Any]:
    item: dict[str, Any] = {
        "altids": {"itemid": itemid, "etag": f"{itemid}_0a1"},
        "version": 2,
        "type": "text",
        "versioncreated": "2026-01-05T10:15:00Z",
        "firstcreated": "2026-01-05T09:00:00Z",
        "pubstatus": "usable",
        "signals": ["newscontent"],
        "headline": headline,
        "bylines": [{"by": "By ANN LEE", "title": "Associated Press"}],
        "renditions": {"nitf": {"type": "text", "href": "https://api.ap.org/x?qt=secret-session"}},
    }
    item.update(extra)
    return item


_BODY = {"body_html": "<p>HARBOUR TOWN (AP) — The ferry runs again.</p><p>Tickets are on sale.</p>"}
_PICTURE = {"altids": {"itemid": "pic1"}, "type": "picture", "headline": "The ferry", "signals": ["newscontent"]}


def _feed(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"api_version": "1.1", "data": {"items": list(entries)}}).encode()


def test_a_feed_gives_one_document_per_text_item_and_refuses_a_remote_one_on_its_own() -> None:
    data = _feed(
        {"item": _text_item("a1", "Ferry resumes"), "nitf": _BODY},
        {"item": _PICTURE},
        {"item": _text_item("a2", "Ferry timetable")},
    )
    items = prepare_items(data, "feed.json", RULES, received_at=RECEIVED)
    assert len(items) == 2
    first, second = items
    assert isinstance(first, Prepared) and isinstance(second, Outcome)
    assert (first.path, first.id, first.source.input_version) == ("feed.json#1", "a1", "2")
    assert first.content.byline == "By ANN LEE, Associated Press"
    assert [b.text for b in first.content.body] == ["HARBOUR TOWN (AP) — The ferry runs again.", "Tickets are on sale."]
    assert second.path == "feed.json#2" and second.error is not None
    assert "its body is remote (data.items.2.item.renditions.nitf, a link) and is not fetched" in str(second.error)
    assert "secret-session" not in str(second.error)  # the link's session parameters are not echoed


def test_a_feed_whose_text_items_all_link_their_bodies_is_refused_saying_so() -> None:
    error = one_line_refusal(_feed({"item": _text_item("a1", "One")}, {"item": _text_item("a2", "Two")}), "feed.json")
    assert error.reason == "holds 2 text items whose bodies are all remote (renditions), not fetched"


def test_an_item_on_its_own_is_ap_media_not_ninjs() -> None:
    text = json.dumps({**_text_item("a1", "Ferry resumes"), "nitf": _BODY})
    assert registry.detect("item.json", text).name == FORMAT
    assert registry.detect("item.json", json.dumps(_PICTURE)).name == FORMAT
    picture = one_line_refusal(json.dumps(_PICTURE).encode(), "p.json")
    assert picture.reason.startswith("is an AP picture item, not text")
    doc = prepare_items(text.encode(), "item.json", RULES, received_at=RECEIVED)[0]
    assert isinstance(doc, Prepared) and doc.source.format == FORMAT and doc.id == "a1"


@pytest.mark.corpus
def test_every_ap_item_unwrapped_is_still_ap_media_and_no_ninjs_file_is() -> None:
    for rel in CORPUS_FILES.relative():
        data = _fixture(rel)["data"]
        for item in [data["item"]] if "item" in data else [entry["item"] for entry in data["items"]]:
            assert registry.detect("x.json", json.dumps(item)).name == FORMAT, rel
    ap = registry.get(FORMAT)
    for path in sorted(need_shared(CORPUS / "wire" / "ninjs").rglob("*.json")):
        try:
            text = decode(path.read_bytes(), path.name).text
        except InputError:
            continue
        assert not ap.sniff(text), path


def test_the_fetched_rendition_may_be_the_nitf_document_itself() -> None:
    nitf = (
        "<nitf><body><body.head><hedline><hl1>Ferry resumes</hl1></hedline></body.head>"
        "<body.content><p>HARBOUR TOWN (AP) — The ferry runs again.</p></body.content></body></nitf>"
    )
    item = {k: v for k, v in _text_item("a1", "").items() if k not in ("headline", "bylines")}
    doc = prepare_items(
        json.dumps({"data": {"item": item}, "nitf": nitf}).encode(), "n.json", RULES, received_at=RECEIVED
    )
    assert isinstance(doc[0], Prepared)
    assert doc[0].content.headline == "Ferry resumes"  # the item's own headline first, else the NITF's
    assert [b.text for b in doc[0].content.body] == ["HARBOUR TOWN (AP) — The ferry runs again."]
    xxe = '<!DOCTYPE nitf [<!ENTITY x SYSTEM "file:///etc/passwd">]><nitf><body><body.content><p>&x;</p></body.content></body></nitf>'
    error = one_line_refusal(json.dumps({"data": {"item": item}, "nitf": xxe}).encode(), "x.json")
    assert "refused: XML with a DTD/entities is not accepted" in error.reason


def test_withdrawn_and_embargoed_items() -> None:
    killed = _text_item("a1", "Ferry resumes", pubstatus="canceled")
    content = prepare_items(json.dumps({"data": {"item": killed}}).encode(), "k.json", RULES, received_at=RECEIVED)
    assert isinstance(content[0], Prepared) and content[0].content.withdrawn is True  # a kill needs no body
    held = {"data": {"item": _text_item("a1", "H", embargoed="2026-01-06T06:00:00Z")}, "nitf": _BODY}
    doc = prepare_items(json.dumps(held).encode(), "e.json", RULES, received_at=RECEIVED)[0]
    assert isinstance(doc, Prepared) and doc.content.embargoed is not None
    assert doc.content.embargoed.isoformat() == "2026-01-06T06:00:00+00:00"
    undated = {"data": {"item": _text_item("a1", "H", pubstatus="embargoed")}, "nitf": _BODY}
    assert "with no embargo time" in one_line_refusal(json.dumps(undated).encode(), "u.json").reason
    unreadable = {"data": {"item": _text_item("a1", "H", embargoed="next week")}, "nitf": _BODY}
    assert "field data.item.embargoed: embargo" in one_line_refusal(json.dumps(unreadable).encode(), "n.json").reason


def test_ap_media_is_listed() -> None:
    assert FORMAT in [line.split()[0] for line in cli("formats").stdout.splitlines()]


# ---------------------------------------------------------------------------------------------- hostile


def _response(**item: object) -> dict[str, Any]:
    return {"data": {"item": {**_text_item("a1", "H"), **item}}, "nitf": copy.deepcopy(_BODY)}


WRONG_TYPES: dict[str, tuple[object, str]] = {
    "headline": (_response(headline=5), "field data.item.headline: must be a string, not a number"),
    "bylines": (_response(bylines="By ANN LEE"), "field data.item.bylines: must be an array, not a string"),
    "byline-by": (_response(bylines=[{"by": ["x"]}]), "field data.item.bylines.0.by: must be a string, not an array"),
    "itemid": (_response(altids={"itemid": 7}), "field data.item.altids.itemid: must be a string, not a number"),
    "altids": (_response(altids="a1"), "field data.item.altids: must be an object, not a string"),
    "keywords": (_response(keywords=[1]), "field data.item.keywords.0: must be a string, not a number"),
    "subject": (_response(subject=[None]), "field data.item.subject.0: must be an object, not null"),
    "type": (_response(type=["text"]), "field data.item.type: must be a string, not an array"),
    "item": ({"data": {"item": "a1"}}, "field data.item: must be an object, not a string"),
    "items": ({"data": {"items": {"item": {}}}}, "field data.items: must be an array, not an object"),
    "entry": ({"data": {"items": [{"item": 3}]}}, "field data.items.0.item: must be an object, not a number"),
    "body_html": ({**_response(), "nitf": {"body_html": 5}}, "field nitf.body_html: must be a string, not a number"),
    "nitf": ({**_response(), "nitf": 5}, "field nitf: must be an object or a string, not a number"),
    "feed-nitf": (
        {"data": {"items": [{"item": _text_item("a1", "H"), "nitf": {"body_html": []}}]}},
        "field data.items.0.nitf.body_html: must be a string, not an array",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_a_member_of_the_wrong_type_is_refused_in_one_line_naming_it(case: str) -> None:
    data, words = WRONG_TYPES[case]
    assert words in one_line_refusal(json.dumps(data).encode(), "wrong.json").reason


def test_deep_json_is_refused_in_one_line() -> None:
    deep = '{"data": {"item": {"headline": "H", "subject": ' + "[" * 100_000 + "]" * 100_000 + "}}}"
    assert "nested too deeply" in one_line_refusal(deep.encode(), "deep.json").reason
    ok = json.dumps(_response(subject=[{"name": "x", "rels": ["direct"], "nested": [[[[[[[[]]]]]]]]}]))
    assert isinstance(prepare_items(ok.encode(), "ok.json", RULES, received_at=RECEIVED)[0], Prepared)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            b'{"data": {"item": {"type": "text", "altids": {"itemid": "a1"}, "headline": "H", ',
            b'{"data": {"items": [{"item": {"type": "text", "headline": "H"}, "nitf": {"body_html": "<p>',
            b'{"nitf": {"body_html": "<p>Body</p>"}, "data": {"item": {"headline": ',
            b'{"altids": {"itemid": "a1"}, "signals": [], "type": "text", "bylines": [',
        ]
    ),
    st.binary(max_size=300),
)
def test_property_any_bytes_after_an_ap_start_give_documents_or_our_error(start: bytes, tail: bytes) -> None:
    documents_or_our_error(start + tail, "a.json")


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=12,
    ),
    st.sampled_from(["headline", "bylines", "altids", "keywords", "subject", "associations", "usageterms", "type"]),
)
def test_property_any_json_value_in_an_item_field_gives_a_document_or_our_error(value: object, field: str) -> None:
    documents_or_our_error(json.dumps(_response(**{field: value})).encode(), "v.json")


if __name__ == "__main__":
    CORPUS_FILES.write(refused=REFUSED)
