"""Parsers on their own, compose on its own, and the import rules that keep them apart.

Each fixture ``tests/formats/<format>/<name>.<ext>`` has ``<name>.draft.json`` beside it: the parser's
``Draft`` (what the input says, before any module rule), so a parser change shows in its own golden file
and a module-rule change does not touch it. After a deliberate parser change, rewrite them with
``python -m tests.test_parsers`` and read the diff.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.compose import MAX_HEADLINE, compose
from ingest.errors import ConfigError, InvalidDocument
from ingest.models import Association, Content
from ingest.parsers import Registry, registry
from ingest.parsers.base import Draft, Link, RawBlock
from ingest.reader import decode
from ingest.rules import load_rules
from ingest.settings import ModuleSettings
from ingest.split import Rules

RULES: Rules = load_rules(ModuleSettings())
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "formats"
PARSERS = ROOT / "ingest" / "parsers"
GOLDEN = (".expected.json", ".draft.json")
#: Private modules that know one vocabulary on purpose (NITF arrives alone and inside other formats).
VOCABULARIES = {"ingest.parsers._nitf"}


def _inputs() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*") if p.is_file() and not p.name.endswith(GOLDEN))


def _golden(path: Path) -> Path:
    return path.with_name(path.name.split(".")[0] + ".draft.json")


def _draft(path: Path) -> Draft:
    """The fixture's draft, from the parser its folder names (content detection is tested elsewhere)."""
    return registry.get(path.parent.name).parse(decode(path.read_bytes(), path.name), path.name)


def as_json(draft: Draft) -> dict[str, object]:
    """A draft as plain JSON, fields in the order ``Draft`` declares them."""

    def plain(value: object) -> object:
        if isinstance(value, RawBlock):
            return {"kind": value.kind, "text": value.text}
        if isinstance(value, Link):
            return dataclasses.asdict(value)
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Association):
            return value.model_dump(mode="json")
        if isinstance(value, tuple):
            return [plain(item) for item in value]
        return value

    return {field.name: plain(getattr(draft, field.name)) for field in dataclasses.fields(draft)}


# ---------------------------------------------------------------------------------------------- drafts


def test_every_fixture_has_its_draft_and_every_draft_its_fixture() -> None:
    assert {_golden(p) for p in _inputs()} == set(FIXTURES.glob("*/*.draft.json"))


