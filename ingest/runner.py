"""Sweeping sources: ``ingest run`` (once, for cron and CronJobs) and ``ingest watch`` (until stopped).

For each source::

    list it; lease the shard groups of what is ready (ingest.claims) -> another run's groups are skipped
    skip files already dispatched to workers (when a broker is configured)
    in batches:
        read + prepare (pure)                              -> refused files become `failed`
        commit the batch (versions, raw, changes, latest)
        move the files, side by side: processed/ after their documents are stored,
                                       failed/ with <name>.error.json if refused
    release the leases

``take_files`` is that batch step on its own: the per-file unit of work a Celery worker runs
(``ingest.engine``). With a dispatcher, a sweep sends its batches to the workers instead of taking them.

A file whose storage kept failing is reported ``failed`` (check ``storage``) and left in its source; the
rest of its batch is moved. When nothing of a batch gets through and the store does not answer, the run
stops before anything of that batch is moved (exit 2); the next run starts over and is idempotent.
A lease left by a run that died expires after ``lease_seconds``.
The clock is passed in (``clock``), so settling and lease expiry can be tested without waiting.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from tempfile import TemporaryFile
from typing import TYPE_CHECKING, Protocol

from ingest import metrics
from ingest.claims import ShardClaims, shard_of, where
from ingest.clock import Clock, utcnow
from ingest.commit import Committer, new_run_id
from ingest.errors import (
    Check,
    ConfigError,
    IngestError,
    InputError,
    RunError,
    SourceChanged,
    SourceError,
    StoreError,
    StoreUnavailable,
    Transient,
)
from ingest.keys import run_key, store_folders
from ingest.outcome import Outcome
from ingest.prepare import Prepared, guarded, prepare_items
from ingest.report import FileRecord, Reporter, RunReport
from ingest.rules import check_settings, rules_for
from ingest.settings import Settings, SourceSettings
from ingest.sources import Candidate, Source, open_source
from ingest.split import Rules
from ingest.status import Sweep as StatusSweep
from ingest.status import record as record_state
from ingest.stores.base import Store
from ingest.stores.leases import Leases

if TYPE_CHECKING:
    from ingest.engine import Dispatcher

log = logging.getLogger("ingest.run")
#: How often an idle ``ingest watch`` stores a run report, so a quiet feed and a dead ingester differ.
IDLE_REPORT_SECONDS = 300.0


class Commits(Protocol):
    """Writes prepared batches: a ``Committer``, or a ``LaneCommitter`` spreading them over processes."""

    run_id: str

    def commit(
        self,
        batch: Sequence[Prepared | Outcome],
        *,
        note: str | None = None,
        editor: str | None = None,
        backfill: bool = False,
    ) -> list[Outcome]: ...

    def close(self) -> None:
        """Let go of what it holds (a ``LaneCommitter``'s processes); for a watch that replaces it on reload."""
        ...


class Dispatched(Protocol):
    """Knows which files are already with the workers (``ingest.engine.Dispatcher``)."""

    def filter(self, source: SourceSettings, candidates: Sequence[Candidate]) -> tuple[list[Candidate], int]: ...


def run_once(
    settings: Settings,
    store: Store,
    sources: Sequence[Source],
    reporter: Reporter,
    *,
    stop: Callable[[], bool] = lambda: False,
    committer: Commits | None = None,
    quiet_when_idle: bool = False,
    store_idle_report: bool = True,
    clock: Clock = utcnow,
    dispatcher: Dispatcher | None = None,
    dispatched: Dispatched | None = None,
    recorded: dict[str, tuple[datetime, str | None]] | None = None,
) -> RunReport:
    """Sweep every source once and store the run's report (idle and failed runs included, when storage
    allows). A source that cannot be swept (a missing folder, a file where ``processed/`` belongs, a move
    that fails) is that source's error: the others are swept, then ``SourceError`` is raised (exit 2).
    A storage failure stops the run at once (``StoreError``): storage is every source's.

    With ``dispatcher`` the files are sent to workers (``ingest run --dispatch``) and, when it waits, their
    records are collected into this run's report. ``dispatched`` (or the dispatcher) tells which files
    are already with the workers, so an in-process run skips them. Each source's state (``ingest.status``) is
    updated at the end; a watch passes ``recorded`` so that an idle source's is updated only now and then."""
    # A watch passes its committer (its lease owner) to every sweep; each sweep still has its own report.
    report_id = new_run_id(clock()) if committer else None
    committer = committer or Committer.configured(store, settings, clock=clock)
    report = RunReport(
        run_id=report_id or committer.run_id,
        started_at=clock(),
        sources=[s.settings.name for s in sources],
        config_file=os.path.abspath(settings.config_file) if settings.config_file else None,
        bucket=settings.bucket,
        prefix=settings.prefix,
    )
    started = time.monotonic()
    swept: dict[str, tuple[datetime, float]] = {}  # per source: when its sweep began, and how long it took
    run_error: str | None = None  # why the run failed, for every source (not one source's own error)
    storage_down = interrupted = False
    pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="sweep")
    try:
        store.ensure_bucket()
        leases = Leases(store, settings.prefix, committer.run_id, settings.lease_seconds, clock=clock)
        for source in sources:
            claims = ShardClaims(leases, pool)
            sweep = _Sweep(settings, source, committer, report, reporter, clock, pool, claims)
            sweep.dispatcher, sweep.dispatched = dispatcher, dispatcher or dispatched
            swept[source.settings.name] = (clock(), time.monotonic())
            try:
                sweep.run(stop)
            except SourceError as exc:
                log.error("%s; the other sources go on", exc)
                report.source_errors[source.settings.name] = str(exc)
            finally:
                began, mark = swept[source.settings.name]
                swept[source.settings.name] = (began, time.monotonic() - mark)
                if not sweep.storage_failed:  # releasing would only retry against a store that is down
                    claims.release()
        if dispatcher is not None:
            _collect(dispatcher, report, reporter)
        if report.source_errors:
            failed = ", ".join(report.source_errors)
            raise SourceError(f"{len(report.source_errors)} source(s) could not be swept: {failed} (see above)")
    except RunError as exc:
        report.error = str(exc)
        if not (isinstance(exc, SourceError) and report.source_errors):  # not just the sources' errors, summed
            run_error = report.error
        storage_down = isinstance(exc, StoreUnavailable)
        raise
    except BaseException:  # a second Ctrl-C, or a bug: nothing to record as the sweep's outcome
        interrupted = True
        raise
    finally:
        pool.shutdown(wait=False)
        report.finished_at = clock()
        report.seconds = time.monotonic() - started
        report.count()
        idle = not report.total and not report.dispatched and report.error is None
        if not (idle and quiet_when_idle):
            reporter.finished(report)
        if store_idle_report or not idle:
            _store_report(store, settings.prefix, report)
        if not interrupted:
            _record_states(store, settings.prefix, sources, report, swept, run_error, recorded, storage_down)
    return report


