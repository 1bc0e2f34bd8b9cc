"""Every exception ingest raises, in one tree.

::

    IngestError                  base of everything below; str() is the one-line message users see
    ├── InputError               one file is refused; the run goes on with the others (exit 1); with
    │                            check ``storage``, its storage kept failing: left for the next run
    │   ├── ReadError            cannot be read as text: missing, too large, binary, bad encoding
    │   ├── ParseError           read, but not a well-formed article of its format
    │   ├── InvalidDocument      parsed, but the document breaks a rule (no headline, no body, bad id)
    │   └── NotFound             a stored article or version asked for does not exist
    ├── SourceChanged            a file was replaced or removed after it was read: left for the next run
    └── RunError                 the run itself cannot go on; nothing more is attempted (exit 2)
        ├── ConfigError          settings or rules files are wrong (names the key and why)       terminal
        ├── SourceError          a source cannot be listed or its files moved (permissions, disk)
        └── StoreError           storage failed in a way retrying did not (or must not) fix
            ├── StoreUnavailable unreachable, 5xx or throttled after every retry                transient
            ├── StoreDenied      access denied, or the bucket is missing and cannot be made      terminal
            ├── StoreCorrupt     a stored object is not what ingest wrote                         terminal
            └── StoreConflict    a conditional write kept losing races                            transient

``Transient`` and ``Terminal`` are markers (after dlt's ``TransientException``/``TerminalException``):
a caller that can wait (``ingest watch``) backs off on a transient error and stops on anything else.

A per-file error names the file; ``str(err)`` is ``"<file>: <reason>"`` and never holds a traceback.
Its kind is a ``Check``: the word written as ``check`` in JSON output, run reports and ``.error.json``
files (a contract). Third-party exceptions (botocore, pydantic, yaml) are translated into these at the
module that calls the library, with ``raise ... from exc`` so the cause survives for ``--debug``;
pydantic errors become words in one place, ``field_errors``; ``describe_validation`` (first field),
``settings.describe_settings_error`` (with where each value came from) and ``parsers._json.field_error``
(naming the input file) only shape its output.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class Check(StrEnum):
    """What refused a file: the ``check`` word of outcomes, run reports and ``.error.json`` files."""

    # reading (ReadError)
    READ = "read"
    MISSING = "missing"
    NOT_A_FILE = "not-a-file"
    PERMISSION = "permission"
    OPEN = "open"
    SIZE_LIMIT = "size-limit"
    BINARY = "binary"
    ENCODING = "encoding"
    REFUSED = "refused"
    # parsing (ParseError)
    PARSE = "parse"
    FORMAT = "format"
    XML_SECURITY = "xml-security"
    # document rules (InvalidDocument)
    VALIDATE = "validate"
    HEADLINE = "headline"
    BODY = "body"
    ID = "id"
    ID_CONFLICT = "id-conflict"
    SCHEMA = "schema"
    DEPTH = "depth"
    ROLLBACK = "rollback"
    # reading back (NotFound)
    NOT_FOUND = "not-found"
    #: Storage kept failing for this file's requests (transiently) after every retry: it is not refused,
    #: but left in its source for the next run, which carries on from what was written (``ingest.commit``).
    STORAGE = "storage"
    # anything else that went wrong with one file
    INPUT = "input"
    INTERNAL = "internal"
    #: A file whose task stopped its worker ``max_deliveries`` times (crash, memory, time limit).
    WORKER_LOST = "worker-lost"


def printable(text: str) -> str:
    """``text`` with control characters escaped, so a hostile file name cannot break a one-line message."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class Transient:
    """Marker: waiting and trying again may succeed (storage unreachable, a race lost)."""


class Terminal:
    """Marker: trying again will fail the same way until a person fixes something."""


