"""A parser's draft plus the module rules make the document content: the one place a body meets the splitter.

Parsers only read (``ingest.parsers``): each hands over a ``Draft``, the input as it states itself.
Everything every format must obey happens here, once:

1. **Limits.** A body of more than ``rules.max_lines`` non-blank lines is refused, so time and memory stay
   bounded; a headline is at most ``MAX_HEADLINE`` characters.
2. **The headline.** A stated headline is one line (its whitespace collapsed). In the plain-text layout it
   is the first non-blank line that is not a module (scrapers put share bars above it; those lines are
   kept as modules); a Markdown ``# `` before it is not part of it. A body that opens by repeating the
   headline (a scraping artefact, an ``h1`` of it) loses that line, and ``headline_repeated`` says so.
3. **The splitter, once per run of lines.** Lines between story sub-headings are one run; a sub-heading
   that reads like a module heading ("Related Coverage") is not story structure and goes to the splitter
   with the lines under it. Positions count body blocks over the whole document. Links a format lists
   apart from its body are placed after it.
4. **The document rules.** A headline, and at least one body paragraph, except for a withdrawn item: a
   kill notice may carry no story at all, the withdrawal is the news.

Nothing is lost: every non-blank line of the draft lands in exactly one place (the headline, a body
block, a related link, a module heading, boilerplate); the repeated headline is the one exception.
Refusals are ``InvalidDocument`` errors of one line naming the file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from ingest.errors import Check, InvalidDocument, describe_validation
from ingest.models import Block, Content, HeadlineDerived, InlineLink, RelatedLink
from ingest.parsers._values import assumed
from ingest.parsers.base import Draft, Link, RawBlock
from ingest.split import Rules, Split, split

#: Longer headlines are refused (in plain text, one enormous first line is not an article).
MAX_HEADLINE = 1000
# A Markdown ATX heading: "# Title", "## Title ##".
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")


@dataclass(frozen=True)
class Composed:
    """The document content made from one draft."""

    content: Content
    #: The body opened by repeating the headline; that line was dropped (the one input line not kept).
    headline_repeated: bool
    #: Where the headline came from when the input stated none.
    headline_derived: HeadlineDerived | None = None
    #: The zone read into times the input gave without an offset (None: every time had one).
    assumed_timezone: str | None = None


def _localized(draft: Draft, zone: ZoneInfo | None) -> tuple[Draft, str | None]:
    """The draft with its offset-less times read in ``zone`` (UTC when None), and the zone's name."""
    fields = ("published_at", "updated_at", "embargoed")
    found = {field: getattr(draft, field) for field in fields if assumed(getattr(draft, field))}
    if not found:
        return draft, None
    where = zone or UTC
    changed = {field: moment.replace(tzinfo=where) for field, moment in found.items()}
    return dataclasses.replace(draft, **changed), str(zone.key) if zone is not None else "UTC"


def compose(draft: Draft, rules: Rules, name: str, zone: ZoneInfo | None = None) -> Composed:
    """The document content of ``draft`` under ``rules``; ``InvalidDocument`` naming ``name`` when refused.

    Times the input gave without an offset are read in ``zone`` (the source's ``timezone``), else in UTC,
    and ``Composed.assumed_timezone`` says which."""
    draft, assumed_zone = _localized(draft, zone)
    try:
        return dataclasses.replace(_compose(draft, rules, name), assumed_timezone=assumed_zone)
    except ValidationError as exc:  # a value the document model refuses, translated once
        field, reason = describe_validation(exc)
        raise InvalidDocument(name, f"field {field}: {reason}", check=Check.VALIDATE, field=field) from exc


