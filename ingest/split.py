"""Separating story text from related-link modules, calls to action and page furniture.

Pure functions, no I/O: lines in, ``Split`` out. Every non-blank input line lands in exactly one of
``body``, ``related_links``, ``module_headings`` or ``boilerplate``, and each non-body item records
``position``, the number of body blocks before it, so a CMS can put it back where it stood.

Paragraphs are runs of lines separated by blank lines. Text with no blank line between its lines at
all (many scrapers write one paragraph per line) is read one paragraph per line.

The rules themselves are data (``config/modules.yaml``); this module only applies them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ingest.models import Block, Boilerplate, ModuleHeading, RelatedLink

RuleKind = Literal["link", "heading", "cta", "furniture"]

# Leading decoration a scraper leaves before a teaser: bullets, quote marks of mail, pipes, dashes.
_DECORATION = " \t>»—–-*•|"
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"]+")
_MEDIA = re.compile(
    r"\s*[\(\[](?P<media>PHOTOS?|VIDEOS?|WATCH|GALLERY|AUDIO|PODCAST|INTERACTIVE|MAP|GRAPHICS?|SLIDESHOW|LIVE)[\)\]]\s*$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.,;:]['\"’”)]*$")


@dataclass(frozen=True)
class Rule:
    """One compiled detection rule (see ``config/modules.yaml`` for the meaning of each kind)."""

    name: str
    kind: RuleKind
    pattern: re.Pattern[str]
    max_chars: int | None = None

    def match(self, line: str) -> re.Match[str] | None:
        if self.max_chars is not None and len(line) > self.max_chars:
            return None
        return self.pattern.search(line)


@dataclass(frozen=True)
class Rules:
    """An ordered rule set; the first rule that matches a line decides what it is."""

    rules: tuple[Rule, ...]
    heading_items: int = 8
    item_max_chars: int = 160
    #: Lines longer than this are never modules (teasers are short), so rules never scan huge lines.
    line_max_chars: int = 2000
    #: A document with more non-blank lines than this is refused: bounded time and memory.
    max_lines: int = 20_000

    #: The rules anchored with ``^``, as one pattern matched at the start of the line: most lines are story
    #: text that no rule matches, and one match (plus a search per unanchored rule) says so where trying
    #: each rule in turn costs one search per rule (the splitter's hot path).
    _anchored: re.Pattern[str] = field(init=False, repr=False, compare=False)
    #: The rules that may match anywhere in a line: tried one by one.
    _loose: tuple[Rule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        joined = [rule for rule in self.rules if _is_anchored(rule.pattern.pattern)]
        try:
            combined = re.compile("|".join(_alternative(rule.pattern) for rule in joined) or r"(?!)")
        except re.error:  # a construct that only works on its own: every rule is then tried on its own
            combined, joined = re.compile(r"(?!)"), []
        object.__setattr__(self, "_anchored", combined)
        object.__setattr__(self, "_loose", tuple(rule for rule in self.rules if rule not in joined))

    def classify(self, line: str) -> tuple[Rule, re.Match[str]] | None:
        if len(line) > self.line_max_chars:
            return None
        bare = line.strip().lstrip(_DECORATION)
        if self._anchored.match(bare) is None and not any(rule.match(bare) for rule in self._loose):
            return None  # no rule can match: story text
        for rule in self.rules:
            found = rule.match(bare)
            if found is not None:
                return rule, found
        return None


def _is_anchored(source: str) -> bool:
    """Whether a pattern can join the combined one: it only ever matches at the start (it opens with ``^``
    and has no ``|`` outside groups, which could start a branch matching anywhere) and refers back to
    none of its own groups (their numbers and names change once joined)."""
    if not source.startswith("^") or re.search(r"\\[1-9]|\(\?P=", source):
        return False  # a backreference counts groups, or names them, within its own pattern only
    depth, escaped, in_class = 0, False, False
    for char in source:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return False
    return True


def _alternative(pattern: re.Pattern[str]) -> str:
    """One rule's pattern as a branch of the combined one: its group names dropped (names may repeat
    across rules), its case-insensitivity kept to the branch."""
    source = re.sub(r"\(\?P<[A-Za-z_]\w*>", "(?:", pattern.pattern)
    return f"(?i:{source})" if pattern.flags & re.IGNORECASE else f"(?:{source})"


@dataclass
class Split:
    """The outcome of splitting one article body."""

    body: list[Block] = field(default_factory=list)
    related_links: list[RelatedLink] = field(default_factory=list)
    module_headings: list[ModuleHeading] = field(default_factory=list)
    boilerplate: list[Boilerplate] = field(default_factory=list)


def paragraphs(lines: Sequence[str]) -> list[list[str]]:
    """Group lines into paragraphs: runs separated by blank lines, or one a line when there are none."""
    groups: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    if len(groups) == 1 and len(groups[0]) > 1:
        return [[line] for line in groups[0]]
    return groups


def split(lines: Sequence[str], rules: Rules) -> Split:
    """Split body lines (everything after the headline) into story blocks and modules."""
    out = Split()
    heading: str | None = None  # the open module heading whose items we are collecting
    items_left = 0
    for group in paragraphs(lines):
        pending: list[str] = []  # consecutive story lines inside this paragraph
        for line in group:
            verdict = rules.classify(line)
            if verdict is None and heading is not None and items_left > 0 and _looks_like_item(line, rules):
                _flush(pending, out)
                out.related_links.append(_link(line, None, heading, len(out.body)))
                items_left -= 1
                continue
            if verdict is None:
                heading = None
                pending.append(line)
                continue
            _flush(pending, out)
            rule, found = verdict
            heading = None
            position = len(out.body)
            if rule.kind == "link":
                link = _link(line, found, None, position)
                if link.title or link.url:
                    out.related_links.append(link)
                    continue
                # A label with nothing after it ("RELATED:", "WATCH:") introduces the lines below it.
                rule = Rule(rule.name, "heading", rule.pattern)
            if rule.kind == "heading":
                out.module_headings.append(ModuleHeading(text=line, position=position))
                heading, items_left = line.strip(), rules.heading_items
            else:
                kind: Literal["cta", "page-furniture"] = "cta" if rule.kind == "cta" else "page-furniture"
                out.boilerplate.append(Boilerplate(kind=kind, text=line, position=position))
        _flush(pending, out)
    return out


def _flush(pending: list[str], out: Split) -> None:
    if pending:
        out.body.append(Block(type="paragraph", text="\n".join(pending)))
        pending.clear()


def _looks_like_item(line: str, rules: Rules) -> bool:
    """A headline under a module heading: short, capitalised, not a sentence, or a bare URL."""
    bare = line.strip().lstrip(_DECORATION)
    if _URL.fullmatch(bare):
        return True
    if not bare or len(bare) > rules.item_max_chars or _SENTENCE_END.search(bare):
        return False
    return bare[0].isupper() or bare[0].isdigit() or bare[0] in "'\"‘“"


def _link(line: str, found: re.Match[str] | None, heading: str | None, position: int) -> RelatedLink:
    groups = found.groupdict() if found is not None else {}
    label = (groups.get("label") or "").strip() or None
    title = groups.get("title")
    if title is None:
        title = line.strip().lstrip(_DECORATION)
    url_match = _URL.search(title)
    url = url_match.group().rstrip(".,;)") if url_match else None
    if url_match:
        title = title[: url_match.start()] + title[url_match.end() :]
    title = title.strip().rstrip(" |-–—:").strip()
    media_match = _MEDIA.search(title)
    media = None
    if media_match:
        media = media_match.group("media")
        title = title[: media_match.start()].rstrip()
    if not title and url and found is not None and not label:
        title = url
    return RelatedLink(title=title, url=url, label=label, media=media, heading=heading, position=position, text=line)


def non_blank(lines: Iterable[str]) -> list[str]:
    """The non-blank lines, as the 'nothing lost' rule counts them."""
    return [line for line in lines if line.strip()]
