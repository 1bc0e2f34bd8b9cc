"""Prometheus metrics: every metric ingest exports is defined here, and its name is a contract.

Names follow the Prometheus conventions: one ``ingest_`` prefix, base units (seconds), ``_total`` on counters.
Labels are bounded sets (source names from the config, outcome and check words, stage and operation names):
never a file name, key or article id.

Counters and the histogram (counted by the process that does the work):

``ingest_files_total{source,outcome}``
    Files ingest settled, one per file record (``ingest.report.FileRecord``), by the record's ``outcome``
    (``created``, ``updated``, ``unchanged``, ``failed``...). A file left in its source because storage kept
    failing is not settled: it counts under ``ingest_file_errors_total{check="storage"}`` only, and here
    when a later run takes it.
``ingest_file_errors_total{source,check}``
    Files refused, one per file record that carries an error, by the error's ``check`` word (``parse``,
    ``storage``, ``worker-lost``...; ``unknown`` when it has none).
``ingest_stage_duration_seconds{stage}``
    Seconds spent in one stage (histogram, buckets from 1 ms to 60 s): per batch of a sweep ``scan``,
    ``read_and_parse``, ``store`` and ``move``; per worker task ``task``.
``ingest_storage_retries_total{operation,reason}``
    Storage requests tried again after a transient failure (``ingest.retry``), by the request's operation
    (``GET``, ``PUT``, ``HEAD``, ``LIST``, ``DELETE``, ``COPY``, ``CREATE``) and the failure's class (an S3
    error code such as ``SlowDown``, or an exception class such as ``EndpointConnectionError``). Webhook
    deliveries are retried by the same policy but are not counted here.

Gauges, computed when scraped from what a caller registered with ``Metrics.watch_sources`` (absent when unknown):

``ingest_source_last_item_timestamp_seconds{source}``
    When the newest file seen in the source (taken by a run, or waiting now) had arrived (Unix time).
``ingest_source_last_success_timestamp_seconds{source}``
    When a sweep of the source last ended without error (Unix time).
``ingest_source_backlog_files{source}``
    Files waiting in the source's top level.
``ingest_source_oldest_file_age_seconds{source}``
    Age of the oldest file waiting there.
``ingest_source_quiet{source}``
    1 when nothing arrived for longer than the source's ``quiet_after``, else 0.
``ingest_source_failed_files{source}``
    Files in the source's ``failed/``.

Three ways these are counted and served:

- **One process** (``ingest run``, ``ingest watch``): ``process()`` is the process-wide ``Metrics``; the runner,
  the retry policy and the worker tasks count into it, and ``serve_http`` serves it.
- **Celery workers** (``ingest worker --metrics-port``): Celery's prefork pool runs tasks in forked children,
  so the worker enters ``multiprocess()`` before the pool starts: every process writes its counts to files
  in a temporary directory, and the parent serves their sum.
- **Stored totals** (``ingest serve``): ``Metrics(totals=...)`` reads ``ingest_files_total`` and
  ``ingest_file_errors_total`` back from what the runs recorded in storage at every scrape, rather than
  counting in the serving process, which ingests nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, values
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.errors import ConfigError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from ingest.report import FileRecord

__all__ = [
    "STAGES",
    "Metrics",
    "Serving",
    "SourceGauges",
    "Totals",
    "multiprocess",
    "process",
    "process_ended",
    "serve_http",
]

log = logging.getLogger("ingest.metrics")

#: The stages ``ingest_stage_duration_seconds`` knows: a sweep's per batch, and one worker task.
STAGES = frozenset({"scan", "read_and_parse", "store", "move", "task"})
#: From a 1 ms scan of an empty folder to a 60 s store that retried its way through an outage.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Where prometheus_client's multiprocess mode keeps each process's counts: the client reads the variable
#: itself (when a process first counts, and in ``mark_process_dead``), so it is set, not just passed.
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_FILES_HELP = "Files ingest settled, one per file record, by outcome."
_ERRORS_HELP = "Files refused, one per file record with an error, by the error's check."


@dataclass(frozen=True)
class SourceGauges:
    """One source's gauges at scrape time; ``None`` leaves that gauge out for the source (not known)."""

    source: str
    #: When the newest file taken had arrived (Unix time).
    last_item_at: float | None
    #: When a sweep last ended without error (Unix time).
    last_success_at: float | None
    #: Files waiting in the source's top level.
    backlog_files: int | None
    #: Age of the oldest of them, in seconds.
    oldest_file_age_seconds: float | None
    #: Nothing arrived for longer than the source's ``quiet_after``.
    quiet: bool | None = None
    #: Files in the source's ``failed/``.
    failed_files: int | None = None


@dataclass(frozen=True)
class Totals:
    """Counts read back from storage (``ingest serve``): per source, files per outcome and refused files per check,
    since counting began. Served as ``ingest_files_total`` and ``ingest_file_errors_total``."""

    files: Mapping[str, Mapping[str, int]]
    errors: Mapping[str, Mapping[str, int]]


