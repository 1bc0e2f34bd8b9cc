"""Scale-out on Celery with Redis: a sweep dispatches one task per input file; ``ingest worker`` runs them.

The task is the per-file unit of work the in-process runner runs (``ingest.runner.take_files``: read,
prepare, commit, move); a worker process does exactly that for one file. Installed with the extra
``ingest[celery]``; the broker is ``broker_url`` (``$INGEST_BROKER_URL``).

How the known ways Celery on Redis loses or repeats work are closed:

- **acks late, prefetch 1, a lost worker rejects.** A task is acknowledged after it ran, each worker process
  reserves one task at a time, and a task whose process died (killed, out of memory, hard time limit) goes
  back to the queue (``task_reject_on_worker_lost``). A whole worker that vanishes (``kill -9``, a lost
  machine) leaves its tasks unacknowledged; Redis hands them out again after ``visibility_timeout``.
- **The unit is idempotent**, so a task delivered twice is harmless: the second finds the version stored
  (``unchanged``) or the file already moved (nothing to do).
- **A file that keeps stopping its worker is refused, not looped.** Every start of a file's task is counted
  in Redis (by where the file is and what it is) and the count is cleared when the task finishes; a start
  that finds ``max_deliveries`` unfinished starts before it (killed, out of memory, over the time limit)
  moves the file to ``failed/`` with the reason (check ``worker-lost``) instead of running it again.
- **Time limits nest**: ``task_time_limit`` (the soft limit is 80 % of it) is below ``visibility_timeout``
  and ``lease_seconds`` (checked when the app is made), so a slow file is not handed to a second worker
  while the first still works on it. A task over the hard limit goes back to the queue
  (``task_acks_on_timeout`` off), where the count above ends it.
- **No result backend, no ETA or countdown tasks.** ``run --dispatch --wait`` collects per-file records
  from a Redis list the tasks push to; nothing is scheduled for later inside Redis (an ETA task sits
  unacknowledged in a worker and is redelivered after ``visibility_timeout``, over and over).
- **Redis must not evict** (``maxmemory-policy noeviction``): an evicted task or mark is lost work.

**Order per article.** The dispatching sweep reads and prepares each file it takes (pure and cheap next to
storing it) to learn its article ids. Files of one article found in one sweep go out as one chain, oldest
first: the next file's task is sent only after the previous one finished, so whichever workers take them,
versions land in arrival order. An article whose chain is still with the workers is marked in Redis; a
later sweep leaves new files of it in the source until the chain is done, so a revision never overtakes
its predecessor across sweeps either. If a file of a chain fails on storage, the rest of the chain stays
in the source for the next sweep, in order.

**One taker per file.** A dispatching sweep holds the source's shard leases while it sweeps (like an
in-process run) and marks each file it sends in Redis until its task is done; a sweep, dispatching or not,
skips marked files. So overlapping sweeps and runs never take a file twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ingest import metrics
from ingest.claims import where
from ingest.errors import Check, ConfigError, InputError, RunError, StoreError, Transient
from ingest.outcome import Outcome
from ingest.report import FileRecord
from ingest.settings import Settings, SourceSettings
from ingest.sources import Candidate, Source
from ingest.status import Tallies

if TYPE_CHECKING:
    import redis
    from celery import Celery

    from ingest.commit import Committer
    from ingest.stores.base import Store

log = logging.getLogger("ingest.worker")

#: The queue every ingest task goes through.
QUEUE = "ingest"
TASK = "ingest.take_file"
SWEEP_TASK = "ingest.sweep"
#: Redis key namespace.
NS = "ingest:"
#: How long a dispatch mark, an article's in-flight mark and a try count live without being cleared: long
#: enough for a deep backlog; short enough that anything a bug left behind heals by itself.
MARK_SECONDS = 6 * 3600
#: How long ``--wait`` results stay in Redis if nobody collects them.
RESULT_SECONDS = 24 * 3600


def need_celery() -> None:
    """Raise a one-line ``ConfigError`` when the ``celery`` extra is not installed."""
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the Celery engine is not installed ({exc.name}): pip install 'ingest[celery]'") from None


def broker_url(settings: Settings) -> str:
    if not settings.broker_url:
        raise ConfigError("no broker configured: set broker_url in the config file or $INGEST_BROKER_URL")
    return settings.broker_url


# ------------------------------------------------------------------------------------------------ the job


class Job(BaseModel):
    """One file's task, as it travels through the broker (JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceSettings
    file: dict[str, Any]
    bucket: str
    prefix: str
    #: Where the dispatching run collects records (``--wait``); None: nobody waits.
    run: str | None = None
    #: Redis keys of this file's dispatch mark and try count.
    mark: str
    tries: str
    #: The value of this send's marks: only a task of this send clears them (a stale redelivery does not).
    token: str = ""
    #: Article in-flight marks the last file of a chain clears.
    articles: list[str] = []
    #: The files of the same article that come after this one, oldest first.
    then: list[Job] = []
    #: The archive load (``ingest backfill --name``) this file is part of: read in place, never moved; its
    #: change entries say ``backfill`` and a refusal is kept under ``backfills/{name}/failed/``.
    backfill: str | None = None

    def candidate(self) -> Candidate:
        data = dict(self.file)
        if data.get("listed") is not None:
            data["listed"] = tuple(data["listed"])
        return Candidate(**data)

    def chain(self) -> list[Job]:
        """This job and every one after it."""
        return [self, *self.then]


