"""The library's front door: one call per thing a person asks of ingest.

The CLI is flags, one of these calls, printing and exit codes; any other front end (an operator's page,
a worker) calls the same functions. The sweeps (``run_once``, ``watch``) live in ``ingest.runner`` and the
read side (``Archive``) in ``ingest.archive``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest import runner
from ingest.clock import Clock, utcnow
from ingest.commit import Committer
from ingest.errors import NotFound
from ingest.lanes import LaneCommitter, processes_for
from ingest.metrics import Serving, SourceGauges, serve_http
from ingest.metrics import process as process_metrics
from ingest.models import Document
from ingest.outcome import Outcome
from ingest.parsers import Parser, registry
from ingest.prepare import Prepared, guarded, prepare_file, preview
from ingest.renditions import Rendition
from ingest.renditions import registry as rendition_registry
from ingest.renditions import render as render_as
from ingest.report import LogFormat, redact_values
from ingest.rules import check_settings, rules_for
from ingest.runner import Commits
from ingest.settings import Settings, pick_sources
from ingest.sources import Source
from ingest.split import Rules
from ingest.status import FAILED_SHOWN, Status
from ingest.status import look as look_at_sources
from ingest.stores.base import Store
from ingest.stores.s3 import S3Store
from ingest.versioning import safe_id
from ingest.webhooks import Delivery, Notified, Notifier
from ingest.webhooks import delivery_log as webhooks_log

if TYPE_CHECKING:
    from ingest.backfills import Progress
    from ingest.engine import Dispatcher


def open_store(settings: Settings, bucket: str | None = None) -> Store:
    """The document store the settings name (or another ``bucket``, for an S3 inbox), with their retry
    budget; its credentials are redacted from every log line from here on."""
    check_settings(settings)
    store = S3Store(bucket or settings.bucket, attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)
    redact_values(store.credential_values())
    return store


def open_sources(settings: Settings, open_store: Callable[[str], Store] | None = None) -> list[Source]:
    """The configured sources, checked (``ingest run`` and ``watch``); S3 inboxes read through
    ``open_store(bucket)``, by default an ``S3Store`` with the settings' retry budget."""
    inbox_store = open_store or (lambda bucket: _store_for(settings, bucket))
    return runner.open_sources(settings, inbox_store)


def retry_failed(
    settings: Settings,
    names: Collection[str] | None = None,
    *,
    dry_run: bool = False,
    open_store: Callable[[str], Store] | None = None,
) -> list[tuple[Source, list[str]]]:
    """Put every refused file of each source back for the next run (``ingest retry-failed``), or only those
    ``names`` (file names in ``failed/``; a path counts by its last part); the names put back, per source.
    With ``dry_run`` nothing moves: the names in ``failed/`` that would go back. A name in no source's
    ``failed/`` is a ``NotFound`` naming it, raised before anything moves. S3 inboxes are reached as in
    ``open_sources``."""
    sources = open_sources(settings, open_store)
    wanted: set[str] | None = None
    if names is not None:
        wanted = {_file_name(name) for name in names}
        there = {name for source in sources for name in source.retry_failed(wanted, dry_run=True)}
        if missing := [name for name in names if _file_name(name) not in there]:
            where = ", ".join(f"{s.settings.name} ({s.settings.location})" for s in sources)
            raise NotFound(", ".join(missing), f"not in failed/ of {where}; nothing was put back")
    return [(source, source.retry_failed(wanted, dry_run=dry_run)) for source in sources]


def status(
    settings: Settings,
    store: Store | None = None,
    *,
    open_store: Callable[[str], Store] | None = None,
    clock: Clock = utcnow,
    failed_shown: int = FAILED_SHOWN,
) -> Status:
    """Every configured source's state now (``ingest status``, ``ingest serve``): its last sweep, last item,
    last 24 hours, backlog and failed files, and whether it is healthy, quiet or failing. Raises
    ``StoreError`` when the document store cannot be read. The stores it opens itself try a request only
    briefly (``looking``): a probe wants an answer within seconds, not a minute of retries."""
    settings = looking(settings)
    sources = open_sources(settings, open_store)
    store = store or _store_for(settings, settings.bucket)
    return look_at_sources(settings, store, sources, clock(), failed_shown=failed_shown)


#: The retry budget of a look (``ingest status``, the page, a metrics scrape): 3 tries within 5 s.
LOOK_ATTEMPTS, LOOK_SECONDS = 3, 5.0


def looking(settings: Settings) -> Settings:
    """``settings`` with the short retry budget of a look: a store that is down is said so in seconds."""
    attempts = min(settings.retry_attempts, LOOK_ATTEMPTS)
    seconds = min(settings.retry_max_seconds, LOOK_SECONDS)
    return settings.model_copy(update={"retry_attempts": attempts, "retry_max_seconds": seconds})


