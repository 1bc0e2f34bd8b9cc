"""``ingest backfill``: load an archive (a folder tree or an S3 prefix, millions of files) in place.

Why its own command rather than a flag on ``run``: a sweep takes the top level of a drop folder, moves what
it stored and forgets; an archive is read where it is (nothing is moved or deleted: it is somebody's
archive), recursively, in a stable order, and a load that takes days must survive a crash and say how far
it got. So a backfill has a name, and a checkpoint under ``backfills/{name}.json`` in the document bucket::

    {"name", "location", "cursor": <last file done>, "files": n, "counts": {...}, "finished_at": ...}

It lists one page (``batch_size`` files) at a time, never the whole listing: S3 pages with ``start_after``;
a folder is walked depth first in name order (one directory's names in memory at a time). After each page
is stored (or, with ``--dispatch``, sent to the workers) the checkpoint moves to its last file, so a
backfill started again after a crash carries on after the last page it finished; re-doing part of a page
is harmless (the unit of work is idempotent: ``unchanged``). ``--restart`` starts from the top.

Every change entry it causes has ``"backfill": true``, so a CMS can tell an archive load from fresh news.
Files that are refused cannot go to ``failed/`` (nothing is moved): each page's refusals are kept in
``backfills/{name}/failed-{page}.jsonl`` and printed. With ``--dispatch``, a page is sent only while the
queue holds fewer than ``QUEUE_HIGH_WATER`` tasks (so Redis never holds the archive: at most a page more),
the checkpoint records the pages *sent* (the broker keeps them from there), workers keep each refusal under
``backfills/{name}/failed/``, and an article still with the workers from the page before is waited for.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ingest.clock import Clock, utcnow
from ingest.errors import Check, ConfigError, StoreUnavailable
from ingest.keys import backfill_key
from ingest.report import FileRecord
from ingest.runner import Commits, take_files
from ingest.settings import Settings, SourceSettings
from ingest.sources import Candidate, Source, ignored, open_source
from ingest.stores.base import Store

if TYPE_CHECKING:
    from collections.abc import Callable

    from ingest.engine import Dispatcher

log = logging.getLogger("ingest.backfill")
#: Tasks allowed to wait in the broker's queue before the next page is sent.
QUEUE_HIGH_WATER = 2000


class Checkpoint(BaseModel):
    """How far a backfill got (``backfills/{name}.json``)."""

    name: str
    location: str
    cursor: str | None = Field(default=None, description="The last file of the last page done (path or key).")
    files: int = 0
    pages: int = Field(default=0, description="Pages done; refusals of page N are in failed-N.jsonl.")
    counts: dict[str, int] = Field(default_factory=dict)
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


@dataclass
class Progress:
    """What ``backfill`` reports after each page."""

    checkpoint: Checkpoint
    page: list[FileRecord]

    def line(self) -> str:
        """One progress line for people."""
        c = self.checkpoint
        counts = ", ".join(f"{n} {word}" for word, n in sorted(c.counts.items()))
        state = "finished" if c.finished_at else f"done up to {c.cursor}"
        return f"backfill {c.name}: {c.files} files ({counts or 'none yet'}); {state}"


def backfill(
    settings: Settings,
    store: Store,
    source_settings: SourceSettings,
    *,
    name: str,
    committer: Commits,
    open_store: Callable[[str], Store],
    dispatcher: Dispatcher | None = None,
    restart: bool = False,
    clock: Clock = utcnow,
) -> Iterator[Progress]:
    """Load the archive at ``source_settings.location`` page by page; yields after each page."""
    source_settings = source_settings.model_copy(update={"settle_seconds": 0.0, "min_age_seconds": 0.0})
    source = open_source(source_settings, open_store)
    store.ensure_bucket()
    key = backfill_key(settings.prefix, name)
    checkpoint = None if restart else _load(store, key)
    if checkpoint is not None and checkpoint.location != source_settings.location:
        raise ConfigError(
            f"backfill {name!r} is of {checkpoint.location}, not {source_settings.location}: "
            "choose another --name, or --restart to start this name over"
        )
    now = clock()
    if checkpoint is None or checkpoint.finished_at is not None:  # new, or a finished one run again from the top
        checkpoint = Checkpoint(name=name, location=source_settings.location, started_at=now, updated_at=now)
    pages = _pages(source, source_settings, checkpoint.cursor, settings.batch_size)
    for page in pages:
        number = checkpoint.pages + 1
        if dispatcher is not None:
            records = _send(dispatcher, source, page, name)
        else:
            records = take_files(settings, store, source, page, committer=committer, clock=clock, backfill=True)
        refused = [r for r in records if r.error is not None]
        if refused:
            body = "".join(r.model_dump_json() + "\n" for r in refused).encode()
            store.put(f"{key[: -len('.json')]}/failed-{number:08d}.jsonl", body, "application/x-ndjson")
        # A file whose storage kept failing, or that changed while it was read (no record, still there), is
        # not done: the checkpoint stops before it, and so does the load.
        stuck = next((i for i, c in enumerate(page) if _not_done(c, records, source_settings)), None)
        done = page if stuck is None else page[:stuck]
        counts = dict(checkpoint.counts)
        for record in records:
            if stuck is None or not any(record.path == c.display for c in page[stuck:]):
                counts[record.outcome] = counts.get(record.outcome, 0) + 1
        checkpoint = checkpoint.model_copy(
            update={
                "cursor": done[-1].ref if done else checkpoint.cursor,
                "files": checkpoint.files + len(done),
                "pages": number,
                "counts": counts,
                "updated_at": clock(),
            }
        )
        store.put(key, checkpoint.model_dump_json(indent=2).encode())
        yield Progress(checkpoint, records)
        if stuck is not None:
            raise StoreUnavailable(
                f"backfill {name}: {page[stuck].display} could not be stored (storage kept failing, or it changed "
                "while it was read); stopped before it. "
                "Run the same command again to carry on from it",
                operation="backfill",
                key=key,
            )
    checkpoint = checkpoint.model_copy(update={"finished_at": clock(), "updated_at": clock()})
    store.put(key, checkpoint.model_dump_json(indent=2).encode())
    yield Progress(checkpoint, [])


def _unstored(record: FileRecord, candidate: Candidate) -> bool:
    return record.path == candidate.display and (record.error or {}).get("check") == Check.STORAGE


def _not_done(candidate: Candidate, records: list[FileRecord], conf: SourceSettings) -> bool:
    mine = [r for r in records if r.path == candidate.display]
    if any(_unstored(r, candidate) for r in mine):
        return True
    return not mine and not conf.is_s3 and os.path.lexists(candidate.ref)


def _load(store: Store, key: str) -> Checkpoint | None:
    stored = store.get(key)
    return Checkpoint.model_validate_json(stored.body) if stored is not None else None


def _send(dispatcher: Dispatcher, source: Source, page: list[Candidate], name: str) -> list[FileRecord]:
    """Send one page to the workers as backfill tasks, once the queue has room for it."""
    while dispatcher.broker.backlog() >= QUEUE_HIGH_WATER:
        time.sleep(1)
    sent = dispatcher.send_backfill(source, page, name)
    return [FileRecord(source=source.settings.name, path=c.display, outcome="dispatched") for c in sent]


def _pages(source: Source, conf: SourceSettings, cursor: str | None, size: int) -> Iterator[list[Candidate]]:
    page: list[Candidate] = []
    files = _s3_files(source, conf, cursor) if conf.is_s3 else _folder_files(Path(conf.location), cursor)
    for candidate in files:
        page.append(candidate)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _s3_files(source: Source, conf: SourceSettings, cursor: str | None) -> Iterator[Candidate]:
    store: Store = source.store  # type: ignore[attr-defined]
    for key, size in store.list_objects(conf.inbox_prefix, start_after=cursor or ""):
        name = key.rsplit("/", 1)[-1]
        if not name or ignored(name):
            continue
        yield Candidate(key, name, size, f"s3://{store.bucket}/{key}")


def _folder_files(root: Path, cursor: str | None) -> Iterator[Candidate]:
    """Every file under ``root``, depth first in name order, after ``cursor`` (a path yielded before)."""
    after = Path(cursor).relative_to(root).parts if cursor else ()
    yield from _walk(root, (), after)


def _walk(folder: Path, parts: tuple[str, ...], after: tuple[str, ...]) -> Iterator[Candidate]:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        log.warning("backfill: cannot list %s (%s); skipped", folder, exc.strerror or exc)
        return
    for entry in entries:
        here = (*parts, entry.name)
        if ignored(entry.name) or (after and here < after[: len(here)]):
            continue  # done in an earlier run (a whole folder at once), or not input
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), here, after if after[: len(here)] == here else ())
            continue
        if after and here <= after:
            continue
        if not entry.is_file(follow_symlinks=False):
            continue  # symlinks and special files are not part of an archive load
        info = entry.stat(follow_symlinks=False)
        listed = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        yield Candidate(entry.path, entry.name, info.st_size, entry.path, listed=listed)


def load_checkpoint(store: Store, prefix: str, name: str) -> Checkpoint | None:
    """A backfill's checkpoint (what `ingest backfill` prints as it goes), for scripts and tests."""
    return _load(store, backfill_key(prefix, name))