def job_for(
    source: SourceSettings,
    candidate: Candidate,
    settings: Settings,
    *,
    run: str | None,
    backfill: str | None = None,
    token: str = "",
) -> Job:
    identity = json.dumps([where(candidate), candidate.size, candidate.listed])
    return Job(
        source=source,
        file=asdict(candidate),
        bucket=settings.bucket,
        prefix=settings.prefix,
        run=run,
        mark=file_mark(candidate),
        tries=f"{NS}tries:{_digest(identity)}",
        token=token,
        backfill=backfill,
    )


def file_mark(candidate: Candidate) -> str:
    """The Redis key marking a file as with the workers: where it is, whichever source lists it."""
    return f"{NS}file:{_digest(where(candidate))}"


def chained(jobs: Sequence[Job], articles: Sequence[str]) -> Job:
    """One job carrying the rest of ``jobs`` after it; the last clears ``articles``."""
    tail: Job | None = None
    for job in reversed(jobs):
        tail = job.model_copy(update={"then": [tail] if tail else [], "articles": [] if tail else list(articles)})
    assert tail is not None
    return tail


def article_mark(settings: Settings, article_id: str) -> str:
    return f"{NS}article:{_digest(f'{settings.bucket}/{settings.prefix}{article_id}')}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ------------------------------------------------------------------------------------------------ redis


