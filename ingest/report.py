"""What a run tells people and machines: per-file lines, a progress bar, JSON logs, the run report.

The run report is stored at ``runs/{run-id}.json``: counts per outcome, every per-file error, and
timings. People get one line per file and a summary; with ``--log-format json`` (the default when
stderr is not a terminal) every event is one JSON object per line on stderr instead.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from tempfile import SpooledTemporaryFile
from typing import Any, BinaryIO, Literal, TextIO

from pydantic import BaseModel, Field, PrivateAttr

from ingest.errors import Check, printable
from ingest.outcome import Outcome
from ingest.settings import in_use

LogFormat = Literal["text", "json"]
#: A run's file records stay in memory up to this size, then go to a temporary file.
_SPOOL_BYTES = 1 << 20
log = logging.getLogger("ingest.run")
#: Sub-folders named in the not-taken note; the run report lists them all.
_NOTE_PLACES = 10


class FileRecord(BaseModel):
    """One file of a run."""

    source: str
    path: str
    outcome: str
    id: str | None = None
    version: int | None = None
    key: str | None = None
    moved_to: str | None = None
    error: dict[str, str | None] | None = None
    message: str | None = None

    @property
    def settled(self) -> bool:
        """Whether this is the file's fate: a file storage kept failing for (check ``storage``) is left in its
        source and taken again by a later run, so it counts among the refusals' checks, never as ``failed``."""
        return self.error is None or self.error.get("check") != Check.STORAGE

    @classmethod
    def of(cls, source: str, outcome: Outcome) -> FileRecord:
        """The record of one file's outcome in a run of ``source``."""
        return cls(
            source=source,
            path=outcome.path,
            outcome=outcome.outcome,
            id=outcome.id,
            version=outcome.version,
            key=outcome.key,
            message=outcome.message,
            error=outcome.error.as_dict() if outcome.error is not None else None,
        )


