"""The library's front door: one call per thing a person asks of ingest.

The CLI is flags, one of these calls, printing and exit codes; any other front end (an operator's page,
a worker) calls the same functions. The sweeps (``run_once``, ``watch``) live in ``ingest.runner`` and the
read side (``Archive``) in ``ingest.archive``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ingest.archive import Archive
from ingest.commit import Clock, Committer, utcnow
from ingest.models import Document
from ingest.outcome import Outcome
from ingest.parsers import Parser, registry
from ingest.prepare import Prepared, guarded, prepare_file, preview
from ingest.report import redact_values
from ingest.rules import rules_for
from ingest.settings import Settings
from ingest.split import Rules
from ingest.stores.base import Store
from ingest.stores.s3 import S3Store


def open_store(settings: Settings) -> Store:
    """The document store the settings name, with their retry budget; its credentials are redacted from
    every log line from here on."""
    store = S3Store(settings.bucket, attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)
    redact_values(store.credential_values())
    return store


def preview_files(
    paths: Sequence[Path], settings: Settings, *, clock: Clock = utcnow
) -> Iterator[Document | Outcome]:
    """What each file would be stored as (version 1 of a new article), or its ``failed`` outcome; nothing
    is stored (``ingest parse``)."""
    rules = rules_for(settings)
    for path in paths:
        result = _read(path, rules, settings, clock)
        yield result if isinstance(result, Outcome) else preview(result, clock())


def ingest_files(
    paths: Sequence[Path],
    settings: Settings,
    store: Store,
    *,
    note: str | None = None,
    editor: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    clock: Clock = utcnow,
) -> list[Outcome]:
    """Ingest files in batches of ``settings.batch_size`` (``ingest file``). Bad files become ``failed``
    outcomes; a storage failure raises ``StoreError`` (the run cannot go on)."""
    rules = rules_for(settings)  # a bad rule is a ConfigError before any file is read
    committer = Committer(store, settings.prefix, workers=settings.workers, clock=clock)
    outcomes: list[Outcome] = []
    for start in range(0, len(paths), settings.batch_size):
        batch = [_read(path, rules, settings, clock) for path in paths[start : start + settings.batch_size]]
        for outcome in committer.commit(batch, note=note, editor=editor):
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes


def _read(path: Path, rules: Rules, settings: Settings, clock: Clock) -> Prepared | Outcome:
    return guarded(str(path), lambda: prepare_file(path, rules, settings.max_bytes, received_at=clock()))


def rollback(
    settings: Settings, store: Store, article_id: str, to: int, note: str, editor: str | None = None
) -> Outcome:
    """A new version of ``article_id`` with version ``to``'s content (``ingest rollback``)."""
    keys = Archive(store, settings.prefix).keys(article_id)
    return Committer(store, settings.prefix, workers=settings.workers).rollback(keys.id, to, note, editor)


def formats() -> list[Parser]:
    """The registered input formats, in the order content detection tries them."""
    return registry.all()
