"""Input formats, one module each, registered here in one explicit list.

Adding a format is one new module exposing a ``Parser`` plus one line in ``_BUILTIN``. The registry
refuses two formats of one name, and ``ingest formats`` lists what is registered.

A parser only reads: it returns a ``Draft`` (or one per item), and ``ingest.compose`` makes the document
out of it with the module rules. Format modules import none of each other; what several formats share
lives in private helpers that know no format (``_values``, ``_json``, ``_xml``, ``_markup``, and ``_wire``
for control-character framing) or in a vocabulary module (``_nitf``: NITF, which arrives on its own and
inside ninjs and NewsML-G2).
"""

from __future__ import annotations

from pathlib import PurePath

from ingest.errors import Check, ConfigError, ParseError
from ingest.parsers import (
    _xml,
    anpa1312,
    apmedia,
    atom,
    frontmatter,
    iptc7901,
    json_input,
    newsml12,
    newsml_g2,
    ninjs,
    nitf,
    ritzau,
    text,
)
from ingest.parsers.base import Draft, Parser

__all__ = ["Draft", "Parser", "Registry", "registry"]


class Registry:
    """Formats by name, in the order they are tried when content decides."""

    def __init__(self) -> None:
        self._parsers: dict[str, Parser] = {}

    def register(self, parser: Parser) -> None:
        if parser.name in self._parsers:
            raise ConfigError(f"input format {parser.name!r} is registered twice")
        self._parsers[parser.name] = parser

    def get(self, name: str) -> Parser:
        try:
            return self._parsers[name]
        except KeyError:
            known = ", ".join(self._parsers)
            raise ConfigError(f"unknown input format {name!r} (known: {known})") from None

    def all(self) -> list[Parser]:
        return list(self._parsers.values())

    def detect(self, file_name: str, text: str) -> Parser:
        """Pick the parser by content first; the file name ending breaks ties; plain text is the fallback."""
        suffix = PurePath(file_name).suffix.lower()
        sniffed = [p for p in self._parsers.values() if p.sniff(text)]
        for parser in sniffed:
            if suffix in parser.extensions:
                return parser
        if sniffed:
            return sniffed[0]
        if (root := _xml.root_name(text)) and text.rstrip().endswith(">"):
            # A markup document no format reads (RSS, an HTML page, an agency's own XML): refused by name,
            # rather than stored as a "plain text" article whose headline is a tag.
            what = "an HTML page" if root.lower() == "html" else f"XML with the root element <{root}>"
            reason = f"is {what}: no input format reads it (see `ingest formats`)"
            raise ParseError(file_name, reason, check=Check.FORMAT)
        for parser in self._parsers.values():
            if suffix in parser.extensions:
                return parser
        if "text" in self._parsers:
            return self._parsers["text"]
        raise ParseError(file_name, "no input format recognises this file", check=Check.FORMAT)


# Order matters only for ties: content no parser claims goes to the first one listing its file ending.
_BUILTIN: tuple[Parser, ...] = (
    text.PARSER,
    frontmatter.PARSER,
    json_input.PARSER,
    # Before ninjs: AP's format follows ninjs 1.x, and an AP item sniffs as both; the first one claiming
    # a file decides, so neither module needs to know the other.
    apmedia.PARSER,
    ninjs.PARSER,
    nitf.PARSER,
    newsml_g2.PARSER,
    anpa1312.PARSER,
    iptc7901.PARSER,
    newsml12.PARSER,
    atom.PARSER,
    ritzau.PARSER,
)

registry = Registry()
for _parser in _BUILTIN:
    registry.register(_parser)