def _record_states(
    store: Store,
    prefix: str,
    sources: Sequence[Source],
    report: RunReport,
    swept: dict[str, tuple[datetime, float]],
    run_error: str | None,
    recorded: dict[str, tuple[datetime, str | None]] | None,
    storage_down: bool = False,
) -> None:
    """Add each swept source's part of the run to its state (``ingest.status``). A run records every source; a
    watch (``recorded``: when it last recorded each source, and the error it recorded) records a source when it
    took files, when its error changed (it failed, or recovered), and at least every ``IDLE_REPORT_SECONDS``.
    When storage was unreachable (``storage_down``), only the sources that took files are tried, and none after a
    write that fails: each would wait out its retries against a store that is down."""
    finished = report.finished_at or report.started_at
    for source in sources:
        name = source.settings.name
        if name not in swept:
            continue
        began, seconds = swept[name]
        ended = began + timedelta(seconds=seconds) if not report.dispatched else finished  # --wait: collecting too
        counts, errors, arrived, sent = report.tally(name)
        if sent:  # the workers count what they take (``ingest.engine``); the records a --wait run collects are theirs
            counts, errors = Counter(), Counter()
        error = report.source_errors.get(name) or run_error
        if storage_down and not (counts or errors):
            continue
        if recorded is not None and not (counts or errors or sent):
            last = recorded.get(name)
            if last is not None and last[1] == error and (ended - last[0]).total_seconds() < IDLE_REPORT_SECONDS:
                continue
        sweep = StatusSweep(name, source.settings.location, report.run_id, began, ended, seconds, counts, errors)
        sweep.last_item, sweep.error, sweep.dispatched = arrived, error, sent
        written = record_state(store, prefix, sweep)
        if written and recorded is not None:
            recorded[name] = (ended, error)
        if not written and storage_down:
            return