#: Deletes each key only while it holds the given value (the token of the send that set it).
_CLEAR = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then n = n + redis.call('del', key) end
end
return n
"""


@contextmanager
def _broker_errors() -> Iterator[None]:
    """Redis and kombu failures as one ``BrokerUnavailable`` (transient: a watch waits and tries again)."""
    try:
        yield
    except Exception as exc:
        import redis  # here, not above: loading kombu costs a run that only reads marks a tenth of a second
        from kombu.exceptions import OperationalError

        if isinstance(exc, redis.RedisError | OperationalError):
            raise BrokerUnavailable(f"broker unavailable: {exc}") from exc
        raise


@dataclass
class Broker:
    """The Redis side of dispatching: marks, try counts, results, the queue's length."""

    client: redis.Redis
    #: Makes the Celery app on first send: an in-process run only reads marks, and need not load Celery.
    make: Callable[[], Celery]
    _app: Celery | None = field(default=None, init=False, repr=False)
    _making: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def app(self) -> Celery:
        with self._making:  # a thread-pool worker's tasks may send at once: one app
            if self._app is None:
                self._app = self.make()
            return self._app

    def taken(self, marks: Sequence[str]) -> list[bool]:
        """Whether each file mark is set (its file is with the workers)."""
        if not marks:
            return []
        with _broker_errors():
            values = self.client.mget(list(marks))
        return [v is not None for v in values]

    def in_flight(self, marks: Sequence[str]) -> set[str]:
        if not marks:
            return set()
        with _broker_errors():
            values = self.client.mget(list(marks))
        return {m for m, v in zip(marks, values, strict=True) if v is not None}

    def mark(self, jobs: Sequence[Job], articles: Sequence[str], token: str) -> list[bool] | None:
        """Mark the articles as in flight and the files as dispatched, with ``token``. None, and nothing
        marked, when another send holds one of the articles; else, per file, whether it is ours (a file
        another sweep marked first is not)."""
        with _broker_errors():
            pipe = self.client.pipeline(transaction=False)
            for article in articles:
                pipe.set(article, token, nx=True, ex=MARK_SECONDS)
            if not all(pipe.execute()):
                self.clear(articles, token)
                return None
            pipe = self.client.pipeline(transaction=False)
            for job in jobs:
                pipe.set(job.mark, token, nx=True, ex=MARK_SECONDS)
            return [bool(r) for r in pipe.execute()]

    def clear(self, keys: Sequence[str], token: str | None = None) -> None:
        """Delete ``keys``; with ``token``, only those that still hold it."""
        if not keys:
            return
        with _broker_errors():
            if token is None:
                self.client.delete(*keys)
            else:
                self.client.eval(_CLEAR, len(keys), *keys, token)

    def tried(self, job: Job) -> int:
        """Count one more start of this file's task; how many there have been."""
        with _broker_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(job.tries)
            pipe.expire(job.tries, MARK_SECONDS)
            return int(pipe.execute()[0])

    def send(self, job: Job) -> None:
        with _broker_errors():
            self.app.send_task(TASK, args=[job.model_dump(mode="json")], queue=QUEUE)

    def report(self, run: str, file: str, records: Sequence[FileRecord]) -> None:
        key = f"{NS}run:{run}"
        entry = json.dumps({"file": file, "records": [r.model_dump(mode="json") for r in records]})
        with _broker_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.rpush(key, entry)
            pipe.expire(key, RESULT_SECONDS)
            pipe.execute()

    def collect(self, run: str, timeout: float) -> tuple[str, list[FileRecord]] | None:
        with _broker_errors():
            got = self.client.blpop([f"{NS}run:{run}"], timeout=max(1, int(timeout)))
        if got is None:
            return None
        entry = json.loads(got[1])
        return entry["file"], [FileRecord.model_validate(r) for r in entry["records"]]

    def backlog(self) -> int:
        """Tasks waiting in the queue (not those a worker holds)."""
        with _broker_errors():
            return int(self.client.llen(QUEUE))


def connect(settings: Settings) -> Broker:
    """The broker the settings name, checked with a PING."""
    need_celery()
    import redis

    url = broker_url(settings)
    client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"broker {_safe(url)} unreachable: {exc}") from exc
    return Broker(client, lambda: make_app(settings))


class BrokerUnavailable(RunError, Transient):
    """The broker cannot be reached (or failed a request)."""


def _safe(url: str) -> str:
    """The broker URL without its password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


# ------------------------------------------------------------------------------------------------ celery


def make_app(settings: Settings) -> Celery:
    """The Celery app: the task semantics of the module docstring, in Celery's words."""
    need_celery()
    from celery import Celery

    # A task must be over before Redis redelivers it and before the lease on its file runs out, or a slow
    # file would be taken twice.
    if settings.task_time_limit >= min(settings.visibility_timeout, settings.lease_seconds):
        raise ConfigError(
            f"task_time_limit ({settings.task_time_limit:g} s) must be below visibility_timeout "
            f"({settings.visibility_timeout:g} s) and lease_seconds ({settings.lease_seconds:g} s)"
        )
    app = Celery("ingest", broker=broker_url(settings), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_timeout=False,  # a task killed at the hard time limit is requeued, and counted
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=settings.task_time_limit * 0.8,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # Look for tasks of vanished workers about every tenth of the visibility timeout.
            "unacked_restore_interval": max(1, int(settings.visibility_timeout / 10)),
            "unacked_restore_throttle": 1,
            "socket_timeout": 30,
        },
        worker_hijack_root_logger=False,
        # Task events cost three Redis messages a task: off unless asked for (`ingest worker --events`, or
        # `celery control enable_events` while Flower watches).
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    app.task(name=TASK)(_take_file_task)
    app.task(name=SWEEP_TASK)(_sweep_task)
    _STATE.settings = settings
    return app