class IngestError(Exception):
    """Base of all ingest errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def fields(self) -> dict[str, object]:
        """The error as JSON values, for a log line: its kind (the class name), whether waiting may fix it,
        and the fields its kind keeps (a refused file's path and check, a storage request's key)."""
        return {"error": type(self).__name__, "transient": isinstance(self, Transient)}

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields, not by calling __init__ with ``args`` (the subclasses take other
        # arguments): errors cross process boundaries inside outcomes (ingest.lanes).
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[IngestError], args: tuple[Any, ...], state: dict[str, Any]) -> IngestError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InputError(IngestError):
    """One input file is refused; other files are not affected."""

    #: The kind of refusal when none is given.
    default_check: Check = Check.INPUT

    def __init__(self, path: str, reason: str, *, check: Check | None = None, field: str | None = None):
        path = printable(path)
        self.path = path
        self.reason = reason
        self.field = field
        self.check: Check = check or self.default_check
        super().__init__(f"{path}: {reason}")

    def as_dict(self) -> dict[str, str | None]:
        """The error as recorded in run reports and ``failed/<name>.error.json``."""
        return {"path": self.path, "check": str(self.check), "field": self.field, "message": self.reason}

    def fields(self) -> dict[str, object]:
        return {**super().fields(), "path": self.path, "check": str(self.check), "field": self.field}


class ReadError(InputError):
    """The bytes cannot be read as article text."""

    default_check = Check.READ


class ParseError(InputError):
    """The text is not a well-formed article of its format."""

    default_check = Check.PARSE


class InvalidDocument(InputError):
    """The parsed article breaks a document rule."""

    default_check = Check.VALIDATE


class NotFound(InputError):
    """A stored article or version that was asked for does not exist."""

    default_check = Check.NOT_FOUND


class SourceChanged(IngestError):
    """The file was replaced or removed after it was read: it is left where it is for the next run."""


class RunError(IngestError):
    """The run cannot continue: configuration or storage is at fault, not an input file."""


class ConfigError(RunError, Terminal):
    """Settings or rules are invalid."""


class SourceError(RunError):
    """A drop folder or inbox cannot be read or its files moved."""


class StoreError(RunError):
    """Storage failed in a way retrying did not (or must not) fix."""

    def __init__(self, message: str, *, operation: str = "", key: str = "", status: int | None = None):
        self.operation = operation
        self.key = key
        self.status = status
        super().__init__(message)

    def fields(self) -> dict[str, object]:
        return {**super().fields(), "operation": self.operation or None, "key": self.key or None, "status": self.status}



class StoreUnavailable(StoreError, Transient):
    """Storage did not answer, or kept answering 5xx or SlowDown, through every retry."""


class StoreDenied(StoreError, Terminal):
    """Access denied, or the bucket does not exist and cannot be created: a person must act."""


class StoreCorrupt(StoreError, Terminal):
    """A stored object is not what ingest writes there (not a document, not a feed entry)."""


class StoreConflict(StoreError, Transient):
    """A conditional write kept losing races; the caller gave up after its own budget."""


def field_errors(exc: ValidationError, data: object = None) -> list[tuple[str, str]]:
    """Each failing field of a pydantic error as ``(dotted path, one-line reason)``, in order.

    With ``data`` (the input that was validated) a path keeps only the keys and indexes that exist in
    it, so the union-branch names pydantic adds ("body.0.constrained-str") never reach a person; the
    reasons of every branch for one field are joined. The one place pydantic errors become words.
    """
    by_field: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        field = _path(loc, data) if data is not None else ".".join(str(p) for p in loc)
        if error["type"] == "extra_forbidden":
            reason = "is not a known key"
        elif error["type"] == "missing":
            reason = "is required"
        else:
            reason = str(error["msg"]).removeprefix("Value error, ")
        reasons = by_field.setdefault(field, [])
        if reason not in reasons:
            reasons.append(reason.replace("\n", " "))
    return [(field, "; ".join(reasons)) for field, reasons in by_field.items()]


def describe_validation(exc: ValidationError, data: object = None) -> tuple[str, str]:
    """The first failing field and its reason, counting the other failing fields after it."""
    fields = field_errors(exc, data)
    field, reason = fields[0] if fields else ("", "is not valid")
    if len(fields) > 1:
        more = len(fields) - 1
        reason += f" (and {more} more field{'s' if more > 1 else ''})"
    return field or "(document)", reason


def _path(loc: tuple[int | str, ...], data: object) -> str:
    parts: list[str] = []
    current = data
    for i, part in enumerate(loc):
        inside = (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        )
        if inside:
            current = current[part]  # type: ignore[index]  # checked just above
        elif i < len(loc) - 1 or not isinstance(current, dict):
            continue  # a union branch name, not a place in the input
        parts.append(printable(str(part))[:60])
    return ".".join(parts)
