"""The Celery engine (``ingest.engine``) with a real Redis, real SeaweedFS and real worker processes.

The big test is issue 11's: two workers, 800 files, one worker killed with SIGKILL in the middle and
started again; nothing lost, nothing doubled, revisions in arrival order.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ingest import devredis
from ingest.api import dispatcher, open_sources
from ingest.engine import Job, _WorkerState, connect, job_for, take_job
from ingest.keys import Keys
from ingest.report import Reporter, RunReport
from ingest.runner import run_once
from ingest.settings import Settings, SourceSettings, load_settings
from ingest.sources import Candidate
from ingest.stores.s3 import S3Store
from tests.conftest import BUCKET, read_feed

pytestmark = [pytest.mark.s3, pytest.mark.redis]

#: Short limits, so a killed worker's task comes back in seconds rather than minutes.
LIMITS = {"task_time_limit": "4", "visibility_timeout": "8", "lease_seconds": "30"}


def _settings(prefix: str, drop: Path, **extra: object) -> Settings:
    values: dict[str, object] = {"bucket": BUCKET, "prefix": prefix, **LIMITS, **extra}
    settings = load_settings(values, env={"INGEST_BROKER_URL": os.environ["INGEST_BROKER_URL"]})
    source = SourceSettings(name="wires", location=str(drop), settle_seconds=0)
    return settings.model_copy(update={"sources": [source]})


def _worker(env: dict[str, str], log: Path, *options: str) -> subprocess.Popen[bytes]:
    """One `ingest worker` with one process, in its own process group (so SIGKILL takes all of it)."""
    options = options or ("--concurrency", "1")
    with log.open("ab") as out:  # the child has its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ingest", "worker", *options, "--loglevel", "WARNING"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(timeout=30)


def _write(path: Path, text: str, mtime: float) -> None:
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def _dispatch(settings: Settings) -> RunReport:
    return run_once(
        settings,
        S3Store(settings.bucket),
        open_sources(settings),
        Reporter("text", out=io.StringIO()),
        dispatcher=dispatcher(settings),
    )


@pytest.fixture
def worker_env(local_s3: object, local_redis: devredis.LocalRedis, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update({"INGEST_BUCKET": BUCKET, "INGEST_PREFIX": prefix, "INGEST_BROKER_URL": local_redis.url})
    env.update({f"INGEST_{k.upper()}": v for k, v in LIMITS.items()})
    return env


def test_two_workers_one_killed_mid_run_lose_nothing_and_keep_revisions_in_order(
    tmp_path: Path, worker_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    settings = _settings(prefix, drop)
    old = time.time() - 600
    for n in range(600):
        _write(drop / f"a-{n:03d}.txt", f"Single story {n}\n\nThe only paragraph of story {n}.\n", old)
    for n in range(100):
        first = f"---\nid: rev-{n:03d}\nheadline: Revision one of {n}\n---\nFirst telling of story {n}.\n"
        _write(drop / f"r-{n:03d}-1.txt", first, old)
    logs = tmp_path / "workers.log"
    workers = [_worker(worker_env, logs), _worker(worker_env, logs)]
    try:
        first_sweep = _dispatch(settings)
        assert first_sweep.dispatched == 700
        # The second revisions arrive later, while the first ones are still with the workers.
        for n in range(100):
            second = f"---\nid: rev-{n:03d}\nheadline: Revision two of {n}\n---\nSecond telling of story {n}.\n"
            _write(drop / f"r-{n:03d}-2.txt", second, old + 60)
        # Kill one worker outright in the middle of the work, then start it again.
        deadline = time.time() + 120
        while len(list((drop / "processed").rglob("*.txt"))) < 250 and time.time() < deadline:
            time.sleep(0.05)
        _kill(workers[0])
        workers[0] = _worker(worker_env, logs)
        # Sweep until the folder is drained (revisions wait while their article is in flight).
        deadline = time.time() + 240
        while list(drop.glob("*.txt")) and time.time() < deadline:
            _dispatch(settings)
            time.sleep(1)
        assert not list(drop.glob("*.txt")), f"not drained; worker log: {logs.read_text()[-3000:]}"
    finally:
        for proc in workers:
            _kill(proc, signal.SIGTERM)

    processed = [p.name for p in (drop / "processed").rglob("*.txt")]
    assert len(processed) == 800 and len(set(processed)) == 800  # every file exactly once
    assert not (drop / "failed").exists() or not list((drop / "failed").iterdir())
    feed = Counter((e.id, e.version) for e in read_feed(store, prefix))
    expected: dict[str, int] = {f"a-{n:03d}": 1 for n in range(600)} | {f"rev-{n:03d}": 2 for n in range(100)}
    for article, versions in expected.items():
        keys = Keys(prefix, article)
        latest = json.loads(store.get(keys.latest).body)  # type: ignore[union-attr]
        assert latest["version"] == versions, article
        assert store.get(keys.version(versions + 1)) is None  # no version beyond the revisions sent
        raws = list(store.list_keys(f"{prefix}raw/{article}/"))
        assert len(raws) == versions, (article, raws)  # the input archived once per version
        for v in range(1, versions + 1):
            assert feed[article, v] >= 1, (article, v)  # the feed lists every version
    for n in range(100):
        keys = Keys(prefix, f"rev-{n:03d}")
        assert json.loads(store.get(keys.version(1)).body)["headline"] == f"Revision one of {n}"  # type: ignore[union-attr]
        assert json.loads(store.get(keys.latest).body)["headline"] == f"Revision two of {n}"  # type: ignore[union-attr]


def test_revisions_found_in_one_sweep_go_out_as_one_chain_oldest_first(
    tmp_path: Path, local_redis: devredis.LocalRedis, prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    settings = _settings(prefix, drop)
    base = time.time() - 600
    # Named so that name order is the reverse of arrival order.
    _write(drop / "z.txt", "---\nid: one\nheadline: Oldest\n---\nFirst.\n", base)
    _write(drop / "a.txt", "---\nid: one\nheadline: Newest\n---\nSecond.\n", base + 30)
    broker = connect(settings)
    broker.client.delete("ingest")  # an empty queue: this test reads what the sweep sends
    report = _dispatch(settings)
    assert report.dispatched == 2
    sent = [json.loads(m) for m in broker.client.lrange("ingest", 0, -1)]
    assert len(sent) == 1  # one task: the second file waits inside the first one's job
    body = json.loads(base64.b64decode(sent[0]["body"]))
    job = Job.model_validate(body[0][0])
    assert [j.candidate().name for j in job.chain()] == ["z.txt", "a.txt"]
    assert job.articles == [] and job.then[0].articles  # the last one clears the article's mark
    # A sweep while the chain is with the workers sends nothing of that article.
    _write(drop / "m.txt", "---\nid: one\nheadline: Later still\n---\nThird.\n", base + 60)
    again = _dispatch(settings)
    assert again.dispatched == 0 and str(drop / "m.txt") in again.waiting
    broker.client.delete("ingest")


def test_a_file_that_keeps_stopping_its_worker_is_refused_with_the_reason(
    tmp_path: Path, local_redis: devredis.LocalRedis, prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "deadly.txt"
    _write(path, "Deadly story\n\nIt stops every worker that opens it.\n", time.time() - 60)
    settings = _settings(prefix, drop, max_deliveries=2)
    source = settings.sources[0]
    info = path.stat()
    candidate = Candidate(
        str(path), path.name, info.st_size, str(path), listed=(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    )
    job = job_for(source, candidate, settings, run=None)
    state = _WorkerState(settings=settings)
    broker = state.redis()
    broker.client.delete(job.tries)
    broker.client.set(job.tries, 2)  # two starts already, each ended by its worker dying
    records = take_job(job, state)
    assert [r.outcome for r in records] == ["failed"]
    assert records[0].error is not None and records[0].error["check"] == "worker-lost"
    assert "stopped the worker running it 2 times" in (records[0].error["message"] or "")
    assert (drop / "failed" / "deadly.txt").exists()
    error = json.loads((drop / "failed" / "deadly.txt.error.json").read_text())
    assert error["check"] == "worker-lost"
    assert store.get(Keys(prefix, "deadly").latest) is None  # never run a third time


def test_a_duplicate_delivery_is_harmless(
    tmp_path: Path, local_redis: devredis.LocalRedis, prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "twice.txt"
    _write(path, "Twice told\n\nDelivered two times by the broker.\n", time.time() - 60)
    settings = _settings(prefix, drop)
    info = path.stat()
    candidate = Candidate(
        str(path), path.name, info.st_size, str(path), listed=(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    )
    job = job_for(settings.sources[0], candidate, settings, run=None)
    state = _WorkerState(settings=settings)
    first = take_job(job, state)
    second = take_job(job, state)  # the same message again (a worker died after the work, before the ack)
    assert [r.outcome for r in first] == ["created"]
    assert second == []  # the file is gone: nothing to do, nothing written
    assert store.get(Keys(prefix, "twice").version(2)) is None
    assert len([e for e in read_feed(store, prefix) if e.id == "twice"]) == 1


def test_run_dispatch_wait_reports_like_an_in_process_run(
    tmp_path: Path, worker_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    old = time.time() - 60
    for n in range(5):
        _write(drop / f"s-{n}.txt", f"Story {n}\n\nParagraph {n}.\n", old)
    _write(drop / "bad.txt", "", old)
    logs = tmp_path / "worker.log"
    worker = _worker(worker_env, logs)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "ingest", "run", "--dispatch", "--wait", "--source", str(drop), "--log-format=text"],
            env={**worker_env, "INGEST_SETTLE_SECONDS": "0"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        _kill(worker, signal.SIGTERM)
    assert run.returncode == 1, run.stderr + logs.read_text()[-2000:]  # one file refused, as in-process
    assert "5 created" in run.stdout and "1 failed" in run.stdout
    assert "bad.txt" in run.stdout
    assert len(list((drop / "processed").rglob("*.txt"))) == 5
    assert (drop / "failed" / "bad.txt").exists()
    reports = list(store.list_keys(f"{prefix}runs/"))
    assert len(reports) == 1
    stored = json.loads(store.get(reports[0]).body)  # type: ignore[union-attr]
    assert stored["counts"] == {"created": 5, "failed": 1}
    # ingest status: the workers counted what they took (written as they stopped, if not before); the
    # dispatching sweep recorded what it sent, not the records it collected from them again
    (key,) = store.list_keys(f"{prefix}status/")
    state = json.loads(store.get(key).body)  # type: ignore[union-attr]
    assert state["totals"] == {"created": 5, "failed": 1} and state["error_totals"] == {"headline": 1}
    assert state["last_sweep"]["dispatched"] == 6 and state["last_sweep"]["counts"] == {}


def test_no_broker_is_a_clear_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from tests.conftest import cli

    run = cli("run", "--dispatch", "--source", str(tmp_path), env={**cli_env, "INGEST_BROKER_URL": ""})
    assert run.returncode == 2
    assert "no broker configured" in run.stderr
    nowhere = {**cli_env, "INGEST_BROKER_URL": "redis://127.0.0.1:9/0"}
    down = cli("run", "--dispatch", "--source", str(tmp_path), env=nowhere)
    assert down.returncode == 2 and "unreachable" in down.stderr


def test_dispatching_sweeps_and_in_process_runs_never_take_a_file_twice(
    tmp_path: Path, local_redis: devredis.LocalRedis, prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for n in range(30):
        _write(drop / f"s-{n:02d}.txt", f"Story {n}\n\nParagraph {n}.\n", time.time() - 60)
    settings = _settings(prefix, drop)
    broker = connect(settings)
    broker.client.delete("ingest")  # no workers here: what is sent stays queued
    first = _dispatch(settings)
    assert first.dispatched == 30
    again = _dispatch(settings)  # an overlapping sweep: every file is already with the workers
    assert again.dispatched == 0 and again.leased_elsewhere == 30
    # An in-process run with the broker configured leaves dispatched files to the workers.
    local = run_once(
        settings,
        S3Store(settings.bucket),
        open_sources(settings),
        Reporter("text", out=io.StringIO()),
        dispatched=dispatcher(settings),
    )
    assert local.total == 0 and local.leased_elsewhere == 30
    assert len(list(drop.glob("*.txt"))) == 30  # nothing taken twice, nothing taken here
    assert broker.backlog() == 30  # one task per file: no two files share an article
    broker.client.delete("ingest")


def test_watch_dispatch_feeds_the_workers_until_stopped(
    tmp_path: Path, worker_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    config = tmp_path / "ingest.yaml"
    config.write_text(f"sources:\n  - {{name: wires, location: {drop}, settle_seconds: 0}}\n")
    env = {**worker_env, "INGEST_CONFIG": str(config)}
    logs = tmp_path / "worker.log"
    worker = _worker(env, logs)
    with (tmp_path / "watch.log").open("wb") as out:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "ingest", "watch", "--dispatch", "--interval", "0.3", "--log-format", "json"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for n in range(5):
            _write(drop / f"w-{n}.txt", f"Watched {n}\n\nArrived while watching.\n", time.time() - 60)
        deadline = time.time() + 90
        while len(list((drop / "processed").rglob("*.txt"))) < 5 and time.time() < deadline:
            time.sleep(0.2)
        assert len(list((drop / "processed").rglob("*.txt"))) == 5, logs.read_text()[-2000:]
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=60)
        _kill(worker, signal.SIGTERM)
    assert watcher.returncode == 0, (tmp_path / "watch.log").read_text()[-2000:]
    for n in range(5):
        assert store.get(Keys(prefix, f"w-{n}").latest) is not None


def test_a_stale_redelivery_leaves_a_newer_sends_marks_alone(
    tmp_path: Path, local_redis: devredis.LocalRedis, prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "story.txt"
    _write(path, "First telling\n\nThe first file of this name.\n", time.time() - 60)
    settings = _settings(prefix, drop)
    info = path.stat()
    listed = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    old = job_for(
        settings.sources[0],
        Candidate(str(path), path.name, info.st_size, str(path), listed=listed),
        settings,
        run=None,
        token="old",
    )
    state = _WorkerState(settings=settings)
    broker = state.redis()
    assert take_job(old, state)[0].outcome == "created"
    # A newer file of the same name was sent by a later sweep (its mark holds that send's token) ...
    newer = old.model_copy(update={"token": "newer", "articles": ["ingest:article:test-newer"]})
    assert broker.mark([newer], newer.articles, "newer") == [True]
    # ... when the broker hands the first task out again: it finds its file gone and must not free the new one.
    assert take_job(old, state) == []
    assert broker.taken([newer.mark]) == [True]
    assert broker.in_flight(newer.articles) == set(newer.articles)
    broker.clear([newer.mark, *newer.articles])


def test_a_backfill_file_that_keeps_stopping_its_worker_is_recorded_not_moved(
    tmp_path: Path, local_redis: devredis.LocalRedis, prefix: str, store: S3Store
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    path = archive / "old.txt"
    _write(path, "Old story\n\nFrom the archive.\n", time.time() - 600)
    settings = _settings(prefix, archive, max_deliveries=1)
    info = path.stat()
    listed = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    candidate = Candidate(str(path), path.name, info.st_size, str(path), listed=listed)
    job = job_for(settings.sources[0], candidate, settings, run=None, backfill="archive")
    state = _WorkerState(settings=settings)
    broker = state.redis()
    broker.client.set(job.tries, 1)
    [record] = take_job(job, state)
    assert record.error is not None and record.error["check"] == "worker-lost"
    assert path.exists() and not (archive / "failed").exists()  # an archive is never moved
    kept = list(store.list_keys(f"{prefix}backfills/archive/failed/"))
    assert len(kept) == 1


def test_a_thread_pool_worker_stores_each_file_once_in_its_own_feed_objects(
    tmp_path: Path, worker_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for n in range(60):
        _write(drop / f"t-{n:02d}.txt", f"Threaded {n}\n\nStored by one of many threads.\n", time.time() - 60)
    logs = tmp_path / "worker.log"
    worker = _worker(worker_env, logs, "--pool", "threads", "--concurrency", "8")
    try:
        settings = _settings(prefix, drop)
        _dispatch(settings)
        deadline = time.time() + 90
        while list(drop.glob("*.txt")) and time.time() < deadline:
            time.sleep(0.2)
    finally:
        _kill(worker, signal.SIGTERM)
    assert not list(drop.glob("*.txt")), logs.read_text()[-2000:]
    feed = read_feed(store, prefix)
    # Threads never share a committer: no changes object overwrote another, so every version is listed once.
    assert sorted(e.id for e in feed) == [f"t-{n:02d}" for n in range(60)]
