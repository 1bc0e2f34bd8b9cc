"""What every input format provides, and what it hands to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ingest.models import Content
from ingest.reader import Decoded
from ingest.split import Rules


@dataclass(frozen=True)
class Parsed:
    """A parsed article: its content plus what the input says about identity and versioning."""

    content: Content
    headline_repeated: bool = False
    #: Identity, version and correction hints carried by the input itself (front matter, wire headers).
    #: ``version`` is the input's own version: an integer ("3") or an ISO 8601 timestamp; an incoming
    #: item whose version is older than the stored one's is ``stale``.
    id: str | None = None
    version: str | None = None
    #: A correction note (front-matter ``note``, NewsML-G2 ``edNote`` with a ``sig:correction`` signal).
    note: str | None = None
    editor: str | None = None


class Parser(Protocol):
    """One input format. Parsers are pure: text in, ``Parsed`` out, ``InputError`` for bad input."""

    #: Name shown by ``ingest formats`` and recorded as ``source.format``.
    name: str
    #: File name endings this format usually has (a hint; content decides).
    extensions: tuple[str, ...]
    #: One line for ``ingest formats``.
    description: str

    def sniff(self, text: str) -> bool:
        """True when the text looks like this format."""
        ...

    def parse(self, decoded: Decoded, name: str, rules: Rules) -> Parsed:
        """Parse decoded text from the file ``name``."""
        ...
