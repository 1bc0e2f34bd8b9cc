"""Is every feed alive, what failed and why, is anything piling up: ``ingest status``, ``ingest serve`` and the
per-source metrics all read it from here.

Two halves:

- **Stored state**, one small object per source at ``status/{source}.json`` (``SourceState``): its last sweep
  (when, how long, files per outcome, the error if it failed), when it last swept cleanly, when the newest
  file it took had arrived, and files per outcome by the hour for the last two days, with running totals.
  A run updates it at the end of each source's sweep (``record``): every ``ingest run``, and each ``ingest
  watch`` sweep that took files or failed, or at least every ``runner.IDLE_REPORT_SECONDS`` while idle. Any
  number of runs may share a source: the update is a read, a merge and a conditional write, tried again when
  another writer got there first. It is best effort: a run whose storage is down cannot write it, and says so
  in a warning line.
- **Live looks** when status is asked (``look``): the files waiting at each source's top level and the age
  of the oldest, and the files in ``failed/`` with the reasons from their error files, read from the source
  itself.

A source is **failing** when its last sweep failed, it cannot be listed now, or it has files in ``failed/``;
**quiet** when its ``quiet_after`` is set and no file has arrived for longer (counted from the first sweep
when none ever has); otherwise **healthy**. ``Status.exit_code`` is 0 when every source is healthy and 1
otherwise; a store that cannot be read raises ``StoreError`` (the CLI exits 2).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from ingest.errors import SourceError, StoreError
from ingest.keys import status_key
from ingest.settings import Settings
from ingest.sources import Backlog, FailedFile, Source
from ingest.stores.base import Store

log = logging.getLogger("ingest.status")

#: Hours of counts a state keeps (the last 24 are shown; one more day so a late reader still sees a full day).
KEEP_HOURS = 48
#: Files from ``failed/`` shown per source, newest first (all are counted).
FAILED_SHOWN = 100
#: Tries of one state update against other writers before it is left for the next sweep.
_UPDATE_TRIES = 8
_HOUR = "%Y-%m-%dT%H"

State = Literal["healthy", "quiet", "failing"]


class LastSweep(BaseModel):
    """A source's most recent sweep, as its run recorded it."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    seconds: float = Field(description="How long the sweep of this source took.")
    counts: dict[str, int] = Field(default_factory=dict, description="Files per outcome in this sweep.")
    dispatched: int = Field(default=0, description="Files sent to workers (`--dispatch`); the workers count those.")
    error: str | None = Field(default=None, description="Why the sweep failed; null when it did not.")


class SourceState(BaseModel):
    """``status/{source}.json``: what the runs of one source recorded."""

    source: str
    location: str = ""
    first_swept_at: datetime | None = None
    last_sweep: LastSweep | None = None
    last_success_at: datetime | None = Field(default=None, description="When a sweep last ended without error.")
    last_item_at: datetime | None = Field(
        default=None, description="When the newest file taken had arrived (its mtime, or the object's LastModified)."
    )
    hours: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Files per outcome by UTC hour (`2026-11-24T13`), the last 48 hours."
    )
    totals: dict[str, int] = Field(default_factory=dict, description="Files per outcome since the first sweep.")
    error_totals: dict[str, int] = Field(
        default_factory=dict, description="Refused files per check (`parse`, `validation` ...) since the first sweep."
    )

    def merged(self, sweep: Sweep) -> SourceState:
        """This state with ``sweep`` added (pure: ``record`` writes it)."""
        hour = sweep.finished_at.astimezone(UTC).strftime(_HOUR)
        hours = {h: dict(c) for h, c in self.hours.items()}
        if sweep.counts:
            hours[hour] = dict(Counter(hours.get(hour, {})) + sweep.counts)
        oldest = (sweep.finished_at - timedelta(hours=KEEP_HOURS)).astimezone(UTC).strftime(_HOUR)
        # never later than the sweep: a clock ahead of ours (or a file dated in the future) must not stick forever
        arrived = datetime.fromtimestamp(sweep.last_item, UTC) if sweep.last_item is not None else None
        arrived = min(arrived, sweep.finished_at) if arrived is not None else None
        last_item = max((t for t in (self.last_item_at, arrived) if t is not None), default=None)
        last, success = self.last_sweep, self.last_success_at
        if sweep.run_id is not None and (last is None or last.finished_at <= sweep.finished_at):
            last = LastSweep(
                run_id=sweep.run_id,
                started_at=sweep.started_at,
                finished_at=sweep.finished_at,
                seconds=round(sweep.seconds, 3),
                counts=dict(sweep.counts),
                dispatched=sweep.dispatched,
                error=sweep.error,
            )
        if sweep.run_id is not None and sweep.error is None and (success is None or success < sweep.finished_at):
            success = sweep.finished_at
        return SourceState(
            source=self.source,
            location=sweep.location or self.location,
            first_swept_at=min(t for t in (self.first_swept_at, sweep.started_at) if t is not None),
            last_sweep=last,
            last_success_at=success,
            last_item_at=last_item,
            hours={h: c for h, c in sorted(hours.items()) if h > oldest},
            totals=dict(Counter(self.totals) + sweep.counts),
            error_totals=dict(Counter(self.error_totals) + sweep.errors),
        )

    def last_24h(self, now: datetime) -> dict[str, int]:
        """Files per outcome in the 24 hours up to ``now``, by whole hours (this hour and the 23 before)."""
        since = (now - timedelta(hours=24)).astimezone(UTC).strftime(_HOUR)
        total: Counter[str] = Counter()
        for hour, counts in self.hours.items():
            if hour > since:
                total.update(counts)
        return dict(sorted(total.items()))


