"""Plain-text articles as wires and websites send them.

Layout: the headline on the first non-blank line; optionally the same headline again (a scraping
artefact); then paragraphs separated by blank lines, with related-link modules, calls to action and
furniture mixed in. The parser hands the lines on as they are: finding the headline among share bars,
dropping its repeat and taking the modules out is ``compose``'s work, the same for every format.
"""

from __future__ import annotations

from ingest.parsers.base import Draft
from ingest.reader import Decoded


class TextParser:
    name: str = "text"
    extensions: tuple[str, ...] = (".txt", ".text", "")
    description: str = "Plain text: headline on the first line, paragraphs separated by blank lines."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        # Plain text is what is left when no structured format claims the file.
        return False

    def parse(self, decoded: Decoded, name: str) -> Draft:
        return Draft(lines=tuple(decoded.text.split("\n")))


PARSER = TextParser()
