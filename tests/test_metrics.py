"""Prometheus metrics (``ingest.metrics``): names and labels as the contract says, read back the way Prometheus
reads them (``prometheus_client.parser``); the retry hook; gauges at scrape time; serving; multiprocess sums."""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from ingest import devredis, metrics
from ingest.api import dispatcher, open_sources
from ingest.metrics import Metrics, SourceGauges, Totals
from ingest.report import FileRecord, Reporter
from ingest.retry import policy
from ingest.runner import run_once
from ingest.settings import SourceSettings, load_settings
from ingest.stores.s3 import S3Store
from tests.conftest import BUCKET

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(m: Metrics) -> Samples:
    body, _ = m.exposition()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _record(source: str, outcome: str, path: str = "in/story.txt", check: str | None = None) -> FileRecord:
    error: dict[str, str | None] | None = None if check is None else {"check": check, "message": "no"}
    return FileRecord(source=source, path=path, outcome=outcome, error=error, id="art-1", key="p/articles/art-1/1.json")


def test_files_are_counted_by_source_and_outcome_and_errors_by_check() -> None:
    m = Metrics()
    m.files([_record("wires", "created"), _record("wires", "created"), _record("desk", "unchanged")])
    m.files([_record("wires", "failed", check="parse"), _record("wires", "failed", check="storage")])
    m.files([FileRecord(source="desk", path="x", outcome="failed", error={"message": "no check"})])
    got = _samples(m)
    assert _value(got, "ingest_files_total", source="wires", outcome="created") == 2
    # storage trouble leaves the file for a later run: not settled, so not a failed file (an error all the same)
    assert _value(got, "ingest_files_total", source="wires", outcome="failed") == 1
    assert _value(got, "ingest_files_total", source="desk", outcome="unchanged") == 1
    assert _value(got, "ingest_file_errors_total", source="wires", check="parse") == 1
    assert _value(got, "ingest_file_errors_total", source="wires", check="storage") == 1
    assert _value(got, "ingest_file_errors_total", source="desk", check="unknown") == 1
    # One file per settled record, nothing counted twice; a record without an error is no error.
    assert sum(v for (name, _), v in got.items() if name == "ingest_files_total") == 5
    assert sum(v for (name, _), v in got.items() if name == "ingest_file_errors_total") == 3


def test_no_file_name_key_or_article_id_is_ever_a_label() -> None:
    m = Metrics()
    m.files([_record("wires", "failed", path="drop/secret-scoop.txt", check="parse")])
    m.storage_retry("PUT", "SlowDown")
    body, _ = m.exposition()
    for private in (b"secret-scoop", b"art-1", b"articles/"):
        assert private not in body
    labels = {k for family in text_string_to_metric_families(body.decode()) for s in family.samples for k in s.labels}
    assert labels <= {"source", "outcome", "check", "stage", "le", "operation", "reason"}


def test_every_name_is_prefixed_and_no_created_series_leaks_in() -> None:
    m = Metrics()
    m.files([_record("wires", "created")])
    m.stage("scan", 0.01)
    m.storage_retry("GET", "SlowDown")
    names = {name for name, _ in _samples(m)}
    assert all(name.startswith("ingest_") for name in names)
    assert not any(name.endswith("_created") for name in names)  # served the same way by every kind of Metrics


def test_a_stage_is_observed_in_buckets_from_milliseconds_to_a_minute() -> None:
    m = Metrics()
    m.stage("scan", 0.003)
    m.stage("store", 42.0)
    got = _samples(m)
    bucket = "ingest_stage_duration_seconds_bucket"
    assert _value(got, bucket, stage="scan", le="0.0025") == 0
    assert _value(got, bucket, stage="scan", le="0.005") == 1
    assert _value(got, bucket, stage="store", le="30.0") == 0
    assert _value(got, bucket, stage="store", le="60.0") == 1
    assert _value(got, "ingest_stage_duration_seconds_count", stage="scan") == 1
    assert _value(got, "ingest_stage_duration_seconds_sum", stage="store") == 42.0
    with pytest.raises(ValueError, match="unknown stage"):
        m.stage("in/story.txt", 1.0)  # a typo, or worse a file name, would be an unbounded label


def _retries(**labels: str) -> float:
    return _value(_samples(metrics.process()), "ingest_storage_retries_total", **labels)


def test_each_retry_of_a_storage_request_counts_by_operation_and_reason() -> None:
    before = _retries(operation="PUT", reason="ConnectionResetError")
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError("peer hung up")
        return "stored"

    retrying = policy(5, 60, lambda exc: isinstance(exc, OSError), "PUT p/articles/a/1.json", sleep=lambda s: None)
    assert retrying(flaky) == "stored"
    assert _retries(operation="PUT", reason="ConnectionResetError") == before + 2
    assert b"p/articles" not in metrics.process().exposition()[0]


