"""Reading JSON input safely, and JSON members with messages that name the field.

Format-agnostic: the JSON formats (``json``, ``ninjs``) share the parsing guards and the wording of
type errors, not each other's knowledge.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from ingest.errors import Check, ParseError, describe_validation

#: JSON inputs larger than this are refused before parsing (the reader's own limit may be set higher).
MAX_JSON_CHARS = 5 * 1024 * 1024


def load_json_object(text: str, name: str) -> dict[str, Any]:
    """Parse a JSON object with a size cap and a depth guard; every failure is one ``ParseError`` line."""
    if (sniffed := sniff_json_object(text)) is not None:
        return sniffed  # the sniffers already parsed this very text: not twice
    if len(text) > MAX_JSON_CHARS:
        limit = MAX_JSON_CHARS // (1024 * 1024)
        raise ParseError(name, f"JSON input is larger than {limit} MiB", check=Check.SIZE_LIMIT)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(name, f"not well-formed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise ParseError(name, "not accepted: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal too long to convert
        raise ParseError(name, f"not well-formed JSON: {exc}") from None
    if not isinstance(value, dict):
        count = f" of {len(value)} record{'s' if len(value) != 1 else ''}" if isinstance(value, list) else ""
        what = f"is {_json_type(value)}{count}"
        raise ParseError(name, f"{what}, not an article: JSON input must be an object (one article, or a response)")
    return value


@functools.lru_cache(maxsize=1)
def sniff_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object ``text`` holds, or None. Cached: every JSON sniffer asks about the same text."""
    if not text.lstrip().startswith("{") or len(text) > MAX_JSON_CHARS:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def field_error(name: str, exc: ValidationError, data: object = None) -> ParseError:
    """A pydantic error on JSON input as a ``ParseError`` naming the file and the field."""
    field, reason = describe_validation(exc, data)
    return ParseError(name, f"field {field}: {reason}", field=field)


def string_field(data: dict[str, Any], key: str, name: str, within: str = "") -> str | None:
    """A string member of a JSON object: None when absent or null, a ``ParseError`` when of another type.
    ``within`` is the path of ``data`` itself in the document ("bodies.0."), for the message."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        field = f"{within}{key}"
        raise ParseError(name, f"field {field}: must be a string, not {_json_type(value)}", field=field)
    return value


def list_field(data: dict[str, Any], key: str, name: str) -> Sequence[Any]:
    """An array member of a JSON object: empty when absent or null, a ``ParseError`` when of another type."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(name, f"field {key}: must be an array, not {_json_type(value)}", field=key)
    return value


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
