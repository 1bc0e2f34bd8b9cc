"""Output renditions: the document in a standard a CMS already speaks, one module per standard.

A rendition is a pure function: a ``Document`` and the ``uri_template`` setting in, JSON values out (no
I/O, no clock). They are registered here in one explicit list; the registry refuses two of one name and
lists what is registered (``ingest show --as``, ``ingest parse --as``)::

    document   ingest's own document, unchanged                     document.py
    ninjs      IPTC ninjs 2.1                                       ninjs.py
    ninjs3     IPTC ninjs 3.1                                       ninjs.py
    ans        Arc XP ANS 0.10.12 (a story)                         ans.py

Adding one is a module with a render function and a ``version_of`` reader, a line in ``_BUILTIN``, and
its official schema in ``tests/test_renditions.py``. What each carries, and what it drops, is the README's
mapping table. ``stored_bytes`` is what the ``renditions`` setting stores beside each version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest.errors import ConfigError
from ingest.models import Document
from ingest.renditions import ans, document, ninjs

__all__ = ["Registry", "Rendition", "registry", "render", "stored_bytes", "stored_version"]


@dataclass(frozen=True)
class Rendition:
    """One output format."""

    #: What ``--as`` takes.
    name: str
    #: One line for people: the standard and its version.
    description: str
    #: Document and ``uri_template`` in, JSON values out.
    render: Callable[[Document, str], dict[str, Any]]
    #: The document version a rendition holds (None: it names none), so a stored ``latest.{format}.json``
    #: can be told older or newer than the version about to replace it.
    version_of: Callable[[dict[str, Any]], int | None]


class Registry:
    """Renditions by name, in the order they are listed."""

    def __init__(self) -> None:
        self._renditions: dict[str, Rendition] = {}

    def register(self, rendition: Rendition) -> None:
        if rendition.name in self._renditions:
            raise ConfigError(f"rendition {rendition.name!r} is registered twice")
        self._renditions[rendition.name] = rendition

    def get(self, name: str) -> Rendition:
        try:
            return self._renditions[name]
        except KeyError:
            known = ", ".join(self._renditions)
            raise ConfigError(f"unknown rendition format {name!r} (known: {known})") from None

    def all(self) -> list[Rendition]:
        return list(self._renditions.values())


_BUILTIN = (
    Rendition("document", "ingest's own, as stored; the default", document.render, document.version_of),
    Rendition("ninjs", "IPTC ninjs 2.1", ninjs.render_21, ninjs.version_of),
    Rendition("ninjs3", "IPTC ninjs 3.1", ninjs.render_31, ninjs.version_of),
    Rendition("ans", "an Arc XP ANS 0.10.12 story", ans.render, ans.version_of),
)

registry = Registry()
for _rendition in _BUILTIN:
    registry.register(_rendition)


def check_extra(name: str) -> str:
    """``name`` if it is a rendition made beside the document (stored, or sent with a webhook); else a
    ``ConfigError`` saying why (``document`` itself is always there)."""
    if name == "document":
        raise ConfigError("'document' is always stored (v{N}.json) and sent; list only other formats")
    extra = [r.name for r in registry.all() if r.name != "document"]
    if name not in extra:
        raise ConfigError(f"unknown rendition {name!r} (known: {', '.join(extra)})")
    return name


def render(document: Document, fmt: str, uri_template: str) -> dict[str, Any]:
    """``document`` as the rendition named ``fmt``; an unknown name, or a ``uri_template`` that makes no
    URI of this document's id, is a ``ConfigError``."""
    return registry.get(fmt).render(document, uri_template)


def stored_bytes(document: Document, fmt: str, uri_template: str) -> bytes:
    """The bytes ``articles/{id}/v{N}.{fmt}.json`` holds: indented UTF-8 JSON and a newline, as the document
    itself is stored and as ``ingest show --as`` prints it. The same document and template give the same
    bytes (a rendition reads no clock), which is how a re-run recognises a rendition it wrote before."""
    return json.dumps(render(document, fmt, uri_template), ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def stored_version(fmt: str, body: bytes) -> int | None:
    """The document version stored rendition bytes hold, or None when they cannot be read as one."""
    try:
        item = json.loads(body)
    except ValueError:
        return None
    return registry.get(fmt).version_of(item) if isinstance(item, dict) else None