def test_webhook_retries_are_not_storage_retries() -> None:
    before = _retries(operation="POST", reason="ConnectionResetError")
    retrying = policy(3, 60, lambda exc: True, "POST webhook cms a v1", sleep=lambda s: None, storage=False)
    with pytest.raises(ConnectionResetError):
        retrying(lambda: (_ for _ in ()).throw(ConnectionResetError("no")))
    assert _retries(operation="POST", reason="ConnectionResetError") == before


class _SlowOnce:
    """An S3 client whose first GET is throttled."""

    def __init__(self) -> None:
        self.calls = 0

    def get_object(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        code, status = ("SlowDown", 503) if self.calls == 1 else ("NoSuchKey", 404)
        reply: Any = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        raise ClientError(reply, "GetObject")


def test_the_s3_store_labels_a_retry_with_the_s3_error_code() -> None:
    before = _retries(operation="GET", reason="SlowDown")
    client = _SlowOnce()
    store = S3Store("bucket", attempts=3, max_seconds=10, client=client)  # type: ignore[arg-type]
    assert store.get("p/articles/a/latest.json") is None
    assert client.calls == 2
    assert _retries(operation="GET", reason="SlowDown") == before + 1


def test_source_gauges_leave_out_what_is_not_known() -> None:
    m = Metrics()
    m.watch_sources(
        lambda: [
            SourceGauges("wires", 1_700_000_000.0, 1_700_000_100.0, 3, 12.5, quiet=True, failed_files=2),
            SourceGauges("desk", None, 1_700_000_200.0, 0, None),
        ]
    )
    got = _samples(m)
    assert _value(got, "ingest_source_last_item_timestamp_seconds", source="wires") == 1_700_000_000.0
    assert _value(got, "ingest_source_last_success_timestamp_seconds", source="desk") == 1_700_000_200.0
    assert _value(got, "ingest_source_backlog_files", source="wires") == 3
    assert _value(got, "ingest_source_backlog_files", source="desk") == 0
    assert _value(got, "ingest_source_oldest_file_age_seconds", source="wires") == 12.5
    assert _value(got, "ingest_source_quiet", source="wires") == 1
    assert _value(got, "ingest_source_failed_files", source="wires") == 2
    desk = {name for name, labels in got if ("source", "desk") in labels}
    assert desk == {"ingest_source_last_success_timestamp_seconds", "ingest_source_backlog_files"}


def test_a_failing_look_at_the_sources_does_not_break_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics()
    m.files([_record("wires", "created")])

    def broken() -> list[SourceGauges]:
        raise OSError("inbox unreachable")

    m.watch_sources(broken)
    unwatch = m.watch_sources(lambda: [SourceGauges("desk", None, None, 4, None)])
    with caplog.at_level(logging.WARNING, logger="ingest.metrics"):
        got = _samples(m)
    assert "inbox unreachable" in caplog.text
    assert _value(got, "ingest_files_total", source="wires", outcome="created") == 1
    assert _value(got, "ingest_source_backlog_files", source="desk") == 4
    unwatch()
    assert not [name for name, _ in _samples(m) if name.startswith("ingest_source_")]


def test_stored_totals_are_served_as_the_file_counters() -> None:
    totals = Totals(files={"wires": {"created": 7, "failed": 2}}, errors={"wires": {"parse": 2}})
    m = Metrics(totals=lambda: totals)
    got = _samples(m)
    assert _value(got, "ingest_files_total", source="wires", outcome="created") == 7
    assert _value(got, "ingest_file_errors_total", source="wires", check="parse") == 2
    families = {f.name: f.type for f in text_string_to_metric_families(m.exposition()[0].decode())}
    assert families["ingest_files"] == families["ingest_file_errors"] == "counter"
    with pytest.raises(TypeError, match="stored totals"):
        m.files([_record("wires", "created")])


def test_stored_totals_that_cannot_be_read_leave_the_rest_of_the_scrape() -> None:
    def unreadable() -> Totals:
        raise OSError("storage down")

    m = Metrics(totals=unreadable)
    m.watch_sources(lambda: [SourceGauges("wires", None, None, 1, None)])
    got = _samples(m)
    assert not [name for name, _ in got if name.startswith("ingest_file")]
    assert _value(got, "ingest_source_backlog_files", source="wires") == 1


def test_exposition_speaks_the_text_format_or_openmetrics_when_asked() -> None:
    m = Metrics()
    m.files([_record("wires", "created")])
    body, content_type = m.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert b'ingest_files_total{outcome="created",source="wires"} 1.0' in body
    body, content_type = m.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_serve_http_answers_metrics_on_a_free_port() -> None:
    m = Metrics()
    m.files([_record("wires", "stored")])
    serving = metrics.serve_http(m, "127.0.0.1", 0)
    try:
        assert serving.port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{serving.port}/metrics", timeout=5) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("text/plain")
            body = reply.read()
    finally:
        serving.close()
    assert b'ingest_files_total{outcome="stored",source="wires"} 1.0' in body


def test_a_port_in_use_is_a_config_error() -> None:
    from ingest.errors import ConfigError

    serving = metrics.serve_http(Metrics(), "127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="cannot serve metrics"):
            metrics.serve_http(Metrics(), "127.0.0.1", serving.port)
    finally:
        serving.close()


def _child_counts(n: int) -> None:
    """In a forked child, as in a Celery pool process: count, then say it is exiting."""
    metrics.process().files([_record("wires", "created")] * n)
    metrics.process().stage("task", 0.02)
    metrics.process_ended(os.getpid())


def test_multiprocess_mode_serves_the_sum_of_forked_children() -> None:
    before = metrics.process()
    value_class = values.ValueClass
    with metrics.multiprocess() as counted:
        directory = Path(counted.multiprocess_dir or "")
        assert metrics.process() is counted
        counted.files([_record("wires", "created")])  # the parent counts too, e.g. a sweep under --beat
        fork = multiprocessing.get_context("fork")  # what Celery's prefork pool does
        children = [fork.Process(target=_child_counts, args=(n,)) for n in (2, 3)]
        for child in children:
            child.start()
        for child in children:
            child.join(timeout=30)
            assert child.exitcode == 0
        got = _samples(counted)
        assert _value(got, "ingest_files_total", source="wires", outcome="created") == 6
        assert _value(got, "ingest_stage_duration_seconds_count", stage="task") == 2
        serving = metrics.serve_http(counted, "127.0.0.1", 0)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{serving.port}/metrics", timeout=5) as reply:
                assert b'ingest_files_total{outcome="created",source="wires"} 6.0' in reply.read()
        finally:
            serving.close()
    assert not directory.exists()
    assert metrics.process() is before and values.ValueClass is value_class


#: ``ingest worker`` with ``--metrics-port``, until the CLI flag reaches ``engine.worker_main``.
_WORKER = (
    "import sys\n"
    "from ingest.engine import worker_main\n"
    "from ingest.settings import load_settings\n"
    "sys.exit(worker_main(load_settings(), concurrency=2, beat=False, loglevel='WARNING',"
    " metrics_port=int(sys.argv[1])))\n"
)


@pytest.mark.s3
@pytest.mark.redis
def test_a_prefork_worker_serves_the_counts_of_its_pool_processes(
    tmp_path: Path, local_s3: object, local_redis: devredis.LocalRedis, prefix: str
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for n in range(4):
        (drop / f"m-{n}.txt").write_text(f"Counted {n}\n\nBy a pool process.\n")
        os.utime(drop / f"m-{n}.txt", (time.time() - 60, time.time() - 60))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "PROMETHEUS_"))}
    env.update({"INGEST_BUCKET": BUCKET, "INGEST_PREFIX": prefix, "INGEST_BROKER_URL": local_redis.url})
    temp = tmp_path / "tmp"  # where the worker keeps its pool's counts
    temp.mkdir()
    env["TMPDIR"] = str(temp)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        settings = load_settings({"bucket": BUCKET, "prefix": prefix}, env={"INGEST_BROKER_URL": local_redis.url})
        source = SourceSettings(name="wires", location=str(drop), settle_seconds=0)
        settings = settings.model_copy(update={"sources": [source]})
        run_once(
            settings,
            S3Store(settings.bucket),
            open_sources(settings),
            Reporter("text", out=io.StringIO()),
            dispatcher=dispatcher(settings),
        )
        deadline = time.time() + 60
        got: Samples = {}
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                    body = reply.read().decode()
            except OSError:
                body = ""
            got = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(body)
                for s in family.samples
            }
            if _value(got, "ingest_stage_duration_seconds_count", stage="task") >= 4:
                break
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert _value(got, "ingest_files_total", source="wires", outcome="created") == 4, log.read_text()[-2000:]
    assert _value(got, "ingest_stage_duration_seconds_count", stage="task") == 4
    assert not list(temp.iterdir())  # the counts' directory went with the worker