def _store_report(store: Store, prefix: str, report: RunReport) -> None:
    """``runs/{run-id}.json``, best effort: a run that failed because storage is down cannot store it."""
    try:
        with TemporaryFile() as out:  # written record by record: a big run's report is never held whole
            report.write_json(out)
            store.put_file(run_key(prefix, report.run_id), out)
    except StoreError as exc:
        log.warning("run report %s not stored: %s", report.run_id, exc)


@dataclass(frozen=True)
class _Stored:
    """A batch whose documents are stored: each file with its records and whether its lease group is still
    ours (else another run took it over, and moves it), and the time its moves are filed under."""

    moves: list[tuple[Candidate, list[FileRecord], bool]]
    now: datetime


class _Sweep:
    """One source's batches within one run (or one worker task: ``take_files``)."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        committer: Commits,
        report: RunReport,
        reporter: Reporter | None,
        clock: Clock,
        pool: ThreadPoolExecutor,
        claims: ShardClaims | None = None,
        *,
        backfill: bool = False,
    ) -> None:
        self.settings, self.source, self.committer = settings, source, committer
        self.report, self.reporter, self.clock = report, reporter, clock
        self.pool, self.claims, self.backfill = pool, claims, backfill
        self.name = source.settings.name
        self.rules = rules_for(settings, source.settings)
        self.dispatcher: Dispatcher | None = None
        self.dispatched: Dispatched | None = None
        self.storage_failed = False
        #: Whether its records count into ``ingest_files_total`` here (a worker's task counts its own).
        self.counted = True

    def _time(self, stage: str, mark: float) -> float:
        """Add the time since ``mark`` to the report's ``stage`` and observe it as a metric; returns the clock now."""
        now = self.report.add_time(stage, mark)
        metrics.process().stage(stage, now - mark)
        return now

    def _add(self, record: FileRecord) -> None:
        self.report.add(record)
        if self.counted:
            metrics.process().files((record,))
        if self.reporter:
            self.reporter.file(record)

    def run(self, stop: Callable[[], bool]) -> None:
        """List the source, then a batch at a time: lease what is ready, take it (or send it to workers).
        The listing is gone through as the batches go, never held whole."""
        mark = time.monotonic()
        scan = self.source.scan(self.clock().timestamp())
        self._time("scan", mark)
        mover = ThreadPoolExecutor(max_workers=1, thread_name_prefix="move")
        moving: Future[list[FileRecord]] | None = None
        try:
            for chunk in _chunks(scan.ready, self.settings.batch_size):
                if stop():
                    break
                if self.claims is not None:
                    chunk, elsewhere = self.claims.claim(chunk)
                    held = self.claims.keep(chunk)  # groups held since an earlier batch may have expired
                    lost = [c for c in chunk if shard_of(c) not in held]
                    chunk = [c for c in chunk if shard_of(c) in held]
                    self.report.leased_elsewhere += elsewhere + len(lost)
                if self.dispatched is not None and chunk:
                    chunk, queued = self.dispatched.filter(self.source.settings, chunk)
                    self.report.leased_elsewhere += queued
                if not chunk:
                    continue
                if self.dispatcher is not None:
                    self.send(chunk)
                    continue
                if moving is not None and moving.done():
                    done, moving = moving, None
                    done.result()  # raises when the last batch's moves failed: store nothing more then
                if self.reporter:
                    self.reporter.planned(len(chunk))
                stored = self._store_batch(chunk, stop)
                # A batch's files move while the next batch is read and stored (they are durably stored
                # already); one batch's moves at a time, in order, so its lines still come out in order.
                if moving is not None:
                    done, moving = moving, None
                    try:
                        done.result()
                    except BaseException:
                        self._report_unmoved(stored)  # stored, but not moved: the next run moves it
                        raise
                moving = mover.submit(self._settle_batch, stored)
        finally:
            try:
                if moving is not None:
                    if sys.exc_info()[1] is None:
                        moving.result()  # what is stored is moved, whatever stopped the sweep
                    else:  # the sweep's own error is the one to raise; the moves' is logged
                        failed = moving.exception()
                        if failed is not None:
                            log.error("%s: moving stored files failed too: %s", self.name, failed)
            finally:
                mover.shutdown(wait=True)
                self.report.waiting += scan.waiting
                self.report.not_taken.update(scan.not_taken)

    def _report_unmoved(self, stored: _Stored) -> None:
        for _, records, _ in stored.moves:
            for record in records:
                record.message = "left in the source for the next run"
                self._add(record)

    def batch(self, candidates: Sequence[Candidate], stop: Callable[[], bool] = lambda: False) -> list[FileRecord]:
        """Read, prepare, commit and move these files; their records, in order."""
        return self._settle_batch(self._store_batch(candidates, stop))

    def _store_batch(self, candidates: Sequence[Candidate], stop: Callable[[], bool]) -> _Stored:
        """Read, prepare and commit these files: what is left to do is moving them (``_settle_batch``)."""
        work: list[tuple[Candidate, list[Prepared | Outcome]]] = []  # each file with its items
        mark = time.monotonic()
        try:
            for candidate in candidates:
                if stop():  # finish what is in hand, take nothing new
                    break
                items = self._prepare(candidate)
                if items is not None:  # None: another run moved it after we listed it; not ours to report
                    work.append((candidate, items))
            mark = self._time("read_and_parse", mark)
            batch = [item for _, items in work for item in items]
            outcomes = iter(self.committer.commit(batch, backfill=self.backfill))
            self._time("store", mark)
        except StoreError:
            self.storage_failed = True
            raise
        records = [[self._record(next(outcomes)) for _ in items] for _, items in work]
        ours = self.claims.keep(c for c, _ in work) if self.claims is not None else None
        moves = [(c, r, ours is None or shard_of(c) in ours) for (c, _), r in zip(work, records, strict=True)]
        return _Stored(moves, self.clock())

    def _settle_batch(self, stored: _Stored) -> list[FileRecord]:
        """Move a stored batch's files and report them, in order."""
        try:
            return self._move_and_report(stored)
        except StoreError:  # an inbox's moves are requests: a store that is down is the run's error
            self.storage_failed = True
            raise

    def _move_and_report(self, stored: _Stored) -> list[FileRecord]:
        mark = time.monotonic()
        def settle(move: tuple[Candidate, list[FileRecord], bool]) -> None:
            self._settle(*move, stored.now)

        if self.source.parallel_moves:
            list(self.pool.map(settle, stored.moves))
        else:  # a rename is a few system calls: threads would only fight over the interpreter
            for move in stored.moves:
                settle(move)
        self._time("move", mark)
        done = [record for _, file_records, _ in stored.moves for record in file_records]
        for candidate, _, _ in stored.moves:
            self.report.arrived(self.name, candidate.arrived)
        for record in done:
            self._add(record)
        return done

    def send(self, candidates: Sequence[Candidate]) -> None:
        """Send these files to the workers, grouped by article (``ingest.engine``)."""
        assert self.dispatcher is not None
        self.source.forget()  # what the reads below remember is for moves, and a dispatcher moves nothing
        read = [(c, self._prepare(c)) for c in candidates]
        groups = _by_article([(c, items) for c, items in read if items is not None])  # gone or changed: not sent
        self.source.forget()
        for candidate, items in read:
            if items is not None:
                self.report.arrived(self.name, candidate.arrived)
        sent, deferred = self.dispatcher.send(self.source.settings, groups, self.report.run_id)
        self.report.sent(self.name, sent)
        for display in deferred:
            self.report.waiting.append(display)
            log.info("%s: an earlier file of its article is still with the workers; left for the next sweep", display)

    def _settle(self, candidate: Candidate, records: list[FileRecord], ours: bool, now: datetime) -> None:
        if self.backfill:
            self.source.forget(candidate)  # an archive is read in place: never moved
            return
        if not ours:
            for record in records:
                record.message = "its lease expired and another run took it over; left to that run"
            return
        self._move(candidate, records, now)

    def _record(self, outcome: Outcome) -> FileRecord:
        return FileRecord.of(self.name, outcome)

    def _prepare(self, candidate: Candidate) -> list[Prepared | Outcome] | None:
        return read_and_prepare(self.settings, self.source, self.rules, candidate, self.clock, self.report.waiting)

    def _move(self, candidate: Candidate, records: list[FileRecord], now: datetime) -> None:
        """Move one file after its batch is committed, unless a writer got there first: to
        ``processed/`` when every item of it is stored, else to ``failed/`` with the first refusal. A file
        an item of which storage kept failing for (check ``storage``) is not moved at all: the next run
        takes it again and carries on from what this one wrote."""
        if any(r.error is not None and r.error.get("check") == Check.STORAGE for r in records):
            for record in records:
                record.message = "left in the source for the next run"
            return
        refused = next((r.error for r in records if r.error is not None), None)
        try:
            moved = self.source.fail(candidate, refused, now) if refused else self.source.done(candidate, now)
        except SourceChanged as exc:
            for record in records:
                record.message = f"{exc}; left for the next run"
            return
        for record in records:
            record.moved_to = moved


