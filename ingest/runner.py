"""Sweeping sources: ``ingest run`` (once, for cron and CronJobs) and ``ingest watch`` (until stopped).

For each source, in batches::

    lease each file (locks/{source}/{hash}.json, If-None-Match: *)  -> another run's files are skipped
    read + prepare (pure)                                          -> refused files become `failed`
    commit the batch (pipeline.Committer: versions, raw, changes, latest)
    move each file: processed/ after its document is stored, failed/ with <name>.error.json if refused
    release the leases

A storage failure stops the run before anything of that batch is moved (exit 2); the next run
starts over and is idempotent. A lease left by a run that died expires after ``lease_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ingest.errors import ConfigError, InputError, RunError
from ingest.pipeline import Committer, Outcome, Prepared, guarded, new_run_id, prepare
from ingest.report import FileRecord, Reporter, RunReport
from ingest.settings import Settings, SourceSettings
from ingest.sources import Candidate, Source, SourceChanged, open_source
from ingest.stores.s3 import S3Store

log = logging.getLogger("ingest.run")


@dataclass
class Leases:
    """Per-file leases in the document bucket, so overlapping runs never take the same file.

    A lease is an object under ``locks/`` created with ``If-None-Match: *``; it is renewed (``If-Match``
    on its ETag) just before the file is moved, so a run whose lease expired and was taken over leaves
    the file to the run that holds it, and released only while it is still ours.
    """

    store: S3Store
    prefix: str
    run_id: str
    seconds: float
    _etags: dict[str, str] = field(default_factory=dict)

    def key(self, source: str, ref: str) -> str:
        return f"{self.prefix}locks/{source}/{hashlib.sha256(ref.encode()).hexdigest()[:40]}.json"

    def _body(self, ref: str) -> bytes:
        expires = datetime.now(UTC) + timedelta(seconds=self.seconds)
        return json.dumps({"run_id": self.run_id, "file": ref, "expires_at": expires.isoformat()}).encode()

    def acquire(self, source: str, ref: str) -> bool:
        key = self.key(source, ref)
        etag = self.store.put_new(key, self._body(ref))
        if etag is None:
            etag = self._take_over(key, ref)
        if etag is None:
            return False
        self._etags[key] = etag
        return True

    def _take_over(self, key: str, ref: str) -> str | None:
        held = self.store.get(key)
        if held is None:  # released between our two requests: try once more
            return self.store.put_new(key, self._body(ref))
        try:
            holder = json.loads(held.body)
            expired = datetime.fromisoformat(holder["expires_at"]) <= datetime.now(UTC)
            ours = holder.get("run_id") == self.run_id
        except (ValueError, KeyError, TypeError, AttributeError):
            holder, expired, ours = {}, True, False  # an unreadable lease protects nothing
        if not (ours or expired):
            return None
        if expired and not ours:
            log.warning("taking over the expired lease on %s (run %s)", ref, holder.get("run_id", "?"))
        return self.store.replace(key, self._body(ref), held.etag)

    def renew(self, source: str, ref: str) -> bool:
        """Extend our lease; False when another run took it over meanwhile."""
        key = self.key(source, ref)
        etag = self.store.replace(key, self._body(ref), self._etags.get(key))
        if etag is None:
            self._etags.pop(key, None)
            return False
        self._etags[key] = etag
        return True

    def release(self, source: str, ref: str) -> None:
        etag = self._etags.pop(self.key(source, ref), None)
        if etag is not None:  # never delete a lease another run holds now
            self.store.delete(self.key(source, ref), if_match=etag)


def run_once(
    settings: Settings,
    store: S3Store,
    sources: Sequence[Source],
    reporter: Reporter,
    *,
    stop: Callable[[], bool] = lambda: False,
    committer: Committer | None = None,
    quiet_when_idle: bool = False,
) -> RunReport:
    """Sweep every source once. Raises ``RunError`` (after reporting) when the run cannot go on."""
    # A watch passes its committer (its lease owner) to every sweep; each sweep still has its own report.
    report_id = new_run_id() if committer else None
    committer = committer or Committer(store, settings.prefix, settings.workers)
    report = RunReport(
        run_id=report_id or committer.run_id, started_at=datetime.now(UTC), sources=[s.settings.name for s in sources]
    )
    started = time.monotonic()
    try:
        store.ensure_bucket()
        leases = Leases(store, settings.prefix, committer.run_id, settings.lease_seconds)
        for source in sources:
            clock = time.monotonic()
            scan = source.scan(time.time())
            report.add_time("scan", clock)
            report.waiting += scan.waiting
            reporter.planned(len(scan.ready))
            for start in range(0, len(scan.ready), settings.batch_size):
                if stop():
                    break
                _batch(
                    settings,
                    source,
                    scan.ready[start : start + settings.batch_size],
                    committer,
                    leases,
                    report,
                    reporter,
                    stop,
                )
    except RunError as exc:
        report.error = str(exc)
        raise
    finally:
        report.finished_at = datetime.now(UTC)
        report.seconds = time.monotonic() - started
        report.count()
        if report.files or report.error or not quiet_when_idle:
            reporter.finished(report)
        if report.error is None and report.files:
            key = f"{settings.prefix}runs/{report.run_id}.json"
            store.put(key, report.model_dump_json(indent=2).encode())
    return report


def _batch(
    settings: Settings,
    source: Source,
    candidates: Sequence[Candidate],
    committer: Committer,
    leases: Leases,
    report: RunReport,
    reporter: Reporter,
    stop: Callable[[], bool],
) -> None:
    name = source.settings.name
    taken: list[Candidate] = []  # leased by us: released at the end, whatever happens
    work: list[tuple[Candidate, Prepared | Outcome]] = []
    storage_ok = True
    clock = time.monotonic()
    try:
        for candidate in candidates:
            if stop():  # finish what is in hand, take nothing new
                break
            if not leases.acquire(name, candidate.ref):
                report.leased_elsewhere += 1
                continue
            taken.append(candidate)
            result = _prepare(settings, source, candidate)
            if result is not None:  # None: another run moved it after we listed it; not ours to report
                work.append((candidate, result))
        clock = report.add_time("read_and_parse", clock)
        outcomes = committer.commit([result for _, result in work])
        clock = report.add_time("store", clock)
        now = datetime.now(UTC)
        for (candidate, _), outcome in zip(work, outcomes, strict=True):
            record = FileRecord(
                source=name,
                path=candidate.display,
                outcome=outcome.outcome,
                id=outcome.id,
                version=outcome.version,
                key=outcome.key,
                message=outcome.message,
            )
            if outcome.error is not None:
                record.error = outcome.error.as_dict()
            _move(source, candidate, record, leases, now)
            report.files.append(record)
            reporter.file(record)
        report.add_time("move", clock)
    except RunError:
        storage_ok = False  # releasing would only retry against a store that is down
        raise
    finally:
        for candidate in taken if storage_ok else []:
            leases.release(name, candidate.ref)


def _move(source: Source, candidate: Candidate, record: FileRecord, leases: Leases, now: datetime) -> None:
    """Move one file after its batch is committed, unless another run or a writer got there first."""
    name = source.settings.name
    if not leases.renew(name, candidate.ref):
        record.message = "its lease expired and another run took it over; left to that run"
        return
    try:
        if record.error is not None:
            record.moved_to = source.fail(candidate, record.error, now)
        else:
            record.moved_to = source.done(candidate, now)
    except SourceChanged as exc:
        record.message = f"{exc}; left for the next run"


def _prepare(settings: Settings, source: Source, candidate: Candidate) -> Prepared | Outcome | None:
    conf = source.settings
    if candidate.refusal is not None:
        refused = InputError(candidate.display, candidate.refusal, check="refused")
        return Outcome(candidate.display, "failed", error=refused)
    try:
        data = source.read(candidate, settings.max_bytes)
    except InputError as exc:
        return Outcome(candidate.display, "failed", error=exc)
    if data is None:
        return None
    rules = settings.rules_for(conf)
    return guarded(
        candidate.display,
        lambda: prepare(
            data,
            candidate.name,
            rules,
            display=candidate.display,
            format=conf.format,
            id_from=conf.id_from,
            id_prefix=conf.id_prefix,
        ),
    )


def watch(
    settings: Settings,
    store: S3Store,
    sources: Sequence[Source],
    reporter: Reporter,
    stop: threading.Event,
) -> int:
    """Sweep until ``stop`` is set; returns how many files were refused in all.

    Storage trouble does not end a watch: the sweep is reported, and the next one comes after a pause
    that doubles while storage stays away (up to 5 minutes). Bad configuration does end it.
    """
    refused = 0
    pause = settings.poll_seconds
    # One run id for the whole watch: leases a failed sweep could not release are still its own.
    committer = Committer(store, settings.prefix, settings.workers)
    while not stop.is_set():
        try:
            report = run_once(
                settings, store, sources, reporter, stop=stop.is_set, quiet_when_idle=True, committer=committer
            )
        except ConfigError:
            raise
        except RunError as exc:
            pause = min(max(pause * 2, settings.poll_seconds), 300.0)
            log.error("sweep failed (%s); trying again in %.0f s", exc, pause)
        else:
            refused += len(report.errors)
            pause = settings.poll_seconds
        stop.wait(pause)
    return refused


def _refuse_overlap(source: SourceSettings, settings: Settings) -> None:
    """An S3 inbox must not see the document store's own keys, or it would ingest them as input."""
    if not source.is_s3:
        return
    bucket, _, rest = source.location[len("s3://") :].partition("/")
    inbox = rest.strip("/") + "/" if rest.strip("/") else ""
    if bucket != settings.bucket:
        return
    ours = [f"{settings.prefix}{folder}/" for folder in ("articles", "raw", "changes", "runs", "locks")]
    if any(key.startswith(inbox) or inbox.startswith(key) for key in ours):
        raise ConfigError(
            f"source {source.name}: {source.location} overlaps the document store "
            f"(s3://{settings.bucket}/{settings.prefix}); give the inbox its own prefix, e.g. s3://{bucket}/inbox/"
        )


def open_sources(settings: Settings) -> list[Source]:
    if not settings.sources:
        raise ConfigError("no sources configured: add `sources:` to config/ingest.yaml or pass --source PATH")
    for source in settings.sources:
        _refuse_overlap(source, settings)
    return [open_source(s, settings.retry_attempts, settings.retry_max_seconds) for s in settings.sources]
