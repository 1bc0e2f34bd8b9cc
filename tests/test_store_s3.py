"""The unit of work end to end against the real SeaweedFS: requests really sent, processes really racing.

The commit rules themselves are tested fast against the in-memory store (``test_commit.py``); here the
same path runs over HTTP, so what S3 sees is measured: request budgets counted with botocore's own event
hooks, and eight processes writing revisions of one article at once.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from ingest.api import ingest_files
from ingest.keys import Keys
from ingest.models import Document
from ingest.settings import Settings, load_settings
from ingest.stores.s3 import S3Store
from tests.conftest import BUCKET, SEED, RequestCounter, need_shared, read_feed, stored_versions

pytestmark = pytest.mark.s3

STORY = "Bridge Closes for Repairs\n\nThe bridge closes on Friday.\n\nREAD MORE Ferry Times\n\nBuses will divert.\n"
WRITERS = 8
REVISIONS = 3


def test_the_seed_is_stored_as_v1_latest_and_raw_then_a_resend_costs_one_get(
    settings: Settings, store: S3Store, requests: RequestCounter
) -> None:
    seed = need_shared(SEED)
    (first,) = ingest_files([seed], settings, store)
    assert (first.outcome, first.version) == ("created", 1)
    keys = Keys(settings.prefix, "000_a02b289d76dca1f3")
    v1, latest, raw = store.get(keys.version(1)), store.get(keys.latest), store.get(keys.raw(1, ".txt"))
    assert v1 is not None and latest is not None and raw is not None
    assert latest.body == v1.body  # byte-identical
    assert raw.body == seed.read_bytes()
    doc = Document.model_validate_json(v1.body)
    assert (doc.version, doc.action, len(doc.body), len(doc.related_links)) == (1, "created", 18, 8)
    requests.reset()
    (again,) = ingest_files([seed], settings, store)
    assert (again.outcome, again.version) == ("unchanged", 1)
    assert requests.calls == {"GET": 1}  # budget: one read, no write


def test_new_articles_cost_four_requests_each_plus_one_feed_object(
    tmp_path: Path, settings: Settings, store: S3Store, requests: RequestCounter
) -> None:
    paths = []
    for i in range(5):
        path = tmp_path / f"story-{i}.txt"
        path.write_text(STORY.replace("Friday", f"day {i}"))
        paths.append(path)
    requests.reset()
    outcomes = ingest_files(paths, settings, store)
    assert [o.outcome for o in outcomes] == ["created"] * 5
    assert requests.calls == {"GET": 5, "PUT": 5 * 3 + 1}
    assert sorted((e.id, e.version) for e in read_feed(store, settings.prefix)) == [(f"story-{i}", 1) for i in range(5)]


def revision(writer: int, n: int) -> str:
    return f"Budget Vote\n\nRevision {n} from writer {writer}.\n\nSecond paragraph stays.\n"


def _writer(args: tuple[int, str, str, dict[str, str]]) -> list[str]:
    writer, prefix, folder, env = args
    os.environ.update(env)
    settings = load_settings({"bucket": BUCKET, "prefix": prefix}, env={})
    store = S3Store(settings.bucket, attempts=5, max_seconds=30)
    outcomes = []
    for n in range(REVISIONS):
        path = Path(folder) / f"w{writer}" / "budget.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(revision(writer, n), encoding="utf-8")
        (outcome,) = ingest_files([path], settings, store)
        outcomes.append(outcome.outcome)
    return outcomes


def test_concurrent_writers_make_contiguous_unique_versions(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    jobs = [(w, settings.prefix, str(tmp_path), env) for w in range(WRITERS)]
    with multiprocessing.get_context("spawn").Pool(WRITERS) as pool:
        results = pool.map(_writer, jobs)
    assert all(outcome in {"created", "updated"} for outcomes in results for outcome in outcomes)
    keys = Keys(settings.prefix, "budget")
    docs = stored_versions(store, keys)
    total = WRITERS * REVISIONS
    assert [d.version for d in docs] == list(range(1, total + 1))  # contiguous, none lost
    bodies = sorted(d.body[0].text for d in docs)
    assert bodies == sorted(f"Revision {n} from writer {w}." for w in range(WRITERS) for n in range(REVISIONS))
    latest = store.get(keys.latest)
    assert latest is not None and latest == store.get(keys.version(total))
    assert {(e.id, e.version) for e in read_feed(store, settings.prefix)} == {
        ("budget", v) for v in range(1, total + 1)
    }
    for doc in docs:  # every version's history is exactly the versions before it
        assert [h.version for h in doc.history] == list(range(1, doc.version))
        assert store.get(keys.raw(doc.version, ".txt")) is not None
