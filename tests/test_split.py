"""The splitter and the plain-text parser: the seed, our examples, and properties over any input."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import InputError, InvalidDocument
from ingest.models import Content
from ingest.split import Rules, paragraphs, split
from tests.conftest import EXAMPLES, RULES, SEED, need_shared, prepared


def kept_lines(content: Content) -> list[str]:
    """Every line the document keeps, wherever it went."""
    lines = [content.headline]
    lines += [line for block in content.body for line in block.text.split("\n")]
    lines += [item.text for item in [*content.related_links, *content.module_headings, *content.boilerplate]]
    return [line.strip() for line in lines]


def input_lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]


def assert_nothing_lost(text: str, content: Content, headline_repeated: bool) -> None:
    expected = Counter(input_lines(text))
    got = Counter(kept_lines(content))
    if headline_repeated:
        got[content.headline.strip()] += 1
    assert got == expected


# ---------------------------------------------------------------------------------------------- the seed


def test_seed_splits_into_story_links_heading_and_footer() -> None:
    data = need_shared(SEED).read_bytes()
    result = prepared(data, SEED.name, RULES)
    doc = result.content
    text = data.decode("utf-8")
    paras = [p for p in text.split("\n\n") if p.strip()]
    assert doc.headline == "Iran Offers Iraq ‘Everything it Needs’"
    assert result.source.headline_repeated is True
    story = [p for p in paras[2:] if not p.startswith(("READ MORE", "Related from", "Like us"))]
    assert len(story) == 18
    assert [b.text for b in doc.body] == story  # byte-exact, curly quotes and dashes intact
    assert [(link.label, link.title, link.position) for link in doc.related_links] == [
        ("READ MORE", "Stars and Stripes 2, Black Stars 1", 2),
        ("READ MORE", "U.S. Defeats Ghana, 2-1", 4),
        ("READ MORE", "Egypt Releasing Al Jazeera Journalist", 6),
        ("READ MORE", "U.S. to Iran: Intervene in Iraq", 8),
        ("READ MORE", "Non-Muslims Executed at World Cup Party", 10),
        ("READ MORE", "Germany's Mueller Scores Hat Trick", 12),
        ("READ MORE", "Thousands Flee Violence in Iraq", 14),
        ("READ MORE", "World Cup Team’s Naked Protest", 16),
    ]
    assert [link.media for link in doc.related_links].count("PHOTOS") == 1
    assert [(h.text, h.position) for h in doc.module_headings] == [("Related from The Daily Beast", 18)]
    assert [(b.kind, b.position) for b in doc.boilerplate] == [("cta", 18)]
    assert doc.boilerplate[0].text.startswith("Like us on Facebook - Follow us on Twitter")
    assert_nothing_lost(text, doc, headline_repeated=True)


# ---------------------------------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.txt")), ids=lambda p: p.name)
def test_examples_parse_with_nothing_lost(path) -> None:  # type: ignore[no-untyped-def]
    result = prepared(path.read_bytes(), path.name, RULES)
    from ingest.reader import decode

    text = decode(path.read_bytes(), path.name).text
    assert result.content.body
    assert result.content.related_links
    assert_nothing_lost(text, result.content, result.source.headline_repeated)


def test_heading_takes_the_headlines_under_it_but_not_a_sentence() -> None:
    lines = [
        "Story one.",
        "",
        "More from The Gazette",
        "Council Approves Lanes",
        "Tram Consultation Opens",
        "",
        "This is a sentence of body text that follows the module.",
        "",
    ]
    out = split(lines, RULES)
    assert [b.text for b in out.body] == ["Story one.", "This is a sentence of body text that follows the module."]
    assert [(link.title, link.heading, link.position) for link in out.related_links] == [
        ("Council Approves Lanes", "More from The Gazette", 1),
        ("Tram Consultation Opens", "More from The Gazette", 1),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Related talks between the two sides broke down last year, officials said.",
        "More than 200 people attended the meeting on Tuesday evening.",
        "Read more carefully, the report says something else entirely.",
        "Follow-up inspections found no further problems at the plant.",
        "Share prices fell 3% in early trading.",
        "Subscribers to the service will see prices rise in March.",
    ],
)
def test_genuine_paragraphs_that_start_like_modules_stay_in_the_body(line: str) -> None:
    out = split([line], RULES)
    assert [b.text for b in out.body] == [line]


@pytest.mark.parametrize(
    ("line", "label", "title", "url", "media"),
    [
        ("READ MORE: Flood defences tested", "READ MORE", "Flood defences tested", None, None),
        (
            "Read more: Storm | The Times http://example.org/x",
            "Read more",
            "Storm | The Times",
            "http://example.org/x",
            None,
        ),
        ("RELATED: Council vote delayed", "RELATED", "Council vote delayed", None, None),
        ("SEE ALSO Pictures of the week (GALLERY)", "SEE ALSO", "Pictures of the week", None, "GALLERY"),
        ("ALSO READ: Budget explained", "ALSO READ", "Budget explained", None, None),
        ("• MORE: Ferry strike called off", "MORE", "Ferry strike called off", None, None),
        ("https://example.org/story/1", None, "https://example.org/story/1", "https://example.org/story/1", None),
    ],
)
def test_link_lines_give_label_title_url_and_media(line: str, label, title, url, media) -> None:  # type: ignore[no-untyped-def]
    out = split(["Body first.", "", line], RULES)
    (link,) = out.related_links
    assert (link.label, link.title, link.url, link.media, link.text) == (label, title, url, media, line)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Follow us on Twitter", "cta"),
        ("Sign up for The Cheat Sheet Newsletter", "cta"),
        ("Click here to subscribe", None),  # a link-out: recirculation, not boilerplate
        ("Advertisement", "page-furniture"),
        ("Scroll down for video", "page-furniture"),
    ],
)
def test_calls_to_action_and_furniture_become_boilerplate(line: str, kind: str | None) -> None:
    out = split(["Body first.", "", line], RULES)
    assert out.body == split(["Body first."], RULES).body
    assert [b.kind for b in out.boilerplate] == ([kind] if kind else [])


def test_one_paragraph_a_line_when_there_are_no_blank_lines() -> None:
    assert paragraphs(["a", "b", "c"]) == [["a"], ["b"], ["c"]]
    assert paragraphs(["a", "b", "", "c"]) == [["a", "b"], ["c"]]


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("", "headline"),
        ("   \n\n \t\n", "headline"),
        ("Just a headline\n", "body"),
        ("Headline\n\nREAD MORE Something else\n\nFollow us on Twitter\n", "body"),
        ("Follow us on Twitter\n\nSign up now\n", "headline"),
    ],
)
def test_a_document_needs_a_headline_and_a_body_paragraph(text: str, check: str) -> None:
    with pytest.raises(InvalidDocument) as err:
        prepared(text.encode(), "story.txt", RULES)
    assert err.value.check == check
    assert str(err.value).startswith("story.txt: ")


# ---------------------------------------------------------------------------------------------- properties

_words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=0, max_size=40)
_module_lines = st.sampled_from(
    [
        "READ MORE Some Headline",
        "Read more: http://example.org/a",
        "Related from The Site",
        "More from X",
        "RELATED:",
        "Follow us on Twitter",
        "Sign up for our newsletter",
        "SEE ALSO: Thing",
        "Advertisement",
        "Council Approves Lanes",
        "https://example.org/x",
        "  ",
        "",
        "Related talks continued today.",
    ]
)
_lines = st.lists(st.one_of(_words, _module_lines), min_size=0, max_size=40)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_lines, st.sampled_from(["\n", "\r\n", "\r"]))
def test_property_every_line_lands_in_exactly_one_place(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    try:
        result = prepared(text.encode("utf-8"), "p.txt", RULES)
    except InputError:
        return
    assert_nothing_lost(text, result.content, result.source.headline_repeated)
    for item in [*result.content.related_links, *result.content.module_headings, *result.content.boilerplate]:
        assert 0 <= item.position <= len(result.content.body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_property_any_bytes_give_a_document_or_our_error_deterministically(data: bytes) -> None:
    def run() -> object:
        try:
            p = prepared(data, "any.txt", RULES)
        except InputError as exc:
            return ("error", str(exc))
        return ("doc", p.content.sha256())

    first = run()
    assert run() == first


@pytest.mark.parametrize(
    ("line", "title", "media"),
    [
        ("READ MORE $1m payoff for former Shell boss (PHOTOS)", "$1m payoff for former Shell boss", "PHOTOS"),
        ("READ MORE £5bn takeover collapses", "£5bn takeover collapses", None),
        ("Read More #MeToo, ten years on", "#MeToo, ten years on", None),
        ("READ MORE 3 things to know about the vote", "3 things to know about the vote", None),
        ("READ MORE why the bridge closed", "why the bridge closed", None),
    ],
)
def test_a_teaser_label_takes_any_title_after_it(line: str, title: str, media: str | None) -> None:
    out = split([line], RULES)
    assert out.body == []
    label = " ".join(line.split()[:2])
    assert [(link.label, link.title, link.media) for link in out.related_links] == [(label, title, media)]


def _one_by_one(rules: Rules, line: str) -> str | None:
    """What ``Rules.classify`` must answer: the first rule that matches, tried in order (no shortcut)."""
    if len(line) > rules.line_max_chars:
        return None
    bare = line.strip().lstrip(" \t>»—–-*•|")
    return next((rule.name for rule in rules.rules if rule.match(bare)), None)


_TEASERS = st.sampled_from(
    ["READ MORE ", "Read more: ", "Related: ", "Follow us on ", "Sign up for our newsletter", "hh/ph", "END", "", "x"]
)


@settings(max_examples=300, deadline=None)
@given(_TEASERS, st.text(max_size=60))
def test_property_the_combined_shortcut_never_changes_a_verdict(label: str, rest: str) -> None:
    line = label + rest
    found = RULES.classify(line)
    assert (found[0].name if found else None) == _one_by_one(RULES, line)


def test_rules_that_refer_back_to_their_own_groups_still_match() -> None:
    import re

    from ingest.split import Rule

    rules = Rules(
        (
            Rule("grouped", "furniture", re.compile(r"^(x)yz")),
            Rule("repeat", "furniture", re.compile(r"^(\w+) \1$")),
            Rule("named", "furniture", re.compile(r"^(?P<w>q+)-(?P=w)$")),
        )
    )
    verdicts = [rules.classify(t) for t in ("word word", "qq-qq", "xyz", "a b")]
    assert [v[0].name if v else None for v in verdicts] == ["repeat", "named", "grouped", None]