@dataclass(frozen=True)
class Watched:
    """How a watch ended: files refused in all, and why its last sweep failed (None: it did not)."""

    refused: int
    failing: str | None


@dataclass(frozen=True)
class Watching:
    """What a watch sweeps with, all made from one ``Settings``: at the start, and again on each reload."""

    settings: Settings
    store: Store
    sources: Sequence[Source]
    committer: Commits | None = None
    dispatcher: Dispatcher | None = None
    dispatched: Dispatched | None = None
    after_sweep: Callable[[], object] | None = None


class Reload:
    """A config reload asked of a running watch (``ingest watch`` on SIGHUP).

    ``request`` only sets a flag, so a signal handler may call it. The watch looks at the flag between sweeps
    (a pause ends early for it) and calls ``load``, which reads the settings again and makes a new
    ``Watching`` of them. A ``load`` that raises a ``RunError`` (a config file that does not load, a source
    that cannot be opened, a missing webhook secret) leaves the watch as it was, with one error log line.
    """

    def __init__(self, load: Callable[[], Watching]) -> None:
        self.load = load
        self.requested = threading.Event()

    def request(self) -> None:
        self.requested.set()


def _chunks(items: Iterable[Candidate], size: int) -> Iterator[list[Candidate]]:
    chunk: list[Candidate] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def take_files(
    settings: Settings,
    store: Store,
    source: Source,
    candidates: Sequence[Candidate],
    *,
    committer: Commits,
    clock: Clock = utcnow,
    backfill: bool = False,
) -> list[FileRecord]:
    """The unit of work for files another part already claimed (a worker's task): read, prepare, commit,
    move. Idempotent: run twice, the second finds the versions stored or the files gone."""
    report = RunReport(run_id=committer.run_id, started_at=clock(), sources=[source.settings.name])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="move") as pool:
        sweep = _Sweep(settings, source, committer, report, None, clock, pool, backfill=backfill)
        sweep.counted = False  # its caller counts them (``ingest.engine.take_job``)
        return sweep.batch(candidates)