@dataclass
class _WorkerState:
    """What one worker process opens once and reuses for every task (per process id: prefork forks)."""

    settings: Settings | None = None
    pid: int = 0
    stores: dict[str, Store] = field(default_factory=dict)
    #: One committer per thread (a thread-pool worker runs tasks side by side; a committer numbers its
    #: changes objects, so it is never shared).
    committers: dict[tuple[str, str, int], Committer] = field(default_factory=dict)
    broker: Broker | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: What this process's tasks took, on its way to the sources' states (``ingest status``).
    tallies: Tallies = field(default_factory=Tallies)

    def fresh(self) -> None:
        if self.pid != os.getpid():  # a forked child: clients are not shared across processes
            self.pid, self.stores, self.committers, self.broker = os.getpid(), {}, {}, None
            self.tallies = Tallies()

    def store(self, bucket: str) -> Store:
        from ingest.api import open_store

        self.fresh()
        assert self.settings is not None
        with self.lock:
            if bucket not in self.stores:
                self.stores[bucket] = open_store(self.settings, bucket)
            return self.stores[bucket]

    def committer(self, bucket: str, prefix: str) -> Committer:
        from ingest.clock import utcnow
        from ingest.commit import Committer, new_run_id

        self.fresh()
        key = (bucket, prefix, threading.get_ident())
        with self.lock:
            if key not in self.committers:
                assert self.settings is not None
                run_id = f"{new_run_id(utcnow())}-w{os.getpid()}-{len(self.committers)}"
                store = self.store(bucket)
                self.committers[key] = Committer.configured(store, self.settings, prefix=prefix, run_id=run_id)
            return self.committers[key]

    def redis(self) -> Broker:
        self.fresh()
        with self.lock:
            if self.broker is None:
                assert self.settings is not None
                self.broker = connect(self.settings)
            return self.broker


_STATE = _WorkerState()


def _take_file_task(payload: dict[str, Any]) -> None:
    take_job(Job.model_validate(payload), _STATE)


def take_job(job: Job, state: _WorkerState) -> list[FileRecord]:
    """Run one file's task: count the start, refuse a file that keeps stopping its worker, else the unit of
    work; then, whatever happened, clear this send's marks, report to a waiting dispatcher, and send the
    next file of its article (or leave the rest of the chain in the source)."""
    from celery.exceptions import SoftTimeLimitExceeded

    from ingest.clock import utcnow
    from ingest.prepare import PASS_THROUGH
    from ingest.runner import refuse_file, take_files
    from ingest.sources import open_source

    if SoftTimeLimitExceeded not in PASS_THROUGH:
        PASS_THROUGH.append(SoftTimeLimitExceeded)  # the time limit is the task's, never one file's fault
    started = time.monotonic()
    assert state.settings is not None
    settings = state.settings.model_copy(update={"bucket": job.bucket, "prefix": job.prefix})
    broker = state.redis()
    candidate = _here(job.candidate(), job.source)
    tries = broker.tried(job)
    records: list[FileRecord] = []
    finished = stored_fine = False
    opened: Store | None = None
    try:
        source = open_source(job.source, state.store)
        store = opened = state.store(job.bucket)
        if tries > settings.max_deliveries:
            reason = (
                f"its task stopped the worker running it {tries - 1} times (a crash, running out of memory, "
                f"or the {settings.task_time_limit:g} s time limit): refused so it cannot stop workers again"
            )
            error = InputError(candidate.display, reason, check=Check.WORKER_LOST)
            if job.backfill is None:
                records = refuse_file(source, candidate, error)
            else:  # an archive is never moved: the refusal is recorded beside the backfill's checkpoint
                records = [FileRecord.of(job.source.name, Outcome.failed(candidate.display, error))]
        else:
            records = take_files(
                settings,
                store,
                source,
                [candidate],
                committer=state.committer(job.bucket, job.prefix),
                clock=utcnow,
                backfill=job.backfill is not None,
            )
        finished = True
        stored_fine = not any((r.error or {}).get("check") == Check.STORAGE for r in records)
        if job.backfill is not None:
            _keep_refusals(store, settings.prefix, job.backfill, records)
    except SoftTimeLimitExceeded:  # counted as a start that did not finish: the try count is kept
        limit = settings.task_time_limit * 0.8
        records = [_left(job, candidate, f"took longer than {limit:g} s; left in the source for the next sweep")]
    except (RunError, StoreError) as exc:
        finished = True
        records = [_left(job, candidate, f"{exc}; left in the source for the next sweep")]
    finally:
        metrics.process().files(records)
        metrics.process().stage("task", time.monotonic() - started)
        if job.backfill is None and records and opened is not None:  # an archive load is not a feed's traffic
            counts = Counter(r.outcome for r in records if r.settled)
            errors = Counter((r.error.get("check") or "unknown") for r in records if r.error is not None)
            state.tallies.add(opened, settings.prefix, job.source.name, job.source.location, counts, errors)
        broker.clear([job.mark], job.token)
        if finished:
            broker.clear([job.tries])  # this start did not stop its worker
        if job.run:
            broker.report(job.run, candidate.display, records)
        for record in records:
            log.info("%s %s%s", record.outcome, record.path, f" -> {record.key}" if record.key else "")
        _next(job, broker, candidate, stored_fine=stored_fine)
    return records