def _compose(draft: Draft, rules: Rules, name: str) -> Composed:
    _within_limit(draft, rules, name)
    byline = draft.byline
    inline_links: list[InlineLink] = []
    derived: HeadlineDerived | None = None
    if draft.lines is not None and draft.headline is None:
        headline, repeated, leading, parts = _plain(draft.lines, draft.markdown, rules, name)
        _place_links(parts, draft.links)
        _require_paragraph(parts, draft.withdrawn, None, name)
        parts = _after(leading, parts)
    else:
        if draft.lines is None:
            blocks, repeated = _blocks_without_repeat(draft.blocks, draft.headline)
            blocks, byline = _byline_in_body(blocks, byline)
            parts = _split_blocks(blocks, rules)
            inline_links = _inline_links(parts.body, blocks)
        else:
            lines, repeated = _lines_without_repeat(draft.lines, draft.headline or "", draft.markdown)
            parts = split(lines, rules)
        _place_links(parts, draft.links)
        headline, derived = _stated_headline(draft, parts, name)
        _require_paragraph(parts, draft.withdrawn, draft.body_from, name)
    content = Content(
        headline=headline,
        byline=byline,
        section=draft.section,
        tags=list(draft.tags),
        language=draft.language,
        url=draft.url,
        published_at=draft.published_at,
        updated_at=draft.updated_at,
        withdrawn=draft.withdrawn,
        embargoed=draft.embargoed,
        slugline=draft.slugline,
        urgency=draft.urgency,
        abstract=draft.abstract,
        copyright=draft.copyright,
        usage_terms=draft.usage_terms,
        associations=list(draft.associations),
        inline_links=inline_links,
        body=parts.body,
        related_links=parts.related_links,
        module_headings=parts.module_headings,
        boilerplate=parts.boilerplate,
    )
    return Composed(content=content, headline_repeated=repeated, headline_derived=derived)


# ---------------------------------------------------------------------------------------------- limits


def _within_limit(draft: Draft, rules: Rules, name: str) -> None:
    """Refuse a body of more non-blank lines than the rules allow, before any rule scans it."""
    if draft.lines is not None:
        count = sum(1 for line in draft.lines if line.strip())
    else:
        count = sum(1 for block in draft.blocks for line in block.text.split("\n") if line.strip())
    if count > rules.max_lines:
        reason = f"has {count:,} non-blank lines, above the {rules.max_lines:,} limit"
        raise InvalidDocument(name, reason, check=Check.SIZE_LIMIT)


# ---------------------------------------------------------------------------------------------- headline


def _plain(lines: Sequence[str], markdown: bool, rules: Rules, name: str) -> tuple[str, bool, Split, Split]:
    """The plain-text layout: headline, whether it was repeated, the modules above it, the body after it."""
    index = _next_non_blank(lines, 0)
    if index is None:
        raise InvalidDocument(name, "is empty: no headline and no body", check=Check.HEADLINE, field="headline")
    # Scrapers put share bars and the like above the headline: those lines are modules, not the headline.
    while index is not None and rules.classify(lines[index]) is not None:
        index = _next_non_blank(lines, index + 1)
    if index is None:
        reason = "has no headline: every line is a link module or boilerplate"
        raise InvalidDocument(name, reason, check=Check.HEADLINE, field="headline")
    first = lines[index].strip()
    if len(first) > MAX_HEADLINE:
        raise InvalidDocument(
            name,
            f"first line is {len(first):,} characters, too long for a headline "
            f"(limit {MAX_HEADLINE:,}): not a plain-text article",
            check=Check.HEADLINE,
            field="headline",
        )
    rest = index + 1
    repeat = _next_non_blank(lines, rest)
    # The repeat is the same line exactly (stripped): it is dropped, so it must be the headline's text.
    repeated = repeat is not None and lines[repeat].strip() == first
    if repeated and repeat is not None:
        rest = repeat + 1
    # Markdown renders "# Title" as "Title" and whitespace runs as one space: the headline is what it shows.
    headline = _one_line(_unmark(first) or first) if markdown else first
    return headline, repeated, split(lines[:index], rules), split(lines[rest:], rules)


def _lines_without_repeat(lines: Sequence[str], headline: str, markdown: bool) -> tuple[Sequence[str], bool]:
    """Text after a stated headline: a first line that repeats it (``# Title`` in Markdown) is dropped."""
    first = _next_non_blank(lines, 0)
    if first is None:
        return lines, False
    text = _unmark(lines[first]) if markdown else lines[first].strip()
    if text == headline.strip():
        return lines[first + 1 :], True
    return lines, False