@dataclass
class Sweep:
    """One source's part of a run, as ``record`` adds it to the source's state; with no ``run_id``, files a
    worker took (``ingest.engine``): counted, but no sweep."""

    source: str
    location: str
    run_id: str | None
    started_at: datetime
    finished_at: datetime
    seconds: float
    counts: Counter[str] = field(default_factory=Counter)
    #: Refused files per check.
    errors: Counter[str] = field(default_factory=Counter)
    #: When the newest file taken had arrived (epoch seconds); None when none was, or it is not known.
    last_item: float | None = None
    error: str | None = None
    dispatched: int = 0


def read_state(store: Store, prefix: str, source: str) -> SourceState | None:
    """The stored state of ``source``; None when no run has recorded one (or it cannot be understood)."""
    stored = store.get(status_key(prefix, source))
    if stored is None:
        return None
    try:
        return SourceState.model_validate_json(stored.body)
    except ValidationError:
        log.warning("%s is not a state ingest wrote; it is read as empty", status_key(prefix, source))
        return None


def record(store: Store, prefix: str, sweep: Sweep) -> bool:
    """Add ``sweep`` to its source's stored state: read, merge, write only if nobody wrote between (else again,
    after a short random pause). Best effort: a store that fails is a warning, never the run's error. Whether
    it was written."""
    key = status_key(prefix, sweep.source)
    try:
        for attempt in range(_UPDATE_TRIES):
            if attempt:
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # writers that collided spread out
            stored = store.get(key)
            state = None
            if stored is not None:
                try:
                    state = SourceState.model_validate_json(stored.body)
                except ValidationError:
                    state = None  # not ours to keep: replaced by a good one
            base = state or SourceState(source=sweep.source, location=sweep.location)
            body = base.merged(sweep).model_dump_json(indent=2).encode() + b"\n"
            if store.replace(key, body, stored.etag if stored else None) is not None:
                return True
        log.warning("%s: state of source %s not updated: other runs kept writing it", key, sweep.source)
    except StoreError as exc:
        log.warning("state of source %s not updated: %s", sweep.source, exc)
    return False


class SourceStatus(BaseModel):
    """One source, as ``ingest status --json`` reports it."""

    name: str
    location: str
    state: State = Field(description="`failing`, `quiet` or `healthy` (in that order of precedence).")
    problems: list[str] = Field(default_factory=list, description="Why it is not healthy, one line each.")
    quiet: bool = False
    quiet_after_seconds: float | None = None
    last_sweep: LastSweep | None = None
    last_success_at: datetime | None = None
    last_item_at: datetime | None = Field(
        default=None, description="When the newest file seen had arrived: taken by a run, or waiting now."
    )
    last_24h: dict[str, int] = Field(
        default_factory=dict,
        description="Files per outcome in the last 24 hours, by whole UTC hours: this one and the 23 before.",
    )
    backlog_files: int | None = Field(default=None, description="Files waiting at the top level; null: unknown.")
    oldest_file_age_seconds: float | None = Field(default=None, description="Age of the oldest of them.")
    failed_count: int | None = Field(
        default=0, description="Files in failed/; null: unknown (it cannot be looked at)."
    )
    failed_files: list[FailedFile] = Field(
        default_factory=list, description=f"The newest {FAILED_SHOWN} of them, newest first."
    )
    totals: dict[str, int] = Field(default_factory=dict, description="Files per outcome since the first sweep.")
    error_totals: dict[str, int] = Field(default_factory=dict, description="Refused files per check, ever.")


