"""Every exception ingest raises, in one tree.

::

    IngestError                  base of everything below; str() is the one-line message users see
    ├── InputError               one file is refused; the run goes on with the others (exit 1)
    │   ├── ReadError            cannot be read as text: missing, too large, binary, bad encoding
    │   ├── ParseError           read, but not a well-formed article of its format
    │   └── InvalidDocument      parsed, but the document breaks a rule (no headline, no body, bad id)
    └── RunError                 the run itself cannot go on; nothing more is attempted (exit 2)
        ├── ConfigError          settings or rules files are wrong (names the key and why)
        ├── SourceError          a source cannot be listed or its files moved (permissions, disk)
        └── StoreError           storage failed: unreachable, denied, or a retry budget ran out
            └── StoreConflict    a conditional write lost a race it could not resolve

A per-file error names the file; ``str(err)`` is ``"<file>: <reason>"`` and never holds a traceback.
Third-party exceptions (botocore, pydantic, yaml) are translated into these at the module that calls
the library, with ``raise ... from exc`` so the cause survives for ``--debug``.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with control characters escaped, so a hostile file name cannot break a one-line message."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class IngestError(Exception):
    """Base of all ingest errors."""

    #: Short machine-readable name of the check that failed, e.g. ``"size-limit"``.
    check: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(IngestError):
    """One input file is refused; other files are not affected."""

    check = "input"

    def __init__(self, path: str, reason: str, *, check: str | None = None, field: str | None = None):
        path = printable(path)
        self.path = path
        self.reason = reason
        self.field = field
        if check is not None:
            self.check = check
        super().__init__(f"{path}: {reason}")

    def as_dict(self) -> dict[str, str | None]:
        """The error as recorded in run reports and ``failed/<name>.error.json``."""
        return {"path": self.path, "check": self.check, "field": self.field, "message": self.reason}


class ReadError(InputError):
    """The bytes cannot be read as article text."""

    check = "read"


class ParseError(InputError):
    """The text is not a well-formed article of its format."""

    check = "parse"


class InvalidDocument(InputError):
    """The parsed article breaks a document rule."""

    check = "validate"


class RunError(IngestError):
    """The run cannot continue: configuration or storage is at fault, not an input file."""


class ConfigError(RunError):
    """Settings or rules are invalid."""

    check = "config"


class SourceError(RunError):
    """A drop folder or inbox cannot be read or its files moved."""

    check = "source"


class StoreError(RunError):
    """Storage failed in a way retrying did not (or must not) fix."""

    check = "store"

    def __init__(self, message: str, *, operation: str = "", key: str = "", status: int | None = None):
        self.operation = operation
        self.key = key
        self.status = status
        super().__init__(message)


class StoreConflict(StoreError):
    """A conditional write kept losing races; the caller gave up after its own budget."""

    check = "conflict"