def refuse_file(source: Source, candidate: Candidate, error: InputError, clock: Clock = utcnow) -> list[FileRecord]:
    """Move a file to ``failed/`` unread, with ``error`` (a file that keeps stopping its worker)."""
    record = FileRecord.of(source.settings.name, Outcome.failed(candidate.display, error))
    try:
        record.moved_to = source.fail(candidate, error.as_dict(), clock())
    except SourceChanged as exc:
        record.message = f"{exc}; left for the next run"
    return [record]


def read_and_prepare(
    settings: Settings, source: Source, rules: Rules, candidate: Candidate, clock: Clock, waiting: list[str]
) -> list[Prepared | Outcome] | None:
    """Read one listed file and prepare its items (or its ``failed`` outcome). None when it is not to be
    reported here: gone (another run moved it after it was listed), or changed while read (appended to
    ``waiting``; the next run takes it)."""
    conf = source.settings
    if candidate.refusal is not None:
        refused = InputError(candidate.display, candidate.refusal, check=Check.REFUSED)
        return [Outcome.failed(candidate.display, refused)]
    try:
        data = source.read(candidate, settings.max_bytes, clock().timestamp())
    except InputError as exc:
        return [Outcome.failed(candidate.display, exc)]
    except SourceChanged as exc:  # still being written, or replaced while read: never store half a file
        log.warning("%s; left for the next run", exc)
        waiting.append(candidate.display)
        return None
    if data is None:
        return None
    return guarded(
        candidate.display,
        lambda: prepare_items(
            data,
            candidate.name,
            rules,
            received_at=clock(),
            display=candidate.display,
            format=conf.format,
            id_from=conf.id_from,
            id_prefix=conf.id_prefix,
            id_conflict=conf.id_conflict,
            timezone=conf.timezone,
        ),
    )


