"""The clock, passed in: every function that needs the time takes a ``Clock``, so tests move time
instead of waiting. Times are timezone-aware UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The real clock."""
    return datetime.now(UTC)
