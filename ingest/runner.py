"""Sweeping sources: ``ingest run`` (once, for cron and CronJobs) and ``ingest watch`` (until stopped).

For each source, in batches::

    lease each file (locks/, If-None-Match: *)          -> another run's files are skipped
    read + prepare (pure)                               -> refused files become `failed`
    commit the batch (versions, raw, changes, latest)
    move each file: processed/ after its document is stored, failed/ with <name>.error.json if refused
    release the leases

A storage failure stops the run before anything of that batch is moved (exit 2); the next run
starts over and is idempotent. A lease left by a run that died expires after ``lease_seconds``.
The clock is passed in (``clock``), so settling and lease expiry can be tested without waiting.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ingest.clock import Clock, utcnow
from ingest.commit import Committer, new_run_id
from ingest.errors import (
    Check,
    ConfigError,
    InputError,
    RunError,
    SourceChanged,
    SourceError,
    StoreError,
    Transient,
)
from ingest.keys import run_key, store_folders
from ingest.outcome import Outcome
from ingest.prepare import Prepared, guarded, prepare_items
from ingest.report import FileRecord, Reporter, RunReport
from ingest.rules import check_settings, rules_for
from ingest.settings import Settings, SourceSettings
from ingest.sources import Candidate, Source, open_source
from ingest.stores.base import Store
from ingest.stores.leases import Leases

log = logging.getLogger("ingest.run")
#: How often an idle ``ingest watch`` stores a run report, so a quiet feed and a dead ingester differ.
IDLE_REPORT_SECONDS = 300.0


def run_once(
    settings: Settings,
    store: Store,
    sources: Sequence[Source],
    reporter: Reporter,
    *,
    stop: Callable[[], bool] = lambda: False,
    committer: Committer | None = None,
    quiet_when_idle: bool = False,
    store_idle_report: bool = True,
    clock: Clock = utcnow,
) -> RunReport:
    """Sweep every source once and store the run's report (idle and failed runs included, when storage
    allows). A source that cannot be swept (a missing folder, a file where ``processed/`` belongs, a move
    that fails) is that source's error: the others are swept, then ``SourceError`` is raised (exit 2).
    A storage failure stops the run at once (``StoreError``): storage is every source's."""
    # A watch passes its committer (its lease owner) to every sweep; each sweep still has its own report.
    report_id = new_run_id(clock()) if committer else None
    committer = committer or Committer(store, settings.prefix, workers=settings.workers, clock=clock)
    report = RunReport(
        run_id=report_id or committer.run_id, started_at=clock(), sources=[s.settings.name for s in sources]
    )
    started = time.monotonic()
    try:
        store.ensure_bucket()
        leases = Leases(store, settings.prefix, committer.run_id, settings.lease_seconds, clock=clock)
        for source in sources:
            sweep = _Sweep(settings, source, committer, leases, report, reporter, clock)
            try:
                sweep.run(stop)
            except SourceError as exc:
                log.error("%s; the other sources go on", exc)
                report.source_errors[source.settings.name] = str(exc)
        if report.source_errors:
            failed = ", ".join(report.source_errors)
            raise SourceError(f"{len(report.source_errors)} source(s) could not be swept: {failed} (see above)")
    except RunError as exc:
        report.error = str(exc)
        raise
    finally:
        report.finished_at = clock()
        report.seconds = time.monotonic() - started
        report.count()
        idle = not report.files and report.error is None
        if not (idle and quiet_when_idle):
            reporter.finished(report)
        if store_idle_report or not idle:
            _store_report(store, settings.prefix, report)
    return report


def _store_report(store: Store, prefix: str, report: RunReport) -> None:
    """``runs/{run-id}.json``, best effort: a run that failed because storage is down cannot store it."""
    try:
        store.put(run_key(prefix, report.run_id), report.model_dump_json(indent=2).encode())
    except StoreError as exc:
        log.warning("run report %s not stored: %s", report.run_id, exc)