#: A paragraph that is only a credit: "By Joseph Ax", "BY ANN LEE AND BO KIM", "By Jane Doe, Reuters".
_BYLINE = re.compile(
    r"^(?:By|BY)\s+[A-ZÀ-Þ][\w.’'-]*(?:\s+(?:[A-ZÀ-Þ][\w.’'-]*|and|AND|&|van|de|von|da|al|bin)){0,7}"
    r"(?:,\s*[A-Z][\w .&-]{1,40})?$"
)
#: How far into a wire body a credit line is looked for (after an advisory such as Reuters' "(Adds ...)").
_BYLINE_BLOCKS = 3


def _byline_in_body(blocks: Sequence[RawBlock], byline: str | None) -> tuple[Sequence[RawBlock], str | None]:
    """A wire body that opens with its credit ("By Joseph Ax", as Reuters and Scoop send it): when the
    format gave no byline, the credit becomes the byline; when it gave the same one, the credit is not
    repeated as a body paragraph. Either way the line is kept once, in ``byline``."""
    for i, block in enumerate(blocks[:_BYLINE_BLOCKS]):
        line = block.text.strip()
        if block.kind != "paragraph" or "\n" in line:
            continue
        same = byline is not None and _one_line(line).lower() in {byline.lower(), f"by {byline}".lower()}
        if (byline is None and _BYLINE.match(line)) or same:
            rest = [*blocks[:i], *blocks[i + 1 :]]
            if any(b.kind == "paragraph" for b in rest):  # a credit alone is all the story there is
                return rest, byline or line
            break
    return blocks, byline


def _blocks_without_repeat(blocks: Sequence[RawBlock], headline: str | None) -> tuple[Sequence[RawBlock], bool]:
    """Blocks without a first block that only repeats the headline (XHTML bodies often open with an ``h1``
    of it). Markup whitespace does not count: the two are compared as one line each."""
    if blocks and headline and _one_line(blocks[0].text) == _one_line(headline):
        return blocks[1:], True
    return blocks, False


def _stated_headline(draft: Draft, parts: Split, name: str) -> tuple[str, HeadlineDerived | None]:
    """The headline a format states, as one line; refused when too long. A wire item that states none (an
    AP news alert, a kill notice) takes the first sentence of its body, or, for a kill without a body, the
    stored story's headline (filled in when committed); the document records which it was."""
    headline = _one_line(draft.headline or "")
    if len(headline) > MAX_HEADLINE:
        raise InvalidDocument(
            name,
            f"headline is {len(headline):,} characters, above the {MAX_HEADLINE:,} limit",
            check=Check.HEADLINE,
            field="headline",
        )
    if headline:
        return headline, None
    if draft.lines is None:  # a structured item; plain text always has its first line
        first = next((block.text for block in parts.body if block.type == "paragraph"), None)
        if first is not None:
            return _first_sentence(first), "first-sentence"
        if draft.withdrawn:
            return WITHDRAWN_HEADLINE, "stored-version"
    if not parts.body:
        reason = f"is empty: no headline ({draft.headline_from}) and no body ({draft.body_from})"
    else:
        reason = f"has no headline ({draft.headline_from} is missing or empty)"
    raise InvalidDocument(name, reason, check=Check.HEADLINE, field="headline")


#: The headline of a kill notice that names no story until the stored story's headline replaces it.
WITHDRAWN_HEADLINE = "Withdrawn"
#: Derived headlines are cut to this many characters (at a word).
_DERIVED_CHARS = 160


#: A sentence ends at . ! or ? before a capital, unless the word is an initialism or a title ("U.S.", "Gov.").
_SENTENCE_END = re.compile(r"[.!?]['\"’”)]*\s+(?=[A-Z\"“‘'(])")
_NOT_AN_END = re.compile(r"(?:\b(?:[A-Z]\.)+|\b(?:Mr|Mrs|Ms|Dr|St|Gen|Sen|Rep|Gov|Lt|Col|Sgt|Jr|Sr|No|Inc|Corp|Co)\.)$")
#: A wire dateline before the first sentence: "HONOLULU (AP) — ", "Berlin (dpa) - ".
_DATELINE = re.compile(r"^[A-Z][\w .,'-]{1,40}\s\([A-Za-z. -]{2,20}\)\s*[—–-]+\s*")