@pytest.mark.parametrize("path", _inputs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_gives_its_draft(path: Path) -> None:
    assert as_json(_draft(path)) == json.loads(_golden(path).read_text(encoding="utf-8"))


def test_plain_text_is_handed_on_line_by_line_with_nothing_decided() -> None:
    text = "Share this story\n\nHeadline\nHeadline\n\nREAD MORE: Other\n"
    draft = registry.get("text").parse(decode(text.encode(), "s.txt"), "s.txt")
    assert draft == Draft(lines=tuple(text.split("\n")))


def test_json_claims_only_objects_of_its_own_keys() -> None:
    json_parser, ninjs = registry.get("json"), registry.get("ninjs")
    own = '{"headline": "H", "body": ["P."], "tags": ["a"]}'
    assert json_parser.sniff(own) and not ninjs.sniff(own)
    wire = '{"headline": "H", "body": ["P."], "uri": "u"}'
    assert ninjs.sniff(wire) and not json_parser.sniff(wire)
    typo = '{"headline": "H", "body": ["P."], "summary": "x"}'
    assert not json_parser.sniff(typo) and not ninjs.sniff(typo)
    assert registry.detect("story.json", typo) is json_parser  # the file ending decides: the typo is named


def test_the_registry_refuses_a_format_twice() -> None:
    twice = Registry()
    twice.register(registry.get("text"))
    with pytest.raises(ConfigError, match="registered twice"):
        twice.register(registry.get("text"))


# ---------------------------------------------------------------------------------------------- imports


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, ``from package import module`` included (ast: what the source says)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


SOURCES = {_module(path): path for path in sorted(PARSERS.glob("*.py"))}
FORMAT_MODULES = {type(parser).__module__ for parser in registry.all()}


def test_every_public_module_in_parsers_is_a_registered_format() -> None:
    public = {name for name in SOURCES if not name.rsplit(".", 1)[-1].startswith("_")}
    assert public - {"ingest.parsers", "ingest.parsers.base"} == FORMAT_MODULES


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_parsers_know_neither_the_splitter_nor_compose(module: str) -> None:
    bad = {m for m in _imports(SOURCES[module]) if m.startswith(("ingest.split", "ingest.compose", "ingest.rules"))}
    assert not bad


@pytest.mark.parametrize("module", sorted(set(SOURCES) - {"ingest.parsers"}))
def test_no_module_in_parsers_imports_a_format_module(module: str) -> None:
    # Only the registry (parsers/__init__.py) lists the formats; helpers and formats import none of them.
    assert not (_imports(SOURCES[module]) & FORMAT_MODULES) - {module}


@pytest.mark.parametrize(
    "module", sorted(m for m in SOURCES if m.rsplit(".", 1)[-1].startswith("_") and m not in VOCABULARIES)
)
def test_shared_helpers_know_no_format_vocabulary(module: str) -> None:
    assert not _imports(SOURCES[module]) & VOCABULARIES


# ---------------------------------------------------------------------------------------------- compose


def _refusal(draft: Draft) -> InvalidDocument:
    with pytest.raises(InvalidDocument) as caught:
        compose(draft, RULES, "f.txt")
    assert str(caught.value).startswith("f.txt: ") and "\n" not in str(caught.value)
    return caught.value


def test_one_line_limit_for_every_layout() -> None:
    many = RULES.max_lines + 1
    lines = _refusal(Draft(lines=("H", "", *["x"] * many)))
    blocks = _refusal(Draft(headline="H", blocks=tuple(RawBlock("paragraph", "x") for _ in range(many))))
    assert lines.check == blocks.check == "size-limit"
    assert lines.reason == f"has {many + 1:,} non-blank lines, above the {RULES.max_lines:,} limit"
    assert blocks.reason == f"has {many:,} non-blank lines, above the {RULES.max_lines:,} limit"


def test_headlines_above_the_limit_are_refused_in_either_layout() -> None:
    long = "x" * (MAX_HEADLINE + 1)
    assert "too long for a headline" in _refusal(Draft(lines=(long, "", "Body."))).reason
    stated = _refusal(Draft(headline=long, blocks=(RawBlock("paragraph", "Body."),)))
    assert stated.check == "headline" and "above the 1,000 limit" in stated.reason


def test_plain_layout_skips_a_share_bar_drops_the_repeat_and_keeps_every_line() -> None:
    composed = compose(Draft(lines=("Share on Facebook", "", "Headline", "Headline", "", "Body.", "")), RULES, "f")
    content = composed.content
    assert (content.headline, composed.headline_repeated) == ("Headline", True)
    assert [b.text for b in content.body] == ["Body."]
    assert [(b.text, b.position) for b in content.boilerplate] == [("Share on Facebook", 0)]


def test_markdown_marks_are_not_part_of_a_headline() -> None:
    lines = ("#  Harbour   tunnel #", "", "Body.")
    assert compose(Draft(lines=lines, markdown=True), RULES, "f").content.headline == "Harbour tunnel"
    assert compose(Draft(lines=lines), RULES, "f").content.headline == "#  Harbour   tunnel #"
    stated = compose(Draft(headline="Harbour", lines=("# Harbour", "", "Body."), markdown=True), RULES, "f")
    assert stated.headline_repeated and [b.text for b in stated.content.body] == ["Body."]


def test_blocks_drop_an_h1_repeat_split_by_run_and_place_listed_links_after_the_body() -> None:
    draft = Draft(
        headline="Ferry  strike",
        blocks=(
            RawBlock("heading", "Ferry strike"),
            RawBlock("paragraph", "First."),
            RawBlock("heading", "Related Coverage"),  # a module heading, not story structure
            RawBlock("paragraph", "Council Approves Lanes"),
            RawBlock("heading", "What next"),
            RawBlock("paragraph", "Second.\nREAD MORE: Fares rise"),
        ),
        links=(Link("Timetable", "https://example.org/t", "SEE ALSO"),),
    )
    composed = compose(draft, RULES, "f")
    content = composed.content
    assert (content.headline, composed.headline_repeated) == ("Ferry strike", True)
    assert [(b.type, b.text) for b in content.body] == [
        ("paragraph", "First."),
        ("heading", "What next"),
        ("paragraph", "Second."),
    ]
    assert [(h.text, h.position) for h in content.module_headings] == [("Related Coverage", 1)]
    assert [(x.title, x.heading, x.position, x.text) for x in content.related_links] == [
        ("Council Approves Lanes", "Related Coverage", 1, "Council Approves Lanes"),
        ("Fares rise", None, 3, "READ MORE: Fares rise"),
        ("Timetable", None, 3, "SEE ALSO: Timetable https://example.org/t"),
    ]


def test_a_kill_notice_may_have_no_body_but_a_story_must() -> None:
    notice = compose(Draft(headline="Killed", withdrawn=True), RULES, "f").content
    assert notice.withdrawn and notice.body == []
    refused = _refusal(Draft(headline="H", blocks=(RawBlock("paragraph", "READ MORE: x"),), body_from="bodies"))
    assert (refused.check, refused.field) == ("body", "body")
    assert refused.reason == "has no body paragraph: all 1 lines of bodies are link modules or boilerplate"


@pytest.mark.parametrize(
    ("draft", "words"),
    [
        (Draft(lines=("", " ")), "is empty: no headline and no body"),
        (Draft(lines=("Follow us on Twitter",)), "has no headline: every line is a link module or boilerplate"),
        (Draft(lines=("Headline",)), "has a headline but no body paragraph"),
        (Draft(headline_from="hl1", body_from="content"), "is empty: no headline (hl1) and no body (content)"),
    ],
)
def test_refusals_say_what_is_missing_and_where_the_format_looked(draft: Draft, words: str) -> None:
    assert _refusal(draft).reason == words


def test_a_value_the_document_refuses_is_named_by_field() -> None:
    refused = _refusal(Draft(headline="H", blocks=(RawBlock("heading", ""), RawBlock("paragraph", "P."))))
    assert refused.field == "text" and refused.reason.startswith("field text: ")


_LINE = st.sampled_from(
    ["A story sentence.", "READ MORE: Other", "Related Coverage", "Short Headline Item", "Follow us on X", "H", ""]
)


def _kept(content: Content) -> Counter[str]:
    lines = [line for block in content.body for line in block.text.split("\n")]
    lines += [link.text for link in content.related_links]
    lines += [heading.text for heading in content.module_headings]
    lines += [item.text for item in content.boilerplate]
    return Counter(line.strip() for line in lines)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["paragraph", "heading"]), st.lists(_LINE, max_size=3)), max_size=10))