class Metrics:
    """A set of ingest's metrics in a registry of its own (never prometheus_client's global one).

    ``Metrics()`` counts in this process. ``Metrics(totals=fn)`` serves ``ingest_files_total`` and
    ``ingest_file_errors_total`` from ``fn()`` at every scrape instead (``files`` is then refused).
    ``Metrics(multiprocess_dir=path)`` counts into ``path`` and serves the sum of every process counting
    there; use it through ``multiprocess()``, which also switches the client to multiprocess values.
    """

    def __init__(self, *, totals: Callable[[], Totals] | None = None, multiprocess_dir: str | None = None) -> None:
        if totals is not None and multiprocess_dir is not None:
            raise ValueError("stored totals and multiprocess counting do not mix")
        #: What a scrape reads.
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        # In multiprocess mode the metric objects write to files and the registry reads every process's files:
        # registering them too would serve this process's counts twice.
        counting: CollectorRegistry | None = None
        if multiprocess_dir is None:
            counting = CollectorRegistry()
            self.registry.register(_WithoutCreated(counting))
        else:
            _multiprocess.MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        self._files: Counter | None = None
        self._errors: Counter | None = None
        if totals is None:
            self._files = Counter("ingest_files", _FILES_HELP, ["source", "outcome"], registry=counting)
            self._errors = Counter("ingest_file_errors", _ERRORS_HELP, ["source", "check"], registry=counting)
        else:
            self.registry.register(_StoredTotals(totals))
        self._stages = Histogram(
            "ingest_stage_duration_seconds",
            "Seconds spent in one stage: per batch scan, read_and_parse, store, move; per worker task, task.",
            ["stage"],
            buckets=DURATION_BUCKETS,
            registry=counting,
        )
        self._retries = Counter(
            "ingest_storage_retries",
            "Storage requests tried again after a transient failure, by operation and failure class.",
            ["operation", "reason"],
            registry=counting,
        )
        self._sources = _SourceCollector()
        self.registry.register(self._sources)

    def files(self, records: Iterable[FileRecord]) -> None:
        """Count settled files: ``ingest_files_total`` for each record, ``ingest_file_errors_total`` for each
        with an error."""
        if self._files is None or self._errors is None:
            raise TypeError("these metrics serve stored totals: files are counted by the runs that take them")
        for record in records:
            if record.settled:  # storage trouble: the file is taken again later, and counted then
                self._files.labels(record.source, record.outcome).inc()
            if record.error is not None:
                self._errors.labels(record.source, record.error.get("check") or "unknown").inc()

    def stage(self, stage: str, seconds: float) -> None:
        """Observe ``seconds`` spent in ``stage`` (one of ``STAGES``; anything else is a bug, and refused)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}: one of {', '.join(sorted(STAGES))}")
        self._stages.labels(stage).observe(seconds)

    def storage_retry(self, operation: str, reason: str) -> None:
        """Count one retry of a storage request (``ingest.retry`` calls this)."""
        self._retries.labels(operation, reason).inc()

    def watch_sources(self, gauges: Callable[[], Sequence[SourceGauges]]) -> Callable[[], None]:
        """Serve the per-source gauges ``gauges()`` returns, called at every scrape. A source named by more than
        one registered callable is served from the first. Returns a function that unregisters ``gauges`` (a
        reloaded ``ingest watch`` registers its new sources and drops the old)."""
        return self._sources.add(gauges)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics as a scrape reads them, and their content type: Prometheus's text format, or
        OpenMetrics when ``accept`` (a request's ``Accept`` header) asks for it."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class _WithoutCreated(Collector):
    """``counted`` without the ``_created`` series prometheus_client adds to counters and histograms: multiprocess
    mode and stored totals have none, so every way of serving gives the same series. (The client's own switch,
    ``disable_created_metrics``, is global to the process.)"""

    def __init__(self, counted: CollectorRegistry) -> None:
        self._counted = counted

    def collect(self) -> Iterator[Metric]:
        for metric in self._counted.collect():
            metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


class _SourceCollector(Collector):
    """The per-source gauges, asked for at scrape time."""

    _GAUGES = (
        (
            "ingest_source_last_item_timestamp_seconds",
            "When the newest file seen in the source (taken, or waiting) had arrived (Unix time).",
        ),
        (
            "ingest_source_last_success_timestamp_seconds",
            "When a sweep of the source last ended without error (Unix time).",
        ),
        ("ingest_source_backlog_files", "Files waiting in the source's top level."),
        ("ingest_source_oldest_file_age_seconds", "Age of the oldest file waiting in the source."),
        ("ingest_source_quiet", "1 when nothing arrived for longer than the source's quiet_after, else 0."),
        ("ingest_source_failed_files", "Files in the source's failed/."),
    )

    def __init__(self) -> None:
        self._calls: list[Callable[[], Sequence[SourceGauges]]] = []
        self._lock = threading.Lock()

    def add(self, gauges: Callable[[], Sequence[SourceGauges]]) -> Callable[[], None]:
        with self._lock:
            self._calls.append(gauges)

        def remove() -> None:
            with self._lock:
                if gauges in self._calls:
                    self._calls.remove(gauges)

        return remove

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            calls = list(self._calls)
        seen: dict[str, SourceGauges] = {}
        for call in calls:
            try:
                found = list(call())
            except Exception as exc:  # a scrape must not fail because one look at the sources did
                log.warning("per-source gauges left out of this scrape: %s", exc)
                continue
            for one in found:
                seen.setdefault(one.source, one)
        families = [GaugeMetricFamily(name, text, labels=["source"]) for name, text in self._GAUGES]
        for one in seen.values():
            quiet = None if one.quiet is None else float(one.quiet)
            numbers = (
                one.last_item_at,
                one.last_success_at,
                one.backlog_files,
                one.oldest_file_age_seconds,
                quiet,
                one.failed_files,
            )
            for family, value in zip(families, numbers, strict=True):
                if value is not None:
                    family.add_metric([one.source], float(value))
        yield from families


class _StoredTotals(Collector):
    """``ingest_files_total`` and ``ingest_file_errors_total`` from counts read back from storage."""

    def __init__(self, totals: Callable[[], Totals]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[Metric]:
        try:
            totals = self._totals()
        except Exception as exc:  # a scrape without these beats no scrape: the gap shows on the graphs
            log.warning("stored file totals left out of this scrape: %s", exc)
            return
        files = CounterMetricFamily("ingest_files", _FILES_HELP, labels=["source", "outcome"])
        for source, counts in sorted(totals.files.items()):
            for outcome, n in sorted(counts.items()):
                files.add_metric([source, outcome], n)
        errors = CounterMetricFamily("ingest_file_errors", _ERRORS_HELP, labels=["source", "check"])
        for source, counts in sorted(totals.errors.items()):
            for check, n in sorted(counts.items()):
                errors.add_metric([source, check], n)
        yield files
        yield errors


# ------------------------------------------------------------------------------------------------ the process


_PROCESS: Metrics | None = None
_PROCESS_LOCK = threading.Lock()


def process() -> Metrics:
    """The process-wide ``Metrics`` the runner, the retry policy and worker tasks count into (made on first use;
    inside ``multiprocess()``, the multiprocess one)."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = Metrics()
        return _PROCESS