def group_by_article(
    settings: Settings, source: Source, candidates: Sequence[Candidate], clock: Clock = utcnow
) -> list[tuple[list[Candidate], list[str]]]:
    """Files grouped by the articles they hold (read and prepared here), oldest first in each group."""
    rules, waiting = rules_for(settings, source.settings), list[str]()
    return _by_article([(c, read_and_prepare(settings, source, rules, c, clock, waiting)) for c in candidates])


def _by_article(
    files: Sequence[tuple[Candidate, list[Prepared | Outcome] | None]],
) -> list[tuple[list[Candidate], list[str]]]:
    """Files that share an article id (directly or through a feed holding several) in one group, oldest
    first (modification time, then name); each group with its article ids."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    ids_of: list[list[str]] = []
    for candidate, items in files:
        ids = sorted({i.id for i in items or [] if isinstance(i, Prepared)}) or [f"\0file:{where(candidate)}"]
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
        find(ids[0])
        ids_of.append(ids)
    groups: dict[str, tuple[list[Candidate], set[str]]] = {}
    for (candidate, _), ids in zip(files, ids_of, strict=True):
        files_, members = groups.setdefault(find(ids[0]), ([], set()))
        files_.append(candidate)
        members.update(i for i in ids if not i.startswith("\0"))
    arrived = lambda c: (c.listed[3] if c.listed else 0, c.name)  # noqa: E731
    return [(sorted(fs, key=arrived), sorted(ids)) for fs, ids in groups.values()]


def _collect(dispatcher: Dispatcher, report: RunReport, reporter: Reporter) -> None:
    """Wait for the workers' records of a dispatching run that waits; one that never comes is reported."""
    if not dispatcher.wait:
        return
    reporter.planned(report.dispatched)

    def add(records: list[FileRecord]) -> None:
        for record in records:
            report.add(record)
            reporter.file(record)

    missing = dispatcher.collect(report.run_id, add)
    if missing:
        raise RunError(
            f"{len(missing)} dispatched file(s) not reported by any worker in time (first: {missing[0]}); "
            "they stay in their source and the next sweep sends them again"
        )