def _next(job: Job, broker: Broker, candidate: Candidate, *, stored_fine: bool) -> None:
    """Send the next file of the article's chain; if this one was not stored, leave the rest in the source
    (in order, for the next sweep) and free the article."""
    if not job.then:
        broker.clear(job.articles, job.token)
        return
    if stored_fine:
        broker.send(job.then[0])
        return
    rest = job.then[0].chain()
    for later in rest:
        note = f"left in the source: an earlier file of its article ({candidate.display}) was not stored"
        broker.clear([later.mark], later.token)
        if job.run:
            broker.report(job.run, later.candidate().display, [_left(later, later.candidate(), note)])
    broker.clear(rest[-1].articles, job.token)


def _here(candidate: Candidate, source: SourceSettings) -> Candidate:
    """The candidate as this machine sees it. A drop folder shared over the network has another device
    number on every machine; the inode, size and modification time a sweep listed are the file's own."""
    if source.is_s3 or candidate.listed is None:
        return candidate
    try:
        info = os.stat(candidate.ref, follow_symlinks=False)
    except OSError:
        return candidate  # gone or unreadable: reading it says so
    local = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    if local[1:] != candidate.listed[1:]:
        return candidate  # changed since it was listed: reading it says so
    return dataclasses.replace(candidate, listed=local)


def _keep_refusals(store: Store, prefix: str, name: str, records: Sequence[FileRecord]) -> None:
    """A refused archive file cannot go to failed/: its record goes under ``backfills/{name}/failed/``."""
    from ingest.keys import backfill_key

    folder = backfill_key(prefix, name)[: -len(".json")]
    for record in records:
        if record.error is not None:
            store.put(f"{folder}/failed/{_digest(record.path)}.json", record.model_dump_json(indent=2).encode())


def _left(job: Job, candidate: Candidate, message: str) -> FileRecord:
    error = InputError(candidate.display, message, check=Check.STORAGE).as_dict()
    return FileRecord(source=job.source.name, path=candidate.display, outcome="failed", error=error, message=message)


def _sweep_task() -> None:
    """A dispatching sweep of the configured sources, for a Celery beat schedule."""
    from ingest.api import open_sources, open_store
    from ingest.report import Reporter

    settings = _STATE.settings
    assert settings is not None
    dispatch(settings, open_store(settings), open_sources(settings), Reporter("json"), broker=_STATE.redis())


# ------------------------------------------------------------------------------------------------ dispatching


