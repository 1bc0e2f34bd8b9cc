"""Body blocks out of markup: HTML strings and XML element trees (XHTML, NITF bodies).

Both feed one ``BlockBuilder`` with start tag, text and end tag events, so HTML and XML bodies are read
by the same rules:

* ``p``, ``li``, ``blockquote``, table rows and the like end a paragraph; text between them is one too;
* ``h1``-``h6`` and ``hl2`` are sub-headings;
* ``br`` breaks a line inside a paragraph; ``pre`` keeps its lines, blank lines separate paragraphs;
* table cells in a row are joined with " | ";
* media, captions, scripts and styles are not story text and are left out;
* everything else is inline: its text runs on (``a``, ``em``; ``person``, ``org``, ``chron``).

Markup whitespace is collapsed: a paragraph is its text as a reader sees it, not the source's wrapping.
The element names are those of HTML and of NITF's body markup together: they do not clash, and wire bodies
of every format mix them (ninjs and NewsML-G2 carry NITF bodies, NITF bodies carry HTML headings), so one
builder reads any body without being told where it came from. Where a format keeps its body and headline
is the format's business (``_nitf`` for NITF), not this module's.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ingest.errors import ParseError, printable
from ingest.parsers._values import collapse
from ingest.parsers.base import Anchor, RawBlock

_BLOCKS = frozenset(
    (
        "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "bq", "table", "thead", "tbody", "tfoot", "tr",
        "caption", "section", "article", "main", "footer", "aside", "nav", "address", "center", "body",
        "body.content", "body.end", "block", "tagline", "hr", "note", "fn", "pre",
    )
)
_HEADINGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6", "hl2"])
_CELLS = frozenset(("td", "th"))
# Containers whose text is not story text (an HTML5 <header> holds the headline and metadata again,
# as dpa sends it). Void elements (img, embed) are never here: an HTML start tag
# without an end tag would otherwise hide the rest of the body.
_SKIP = frozenset(
    (
        "head", "title", "script", "style", "noscript", "template", "figure", "figcaption", "picture", "video", "audio",
        "iframe", "object", "svg", "canvas", "form", "button", "select", "textarea", "media", "media-caption",
        "media-producer", "body.head", "nitf-table-metadata", "header",
    )
)


class BlockBuilder:
    """Turns markup events into ``(kind, text)`` body blocks."""

    def __init__(self) -> None:
        self.blocks: list[RawBlock] = []
        self._parts: list[str] = []
        self._skip = 0
        self._pre = 0
        self._heading = 0
        self._line_has_text = False  # whether the current line has text yet (cells are joined after it)
        self._hrefs: list[str | None] = []  # the targets of the links opened in the current block, in order
        self._span_closed = False  # the last event closed a span (a span opening right after is a new field)

    def start(self, tag: str, href: str | None = None) -> None:
        if tag == "span" and self._span_closed and self._parts and not self._parts[-1][-1:].isspace():
            # Two spans side by side are two fields laid out apart (TT's <span>Försvar</span><span>TT</span>
            # is "Försvar TT" on the page), not one word.
            self._parts.append(" ")
        self._span_closed = False
        if tag == "a" and not self._skip:
            # A link is marked in the text as it is built and measured when the block is done.
            self._hrefs.append(href)
            self._parts.append(_OPEN)
            return
        if tag in _SKIP:
            self._skip += 1
        elif self._skip:
            return
        elif tag == "br":
            self._parts.append("\n")
            self._line_has_text = False
        elif tag in _CELLS:
            if self._line_has_text:
                self._parts.append(" | ")
        elif tag in _HEADINGS:
            self._flush()
            self._heading += 1
        elif tag in _BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre += 1

    def end(self, tag: str) -> None:
        self._span_closed = tag == "span"
        if tag == "a" and not self._skip:
            self._parts.append(_CLOSE)
            return
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif self._skip:
            return
        elif tag in _HEADINGS:
            self._flush()
            self._heading = max(0, self._heading - 1)
        elif tag in _BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def text(self, data: str) -> None:
        self._span_closed = self._span_closed and not data
        if "dash>" in data:
            # Typesetting tags some agencies escape into the text ("800&lt;endash&gt;-&lt;/endash&gt;1 000", as
            # STT sends it): a reader sees the dash, not the tags.
            data = _ESCAPED_DASH.sub(lambda m: "–" if m.group(1) == "en" else "—", data)
        if not self._skip and data:
            # Source newlines are wrapping, except inside <pre>; only <br> breaks a line elsewhere.
            self._parts.append(data if self._pre else data.replace("\n", " "))
            self._line_has_text = self._line_has_text or not data.isspace()

    def close(self) -> list[RawBlock]:
        self._flush()
        return self.blocks

    def _flush(self) -> None:
        marked = "".join(self._parts)
        hrefs, self._hrefs = self._hrefs, []
        self._parts.clear()
        self._line_has_text = False
        if self._heading or self._pre:
            marked = marked.replace(_OPEN, "").replace(_CLOSE, "")  # links in headings and wire copy: text only
        text = marked
        if self._heading:
            heading = collapse(text)
            if heading:
                self.blocks.append(RawBlock("heading", heading))
            return
        if self._pre:
            # Preformatted wire copy: its own lines, paragraphs separated by blank lines.
            paragraph: list[str] = []
            for line in [*text.split("\n"), ""]:
                if line.strip():
                    paragraph.append(line.rstrip())
                elif paragraph:
                    self.blocks.append(RawBlock("paragraph", "\n".join(paragraph)))
                    paragraph = []
            return
        kept = [line for line in (_collapse_marked(line) for line in text.split("\n")) if _unmark(line)]
        if kept:
            clean, links = _measure("\n".join(kept), hrefs)
            self.blocks.append(RawBlock("paragraph", clean, links))


_ESCAPED_DASH = re.compile(r"<(en|em)dash>[^<]{0,3}</(?:en|em)dash>")
#: Link marks inside a block being built (private-use characters no input text keeps: see ``_unmark``).
_OPEN, _CLOSE = "\ue000", "\ue001"


def _unmark(text: str) -> str:
    return text.replace(_OPEN, "").replace(_CLOSE, "")


def _collapse_marked(line: str) -> str:
    """``collapse`` for a line holding link marks: the marks take no room, so "a <a> b</a>" is "a b"."""
    out: list[str] = []
    pending_space = False
    for char in line:
        if char in (_OPEN, _CLOSE):
            out.append(char)
        elif char.isspace():
            pending_space = bool(_unmark("".join(out)))
        else:
            if pending_space:
                # The space goes before any marks that open here and after any that close here.
                tail: list[str] = []
                while out and out[-1] == _OPEN:
                    tail.append(out.pop())
                out.append(" ")
                out.extend(tail)
            pending_space = False
            out.append(char)
    return "".join(out)


def _measure(marked: str, hrefs: list[str | None]) -> tuple[str, tuple[Anchor, ...]]:
    """The text without marks, and where each link with a target stands in it."""
    clean: list[str] = []
    opened: list[tuple[int, str | None]] = []
    count = 0
    links: list[Anchor] = []
    for char in marked:
        if char == _OPEN:
            opened.append((len(clean), hrefs[count] if count < len(hrefs) else None))
            count += 1
        elif char == _CLOSE:
            if opened:
                start, url = opened.pop()
                if url and len(clean) > start:
                    links.append(Anchor(start, len(clean), url))
        else:
            clean.append(char)
    return "".join(clean), tuple(sorted(links))


class _HTMLBlocks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = BlockBuilder()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.builder.start(tag, dict(attrs).get("href") if tag == "a" else None)

    def handle_endtag(self, tag: str) -> None:
        self.builder.end(tag)

    def handle_data(self, data: str) -> None:
        self.builder.text(data)


def html_blocks(html: str, name: str) -> list[RawBlock]:
    """Body blocks of an HTML or XHTML fragment. Lenient, like a browser: HTML bodies are rarely valid XML."""
    parser = _HTMLBlocks()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError as exc:  # html.parser's answer to a few malformed declarations ("<![x[")
        raise ParseError(name, f"body HTML cannot be read: {printable(str(exc))[:120]}", field="body") from None
    return parser.builder.close()