def _first_sentence(paragraph: str) -> str:
    text = _DATELINE.sub("", _one_line(paragraph), count=1) or _one_line(paragraph)
    end = next((m for m in _SENTENCE_END.finditer(text) if not _NOT_AN_END.search(text[: m.start() + 1])), None)
    sentence = text[: end.start() + 1] if end else text
    if len(sentence) <= _DERIVED_CHARS:
        return sentence
    return sentence[:_DERIVED_CHARS].rsplit(" ", 1)[0] + "…"


# ---------------------------------------------------------------------------------------------- body


def _inline_links(body: Sequence[Block], blocks: Sequence[RawBlock]) -> list[InlineLink]:
    """The links of the input's paragraphs, placed on the body blocks those paragraphs became (a paragraph
    the splitter took out as a module takes its links with it)."""
    linked = [b for b in blocks if b.links]
    out: list[InlineLink] = []
    for index, block in enumerate(body):
        for raw in linked:
            if raw.text == block.text:
                out += [
                    InlineLink(block=index, start=a.start, end=a.end, text=raw.text[a.start : a.end], url=a.url)
                    for a in raw.links
                ]
                linked.remove(raw)
                break
    return out


def _split_blocks(blocks: Sequence[RawBlock], rules: Rules) -> Split:
    """Blocks through the splitter, run by run between story sub-headings, positions counted over the whole."""
    out = Split()
    run: list[str] = []

    def flush() -> None:
        if not run:
            return
        part = split(run, rules)
        offset = len(out.body)
        out.body.extend(part.body)
        out.related_links.extend(x.model_copy(update={"position": x.position + offset}) for x in part.related_links)
        out.module_headings.extend(x.model_copy(update={"position": x.position + offset}) for x in part.module_headings)
        out.boilerplate.extend(x.model_copy(update={"position": x.position + offset}) for x in part.boilerplate)
        run.clear()

    for kind, text, _ in blocks:
        if kind == "heading" and rules.classify(text) is None:
            flush()
            out.body.append(Block(type="heading", text=text))
        else:
            # A blank line after each block keeps blocks apart as paragraphs.
            run.extend([*text.split("\n"), ""])
    flush()
    return out


def _place_links(parts: Split, links: Sequence[Link]) -> None:
    """Links listed apart from the body go after it. A listed link has no input line of its own: its
    ``text`` is how it would read as one."""
    position = len(parts.body)
    for link in links:
        text = " ".join(part for part in (f"{link.label}:" if link.label else None, link.title, link.url) if part)
        parts.related_links.append(
            RelatedLink(title=link.title, url=link.url, label=link.label, position=position, text=text)
        )


def _require_paragraph(parts: Split, withdrawn: bool, where: str | None, name: str) -> None:
    """At least one body paragraph, unless the item is withdrawn. ``where`` is where the format looked
    (None: the plain-text layout, where the body is what follows the headline)."""
    if withdrawn or any(block.type == "paragraph" for block in parts.body):
        return
    taken = len(parts.related_links) + len(parts.module_headings) + len(parts.boilerplate)
    if taken == 0:
        reason = "has a headline but no body paragraph" + (f" (none in {where})" if where else "")
    else:
        lines = f"of {where}" if where else "after the headline"
        reason = f"has no body paragraph: all {taken} lines {lines} are link modules or boilerplate"
    raise InvalidDocument(name, reason, check=Check.BODY, field="body")


def _after(leading: Split, parts: Split) -> Split:
    """Modules found above the headline, then the document's own (those above stand before every block)."""
    return Split(
        body=parts.body,
        related_links=leading.related_links + parts.related_links,
        module_headings=leading.module_headings + parts.module_headings,
        boilerplate=leading.boilerplate + parts.boilerplate,
    )


# ---------------------------------------------------------------------------------------------- text


def _next_non_blank(lines: Sequence[str], start: int) -> int | None:
    for i in range(start, len(lines)):
        if lines[i].strip():
            return i
    return None


def _one_line(text: str) -> str:
    """Whitespace runs (newlines included) as one space, none at either end."""
    return " ".join(text.split())


def _unmark(line: str) -> str:
    """A Markdown ATX heading's text (``# Title`` -> ``Title``); other lines stripped."""
    found = _MARKDOWN_HEADING.match(line)
    return (found.group(1) if found else line).strip()
