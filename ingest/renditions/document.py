"""The document itself, as stored: ingest's own format, unchanged (``--as document``, the default)."""

from __future__ import annotations

from typing import Any

from ingest.models import Document


def render(document: Document, uri_template: str) -> dict[str, Any]:
    """The document as JSON values; ``uri_template`` plays no part (the document names itself by its id)."""
    return document.model_dump(mode="json")


def version_of(item: dict[str, Any]) -> int | None:
    """The version a document holds, or None when it holds none."""
    version = item.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None
