"""Places article files come from: one module per kind, behind one small interface.

A source lists candidates at its top level (files in sub-folders are counted, never taken), reads
one, and after the pipeline has durably stored (or refused) it, moves it to ``processed/`` or
``failed/`` (with ``<name>.error.json`` beside it). Nothing is moved or deleted before its document
is stored. ``open_source`` picks the module from the location. A file
that changes while it is read, or is replaced after it was read, raises ``ingest.errors.SourceChanged``
and stays for the next run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ingest.settings import SourceSettings

if TYPE_CHECKING:
    from ingest.stores.base import Store

#: Names never taken: hidden files and the temporary names of half-written uploads.
IGNORED = (".*", "*.part", "*.tmp", "*.crdownload", "*.swp", "*~")


def ignored(name: str) -> bool:
    return any(fnmatch(name, pattern) for pattern in IGNORED)


@dataclass(frozen=True)
class Candidate:
    """One file a source offers. ``ref`` is its path or key; ``display`` is what people are shown."""

    ref: str
    name: str
    size: int
    display: str
    #: Set when the source already knows the file must be refused (e.g. a symlink out of the folder).
    refusal: str | None = None
    #: The listed entry is a symlink (inside the folder); anything else must not become one later.
    is_link: bool = False
    #: What a drop folder listed: ``(st_dev, st_ino, st_size, st_mtime_ns)``. The file is stored only if it
    #: is still exactly this when opened and after reading, so a rewrite after the listing is never half-read.
    listed: tuple[int, int, int, int] | None = None
    #: When the file arrived (epoch seconds: a drop folder's mtime, an inbox object's LastModified), if known.
    arrived: float | None = None


@dataclass(frozen=True)
class Scan:
    """What one look at a source found."""

    #: Files ready to take, in name order. Possibly lazy (a drop folder looks at each file as it is reached):
    #: ``waiting`` and ``not_taken`` are complete once ``ready`` has been gone through.
    ready: Iterable[Candidate]
    #: Files seen but not yet settled (still being written); left for a later run.
    waiting: list[str]
    #: Files in sub-folders (an S3 inbox's sub-prefixes) other than ``processed/`` and ``failed/``, at any
    #: depth, counted by the location of the top-level sub-folder (ending in ``/``). Only the top level is
    #: input, so these are never taken: they are counted so that the run says so, not ignored silently.
    #: Names never taken anywhere (hidden, temporary, done markers) are not counted, nor hidden sub-folders;
    #: a sub-folder with nothing counted is left out.
    not_taken: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Backlog:
    """Files at a source's top level that a run would take, now or once they settle (``ingest status``)."""

    files: int
    #: Arrival times (epoch seconds) of the oldest and the newest of them; None when there are none.
    oldest: float | None = None
    newest: float | None = None

    @classmethod
    def of(cls, times: Iterable[float]) -> Backlog:
        count, oldest, newest = 0, None, None
        for t in times:
            count += 1
            oldest = t if oldest is None or t < oldest else oldest
            newest = t if newest is None or t > newest else newest
        return cls(count, oldest, newest)


@dataclass(frozen=True)
class FailedFile:
    """A file in a source's ``failed/``, with what its ``<name>.error.json`` says (``ingest status``)."""

    name: str
    #: Where it is: a path, or an ``s3://`` location.
    location: str
    check: str | None = None
    reason: str | None = None
    field: str | None = None
    #: When it was refused (ISO 8601, UTC), as the error file says.
    failed_at: str | None = None

    @classmethod
    def of(cls, name: str, location: str, error_file: bytes | None) -> FailedFile:
        """From the bytes of its error file (None when there is none, or it is not JSON ingest wrote)."""
        try:
            error = json.loads(error_file) if error_file is not None else {}
        except ValueError:
            error = {}
        if not isinstance(error, dict):
            error = {}

        def text(key: str) -> str | None:
            value = error.get(key)
            return value if isinstance(value, str) else None

        reason = text("message") or (None if error_file is None else "its error file cannot be read")
        return cls(name, location, text("check"), reason, text("field"), text("failed_at"))


Identity = TypeVar("Identity")


class ReadMemory(Generic[Identity]):
    """What a source remembers between reading a file and moving it: the file as it was read, and its done
    marker as it was then (sources with ``done_marker``), so that a file replaced since is never moved.
    ``Identity`` is the source's own notion of "the same file" (a drop folder's inode, size and mtime; an
    inbox object's ETag). A sweep reads files in one thread while the files of the batch before are
    moved in another: each file's entry is touched by one thread at a time, and ``forget()`` of every
    file is only for when nothing is being moved."""

    def __init__(self) -> None:
        self._read_as: dict[str, Identity] = {}
        self._marked_as: dict[str, Identity] = {}

    def forget(self, candidate: Candidate | None = None) -> None:
        """See ``Source.forget``."""
        if candidate is None:
            self._read_as.clear()
            self._marked_as.clear()
        else:
            self._read_as.pop(candidate.ref, None)
            self._marked_as.pop(candidate.ref, None)


class Source(Protocol):
    settings: SourceSettings
    #: Whether moving a file is a network request (worth running several side by side) rather than a
    #: rename on this machine.
    parallel_moves: bool

    def scan(self, now: float) -> Scan: ...

    def read(self, candidate: Candidate, max_bytes: int, now: float) -> bytes | None:
        """The candidate's bytes; None when it vanished (another run took it). ``now`` (epoch seconds) is
        the reading run's clock, for sources that judge whether a file is complete by its age. Raises
        ``SourceChanged`` when what was read is not what settled (the file is left for the next run)."""
        ...

    def forget(self, candidate: Candidate | None = None) -> None:
        """Drop what reading ``candidate`` (or every file) remembered for moving it: for files read but not
        moved here (an archive load, a dispatching sweep)."""
        ...

    def done(self, candidate: Candidate, when: datetime) -> str:
        """Move a stored file to ``processed/``; returns where it went. Raises ``SourceChanged`` when
        the file is no longer what was read, ``SourceError`` when it cannot be moved."""
        ...

    def fail(self, candidate: Candidate, error: dict[str, str | None], when: datetime) -> str:
        """Move a refused file to ``failed/`` with ``<name>.error.json``; returns where it went."""
        ...

    def backlog(self, now: float) -> Backlog:
        """The files waiting at the top level (settled or not, as a run would take them in time); raises
        ``SourceError`` when the source cannot be listed."""
        ...

    def failed_files(self, limit: int) -> tuple[list[FailedFile], int]:
        """The newest ``limit`` files in ``failed/`` with their reasons, newest first, and how many there are."""
        ...

    def retry_failed(self, names: Collection[str] | None = None, *, dry_run: bool = False) -> list[str]:
        """Put every file in ``failed/`` (or only those of ``names``, names in ``failed/``; others are not
        looked for) back, dropping its error file; returns the names they went back under. With ``dry_run``,
        moves nothing and returns the names in ``failed/`` that would go back."""
        ...


def open_source(source: SourceSettings, open_store: Callable[[str], Store]) -> Source:
    """The source at ``source.location``. An S3 inbox reads and moves through ``open_store(bucket)``: the
    caller decides what a bucket is (S3 in production, an in-memory store in tests)."""
    if source.is_s3:
        from ingest.sources.s3inbox import S3Inbox

        return S3Inbox(source, open_store(source.bucket))
    from ingest.sources.folder import Folder

    return Folder(source)
