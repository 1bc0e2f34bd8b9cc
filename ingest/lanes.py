"""Every core for the in-process path: a batch committed across worker processes, one lane per process.

Storing an article costs little I/O wait on a local or nearby S3 but about a millisecond of CPU per request
in botocore, so one Python process stops at one core. ``LaneCommitter`` keeps reading and preparing in the
calling process (pure and cheap) and hands the writes to ``processes`` worker processes, each with its own
S3 client and ``Committer``. The items of one article always go to the same lane, in input order, so
revisions of an article in one batch are written in the order they came, as in one process.

Worker processes are started with ``spawn`` (no inherited threads or sockets) the first time a batch is big
enough to be worth it (``MIN_ITEMS``): ``ingest file story.txt`` never pays for starting them. Lanes need a
store they can open again in each process, so they are used with S3 only; tests with an in-memory store
commit in one process, through the same ``Committer``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ingest.clock import Clock, utcnow
from ingest.commit import Committer, new_run_id
from ingest.errors import RunError, Transient
from ingest.outcome import Outcome
from ingest.prepare import Prepared
from ingest.report import LogFormat, setup_logging
from ingest.settings import Settings
from ingest.stores.base import Store

#: Below this many items a batch is committed in the calling process: starting processes costs more.
MIN_ITEMS = 32


def processes_for(settings: Settings) -> int:
    """How many processes commit: ``settings.processes``, or one per core when it is 0."""
    return settings.processes or os.cpu_count() or 1


class LaneCommitter:
    """A ``Committer`` whose batches are written by several processes, one lane of articles each."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        processes: int,
        *,
        clock: Clock = utcnow,
        logging: tuple[LogFormat, bool] = ("text", False),
    ) -> None:
        self.settings = settings
        self.logging = logging
        self.processes = processes
        self.clock = clock
        self.run_id = new_run_id(clock())
        #: Small batches, and rollback, are written here, in this process.
        self.local = Committer.configured(store, settings, run_id=self.run_id, clock=clock)
        self._pool: ProcessPoolExecutor | None = None

    def commit(
        self,
        batch: Sequence[Prepared | Outcome],
        *,
        note: str | None = None,
        editor: str | None = None,
        backfill: bool = False,
    ) -> list[Outcome]:
        items = [i for i in batch if isinstance(i, Prepared)]
        if self.processes < 2 or len(items) < MIN_ITEMS:
            return self.local.commit(batch, note=note, editor=editor, backfill=backfill)
        lanes: list[list[tuple[int, Prepared]]] = [[] for _ in range(self.processes)]
        for index, item in enumerate(batch):
            if isinstance(item, Prepared):
                lanes[_lane(item.id, self.processes)].append((index, item))
        pool = self._start()
        futures = [
            pool.submit(_commit_lane, [item for _, item in lane], note, editor, backfill) for lane in lanes if lane
        ]
        results: list[Outcome | None] = [e if isinstance(e, Outcome) else None for e in batch]
        try:
            for lane, future in zip([lane for lane in lanes if lane], futures, strict=True):
                for (index, _), outcome in zip(lane, future.result(), strict=True):
                    results[index] = outcome
        except BrokenProcessPool as exc:  # a lane process died (out of memory, killed): this batch is not done
            self.close()
            raise LaneLost(f"a process writing this batch died ({exc}); nothing of the batch is moved") from exc
        return [r for r in results if r is not None]

    def rollback(self, article_id: str, to: int, note: str, editor: str | None) -> Outcome:
        return self.local.rollback(article_id, to, note, editor)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init,
                initargs=(self.settings, self.run_id, self.logging),
            )
        return self._pool


class LaneLost(RunError, Transient):
    """A process writing a batch died; the run stops before moving anything of the batch."""


def _lane(article_id: str, lanes: int) -> int:
    return int.from_bytes(hashlib.blake2b(article_id.encode(), digest_size=4).digest(), "big") % lanes


_COMMITTER: Committer | None = None


def _init(settings: Settings, run_id: str, logging: tuple[LogFormat, bool]) -> None:
    """In each worker process: the caller's log format, its own S3 client and committer (its feed
    objects named by its pid)."""
    global _COMMITTER
    from ingest.api import open_store

    # Ctrl-C and SIGTERM are the parent's to handle (it finishes the batch in hand, then stops): a lane
    # that died of them would lose the batch instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setup_logging(*logging)
    store = open_store(settings)
    _COMMITTER = Committer.configured(store, settings, run_id=f"{run_id}-p{os.getpid()}")


def _commit_lane(items: list[Prepared], note: str | None, editor: str | None, backfill: bool) -> list[Outcome]:
    assert _COMMITTER is not None, "lane process not initialised"
    return _COMMITTER.commit(items, note=note, editor=editor, backfill=backfill)
