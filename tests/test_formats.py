"""Input formats: our fixtures with their expected JSON, the official wire samples, hostile input, detection.

Fixtures live in ``tests/formats/<format>/``: each input ``name.ext`` has ``name.expected.json`` beside it
holding the format, the id, the hints and the whole ``Content``, and ``name.draft.json``, the parser's
draft alone (checked by ``tests/test_parsers.py``). The wire samples are read where they are, in
``../shared/corpus/wire/<format>/`` (skipped, saying so, when it is absent).
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import InputError, InvalidDocument
from ingest.parsers import registry
from ingest.prepare import Prepared, prepare_items
from tests.conftest import CORPUS, RECEIVED, RULES, need_shared, prepared
from tests.test_split import kept_lines

FIXTURES = Path(__file__).resolve().parent / "formats"
WIRE = CORPUS / "wire"
#: A hostile input must be refused within this many seconds (a bound on runaway work, not a benchmark).
QUICK = 5.0
#: Files beside the inputs that hold what an input should give, not inputs themselves.
GOLDEN = (".expected.json", ".draft.json")


def _inputs() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*") if p.is_file() and not p.name.endswith(GOLDEN))


def _expected(path: Path) -> Path:
    return path.with_name(path.name.split(".")[0] + ".expected.json")


def _observed(item: Prepared) -> dict[str, object]:
    return {
        "format": item.source.format,
        "id": item.id,
        "input_version": item.source.input_version,
        "note": item.note,
        "editor": item.editor,
        "headline_repeated": item.source.headline_repeated,
        "internal_notes": item.source.internal_notes,
        "content": item.content.model_dump(mode="json"),
    }


# ---------------------------------------------------------------------------------------------- fixtures


def test_every_format_has_fixtures_and_every_fixture_its_expected_document() -> None:
    formats = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert formats == {p.name for p in registry.all()} - {"text"}  # plain text is covered by test_split
    assert all(_expected(p).is_file() for p in _inputs())
    assert {_expected(p) for p in _inputs()} == set(FIXTURES.glob("*/*.expected.json"))  # none orphaned


@pytest.mark.parametrize("path", _inputs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_gives_its_expected_document(path: Path) -> None:
    expected = json.loads(_expected(path).read_text(encoding="utf-8"))
    observed = _observed(prepared(path.read_bytes(), path.name, RULES))
    assert observed["format"] == path.parent.name
    assert observed == expected


# ---------------------------------------------------------------------------------------------- corpus


def test_a_kill_notice_without_a_body_is_stored_as_withdrawn() -> None:
    path = need_shared(
        WIRE / "newsml-g2" / "superdesk-core/tests/io/fixtures/tag_reuters.com_2016_newsml_L1N14N0FF_version_1542761538"
    )
    content = prepared(path.read_bytes(), path.name, RULES).content
    assert content.withdrawn is True
    assert content.body == []


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ninjs_text(path: Path) -> bool:
    """A ninjs item of type text; an untyped item counts when it has both a headline and a body.

    Left out: the validation test suite (schema cases, most without headline or body), the JSON Schemas,
    and the documentation's 'not-valid' examples.
    """
    if {"validation", "schemas", "not-valid"} & set(path.parts):
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    kind = data.get("type")
    has_body = any(key == "bodies" or key.startswith("body_") for key in data)
    has_headline = any(key == "headlines" or key.startswith("headline") for key in data)
    return kind == "text" or (kind is None and has_body and has_headline)


def _nitf_text(path: Path) -> bool:
    return True  # every file there is a NITF story


def _g2_text(path: Path) -> bool:
    """A newsItem, or a newsMessage carrying one, whose itemClass is text. The unit-test files of the
    NewsML-G2 repository are schema cases (most without headline or body) and are left out."""
    if "unit_test_files" in path.parts:
        return False
    root = ET.parse(path).getroot()  # trusted corpus file; only the tests parse it this way
    if _local(root.tag) not in ("newsItem", "newsMessage"):
        return False
    items = [e for e in root.iter() if _local(e.tag) == "newsItem"]
    classes = [e.get("qcode") or "" for item in items for e in item.iter() if _local(e.tag) == "itemClass"]
    return any(qcode.endswith(":text") for qcode in classes)


#: Text samples that are refused, with the words the refusal must contain and why it is right.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "ninjs": {
        # NTB's sample carries only `descriptions` (a summary), no body.
        "newsinjson/examples/2.1/ntb_text.json": "no body paragraph",
        "newsinjson/examples/3.0/ntb_text.json": "no body paragraph",
    },
    "nitf": {
        # AAP's "lite" fixture: empty title, hedline and body.content.
        "superdesk-core/tests/io/fixtures/aap-finance-lite.xml": "is empty",
    },
    "newsml-g2": {
        # The guideline listings leave the body out (an empty inlineXML) or show metadata only.
        "newsml-g2/examples/LISTING_1_A_NewsML-G2_News_Item.xml": "no body paragraph",
        "superdesk-core/tests/io/fixtures/LISTING 1 A NewsML-G2 News Item.xml": "no body paragraph",
        "newsml-g2/examples/LISTING_27_Company_Financial_Information.xml": "no body paragraph",
        "newsml-g2/examples/LISTING_29_Hop_History.xml": "is empty",
        "newsml-g2/examples/facet-example.xml": "is empty",
        "newsml-g2/examples/facet-example-2.xml": "is empty",
        # SportsML game data inline, no story text.
        "newsml-g2/examples/LISTING_21_A_complete_sample_SportsML-G2_document.xml": "application/sportsml+xml",
    },
}
IS_TEXT: dict[str, Callable[[Path], bool]] = {"ninjs": _ninjs_text, "nitf": _nitf_text, "newsml-g2": _g2_text}
#: How many text samples there are and parse; a change in the corpus or the parsers shows here.
TEXT_SAMPLES = {"ninjs": 30, "nitf": 22, "newsml-g2": 54}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _attempt(path: Path) -> Prepared | InputError:
    """One sample's document (the first item's, for a message of several), or the refusal."""
    try:
        items = prepare_items(path.read_bytes(), path.name, RULES, received_at=RECEIVED)
    except InputError as exc:
        return exc
    first = items[0]
    return first if isinstance(first, Prepared) else first.error or InputError(path.name, "refused")


@pytest.mark.corpus
@pytest.mark.parametrize("fmt", sorted(IS_TEXT))
def test_every_text_sample_of_the_corpus_gives_a_document(fmt: str) -> None:
    root = need_shared(WIRE / fmt)
    samples = [p for p in _files(root) if IS_TEXT[fmt](p)]
    results = {str(p.relative_to(root)): _attempt(p) for p in samples}
    refused = {rel: r.reason for rel, r in results.items() if isinstance(r, InputError)}
    assert len(samples) == TEXT_SAMPLES[fmt]
    assert set(refused) == set(EXPECTED_FAILURES[fmt]), refused
    for rel, words in EXPECTED_FAILURES[fmt].items():
        assert words in refused[rel], (rel, refused[rel])
    for rel, result in results.items():
        if isinstance(result, Prepared):
            assert result.source.format == fmt, rel
            assert result.content.headline.strip(), rel
            withdrawn_notice = result.content.withdrawn and not result.content.body
            assert withdrawn_notice or any(block.type == "paragraph" for block in result.content.body), rel
    assert len(results) - len(refused) >= 0.7 * len(samples)


@pytest.mark.corpus
@pytest.mark.parametrize("fmt", sorted(IS_TEXT))
def test_every_corpus_file_gives_a_document_or_a_one_line_reason(fmt: str) -> None:
    """Schema cases, pictures, packages and broken files included: never a library exception."""
    root = need_shared(WIRE / fmt)
    for path in _files(root):
        result = _attempt(path)
        if isinstance(result, InputError):
            message = str(result)
            assert message.startswith(f"{path.name}: "), message
            assert "\n" not in message and "Traceback" not in message, message


# ---------------------------------------------------------------------------------------------- hostile

_LAUGHS = "".join(f'  <!ENTITY l{i} "{f"&l{i - 1};" * 10}">\n' for i in range(1, 10))
HOSTILE: dict[str, tuple[str, str]] = {
    "billion-laughs.xml": (
        f'<?xml version="1.0"?>\n<!DOCTYPE nitf [\n  <!ENTITY l0 "lol">\n{_LAUGHS}]>\n'
        "<nitf><body><body.content><p>&l9;</p></body.content></body></nitf>",
        "refused: XML with a DTD/entities is not accepted",
    ),
    "xxe.xml": (
        '<?xml version="1.0"?>\n<!DOCTYPE newsItem [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/"><contentMeta><headline>&x;</headline>'
        "</contentMeta></newsItem>",
        "refused: XML with a DTD/entities is not accepted",
    ),
    "broken.xml": ("<nitf><body><p>unclosed</body></nitf>", "not well-formed XML: mismatched tag: line 1"),
    "os-system.md": (
        "---\nheadline: !!python/object/apply:os.system ['touch /tmp/ingest-pwned']\n---\nBody.\n",
        "YAML tag",
    ),
    "alias-bomb.md": (
        "---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n---\nBody.\n",
        "anchors and aliases are not accepted",
    ),
    "unclosed.md": ("---\nheadline: Never closed\n\nA body paragraph.\n", "front matter has no closing '---' line"),
    "not-a-mapping.md": ("---\n- just\n- a list\n---\nHeadline\n\nBody.\n", "must be a mapping"),
    "bad-yaml.md": ("---\nheadline: [unclosed\n---\nHeadline\n\nBody.\n", "front matter is not valid YAML"),
    "bad-date.md": ("---\ndates:\n  published: next Tuesday\n---\nHeadline\n\nBody.\n", "dates.published"),
    "unknown-key.md": ("---\ntag: typo\n---\nHeadline\n\nBody.\n", "front matter tag: is not a known key"),
    "huge-front-matter.md": ("---\nnote: " + "x" * 70_000 + "\n---\nHeadline\n\nBody.\n", "larger than 64 KiB"),
    "deep.json": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "deep-object.json": ('{"headline": "h", "body": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "wrong-types.json": ('{"headline": 5, "body": ["A paragraph."]}', "field headline: Input should be a valid string"),
    "body-not-list.json": ('{"headline": "H", "body": "A paragraph."}', "field body: Input should be a valid list"),
    "unknown.json": ('{"headline": "H", "body": ["P."], "summary": "x"}', "field summary: is not a known key"),
    "bad-version.json": ('{"headline": "H", "body": ["P."], "version": "v2"}', "field version: must be an integer"),
    "array.json": ('[{"headline": "H"}]', "is an array of 1 record, not an article: JSON input must be an object"),
    "ninjs-types.json": ('{"uri": "u", "headline": 5, "body_text": "B."}', "field headline: must be a string"),
    "ninjs-bodies.json": ('{"uri": "u", "headline": "H", "bodies": "B."}', "field bodies: must be an array"),
    "ninjs-value.json": ('{"uri": "u", "headline": "H", "bodies": [{"value": 5}]}', "field bodies.0.value: must be"),
    "impossible-date.md": ("---\ndates:\n  published: 2024-13-45\n---\nH\n\nB.\n", "month must be in 1..12"),
    "deep-yaml.md": ("---\na: " + "[" * 20_000 + "]" * 20_000 + "\n---\nH\n\nB.\n", "nested too deeply"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gives_our_error_in_one_line_quickly(name: str) -> None:
    text, words = HOSTILE[name]
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        prepared(text.encode("utf-8"), name, RULES)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith(f"{name}: ")
    assert words in message
    assert "\n" not in message
    assert elapsed < QUICK, f"{name} took {elapsed:.1f}s"
    assert not Path("/tmp/ingest-pwned").exists()


def test_an_external_dtd_is_never_read(tmp_path: Path) -> None:
    # A DOCTYPE naming a DTD is accepted (NITF files carry them), but the DTD is not fetched or read:
    # the entity it declares stays undefined.
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY x "PWNED">', encoding="utf-8")
    text = f'<!DOCTYPE nitf SYSTEM "{dtd.as_uri()}"><nitf><body><body.content><p>&x;</p></body.content></body></nitf>'
    with pytest.raises(InputError, match="undefined entity"):
        prepared(text.encode(), "dtd.xml", RULES)


def test_a_message_with_several_text_items_gives_one_document_each() -> None:
    root = need_shared(WIRE / "newsml-g2")
    data = (root / "superdesk-core/tests/io/fixtures/ap.xml").read_bytes()
    items = prepare_items(data, "ap.xml", RULES, received_at=RECEIVED)
    assert [type(i).__name__ for i in items] == ["Prepared"] * 3
    docs = [i for i in items if isinstance(i, Prepared)]
    assert [d.path for d in docs] == ["ap.xml#1", "ap.xml#2", "ap.xml#3"]
    assert len({d.id for d in docs}) == 3 and all(d.id_from_name is False for d in docs)  # each its own guid
    assert len({d.content.headline for d in docs}) == 3


def test_a_body_of_too_many_lines_is_refused() -> None:
    body = json.dumps(["x"] * (RULES.max_lines + 1))
    with pytest.raises(InputError, match="limit"):
        prepared(f'{{"headline": "H", "body": {body}}}'.encode(), "long.json", RULES)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            ("n.xml", b"<nitf><body><body.content><p>"),
            ("g.xml", b'<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/"><contentSet><inlineXML>'),
            ("j.json", b'{"uri": "u", "headline": "H", "body_html": "<p>'),
            ("k.json", b'{"headline": "H", "body": ["'),
            ("f.md", b"---\nheadline: H\n"),
        ]
    ),
    st.binary(max_size=300),
)
def test_property_any_bytes_after_a_format_start_give_a_document_or_our_error(
    start: tuple[str, bytes], tail: bytes
) -> None:
    name, head = start
    message = ""
    try:
        prepared(head + tail, name, RULES)
    except InputError as exc:  # anything else fails the test
        message = str(exc)
    assert "\n" not in message


_LINE = st.sampled_from(
    ["A story sentence.", "READ MORE: Other story", "Related Coverage", "Short Headline Item", "Follow us on X"]
)
_BLOCKS = st.lists(
    st.tuples(st.sampled_from(["paragraph", "heading"]), st.lists(_LINE, min_size=1, max_size=3)), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(_BLOCKS)
def test_property_structured_bodies_lose_no_line_and_count_positions(blocks: list[tuple[str, list[str]]]) -> None:
    body = [{"type": kind, "text": "\n".join(lines) if kind == "paragraph" else lines[0]} for kind, lines in blocks]
    data = json.dumps({"headline": "Headline", "body": body or ["x"]}).encode()
    try:
        content = prepared(data, "p.json", RULES).content
    except InvalidDocument:
        return  # no story paragraph left: refused, as plain text would be
    sent = [line for kind, lines in blocks for line in (lines if kind == "paragraph" else lines[:1])] or ["x"]
    assert Counter(kept_lines(content)[1:]) == Counter(sent)
    for items in (content.related_links, content.module_headings, content.boilerplate):
        positions = [item.position for item in items]
        assert positions == sorted(positions) and all(0 <= p <= len(content.body) for p in positions)


# ---------------------------------------------------------------------------------------------- detection


def test_formats_are_listed_in_order() -> None:
    names = [p.name for p in registry.all()]
    assert names[:7] == ["text", "frontmatter", "json", "ap-media", "ninjs", "nitf", "newsml-g2"]  # ties: the first
    assert "atom" in names and len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("fixture", "saved_as", "fmt"),
    [
        ("ninjs/v1.json", "story.txt", "ninjs"),  # content decides, not the file ending
        ("ninjs/v2-withdrawn.json", "story.json", "ninjs"),
        ("json/basic.json", "story.txt", "json"),
        ("json/minimal.json", "story.json", "json"),
        ("nitf/basic.xml", "story.xml", "nitf"),
        ("newsml-g2/basic.xml", "story.xml", "newsml-g2"),
        ("newsml-g2/message.xml", "tag_wire.example,2026_ferry-4", "newsml-g2"),  # Reuters-style: no ending
        ("frontmatter/basic.md", "story.txt", "frontmatter"),
        ("frontmatter/headline-key.txt", "story", "frontmatter"),
    ],
)
def test_the_parser_is_picked_by_content(fixture: str, saved_as: str, fmt: str) -> None:
    assert prepared((FIXTURES / fixture).read_bytes(), saved_as, RULES).source.format == fmt


def test_plain_text_stays_text_and_markdown_without_front_matter_is_read_as_text() -> None:
    data = b"Headline\n\nA body paragraph.\n"
    assert prepared(data, "story.txt", RULES).source.format == "text"
    markdown = prepared(b"# Headline\n\nA body paragraph.\n", "story.md", RULES)
    assert markdown.source.format == "frontmatter"
    assert markdown.content.headline == "Headline"


def test_a_credit_that_opens_a_wire_body_is_the_byline() -> None:
    path = need_shared(WIRE / "newsml-g2/superdesk-aap/server/aap/tests/io/fixtures/reuters_byline_in_body.xml")
    content = prepared(path.read_bytes(), path.name, RULES).content
    assert content.byline == "By Joseph Ax"
    assert all("By Joseph Ax" not in block.text for block in content.body)
    assert content.body[0].text.startswith("(Adds Gov. Cuomo")  # the write-through advisory stays, in place


def test_a_sentence_that_starts_with_by_stays_in_the_body() -> None:
    data = b'{"headline": "H", "body": ["By the time the vote came, it was over.", "Second."]}'
    content = prepared(data, "s.json", RULES).content
    assert content.byline is None and content.body[0].text == "By the time the vote came, it was over."


def test_archive_items_take_their_times_from_content_meta() -> None:
    item = (
        '<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="urn:stt:1"><itemMeta>'
        '<itemClass qcode="ninat:text"/></itemMeta><contentMeta><contentCreated>2018-04-01T04:00:44</contentCreated>'
        "<contentModified>2018-04-02T05:00:00+03:00</contentModified><headline>Arkisto</headline></contentMeta>"
        '<contentSet><inlineXML contenttype="application/xhtml+xml"><html xmlns="http://www.w3.org/1999/xhtml">'
        "<body><p>Teksti.</p></body></html></inlineXML></contentSet></newsItem>"
    )
    content = prepared(item.encode(), "stt.xml", RULES).content
    assert content.published_at is not None and content.published_at.isoformat() == "2018-04-01T04:00:44+00:00"
    assert content.updated_at is not None and content.updated_at.isoformat() == "2018-04-02T05:00:00+03:00"


@pytest.mark.parametrize(
    ("relative", "field", "expected"),
    [
        ("newsml-g2/newsml-g2/examples/LISTING_22_Sports_story_in_NewsML-G2NITF.xml", "abstract", "A pair of teams"),
        ("newsml-g2/newsml-g2/examples/Receiver View.xml", "usage_terms", "NAG Example: Contact your local office"),
        ("newsml-g2/newsinjson/tools/xslt/TT_newsmlg2_sample.xml", "copyright", "TT"),
    ],
)
def test_what_the_newsroom_needs_is_kept(relative: str, field: str, expected: str) -> None:
    path = need_shared(WIRE / relative)
    value = getattr(prepared(path.read_bytes(), path.name, RULES).content, field)
    assert isinstance(value, str) and value.startswith(expected)


def test_ninjs_associations_are_references_with_captions_and_credits() -> None:
    path = need_shared(WIRE / "ninjs/newsinjson/documentation/includes/examples/1.6/003_associations_example.json")
    content = prepared(path.read_bytes(), path.name, RULES).content
    assert content.associations and all(a.uri for a in content.associations)
    assert {a.kind for a in content.associations} <= {"picture", "video", "graphic", "audio", "text", "other"}
    assert content.associations[0].kind == "graphic"


def test_links_inside_html_paragraphs_are_recorded_and_the_text_stays_exact() -> None:
    body = (
        '<p>The council <a href="https://example.org/vote">voted 31 to 12</a> on Tuesday.</p>'
        '<p>READ MORE <a href="https://example.org/ferry">Ferry Timetable Extended</a></p>'
        '<p>Buses return on <a href="https://example.org/buses"> Monday </a>.</p>'
    )
    data = json.dumps({"uri": "urn:x:1", "headline": "Budget Passes", "body_html": body}).encode()
    content = prepared(data, "links.json", RULES).content
    assert [b.text for b in content.body] == ["The council voted 31 to 12 on Tuesday.", "Buses return on Monday ."]
    assert [(link.block, link.text, link.url) for link in content.inline_links] == [
        (0, "voted 31 to 12", "https://example.org/vote"),
        (1, "Monday", "https://example.org/buses"),
    ]
    for link in content.inline_links:
        assert content.body[link.block].text[link.start : link.end] == link.text
    assert [link.title for link in content.related_links] == ["Ferry Timetable Extended"]  # a module, taken out


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>', "root element <rss>"),
        ("<html><body><h1>Big story</h1><p>Text.</p></body></html>", "is an HTML page"),
        ("<results><result id='1'/></results>", "root element <results>"),
    ],
)
def test_markup_no_format_reads_is_refused_by_name_not_stored_as_text(text: str, words: str) -> None:
    with pytest.raises(InputError, match="no input format reads it") as caught:
        prepared(text.encode(), "feed", RULES)
    assert words in str(caught.value)


def test_escaped_typesetting_dashes_read_as_dashes() -> None:
    path = need_shared(WIRE / "newsml-g2/superdesk-core/tests/io/fixtures/stt_newsml_endash.xml")
    text = " ".join(block.text for block in prepared(path.read_bytes(), path.name, RULES).content.body)
    assert "800–1" in text and "35–40 prosenttia" in text and "endash" not in text


def test_times_without_an_offset_are_read_in_the_sources_zone_and_the_document_says_which() -> None:
    from ingest.prepare import prepare_items

    item = (
        b'<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="urn:stt:2"><itemMeta>'
        b'<itemClass qcode="ninat:text"/><versionCreated>2018-04-02T09:00:00+03:00</versionCreated></itemMeta>'
        b"<contentMeta><contentCreated>2018-04-01T04:00:44</contentCreated><headline>Arkisto</headline></contentMeta>"
        b'<contentSet><inlineXML contenttype="application/xhtml+xml"><html xmlns="http://www.w3.org/1999/xhtml">'
        b"<body><p>Teksti.</p></body></html></inlineXML></contentSet></newsItem>"
    )
    (helsinki,) = prepare_items(item, "a.xml", RULES, received_at=RECEIVED, timezone="Europe/Helsinki")
    assert isinstance(helsinki, Prepared)
    assert helsinki.content.published_at is not None
    assert helsinki.content.published_at.isoformat() == "2018-04-01T04:00:44+03:00"  # EEST that day
    assert helsinki.content.updated_at is not None and helsinki.content.updated_at.utcoffset().total_seconds() == 10800
    assert helsinki.source.assumed_timezone == "Europe/Helsinki"
    (utc,) = prepare_items(item, "a.xml", RULES, received_at=RECEIVED)
    assert isinstance(utc, Prepared) and utc.source.assumed_timezone == "UTC"
    assert utc.content.published_at is not None and utc.content.published_at.isoformat() == "2018-04-01T04:00:44+00:00"
    every_time_zoned = prepared(item.replace(b"04:00:44<", b"04:00:44Z<"), "b.xml", RULES)
    assert every_time_zoned.source.assumed_timezone is None


def test_a_source_timezone_must_be_a_real_zone(tmp_path: Path) -> None:
    from ingest.errors import ConfigError
    from ingest.settings import load_settings

    config = tmp_path / "ingest.yaml"
    config.write_text("sources:\n  - {name: stt, location: /in, timezone: Finland/Helsinki}\n")
    with pytest.raises(ConfigError, match=r"sources\.0\.timezone \(from .*\): 'Finland/Helsinki' is not an IANA"):
        load_settings(config=config, env={})


def test_fields_laid_out_apart_in_spans_are_not_glued_into_one_word() -> None:
    path = need_shared(WIRE / "ninjs/newsinjson/examples/2.1/tt_text_image_2.json")
    texts = [block.text for block in prepared(path.read_bytes(), path.name, RULES).content.body]
    assert "Försvar TT" in texts and not any("FörsvarTT" in text for text in texts)