def store_cache(settings: Settings) -> Callable[[str], Store]:
    """``open_store`` for a long-lived process (``ingest serve``, a watch's metrics): one store per bucket, made
    once, with the short retry budget of a look."""
    quick, made, lock = looking(settings), dict[str, Store](), threading.Lock()

    def opened(bucket: str) -> Store:
        with lock:
            if bucket not in made:
                made[bucket] = _store_for(quick, bucket)
            return made[bucket]

    return opened


def _file_name(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _store_for(settings: Settings, bucket: str) -> Store:  # the parameter above shadows ``open_store``
    return open_store(settings, bucket)


def preview_files(
    paths: Sequence[Path], settings: Settings, *, clock: Clock = utcnow
) -> Iterator[Document | Outcome]:
    """What each file would be stored as (version 1 of a new article), or its ``failed`` outcome; nothing
    is stored (``ingest parse``)."""
    check_settings(settings)
    rules = rules_for(settings)
    for path in paths:
        for item in _read(path, rules, settings, clock):
            yield item if isinstance(item, Outcome) else preview(item, clock())


def ingest_files(
    paths: Sequence[Path],
    settings: Settings,
    store: Store,
    *,
    note: str | None = None,
    editor: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    clock: Clock = utcnow,
    committer: Commits | None = None,
) -> list[Outcome]:
    """Ingest files in batches of ``settings.batch_size`` (``ingest file``), all outcomes in a list (see
    ``ingest_stream`` for many files). Bad files become ``failed`` outcomes; a storage failure raises
    ``StoreError`` (the run cannot go on)."""
    outcomes: list[Outcome] = []
    for outcome in ingest_stream(paths, settings, store, note=note, editor=editor, clock=clock, committer=committer):
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    return outcomes


def ingest_stream(
    paths: Iterable[Path],
    settings: Settings,
    store: Store,
    *,
    note: str | None = None,
    editor: str | None = None,
    clock: Clock = utcnow,
    committer: Commits | None = None,
) -> Iterator[Outcome]:
    """``ingest_files`` as a stream: ``paths`` are read a batch at a time and each outcome is yielded as
    its batch is stored, so 100,000 files cost one batch of memory. ``committer`` (e.g. from
    ``committer_for``) writes the batches; by default one process does."""
    check_settings(settings)  # a bad rule or format is a ConfigError before any file is read
    rules = rules_for(settings)
    committer = committer or Committer.configured(store, settings, clock=clock)
    chunk: list[Path] = []
    for path in itertools.chain(paths, [None]):
        if path is not None:
            chunk.append(path)
            if len(chunk) < settings.batch_size:
                continue
        if not chunk:
            break
        batch = [item for file in chunk for item in _read(file, rules, settings, clock)]
        chunk = []
        yield from committer.commit(batch, note=note, editor=editor)


def committer_for(settings: Settings, store: Store, log: tuple[LogFormat, bool] = ("text", False)) -> Commits:
    """What writes batches for ``ingest file`` and ``ingest run``: with more than one process configured
    (``processes``; 0 is one per core), a ``LaneCommitter`` whose processes open the settings' own S3
    store, so ``store`` must be ``open_store(settings)``; else a plain ``Committer`` on ``store``."""
    processes = processes_for(settings)
    if processes > 1:
        return LaneCommitter(settings, store, processes, logging=log)
    return Committer.configured(store, settings)


def _read(path: Path, rules: Rules, settings: Settings, clock: Clock) -> list[Prepared | Outcome]:
    return guarded(str(path), lambda: prepare_file(path, rules, settings.max_bytes, received_at=clock()))


def rollback(
    settings: Settings, store: Store, article_id: str, to: int, note: str, editor: str | None = None
) -> Outcome:
    """A new version of ``article_id`` with version ``to``'s content (``ingest rollback``)."""
    committer = Committer.configured(store, settings)
    return committer.rollback(safe_id(article_id, article_id), to, note, editor)


def formats() -> list[Parser]:
    """The registered input formats, in the order content detection tries them."""
    return registry.all()


def render(document: Document, fmt: str, settings: Settings) -> dict[str, Any]:
    """``document`` as the rendition ``fmt`` (``document``, ``ninjs``, ``ninjs3``, ``ans``; see
    ``rendition_formats``), as JSON values; its URI is made by ``settings.uri_template`` (``ingest show --as``,
    ``ingest parse --as``). An unknown ``fmt``, or a template that makes no URI of the id, is a ``ConfigError``."""
    return render_as(document, fmt, settings.uri_template)


def rendition_formats() -> list[Rendition]:
    """The registered output renditions, in the order ``--as`` lists them."""
    return rendition_registry.all()


def notify(
    settings: Settings, store: Store, *, webhooks: Sequence[str] | None = None, clock: Clock = utcnow
) -> list[Notified]:
    """Deliver what the changes feed holds that each configured webhook endpoint (or each of ``webhooks``) has
    not had yet, once (``ingest notify --once``): signed, retried, each endpoint's cursor moved as it goes. A
    ``Notified`` per endpoint says whether it is now up to date. For a sender that keeps delivering, make one
    ``Notifier`` and call its ``poll`` or ``run`` (``ingest notify``, ``ingest watch``)."""
    return Notifier(settings, store, webhooks=webhooks, clock=clock).notify()


def delivery_log(
    settings: Settings, store: Store, *, webhooks: Sequence[str] | None = None, since: datetime | None = None
) -> Iterator[Delivery]:
    """What was delivered to each webhook endpoint (or each of ``webhooks``), oldest first: ``ingest notify --log``."""
    return webhooks_log(settings, store, webhooks=webhooks, since=since)


def dispatcher(settings: Settings, *, wait: bool = False) -> Dispatcher:
    """What sends a sweep's files to Celery workers (``ingest run --dispatch``, ``watch --dispatch``), connected
    to ``broker_url``; with ``wait``, it also collects the workers' records into the run's report."""
    from ingest import engine

    return engine.Dispatcher(settings, engine.connect(settings), wait)


def dispatched_files(settings: Settings) -> Dispatcher | None:
    """With a broker configured, what an in-process run asks to skip files already sent to workers."""
    return dispatcher(settings) if settings.broker_url else None


def start_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    beat: bool = False,
    loglevel: str = "INFO",
    pool: str = "prefork",
    events: bool = False,
    metrics_port: int | None = None,
    metrics_host: str = "0.0.0.0",
) -> int:
    """``ingest worker``: run a Celery worker for ingest's tasks until it is stopped; with ``metrics_port``, its
    Prometheus metrics (summed over its task processes) are served on that port."""
    from ingest import engine

    return engine.worker_main(
        settings,
        concurrency=concurrency,
        beat=beat,
        loglevel=loglevel,
        pool=pool,
        events=events,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )


def gauges(status: Status) -> list[SourceGauges]:
    """The per-source gauges (``ingest_source_*``) of a status."""
    return [
        SourceGauges(
            source=s.name,
            last_item_at=s.last_item_at.timestamp() if s.last_item_at else None,
            last_success_at=s.last_success_at.timestamp() if s.last_success_at else None,
            backlog_files=s.backlog_files,
            oldest_file_age_seconds=s.oldest_file_age_seconds,
            quiet=s.quiet,
            failed_files=s.failed_count,
        )
        for s in status.sources
    ]


def serve_metrics(
    looked_at: Callable[[], tuple[Settings, Store, Sequence[Source]]],
    port: int,
    host: str = "0.0.0.0",
    *,
    clock: Clock = utcnow,
    fresh_seconds: float = 5.0,
) -> Serving:
    """``ingest watch --metrics-port``: this process's counters (``ingest.metrics.process()``) and, computed when
    scraped (at most every ``fresh_seconds``), the source gauges of the settings, store and sources that
    ``looked_at`` returns (the watch's current ones, so a reload is followed). Served at
    ``http://host:port/metrics`` until ``close()``."""
    lock = threading.Lock()
    cached: list[SourceGauges] = []
    looked = [float("-inf")]  # when, on the monotonic clock
    quick: list[tuple[Settings, Store, list[Source]]] = []  # the watch's settings, as a look opens them

    def current() -> list[SourceGauges]:
        with lock:
            if time.monotonic() - looked[0] >= fresh_seconds:
                looked[0] = time.monotonic()  # a failed look is not tried again at every scrape either
                cached.clear()  # and leaves no gauges from before it to be served as current
                settings, _store, _sources = looked_at()
                if not quick or quick[0][0] is not settings:  # at the start and after a reload: short budgets
                    opened = store_cache(settings)
                    quick[:] = [(settings, opened(settings.bucket), open_sources(looking(settings), opened))]
                _, store, sources = quick[0]
                cached[:] = gauges(look_at_sources(looking(settings), store, sources, clock(), failed_shown=0))
            return list(cached)

    counted = process_metrics()
    stop = counted.watch_sources(current)
    return serve_http(counted, host, port, on_close=stop)


def backfill(
    settings: Settings,
    store: Store,
    location: str,
    *,
    name: str | None = None,
    dispatch: bool = False,
    restart: bool = False,
    committer: Commits | None = None,
) -> Iterator[Progress]:
    """Load an archive in place, page by page, resumable (``ingest backfill``); yields after each page.
    ``location`` is a folder, an ``s3://`` prefix, or a configured source's name (its settings apply)."""
    from ingest.backfills import backfill as load

    check_settings(settings)
    source = pick_sources(settings, [location]).sources[0]
    sending = dispatcher(settings) if dispatch else None
    return load(
        settings,
        store,
        source,
        name=name or source.name,
        committer=committer or Committer.configured(store, settings),
        open_store=lambda bucket: _store_for(settings, bucket),
        dispatcher=sending,
        restart=restart,
    )