def test_property_compose_places_every_line_of_a_block_draft_once(pieces: list[tuple[str, list[str]]]) -> None:
    # As formats send them: a heading is one non-blank line, a paragraph any lines.
    blocks = tuple(
        RawBlock("paragraph", "\n".join(ls)) if kind == "paragraph" else RawBlock("heading", ls[0])
        for kind, ls in pieces
        if kind == "paragraph" or (ls and ls[0])
    )
    try:
        composed = compose(Draft(headline="H", blocks=blocks), RULES, "p")
    except InvalidDocument:
        return
    sent = Counter(line.strip() for block in blocks for line in block.text.split("\n") if line.strip())
    if composed.headline_repeated:
        sent -= Counter(line.strip() for line in blocks[0].text.split("\n") if line.strip())
    assert _kept(composed.content) == sent


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE, max_size=12), st.booleans())
def test_property_compose_places_every_line_of_a_plain_draft_once(lines: list[str], markdown: bool) -> None:
    try:
        composed = compose(Draft(lines=tuple(lines), markdown=markdown), RULES, "p")
    except InvalidDocument:
        return
    content = composed.content
    sent = Counter(line.strip() for line in lines if line.strip())
    kept = _kept(content) + Counter([content.headline] * (2 if composed.headline_repeated else 1))
    assert kept == sent


def _write_drafts() -> None:
    """Rewrite every fixture's ``.draft.json`` from the parsers as they are now."""
    for path in _inputs():
        text = json.dumps(as_json(_draft(path)), indent=2, ensure_ascii=False) + "\n"
        _golden(path).write_text(text, encoding="utf-8")
        print(_golden(path).relative_to(ROOT))


if __name__ == "__main__":
    _write_drafts()


def test_a_structured_item_without_a_headline_takes_its_first_sentence_and_says_so() -> None:
    draft = Draft(blocks=(RawBlock("paragraph", "Senate passes the budget. More to come."),), headline_from="hl1")
    composed = compose(draft, RULES, "alert.xml")
    assert (composed.content.headline, composed.headline_derived) == ("Senate passes the budget.", "first-sentence")
    assert composed.content.body[0].text == "Senate passes the budget. More to come."  # derived, not taken
    kill = compose(Draft(withdrawn=True), RULES, "kill.json")
    assert (kill.content.headline, kill.headline_derived) == ("Withdrawn", "stored-version")