class _Sweep:
    """One source's batches within one run."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        committer: Committer,
        leases: Leases,
        report: RunReport,
        reporter: Reporter,
        clock: Clock,
    ) -> None:
        self.settings, self.source, self.committer, self.leases = settings, source, committer, leases
        self.report, self.reporter, self.clock = report, reporter, clock
        self.name = source.settings.name
        self.rules = rules_for(settings, source.settings)

    def run(self, stop: Callable[[], bool]) -> None:
        """List the source, then take what is ready, batch by batch."""
        mark = time.monotonic()
        scan = self.source.scan(self.clock().timestamp())
        self.report.add_time("scan", mark)
        self.report.waiting += scan.waiting
        self.reporter.planned(len(scan.ready))
        size = self.settings.batch_size
        for start in range(0, len(scan.ready), size):
            if stop():
                break
            self.batch(scan.ready[start : start + size], stop)

    def batch(self, candidates: Sequence[Candidate], stop: Callable[[], bool]) -> None:
        taken: list[Candidate] = []  # leased by us: released at the end, whatever happens
        work: list[tuple[Candidate, list[Prepared | Outcome]]] = []  # each file with its items
        storage_ok = True
        mark = time.monotonic()
        try:
            for candidate in candidates:
                if stop():  # finish what is in hand, take nothing new
                    break
                if not self.leases.acquire(_where(candidate)):
                    self.report.leased_elsewhere += 1
                    continue
                taken.append(candidate)
                items = self._prepare(candidate)
                if items is not None:  # None: another run moved it after we listed it; not ours to report
                    work.append((candidate, items))
            mark = self.report.add_time("read_and_parse", mark)
            outcomes = iter(self.committer.commit([item for _, items in work for item in items]))
            mark = self.report.add_time("store", mark)
            now = self.clock()
            for candidate, items in work:
                records = [self._record(next(outcomes)) for _ in items]
                self._move(candidate, records, now)  # once every item of the file is stored (or refused)
                for record in records:
                    self.report.files.append(record)
                    self.reporter.file(record)
            self.report.add_time("move", mark)
        except StoreError:
            storage_ok = False  # releasing would only retry against a store that is down
            raise
        finally:
            for candidate in taken if storage_ok else []:
                self.leases.release(_where(candidate))

    def _record(self, outcome: Outcome) -> FileRecord:
        return FileRecord.of(self.name, outcome)

    def _prepare(self, candidate: Candidate) -> list[Prepared | Outcome] | None:
        conf = self.source.settings
        if candidate.refusal is not None:
            refused = InputError(candidate.display, candidate.refusal, check=Check.REFUSED)
            return [Outcome.failed(candidate.display, refused)]
        try:
            data = self.source.read(candidate, self.settings.max_bytes, self.clock().timestamp())
        except InputError as exc:
            return [Outcome.failed(candidate.display, exc)]
        except SourceChanged as exc:  # still being written, or replaced while read: never store half a file
            log.warning("%s; left for the next run", exc)
            self.report.waiting.append(candidate.display)
            return None
        if data is None:
            return None
        return guarded(
            candidate.display,
            lambda: prepare_items(
                data,
                candidate.name,
                self.rules,
                received_at=self.clock(),
                display=candidate.display,
                format=conf.format,
                id_from=conf.id_from,
                id_prefix=conf.id_prefix,
                id_conflict=conf.id_conflict,
                timezone=conf.timezone,
            ),
        )

    def _move(self, candidate: Candidate, records: list[FileRecord], now: datetime) -> None:
        """Move one file after its batch is committed, unless another run or a writer got there first: to
        ``processed/`` when every item of it is stored, else to ``failed/`` with the first refusal."""
        if not self.leases.renew(_where(candidate)):
            for record in records:
                record.message = "its lease expired and another run took it over; left to that run"
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


def _where(candidate: Candidate) -> str:
    """A file's lease name: where it is (absolute path, ``s3://`` URL), whichever source lists it."""
    return candidate.display if candidate.display.startswith("s3://") else os.path.abspath(candidate.ref)


def watch(
    settings: Settings,
    store: Store,
    sources: Sequence[Source],
    reporter: Reporter,
    stop: threading.Event,
    *,
    clock: Clock = utcnow,
) -> Watched:
    """Sweep until ``stop`` is set; returns how many files were refused in all, and whether the last sweep
    failed (a wedged source or unreachable storage: then the watch does not end green).

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
    committer = Committer(store, settings.prefix, workers=settings.workers, clock=clock)
    while not stop.is_set():
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
            refused += len(report.errors)
            failing, pause = None, settings.poll_seconds
            if heartbeat or report.files:
                last_report = now
        stop.wait(pause)
    return Watched(refused, failing)


def open_sources(settings: Settings, open_store: Callable[[str], Store]) -> list[Source]:
    """The configured sources, checked: known formats, compiled rules, inboxes apart from the store.
    S3 inboxes read through ``open_store(bucket)``."""
    if not settings.sources:
        raise ConfigError("no sources configured: add `sources:` to config/ingest.yaml or pass --source PATH")
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