class Status(BaseModel):
    """``ingest status --json``."""

    checked_at: datetime
    config_file: str | None
    bucket: str
    prefix: str
    healthy: bool
    sources: list[SourceStatus]

    @property
    def exit_code(self) -> int:
        """0 when every source is healthy, 1 when one is quiet or failing."""
        return 0 if self.healthy else 1

    def text(self) -> str:
        """``ingest status`` for people: one block per source, and a verdict."""
        return _text(self)


def look(
    settings: Settings, store: Store, sources: Iterable[Source], now: datetime, *, failed_shown: int = FAILED_SHOWN
) -> Status:
    """Every source's status now: its stored state and a live look at its backlog and ``failed/``. Raises
    ``StoreError`` when the document store cannot be read; a source that cannot be listed is failing."""
    looked = [_look_at(settings, store, source, now, failed_shown) for source in sources]
    return Status(
        checked_at=now,
        config_file=str(settings.config_file.resolve()) if settings.config_file else None,
        bucket=settings.bucket,
        prefix=settings.prefix,
        healthy=all(s.state == "healthy" for s in looked),
        sources=looked,
    )


def _look_at(settings: Settings, store: Store, source: Source, now: datetime, failed_shown: int) -> SourceStatus:
    name = source.settings.name
    state = read_state(store, settings.prefix, name) or SourceState(source=name)
    problems: list[str] = []
    backlog: Backlog | None = None
    failed: list[FailedFile] = []
    failed_count: int | None = None
    try:
        backlog = source.backlog(now.timestamp())
    except (SourceError, StoreError) as exc:
        problems.append(f"cannot be looked at: {exc}")
    try:
        failed, failed_count = source.failed_files(failed_shown)
    except (SourceError, StoreError) as exc:
        if f"cannot be looked at: {exc}" not in problems:
            problems.append(f"its failed/ cannot be looked at: {exc}")
    if state.last_sweep is not None and state.last_sweep.error:
        problems.append(f"last sweep failed: {state.last_sweep.error}")
    if failed_count:
        problems.append(f"{failed_count} file{'s' if failed_count != 1 else ''} in failed/")
    last_item = state.last_item_at
    if backlog is not None and backlog.newest is not None:
        waiting = datetime.fromtimestamp(backlog.newest, UTC)
        last_item = max(last_item, waiting) if last_item is not None else waiting
    quiet_after = source.settings.quiet_after
    quiet = False
    if quiet_after is not None:
        since = last_item or state.first_swept_at  # nothing ever arrived: quiet since it was first swept
        if since is None:  # no run has swept it: a watch that never started is no sign of life either
            quiet = True
            problems.append("quiet: no run has swept it yet, and nothing is waiting in it")
        elif (now - since).total_seconds() > quiet_after:
            quiet = True
            what = "nothing has arrived" if last_item is None else "no file has arrived"
            problems.append(f"quiet: {what} for {age((now - since).total_seconds())} (quiet_after {age(quiet_after)})")
    failing = bool(failed_count) or any(not p.startswith("quiet") for p in problems)
    oldest = backlog.oldest if backlog is not None else None
    return SourceStatus(
        name=name,
        location=source.settings.location,
        state="failing" if failing else "quiet" if quiet else "healthy",
        problems=problems,
        quiet=quiet,
        quiet_after_seconds=quiet_after,
        last_sweep=state.last_sweep,
        last_success_at=state.last_success_at,
        last_item_at=last_item,
        last_24h=state.last_24h(now),
        backlog_files=backlog.files if backlog is not None else None,
        oldest_file_age_seconds=round(max(0.0, now.timestamp() - oldest), 3) if oldest is not None else None,
        failed_count=failed_count,
        failed_files=failed,
        totals=state.totals,
        error_totals=state.error_totals,
    )


def age(seconds: float) -> str:
    """A duration for people: 45s, 12m 5s, 3h 5m, 2d 4h."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m" if s % 3600 // 60 else f"{s // 3600}h"
    return f"{s // 86400}d {s % 86400 // 3600}h" if s % 86400 // 3600 else f"{s // 86400}d"


def when(moment: datetime | None) -> str:
    """A moment for people, in UTC to the second (``ingest status``, the page); ``never`` for None."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "never"


