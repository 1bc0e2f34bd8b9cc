"""Plain-text articles as wires and websites send them.

Layout: the headline on the first non-blank line; optionally the same headline again (a scraping
artefact, dropped and noted); then paragraphs separated by blank lines, with related-link modules,
calls to action and furniture mixed in, which the splitter takes out.
"""

from __future__ import annotations

from ingest.errors import InvalidDocument
from ingest.models import Content
from ingest.parsers.base import Parsed
from ingest.reader import Decoded
from ingest.split import Rules, split

#: Longer first lines are not headlines (one enormous line is not an article).
MAX_HEADLINE = 1000


class TextParser:
    name: str = "text"
    extensions: tuple[str, ...] = (".txt", ".text", "")
    description: str = "Plain text: headline on the first line, paragraphs separated by blank lines."

    def sniff(self, text: str) -> bool:
        # Plain text is what is left when no structured format claims the file.
        return False

    def parse(self, decoded: Decoded, name: str, rules: Rules) -> Parsed:
        return parse_lines(decoded.text.split("\n"), name, rules)


def parse_lines(lines: list[str], name: str, rules: Rules, **hints: str | None) -> Parsed:
    """Headline, optional repeat, then the body through the splitter. Shared by text-like formats."""
    index = _next_non_blank(lines, 0)
    if index is None:
        raise InvalidDocument(name, "is empty: no headline and no body", check="headline", field="headline")
    count = sum(1 for line in lines if line.strip())
    if count > rules.max_lines:
        raise InvalidDocument(
            name, f"has {count:,} non-blank lines, above the {rules.max_lines:,} limit", check="size-limit"
        )
    # Scrapers put share bars and the like above the headline: those lines are modules, not the headline.
    while index is not None and rules.classify(lines[index]) is not None:
        index = _next_non_blank(lines, index + 1)
    if index is None:
        raise InvalidDocument(
            name, "has no headline: every line is a link module or boilerplate", check="headline", field="headline"
        )
    leading = split(lines[:index], rules)
    headline = lines[index].strip()
    if len(headline) > MAX_HEADLINE:
        raise InvalidDocument(
            name,
            f"first line is {len(headline):,} characters, too long for a headline "
            f"(limit {MAX_HEADLINE:,}): not a plain-text article",
            check="headline",
            field="headline",
        )
    rest = index + 1
    repeat = _next_non_blank(lines, rest)
    repeated = repeat is not None and lines[repeat].strip() == headline
    if repeated and repeat is not None:
        rest = repeat + 1
    parts = split(lines[rest:], rules)
    if not parts.body:
        taken = len(parts.related_links) + len(parts.module_headings) + len(parts.boilerplate)
        reason = (
            "has a headline but no body paragraph"
            if taken == 0
            else f"has no body paragraph: all {taken} lines after the headline are link modules or boilerplate"
        )
        raise InvalidDocument(name, reason, check="body", field="body")
    content = Content(
        headline=headline,
        body=parts.body,
        related_links=leading.related_links + parts.related_links,
        module_headings=leading.module_headings + parts.module_headings,
        boilerplate=leading.boilerplate + parts.boilerplate,
    )
    return Parsed(content=content, headline_repeated=repeated, **hints)


def _next_non_blank(lines: list[str], start: int) -> int | None:
    for i in range(start, len(lines)):
        if lines[i].strip():
            return i
    return None


PARSER = TextParser()