class RunReport(BaseModel):
    """``runs/{run-id}.json``."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    seconds: float = 0.0
    timings: dict[str, float] = Field(
        default_factory=dict, description="Seconds spent per phase: scan, read_and_parse, store, move."
    )
    sources: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict, description="Files per outcome, plus `waiting`.")
    waiting: list[str] = Field(default_factory=list, description="Files not yet settled, left for a later run.")
    not_taken: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Files in sub-folders of a source (an S3 inbox's sub-prefixes), other than processed/ and failed/, by"
            " sub-folder location: only a source's top level is read, so these are never taken."
        ),
    )
    leased_elsewhere: int = Field(default=0, description="Files another run was already working on.")
    dispatched: int = Field(default=0, description="Files sent to workers (`--dispatch`).")
    #: Read from a stored report's ``files``; a run's own records go through ``add`` into a spool file, so a
    #: run of 100,000 files does not hold 100,000 records. ``files`` reads them back.
    loaded: list[FileRecord] = Field(default_factory=list, validation_alias="files", exclude=True, repr=False)
    source_errors: dict[str, str] = Field(
        default_factory=dict, description="Sources that could not be swept, by name, with the reason."
    )
    error: str | None = Field(default=None, description="Why the run itself failed, if it did.")
    config_file: str | None = Field(
        default=None,
        description="The config file the run's settings were read from (absolute path); null when none was "
        "found and the defaults and INGEST_* variables were used.",
    )
    bucket: str = Field(default="", description="The bucket the run stored its documents in.")
    prefix: str = Field(default="", description="The key prefix under that bucket ('' for none).")

    _log: _RecordLog = PrivateAttr(default_factory=lambda: _RecordLog())
    #: Per source: files per outcome, refused files per check, and when the newest file taken had arrived
    #: (``ingest.status`` records them in the source's state).
    _by_source: dict[str, tuple[Counter[str], Counter[str]]] = PrivateAttr(default_factory=dict)
    _arrived: dict[str, float] = PrivateAttr(default_factory=dict)
    _sent: Counter[str] = PrivateAttr(default_factory=Counter)

    def model_post_init(self, context: Any, /) -> None:
        for record in self.loaded:
            self.add(record)
        self.loaded = []

    def add(self, record: FileRecord) -> None:
        """One file of the run: spooled (to disk past a small size), counted, and kept if it is an error."""
        self._log.add(record)
        counts, checks = self._by_source.setdefault(record.source, (Counter(), Counter()))
        if record.settled:
            counts[record.outcome] += 1
        if record.error is not None:
            checks[record.error.get("check") or "unknown"] += 1

    def arrived(self, source: str, when: float | None) -> None:
        """A file of ``source`` that had arrived at ``when`` (epoch seconds) was taken."""
        if when is not None and when > self._arrived.get(source, float("-inf")):
            self._arrived[source] = when

    def sent(self, source: str, files: int) -> None:
        """``files`` of ``source`` were sent to workers."""
        self.dispatched += files
        self._sent[source] += files

    def tally(self, source: str) -> tuple[Counter[str], Counter[str], float | None, int]:
        """``source``'s files per outcome, refused files per check, its newest file's arrival, and the files it
        sent to workers, so far."""
        counts, checks = self._by_source.get(source, (Counter(), Counter()))
        return counts, checks, self._arrived.get(source), self._sent[source]

    @property
    def files(self) -> list[FileRecord]:
        """Every file record of the run, read back from the spool (for tests and small runs)."""
        return list(self._log.records())

    @property
    def total(self) -> int:
        """How many file records the run has."""
        return self._log.total

    def write_json(self, out: BinaryIO) -> None:
        """The report as ``runs/{run-id}.json`` holds it, written to ``out`` record by record."""
        head = self.model_dump_json(indent=2)
        out.write(head[: head.rindex("}")].rstrip().encode() + b',\n  "files": [')
        for n, line in enumerate(self._log.lines()):
            out.write(b",\n    " if n else b"\n    ")
            out.write(line)
        out.write(b"\n  ]\n}\n")

    def add_time(self, phase: str, since: float) -> float:
        """Add the time since ``since`` (a monotonic clock reading) to ``phase``; returns the clock now."""
        now = time.monotonic()
        self.timings[phase] = round(self.timings.get(phase, 0.0) + now - since, 4)
        return now

    def count(self) -> None:
        self.counts = dict(self._log.counts)
        if self.waiting:
            self.counts["waiting"] = len(self.waiting)

    @property
    def errors(self) -> list[FileRecord]:
        return list(self._log.errors)

    def summary(self) -> str:
        parts = [f"{n} {word}" for word, n in sorted(self.counts.items()) if word != "waiting"]
        total = sum(n for word, n in self.counts.items() if word != "waiting")
        line = f"run {self.run_id}: {total} file{'s' if total != 1 else ''}"
        line += f" ({', '.join(parts)})" if parts else ""
        if self.waiting:
            line += f"; {len(self.waiting)} still being written, left for the next run"
        if self.leased_elsewhere:
            line += f"; {self.leased_elsewhere} taken by another run"
        if self.dispatched and not self.total:
            line += f"; {self.dispatched} sent to workers"
        line += f"; {self.seconds:.1f} s"
        if self.error:
            line += f"; RUN FAILED: {self.error}"
        return line

    def in_use_note(self) -> str:
        """One line naming the config file and the bucket the run used (``ingest run``, ``ingest watch``)."""
        return f"note: {in_use(self.config_file, self.bucket, self.prefix)}"

    def not_taken_note(self) -> str | None:
        """One line saying which sub-folders hold files that are never taken (``not_taken``); None when none do."""
        if not self.not_taken:
            return None
        total = sum(self.not_taken.values())
        where = "sub-folders" if len(self.not_taken) > 1 else "a sub-folder"
        files = f"{total} files in {where} are" if total != 1 else f"1 file in {where} is"
        shown = [f"{printable(place)} ({n})" for place, n in sorted(self.not_taken.items())[:_NOTE_PLACES]]
        if len(self.not_taken) > _NOTE_PLACES:
            shown.append(f"and {len(self.not_taken) - _NOTE_PLACES} more")
        return f"note: {files} not taken (only the top level is read): {', '.join(shown)}"


class _RecordLog:
    """A run's file records as JSON lines in a temporary file (in memory until it grows), with counts per
    outcome and the records that are errors (usually few) kept at hand."""

    def __init__(self) -> None:
        self._spool: SpooledTemporaryFile[bytes] | None = None
        self.counts: Counter[str] = Counter()
        self.errors: list[FileRecord] = []
        self.total = 0

    def add(self, record: FileRecord) -> None:
        if self._spool is None:
            self._spool = SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+b")  # noqa: SIM115 (see __del__)
        self._spool.seek(0, io.SEEK_END)
        self._spool.write(record.model_dump_json().encode() + b"\n")
        self.counts[record.outcome] += 1
        self.total += 1
        if record.error is not None:
            self.errors.append(record)

    def __del__(self) -> None:  # the spool lives as long as its report, however long a caller keeps that
        if self._spool is not None:
            self._spool.close()

    def lines(self) -> Iterator[bytes]:
        if self._spool is None:
            return
        self._spool.seek(0)
        for line in self._spool:
            yield line.rstrip(b"\n")

    def records(self) -> Iterator[FileRecord]:
        for line in self.lines():
            yield FileRecord.model_validate_json(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per log record, with any ``extra={"event": {...}}`` fields merged in."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in getattr(record, "event", {}).items():
            data.setdefault(key, value)  # the four fields above are never overwritten by event fields
        return json.dumps(data, ensure_ascii=False, default=str)


class Redactor(logging.Filter):
    """Keeps credentials out of every log line, ``--debug`` request dumps included."""

    _PATTERNS = (
        re.compile(r"(Credential=)[^/,\s'\"]+"),
        re.compile(r"(Signature=)[0-9a-fA-F]+"),
        re.compile(r"((?:X-Amz-Security-Token|x-amz-security-token)['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}]+"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def redact(self, text: str) -> str:
        for pattern in self._PATTERNS:
            text = pattern.sub(r"\1[redacted]", text)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        return True


REDACTOR = Redactor()


def redact_values(values: list[str]) -> None:
    """Also redact these exact strings (the credentials boto3 resolved) from every log line."""
    REDACTOR.secrets.update(v for v in values if len(v) >= 4)


def setup_logging(fmt: LogFormat, debug: bool, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(REDACTOR)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("ingest: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("ingest").setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3"):  # set both ways: logging may be set up more than once
        logging.getLogger(noisy).setLevel(logging.NOTSET if debug else logging.WARNING)


class Reporter:
    """Shows a run as it goes: file lines (text) or JSON events, and a progress bar on a terminal."""

    def __init__(
        self, fmt: LogFormat, out: TextIO | None = None, err: TextIO | None = None, *, in_use_note: bool = False
    ) -> None:
        self.fmt = fmt
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.progress = fmt == "text" and self.err.isatty()
        #: Print ``RunReport.in_use_note`` under a summary, once until it changes (a watch reloaded): JSON run
        #: events always carry ``config_file``, ``bucket`` and ``prefix``.
        self.in_use_note = in_use_note
        self._noted: str | None = None
        self._done = 0
        self._total = 0
        # A sweep plans its next batch while the last one's files are reported from the thread moving them.
        self._lock = threading.Lock()

    def planned(self, n: int) -> None:
        with self._lock:
            self._total += n
            self._bar()

    def file(self, record: FileRecord) -> None:
        with self._lock:
            self._file(record)

    def _file(self, record: FileRecord) -> None:
        self._done += 1
        if self.fmt == "json":
            level = logging.WARNING if record.error else logging.INFO
            event = {"event": "file", **record.model_dump(exclude={"message"}), "detail": record.message}
            text = f"{record.outcome} {record.path}" + (f" -> {record.key}" if record.key else "")
            log.log(level, text, extra={"event": event})
        else:
            self._clear()
            if record.error is not None:
                print(f"failed     {printable(record.path)}: {record.error.get('message')}", file=self.out, flush=True)
            else:
                extra = f" ({record.message})" if record.message else ""
                line = f"{record.outcome:<10} {printable(record.path)} -> {record.key}{extra}"
                print(line, file=self.out, flush=True)
        self._bar()

    def finished(self, report: RunReport) -> None:
        self._clear()
        note = report.not_taken_note()
        if self.fmt == "json":
            level = logging.ERROR if report.error else logging.INFO
            event = {"event": "run", **report.model_dump(mode="json", exclude={"files"})}
            log.log(level, report.summary(), extra={"event": event})
            if note is not None:
                log.info(note, extra={"event": {"event": "not_taken", "not_taken": report.not_taken}})
        else:
            print(report.summary(), file=self.out, flush=True)
            if self.in_use_note and report.in_use_note() != self._noted:
                self._noted = report.in_use_note()
                print(self._noted, file=self.out, flush=True)
            if note is not None:
                print(note, file=self.out, flush=True)

    def _bar(self) -> None:
        if not self.progress or not self._total:
            return
        width = 30
        filled = int(width * self._done / self._total)
        self.err.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self._done}/{self._total}")
        self.err.flush()

    def _clear(self) -> None:
        if self.progress:
            self.err.write("\r\033[K")
            self.err.flush()
