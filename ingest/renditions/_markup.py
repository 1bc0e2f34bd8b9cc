"""Body blocks as HTML, the way ninjs bodies and ANS text elements carry them.

A block's text is escaped (``&``, ``<``, ``>``), so a story that quotes markup shows it rather than runs
it; its line breaks become ``<br>``; its inline links become ``<a href>`` around exactly the words the
document says, when their target is one a reader may be sent to (``safe_href``), and stay plain words
otherwise. Nothing else is added: no classes, no ids, no wrappers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from ingest.models import Block, Document, InlineLink
from ingest.renditions._values import safe_href

#: The HTML element of each block type; a story's sub-heading sits below the headline (h1).
TAGS = {"paragraph": "p", "heading": "h2"}


def inner_html(text: str, links: Iterable[InlineLink] = ()) -> str:
    """One block's text as HTML, with its inline links (links that overlap or do not match are left out)."""
    out: list[str] = []
    at = 0
    for link in sorted(links, key=lambda k: (k.start, k.end)):
        if link.start < at or link.end <= link.start or text[link.start : link.end] != link.text:
            continue
        href = safe_href(link.url)
        if href is None:
            continue
        out.append(_text(text[at : link.start]))
        out.append(f'<a href="{escape(href, quote=True)}">{_text(link.text)}</a>')
        at = link.end
    out.append(_text(text[at:]))
    return "".join(out)


def _text(text: str) -> str:
    return escape(text, quote=False).replace("\n", "<br>")


def links_by_block(document: Document) -> dict[int, list[InlineLink]]:
    found: dict[int, list[InlineLink]] = {}
    for link in document.inline_links:
        found.setdefault(link.block, []).append(link)
    return found


def body_html(document: Document) -> str:
    """The whole body, one element a line."""
    links = links_by_block(document)
    return "\n".join(block_html(block, links.get(i, ())) for i, block in enumerate(document.body))


def block_html(block: Block, links: Sequence[InlineLink] = ()) -> str:
    tag = TAGS[block.type]
    return f"<{tag}>{inner_html(block.text, links)}</{tag}>"