@contextmanager
def multiprocess() -> Iterator[Metrics]:
    """Count in this process and every process it forks from now on into one temporary directory, and yield
    the ``Metrics`` that serves their sum (also ``process()`` until the block ends). ``ingest worker
    --metrics-port`` runs Celery inside it; each pool child calls ``process_ended`` as it exits. On leaving,
    the client is switched back and the directory is removed.

    prometheus_client picks how a metric keeps its value (in memory, or in a file per process) from
    ``PROMETHEUS_MULTIPROC_DIR`` when it is imported, which here is long before a worker knows it will serve
    metrics; so the choice is made again here, before any metric of the block is created."""
    global _PROCESS
    directory = tempfile.mkdtemp(prefix="ingest-metrics-")
    saved = os.environ.get(_MULTIPROC_ENV), values.ValueClass, _PROCESS
    os.environ[_MULTIPROC_ENV] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    try:
        with _PROCESS_LOCK:
            _PROCESS = Metrics(multiprocess_dir=directory)
        yield _PROCESS
    finally:
        env, values.ValueClass, restored = saved
        with _PROCESS_LOCK:
            _PROCESS = restored
        if env is None:
            os.environ.pop(_MULTIPROC_ENV, None)
        else:
            os.environ[_MULTIPROC_ENV] = env
        shutil.rmtree(directory, ignore_errors=True)


def process_ended(pid: int) -> None:
    """A process counting inside ``multiprocess()`` is exiting (Celery's ``worker_process_shutdown``): its
    live gauges go; its counts stay in the sum, since counters never go down."""
    directory = _PROCESS.multiprocess_dir if _PROCESS is not None else None
    if directory is not None:
        _multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # untyped in prometheus_client


# ------------------------------------------------------------------------------------------------ serving


class Serving(NamedTuple):
    """A metrics HTTP server running in a daemon thread."""

    server: WSGIServer
    thread: threading.Thread
    #: Called by ``close()`` (e.g. to unregister the gauges it served).
    on_close: Callable[[], None] | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one the system chose, when asked for port 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if self.on_close is not None:
            self.on_close()


def serve_http(metrics: Metrics, host: str, port: int, *, on_close: Callable[[], None] | None = None) -> Serving:
    """Serve ``metrics`` over HTTP on ``host``:``port`` (0: any free port) from a background thread, at
    ``/metrics`` (prometheus_client answers any path the same), until ``close()``. A port that cannot be
    bound is a ``ConfigError``."""
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    return Serving(server, thread, on_close)
