"""What every input format provides (a ``Parser``) and what it hands on (a ``Draft``).

A parser only reads: it turns decoded text into a ``Draft`` (the input's headline, body, metadata and
identity hints, as the input states them) and knows nothing about module rules. ``ingest.compose`` makes
the document out of a draft: it splits the body from its modules, applies the limits and the headline
and body rules, and accounts for every line. So golden tests can check a parser's draft on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple, Protocol, TypeVar

from ingest.errors import InputError
from ingest.models import Association
from ingest.reader import Decoded

T = TypeVar("T")
BlockKind = Literal["paragraph", "heading"]


class Anchor(NamedTuple):
    """A link inside a block of markup: where it stands in the block's text, and where it points."""

    #: Character offsets in the block's text: ``text[start:end]`` is the linked text.
    start: int
    end: int
    url: str


class RawBlock(NamedTuple):
    """One body block as a format reads it, in reading order."""

    #: ``paragraph`` (story text, or lines the splitter may find to be modules) or ``heading`` (a sub-heading).
    kind: BlockKind
    #: The block's text; a paragraph's lines are joined by LF.
    text: str
    #: Links inside the text (HTML and XHTML bodies); the text itself stays exactly as a reader sees it.
    links: tuple[Anchor, ...] = ()


@dataclass(frozen=True)
class Link:
    """A related link the input lists apart from its body (``json`` ``related_links``)."""

    title: str
    url: str | None = None
    #: The teaser label as written ("SEE ALSO"), if any.
    label: str | None = None


@dataclass(frozen=True)
class Draft:
    """A parser's reading of one input, before any module rule is applied.

    The body comes in one of two layouts. ``lines`` (not None): the plain-text layout, the text's own lines,
    blank lines included, in which paragraphs are separated by blank lines. Otherwise ``blocks``: paragraphs
    and sub-headings as the format marks them. Either way nothing has been taken out yet: related-link
    modules, calls to action and a repeated headline are still in the body; ``compose`` finds them.
    """

    #: The headline as the input states it (whitespace as written; compose collapses it). None when the
    #: input states none: in the plain-text layout the headline is then the first line of ``lines`` that is
    #: not a module; with ``blocks`` the document has no headline and is refused.
    headline: str | None = None
    #: The body in the plain-text layout (see above); None when the body is ``blocks``.
    lines: tuple[str, ...] | None = None
    #: The body as ordered blocks, when ``lines`` is None.
    blocks: tuple[RawBlock, ...] = ()
    #: Related links listed apart from the body; compose places them after it.
    links: tuple[Link, ...] = ()
    #: True when ``lines`` is Markdown: a first line such as ``# Title`` gives the headline ``Title``.
    markdown: bool = False

    # Metadata, as the input gives it (None when it does not).
    #: Author credit ("By Ann Lee, City Hall Reporter").
    byline: str | None = None
    #: Desk or section.
    section: str | None = None
    #: Keywords and subject names, duplicates left out, in the input's order.
    tags: tuple[str, ...] = ()
    #: BCP 47 language tag.
    language: str | None = None
    #: Canonical URL of the article.
    url: str | None = None
    #: First publication time, timezone-aware.
    published_at: datetime | None = None
    #: Last update time stated by the input, timezone-aware.
    updated_at: datetime | None = None
    #: The source withdrew (killed) the story; such a notice may have no body at all.
    withdrawn: bool = False
    #: Not to be published before this time, timezone-aware (an embargo the input states).
    embargoed: datetime | None = None
    #: What the newsroom needs from an item, kept (see ``ingest.models.Content`` for each).
    slugline: str | None = None
    urgency: int | None = None
    abstract: str | None = None
    copyright: str | None = None
    usage_terms: str | None = None
    associations: tuple[Association, ...] = ()
    #: Agency notes for editors (NewsML-G2 ``edNote``, ninjs ``ednote``, NITF ``ed-msg``), in input order:
    #: internal advice that never reaches a reader-facing field. A note the source marks non-public is not
    #: here at all.
    internal_notes: tuple[str, ...] = ()

    # Identity and versioning hints carried by the input itself (front matter, wire headers).
    #: The input's own article id (made key-safe later); None: the file name decides.
    id: str | None = None
    #: The input's own version: an integer ("3") or an ISO 8601 UTC timestamp; an incoming item whose version
    #: is older than the stored one's is ``stale``.
    version: str | None = None
    #: A correction note (front-matter and ``json`` ``note``; a NewsML-G2 ``sig:correction`` signal gives a
    #: fixed note, never the agency's edNote text). A reader may see it.
    note: str | None = None
    #: Who made the correction.
    editor: str | None = None

    # Where the format looked, for refusals of a stated headline or body ("has no headline (hedline/hl1 is
    # missing or empty)"). The plain-text layout's refusals have their own wording and do not use them.
    headline_from: str = "headline"
    body_from: str = "body"


class Parser(Protocol):
    """One input format. Parsers are pure: decoded text in, ``Draft`` out, ``InputError`` for bad input."""

    #: Name shown by ``ingest formats`` and recorded as ``source.format``.
    name: str
    #: File name endings this format usually has (a hint; content decides).
    extensions: tuple[str, ...]
    #: One line for ``ingest formats``.
    description: str
    #: Control characters this format's framing is made of (ANPA 1312's SYN, SOH, STX, ETX ...); any other
    #: control character in an input of this format is refused as binary, as it is for every other format.
    controls: frozenset[str]

    def sniff(self, text: str) -> bool:
        """True when the text looks like this format."""
        ...

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        """Read decoded text from the file ``name`` (used in messages): one ``Draft``, or, for an input
        that holds several items (a message, an envelope, a feed), one draft per text item, in order,
        where an item that cannot be read is its ``InputError`` (see ``per_item``) and the others stand."""
        ...


def per_item(items: Iterable[T], read: Callable[[T], Draft]) -> list[Draft | InputError]:
    """One draft per item of a message or feed; an item that cannot be read (a bad embargo, a wrong type)
    is that item's refusal, not the whole file's: the other stories of the bundle are stored."""
    out: list[Draft | InputError] = []
    for item in items:
        try:
            out.append(read(item))
        except InputError as exc:
            out.append(exc)
    return out