def watch(
    settings: Settings,
    store: Store,
    sources: Sequence[Source],
    reporter: Reporter,
    stop: threading.Event,
    *,
    clock: Clock = utcnow,
    dispatcher: Dispatcher | None = None,
    dispatched: Dispatched | None = None,
    committer: Commits | None = None,
    after_sweep: Callable[[], object] | None = None,
    reload: Reload | None = None,
) -> Watched:
    """Sweep until ``stop`` is set; returns how many files were refused in all, and whether the last sweep
    failed (a wedged source or unreachable storage: then the watch does not end green). ``after_sweep`` is
    called after each sweep (``ingest watch`` delivers webhooks there: ``ingest.webhooks.Notifier.poll``).
    With ``reload``, a reload it is asked for between sweeps replaces everything above but ``reporter`` and
    ``stop`` (see ``Reload``); the counts go on.

    Storage that is unreachable does not end a watch: the sweep is reported, and the next one comes after
    a pause that doubles while it lasts (up to 5 minutes). A source that cannot be swept is reported each
    sweep while the others go on. Anything waiting cannot fix (bad configuration, access denied, a
    bucket that cannot be made, a request storage refuses) ends it, so systemd or Kubernetes sees it.
    Idle sweeps store a report every ``IDLE_REPORT_SECONDS``, so the bucket shows the watch is alive.
    """
    refused = 0
    failing: str | None = None
    pause = settings.poll_seconds
    last_report: datetime | None = None
    # One run id for the whole watch: leases a failed sweep could not release are still its own.
    committer = committer or Committer.configured(store, settings, clock=clock)
    recorded: dict[str, tuple[datetime, str | None]] = {}  # per source: when its state was last written, the error
    while not stop.is_set():
        if reload is not None and reload.requested.is_set():
            reload.requested.clear()
            try:
                new = reload.load()
            except RunError as exc:
                log.error("config not reloaded, still watching as before: %s", exc)
            else:
                settings, store, sources = new.settings, new.store, new.sources
                committer = new.committer or Committer.configured(store, settings, clock=clock)
                dispatcher, dispatched, after_sweep = new.dispatcher, new.dispatched, new.after_sweep
                pause = settings.poll_seconds
                where = ", ".join(s.settings.location for s in sources)
                log.info("config reloaded (%s): watching %s every %.1f s", settings.in_use(), where, pause)
        now = clock()
        heartbeat = last_report is None or (now - last_report).total_seconds() >= IDLE_REPORT_SECONDS
        try:
            report = run_once(
                settings,
                store,
                sources,
                reporter,
                stop=stop.is_set,
                quiet_when_idle=True,
                store_idle_report=heartbeat,
                committer=committer,
                clock=clock,
                dispatcher=dispatcher,
                dispatched=dispatched,
                recorded=recorded,
            )
        except SourceError as exc:  # reported by the sweep; the other sources were swept
            failing, pause = str(exc), settings.poll_seconds
            last_report = now
        except RunError as exc:
            if not isinstance(exc, Transient):  # access denied, bad config, a request S3 refuses: stop
                raise
            failing, pause = str(exc), min(max(pause * 2, settings.poll_seconds), 300.0)
            log.error("sweep failed (%s); trying again in %.0f s", exc, pause)
            last_report = now
        else:
            # A file not stored for storage trouble stays in its source, and a later sweep stores it.
            refused += sum(1 for r in report.errors if (r.error or {}).get("check") != "storage")
            failing, pause = None, settings.poll_seconds
            if heartbeat or report.total:
                last_report = now
        if after_sweep is not None and not stop.is_set():
            try:
                after_sweep()
            except IngestError as exc:  # deliveries wait for the next sweep; ingesting never waits for them
                log.error("after the sweep: %s; the watch goes on", exc)
        _rest(stop, pause, reload)
    return Watched(refused, failing)


def _rest(stop: threading.Event, seconds: float, reload: Reload | None) -> None:
    """Wait ``seconds``, or until stopped, or until a reload is asked for (looked at every half second)."""
    if reload is None:
        stop.wait(seconds)
        return
    deadline = time.monotonic() + seconds
    while not stop.is_set() and not reload.requested.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(left, 0.5))


def open_sources(settings: Settings, open_store: Callable[[str], Store]) -> list[Source]:
    """The configured sources, checked: known formats, compiled rules, inboxes apart from the store.
    S3 inboxes read through ``open_store(bucket)``."""
    if not settings.sources:
        where = settings.config_file or "a config file (--config, $INGEST_CONFIG or ./config/ingest.yaml)"
        raise ConfigError(f"no sources configured: add `sources:` to {where} or pass --source PATH")
    check_settings(settings)
    for source in settings.sources:
        _refuse_overlap(source, settings)
    return [open_source(s, open_store) for s in settings.sources]


def _refuse_overlap(source: SourceSettings, settings: Settings) -> None:
    """An S3 inbox must not see the document store's own keys, or it would ingest them as input."""
    if not source.is_s3:
        return
    bucket, inbox = source.bucket, source.inbox_prefix
    if bucket != settings.bucket:
        return
    if any(key.startswith(inbox) or inbox.startswith(key) for key in store_folders(settings.prefix)):
        raise ConfigError(
            f"source {source.name}: {source.location} overlaps the document store "
            f"(s3://{settings.bucket}/{settings.prefix}); give the inbox its own prefix, e.g. s3://{bucket}/inbox/"
        )