def _text(status: Status) -> str:
    now = status.checked_at
    lines = []
    for s in status.sources:
        lines.append(f"{s.name}  {s.state.upper()}  {s.location}")
        for problem in s.problems:
            lines.append(f"  ! {problem}")
        sweep = s.last_sweep
        if sweep is None:
            lines.append("  last sweep     never (no run has recorded one)")
        else:
            counts = ", ".join(f"{n} {w}" for w, n in sorted(sweep.counts.items()))
            if sweep.dispatched:
                counts += f"{', ' if counts else ''}{sweep.dispatched} sent to workers"
            counts = counts or "no files"
            ago = age((now - sweep.finished_at).total_seconds())
            lines.append(f"  last sweep     {when(sweep.finished_at)} ({ago} ago), {sweep.seconds:.1f} s: {counts}")
        lines.append(
            f"  last item      {when(s.last_item_at)}"
            + (f" ({age((now - s.last_item_at).total_seconds())} ago)" if s.last_item_at else "")
        )
        day = ", ".join(f"{n} {w}" for w, n in s.last_24h.items()) or "none"
        lines.append(f"  last 24 h      {day}")
        if s.backlog_files is None:
            lines.append("  waiting        unknown")
        else:
            oldest = f", oldest {age(s.oldest_file_age_seconds)} old" if s.oldest_file_age_seconds is not None else ""
            lines.append(f"  waiting        {s.backlog_files} file{'s' if s.backlog_files != 1 else ''}{oldest}")
        lines.append(f"  failed/        {'unknown' if s.failed_count is None else s.failed_count}")
        for f in s.failed_files:
            why = f"{f.check}: {f.reason}" if f.check else (f.reason or "no reason recorded")
            lines.append(f"    {f.name}  ({why})")
        if s.failed_count is not None and s.failed_count > len(s.failed_files):
            lines.append(f"    ... and {s.failed_count - len(s.failed_files)} more")
    verdict = "all sources healthy" if status.healthy else "some sources need attention"
    lines.append(f"{verdict}; checked {when(status.checked_at)}")
    return "\n".join(lines)


class Tallies:
    """Files taken outside a sweep (``ingest worker`` tasks) added to their sources' states: a state update per
    task would double a task's writes, so counts gather here and a timer writes them ``every`` seconds, off the
    task's path (a task never waits on this bookkeeping). Counts a write could not get in wait for the next.
    A worker process killed outright loses the counts of its last ``every`` seconds (the files are safe: this
    is bookkeeping); a dispatching sweep records the rest of the state itself."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._lock = threading.Lock()
        #: Held across a flush's swap and writes, so a flush at shutdown waits for the timer's one in hand.
        self._writing = threading.Lock()
        self._pending: dict[tuple[int, str, str], tuple[Store, Sweep]] = {}
        self._timer: threading.Timer | None = None

    def add(
        self, store: Store, prefix: str, source: str, location: str, counts: Counter[str], errors: Counter[str]
    ) -> None:
        """Count these files of ``source`` (in ``store`` under ``prefix``); written within ``every`` seconds."""
        with self._lock:
            self._merge(store, prefix, Sweep(source, location, None, datetime.now(UTC), datetime.now(UTC), 0.0))
            _, sweep = self._pending[(id(store), prefix, source)]
            sweep.counts.update(counts)
            sweep.errors.update(errors)
            if self._timer is None:
                self._timer = threading.Timer(self.every, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def _merge(self, store: Store, prefix: str, sweep: Sweep) -> None:
        key = (id(store), prefix, sweep.source)
        held = self._pending.get(key)
        if held is None:
            self._pending[key] = (store, sweep)
            return
        held[1].counts.update(sweep.counts)
        held[1].errors.update(sweep.errors)
        held[1].finished_at = max(held[1].finished_at, sweep.finished_at)

    def flush(self) -> None:
        """Write what has gathered (after any flush already writing); what cannot be written now is kept for the
        next time."""
        with self._writing:
            with self._lock:
                pending, self._pending = self._pending, {}
                self._timer = None
            failed = [(store, prefix, sweep) for (_, prefix, _), (store, sweep) in pending.items()
                      if not record(store, prefix, sweep)]  # fmt: skip
        if failed:
            with self._lock:
                for store, prefix, sweep in failed:
                    self._merge(store, prefix, sweep)
                if self._timer is None:
                    self._timer = threading.Timer(self.every, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
