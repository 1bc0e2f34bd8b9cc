"""What happened to one input: the result of the unit of work, and a public contract.

The outcome words and the JSON field names are what ``ingest file --json`` prints and what scripts
read: ``created`` (v1 of a new article), ``updated`` (a new version), ``withdrawn`` (a new version in
which the source killed the story: its document's action is ``withdrawn`` too), ``rolled_back`` (a new
version with an earlier version's content, made by ``ingest rollback``: its action is ``rolled_back`` too),
``unchanged`` (same content as the latest: nothing written), ``stale`` (an earlier, superseded content or an
older input version: nothing written), ``failed`` (refused, with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ingest.errors import InputError, printable

OutcomeWord = Literal["created", "updated", "withdrawn", "rolled_back", "unchanged", "stale", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one input. ``outcome`` and the JSON field names are a public contract."""

    path: str
    outcome: OutcomeWord
    id: str | None = None
    version: int | None = None
    key: str | None = None
    error: InputError | None = None
    message: str | None = None

    @classmethod
    def failed(cls, path: str, error: InputError) -> Outcome:
        """A refused input."""
        return cls(path, "failed", error=error)

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "path": self.path,
            "id": self.id,
            "version": self.version,
            "outcome": self.outcome,
            "key": self.key,
        }
        if self.error is not None:
            data["error"] = self.error.as_dict()
        if self.message:
            data["message"] = self.message
        return data

    def line(self) -> str:
        """One human line: ``created    path -> key``, or ``failed     path: reason``."""
        if self.error is not None:
            return f"failed     {self.error}"
        extra = f" ({self.message})" if self.message else ""
        return f"{self.outcome:<10} {printable(self.path)} -> {self.key}{extra}"
