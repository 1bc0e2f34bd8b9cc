"""``ingest backfill``: an archive loaded in place, page by page, resumable, marked as backfill."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ingest.backfills import backfill, load_checkpoint
from ingest.commit import Committer
from ingest.keys import Keys
from ingest.settings import Settings, SourceSettings, load_settings
from ingest.stores.memory import MemoryStore

PREFIX = "b/"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _settings() -> Settings:
    return load_settings({"prefix": PREFIX, "batch_size": 10}, env={})


def _archive(root: Path) -> list[Path]:
    """25 stories in nested year/month folders, plus things that are not input."""
    paths = []
    for n in range(25):
        folder = root / f"{2000 + n % 3}" / f"{n % 2 + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"story-{n:03d}.txt"
        path.write_text(f"Archive story {n}\n\nFrom the archive, story {n}.\n")
        paths.append(path)
    (root / ".hidden.txt").write_text("Not input\n\nHidden.\n")
    return paths


def _feed(store: MemoryStore) -> list[dict[str, object]]:
    lines = []
    for key in store.list_keys(f"{PREFIX}changes/"):
        stored = store.get(key)
        assert stored is not None
        lines += [json.loads(line) for line in stored.body.decode().splitlines()]
    return lines


def _load(store: MemoryStore, root: Path, **options: object) -> list[object]:
    settings = _settings()
    source = SourceSettings(name="archive", location=str(root))
    committer = Committer(store, PREFIX, clock=lambda: NOW)
    return list(
        backfill(
            settings,
            store,
            source,
            name="archive",
            committer=committer,
            open_store=lambda bucket: store,
            clock=lambda: NOW,
            **options,  # type: ignore[arg-type]
        )
    )


def test_an_archive_is_loaded_in_place_page_by_page_and_marked_as_backfill(tmp_path: Path) -> None:
    store = MemoryStore()
    paths = _archive(tmp_path / "archive")
    pages = _load(store, tmp_path / "archive")
    assert len(pages) == 4  # three pages of at most 10, then the finish
    assert all(p.exists() for p in paths)  # nothing moved
    assert not (tmp_path / "archive" / "processed").exists()
    feed = _feed(store)
    assert sorted(e["id"] for e in feed) == sorted(p.stem for p in paths)
    assert all(e["backfill"] is True for e in feed)
    checkpoint = load_checkpoint(store, PREFIX, "archive")
    assert checkpoint is not None and checkpoint.finished_at is not None
    assert (checkpoint.files, checkpoint.counts) == (25, {"created": 25})


def test_a_backfill_that_stopped_carries_on_after_its_last_page(tmp_path: Path) -> None:
    store = MemoryStore()
    root = tmp_path / "archive"
    _archive(root)
    settings = _settings()
    source = SourceSettings(name="archive", location=str(root))
    loading = backfill(
        settings,
        store,
        source,
        name="archive",
        committer=Committer(store, PREFIX, clock=lambda: NOW),
        open_store=lambda bucket: store,
        clock=lambda: NOW,
    )
    first = next(loading)  # one page done, then the process "dies"
    loading.close()
    assert first.checkpoint.files == 10 and first.checkpoint.finished_at is None
    assert len(_feed(store)) == 10
    _load(store, root)  # started again: carries on after the checkpoint
    feed = _feed(store)
    assert len(feed) == 25 and len({e["id"] for e in feed}) == 25  # nothing stored twice
    checkpoint = load_checkpoint(store, PREFIX, "archive")
    assert checkpoint is not None and checkpoint.files == 25 and checkpoint.finished_at is not None


def test_an_s3_prefix_is_read_recursively_and_refusals_are_kept_beside_the_checkpoint(tmp_path: Path) -> None:
    store = MemoryStore()
    for n in range(12):
        store.put(f"old/{n % 2}/s{n:02d}.txt", f"Old story {n}\n\nText {n}.\n".encode(), "text/plain")
    store.put("old/1/empty.txt", b"", "text/plain")
    source = SourceSettings(name="old", location=f"s3://{store.bucket}/old/")
    pages = list(
        backfill(
            _settings(),
            store,
            source,
            name="old",
            committer=Committer(store, PREFIX, clock=lambda: NOW),
            open_store=lambda bucket: store,
            clock=lambda: NOW,
        )
    )
    final = pages[-1].checkpoint
    assert final.counts == {"created": 12, "failed": 1}
    assert store.get("old/0/s00.txt") is not None  # read in place
    assert store.get(Keys(PREFIX, "s00").latest) is not None
    refusals = list(store.list_keys(f"{PREFIX}backfills/old/"))
    assert len(refusals) == 1
    stored = store.get(refusals[0])
    assert stored is not None and b"empty.txt" in stored.body


class _Flaky(MemoryStore):
    """Every write of one article's version fails as if storage kept failing for it."""

    broken = "story-013"

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        if self.broken and f"/{self.broken}/" in key:
            from ingest.errors import StoreUnavailable

            raise StoreUnavailable(f"S3 PUT {key}: storage kept failing (SlowDown) after retrying", operation="PUT")
        return super().put_new(key, body, content_type)


def test_a_file_storage_kept_failing_for_stops_the_load_before_it_and_the_next_run_stores_it(tmp_path: Path) -> None:
    import pytest

    from ingest.errors import StoreUnavailable

    store = _Flaky()
    root = tmp_path / "archive"
    _archive(root)
    with pytest.raises(StoreUnavailable, match="story-013"):
        _load(store, root)
    checkpoint = load_checkpoint(store, PREFIX, "archive")
    assert checkpoint is not None and checkpoint.finished_at is None
    assert checkpoint.cursor is not None and "story-013" not in checkpoint.cursor
    assert store.get(Keys(PREFIX, "story-013").latest) is None
    store.broken = ""  # storage answers again
    _load(store, root)
    assert store.get(Keys(PREFIX, "story-013").latest) is not None  # carried on from the file, not past it
    assert {e["id"] for e in _feed(store)} == {f"story-{n:03d}" for n in range(25)}
    final = load_checkpoint(store, PREFIX, "archive")
    assert final is not None and final.finished_at is not None