def dispatch(
    settings: Settings,
    store: Store,
    sources: Sequence[Any],
    reporter: Any,
    *,
    wait: bool = False,
    broker: Broker | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Any:
    """One dispatching sweep (``ingest run --dispatch``); with ``wait``, collect what the workers did and
    report it like an in-process run. Returns the ``RunReport``."""
    from ingest.runner import run_once

    broker = broker or connect(settings)
    return run_once(settings, store, sources, reporter, stop=stop, dispatcher=Dispatcher(settings, broker, wait))


@dataclass
class Dispatcher:
    """Sends a sweep's batches to the workers: grouped by article, marked, chained (see the docstring)."""

    settings: Settings
    broker: Broker
    wait: bool
    sent: dict[str, str] = field(default_factory=dict)  # file display -> source name, awaiting a record

    def filter(self, source: SourceSettings, candidates: Sequence[Candidate]) -> tuple[list[Candidate], int]:
        """Candidates not already with the workers, and how many are."""
        taken = self.broker.taken([file_mark(c) for c in candidates])  # keys only: no job is built here
        free = [c for c, t in zip(candidates, taken, strict=True) if not t]
        return free, len(candidates) - len(free)

    def send(
        self, source: SourceSettings, groups: Sequence[tuple[list[Candidate], list[str]]], run_id: str
    ) -> tuple[int, list[str]]:
        """Send each group (files of one article, oldest first, and its article ids) as one chain.
        Returns how many files went out, and the files left because their article is still in flight."""
        sent, deferred = 0, list[str]()
        for files, ids in groups:
            marks = [article_mark(self.settings, a) for a in ids]
            token = secrets.token_hex(8)
            jobs = [job_for(source, c, self.settings, run=run_id if self.wait else None, token=token) for c in files]
            ok = self.broker.mark(jobs, marks, token)
            if ok is None:  # an earlier file of the article is with the workers: this one waits, in order
                deferred.extend(c.display for c in files)
                continue
            jobs = [j for j, fine in zip(jobs, ok, strict=True) if fine]  # another sweep sent the rest
            if not jobs:
                self.broker.clear(marks, token)
                continue
            self.broker.send(chained(jobs, marks))
            if self.wait:
                for job in jobs:
                    self.sent[job.candidate().display] = source.name
            sent += len(jobs)
        return sent, deferred

    def send_backfill(self, source: Source, candidates: Sequence[Candidate], name: str) -> list[Candidate]:
        """Send a backfill page: archive files of one article chained oldest first, read in place. An article
        still with the workers from the page before is waited for, so its versions stay in archive order.
        Returns the files sent (one another backfill already sent is not sent again)."""
        from ingest.runner import group_by_article

        sent: list[Candidate] = []
        for files, ids in group_by_article(self.settings, source, candidates):
            marks = [article_mark(self.settings, a) for a in ids]
            token = secrets.token_hex(8)
            jobs = [job_for(source.settings, c, self.settings, run=None, backfill=name, token=token) for c in files]
            waited = time.monotonic()
            while (ok := self.broker.mark(jobs, marks, token)) is None:
                if time.monotonic() - waited > 60:
                    log.info("backfill %s: waiting for an earlier file of %s to be stored", name, ", ".join(ids))
                    waited = time.monotonic()
                time.sleep(0.2)
            jobs = [j for j, fine in zip(jobs, ok, strict=True) if fine]
            if jobs:
                self.broker.send(chained(jobs, marks))
                sent += [j.candidate() for j in jobs]
            else:
                self.broker.clear(marks, token)
        return sent

    def collect(self, run_id: str, on_records: Callable[[list[FileRecord]], None]) -> list[str]:
        """Wait for a record of every file sent; returns the files no worker reported on in time (none came
        for ``visibility_timeout + task_time_limit``: by then a vanished worker's task was handed out again)."""
        stall = self.settings.visibility_timeout + self.settings.task_time_limit
        pending = dict(self.sent)
        last = announced = time.monotonic()
        while pending:
            got = self.broker.collect(run_id, timeout=5)
            now = time.monotonic()
            if got is None:
                if now - announced >= 10:
                    log.info("waiting for workers: %d of %d files done", len(self.sent) - len(pending), len(self.sent))
                    announced = now
                if now - last > stall:
                    return sorted(pending)
                continue
            file, records = got
            if file not in pending:
                continue  # a repeated delivery's report: the first one counts
            del pending[file]
            last = now
            on_records(records)
        return []


# A task spends most of its time waiting on S3 (five requests one after another, and S3 may be tens of
# milliseconds away), so one slot per core leaves the cores idle. Measured on 2 cores with 30 ms added to
# every request: 2 slots keep 0.16 of the no-latency throughput, 8 slots 0.53, 16 slots 1.0, and 16 slots
# without latency are as fast as 2. A prefork slot costs about 35 MB (PSS).
TASKS_PER_CORE = 8


#: At most this many slots by default, however many cores the machine shows (a container sees its host's).
MAX_DEFAULT_SLOTS = 64


def default_concurrency() -> int:
    """Task slots when ``--concurrency`` is not given: :data:`TASKS_PER_CORE` per core this process may use,
    at most :data:`MAX_DEFAULT_SLOTS`."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere, every core
    cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return min(TASKS_PER_CORE * cores, MAX_DEFAULT_SLOTS)


def worker_main(
    settings: Settings,
    *,
    concurrency: int | None,
    beat: bool,
    loglevel: str,
    pool: str = "prefork",
    events: bool = False,
    metrics_port: int | None = None,
    metrics_host: str = "0.0.0.0",
) -> int:
    """``ingest worker``: a Celery worker consuming the ingest queue (returns when it stops). ``prefork``
    (the default) runs each task in a process of its own; ``threads`` runs many tasks side by side in one
    process (lighter, but a task that kills its process takes its neighbours' tasks with it, and threads
    have no hard time limit). Either way ``concurrency`` defaults to :func:`default_concurrency`. With
    ``metrics_port``, the worker's metrics, summed over its processes, are served there (:func:`_metrics_served`)."""
    app = make_app(settings)
    connect(settings)  # fail early and clearly when the broker is not there
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--pool={pool}",
        f"--queues={QUEUE}",
        f"--hostname=ingest-{os.getpid()}@{socket.gethostname()}",
        "--without-mingle",
        "--without-gossip",
    ]
    argv.append(f"--concurrency={concurrency or default_concurrency()}")
    if events:
        argv.append("--task-events")
    if beat:
        # A sweep that waited in the queue past the next one is dropped (expires), so sweeps never pile up
        # behind a backlog of files.
        every = max(settings.poll_seconds, 10.0)
        app.conf.beat_schedule = {"sweep": {"task": SWEEP_TASK, "schedule": every, "options": {"expires": every}}}
        argv += ["--beat", f"--schedule={os.path.join(os.getcwd(), '.ingest-beat-schedule')}"]
    from celery.signals import worker_process_shutdown, worker_shutdown

    # A pool process (prefork) or the worker itself (threads) writes the counts its tasks gathered as it stops.
    worker_process_shutdown.connect(_flush_tallies, weak=False, dispatch_uid="ingest.tallies")
    worker_shutdown.connect(_flush_tallies, weak=False, dispatch_uid="ingest.tallies.main")
    if metrics_port is None:
        app.worker_main(argv)
        return 0
    with _metrics_served(metrics_host, metrics_port):
        app.worker_main(argv)
    return 0


@contextmanager
def _metrics_served(host: str, port: int) -> Iterator[None]:
    """``ingest worker --metrics-port``: the prefork pool's children are forked after this begins, so they count
    into the files of ``metrics.multiprocess()``; this process serves the sum on ``port``, each child marks
    itself dead as it exits, and the files are removed when the worker stops."""
    from celery.signals import worker_process_shutdown

    with metrics.multiprocess() as counted:
        # weak=False: Celery holds the handler; the uid keeps a second worker_main in one process from doubling it.
        worker_process_shutdown.connect(_process_ended, weak=False, dispatch_uid="ingest.metrics")
        serving = metrics.serve_http(counted, host, port)
        log.info("metrics at http://%s:%d/metrics", host, serving.port)
        try:
            yield
        finally:
            serving.close()


def _flush_tallies(**_: Any) -> None:
    _STATE.tallies.flush()


def _process_ended(pid: int | None = None, **_: Any) -> None:
    """Celery's ``worker_process_shutdown``, in a pool child about to exit."""
    metrics.process_ended(pid or os.getpid())
