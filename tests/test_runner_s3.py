"""Sweeps where the real S3 server or real processes are the point: overlapping runs, an outage mid-run,
and ``ingest watch`` stopping on SIGTERM. Everything else about sweeps is in ``test_runner.py``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.api import open_sources
from ingest.clock import utcnow
from ingest.errors import StoreError
from ingest.keys import Keys
from ingest.report import Reporter, RunReport
from ingest.runner import run_once
from ingest.settings import Settings, SourceSettings, load_settings
from ingest.stores.s3 import S3Store
from tests.conftest import BUCKET, EXAMPLES, cli
from tests.faultproxy import FaultProxy, proxied_client
from tests.test_runner import fill

pytestmark = pytest.mark.s3


def _ingest(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_overlapping_runs_never_take_a_file_twice_however_they_name_the_source(
    tmp_path: Path, cli_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    fill(drop, 40, now=datetime.now(UTC))
    config = tmp_path / "ingest.yaml"
    config.write_text(f"sources:\n  - {{name: wires, location: {drop}}}\n")
    env = {**cli_env, "INGEST_BATCH_SIZE": "5", "INGEST_CONFIG": str(config)}
    # The configured source, the same folder by path, and by its name: one lease per file all the same.
    spellings = (["run"], ["run", "--source", str(drop) + "/"], ["run", "--source", "wires"])
    runs = [_ingest(*args, "--log-format", "json", env=env) for args in spellings]
    outputs = [proc.communicate(timeout=180) for proc in runs]
    assert [proc.returncode for proc in runs] == [0, 0, 0], outputs
    events = [json.loads(line) for _, err in outputs for line in err.splitlines() if '"event": "file"' in line]
    taken = [e["path"] for e in events]
    assert sorted(taken) == sorted(str(drop / f"story-{n:03d}.txt") for n in range(40))  # each exactly once
    assert {e["outcome"] for e in events} == {"created"}
    assert len([p.name for p in (drop / "processed").rglob("*.txt")]) == 40
    for n in (0, 17, 39):
        assert store.get(Keys(prefix, f"story-{n:03d}").version(2)) is None


def test_an_idle_run_and_a_run_with_a_bad_source_store_their_reports(
    tmp_path: Path, cli_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    idle = cli("run", "--source", str(empty), "--log-format", "text", env=cli_env)
    assert idle.returncode == 0 and "0 files" in idle.stdout
    bad = cli("run", "--source", str(tmp_path / "typo"), "--source", str(empty), "--log-format", "text", env=cli_env)
    assert bad.returncode == 2 and bad.stderr.splitlines()[-1].startswith("error: 1 source(s) could not be swept")
    reports = [RunReport.model_validate_json(store.get(k).body) for k in store.list_keys(f"{prefix}runs/")]  # type: ignore[union-attr]
    assert sorted((r.error is None, tuple(r.source_errors)) for r in reports) == [(False, ("typo",)), (True, ())]


class OutageProxy(FaultProxy):
    """Storage goes away after ``after`` requests."""

    def __init__(self, upstream: str, after: int) -> None:
        super().__init__(upstream)
        self.after = after

    def _pick(self, head: bytes = b"") -> str | None:
        with self._lock:
            if sum(self.stats.values()) >= self.after:
                self.down = True
        return super()._pick(head)


def _sweep(settings: Settings, store: S3Store, drop: Path, at: datetime | None = None) -> RunReport:
    """One run over ``drop``, its clock stopped at ``at`` (default: the real clock)."""
    settings = settings.model_copy(update={"sources": [SourceSettings(name="drop", location=str(drop))]})
    clock = (lambda: at) if at is not None else utcnow
    return run_once(settings, store, open_sources(settings), Reporter("text", out=io.StringIO()), clock=clock)


def test_storage_outage_mid_run_moves_nothing_and_the_next_run_completes(
    tmp_path: Path, local_s3: object, prefix: str
) -> None:
    drop = tmp_path / "drop"
    fill(drop, 10, now=datetime.now(UTC))
    proxy = OutageProxy(os.environ["AWS_ENDPOINT_URL"], after=25)
    settings = load_settings({"bucket": BUCKET, "prefix": prefix, "lease_seconds": 60, "batch_size": 50}, env={})
    broken = S3Store(settings.bucket, attempts=2, max_seconds=2, client=proxied_client(proxy))
    now = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(StoreError, match="unreachable"):
        _sweep(settings, broken, drop, now)
    assert len(list(drop.glob("*.txt"))) == 10  # nothing moved
    assert not (drop / "processed").exists()
    proxy.close()
    healthy = S3Store(settings.bucket, attempts=3, max_seconds=10)
    assert _sweep(settings, healthy, drop, now).leased_elsewhere > 0  # the dead run's leases still hold
    report = _sweep(settings, healthy, drop, now + timedelta(seconds=61))  # and then expire
    # Versions the dead run wrote are adopted ("created"); any whose latest it also moved are "unchanged".
    assert len(report.files) == 10
    assert {f.outcome for f in report.files} <= {"created", "unchanged"}
    assert len(list((drop / "processed").rglob("*.txt"))) == 10
    for n in range(10):
        assert healthy.get(Keys(prefix, f"story-{n:03d}").version(2)) is None
        assert healthy.get(Keys(prefix, f"story-{n:03d}").latest) is not None


def test_run_exit_codes_and_watch_stops_cleanly_on_sigterm(tmp_path: Path, cli_env: dict[str, str]) -> None:
    drop = tmp_path / "drop"
    fill(drop, 2, now=datetime.now(UTC))
    (drop / "bad.txt").write_bytes(b"\x00")
    os.utime(drop / "bad.txt", (time.time() - 60, time.time() - 60))
    run = cli("run", "--source", str(drop), "--log-format", "text", env=cli_env)
    assert run.returncode == 1, run.stderr
    assert "2 created" in run.stdout and "1 failed" in run.stdout
    watcher = _ingest("watch", "--source", str(drop), "--interval", "0.2", "--log-format", "json", env=cli_env)
    try:
        example = next(EXAMPLES.glob("*.txt"))
        (drop / example.name).write_bytes(example.read_bytes())
        os.utime(drop / example.name, (time.time() - 60, time.time() - 60))
        deadline = time.time() + 60
        while not list((drop / "processed").rglob(example.name)) and time.time() < deadline:
            time.sleep(0.1)
        assert list((drop / "processed").rglob(example.name))
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "SIGTERM" in err
    assert "Traceback" not in err


def test_watch_reloads_its_config_on_sighup_and_keeps_the_old_one_when_the_new_does_not_load(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    config = tmp_path / "ingest.yaml"

    def configure(*folders: Path) -> None:
        sources = "".join(f"  - {{name: {f.name}, location: {f}, settle_seconds: 0}}\n" for f in folders)
        config.write_text(f"poll_seconds: 0.2\nsources:\n{sources}")

    def arrives(folder: Path, name: str) -> None:
        (folder / name).write_text(f"{name} headline\n\nIts body.\n")
        deadline = time.time() + 60
        while not list((folder / "processed").rglob(name)) and time.time() < deadline:
            time.sleep(0.05)
        assert list((folder / "processed").rglob(name)), f"{name} not taken from {folder}"

    def logged(text: str) -> None:
        deadline = time.time() + 60
        while text not in err.read_text() and time.time() < deadline:
            time.sleep(0.05)
        assert text in err.read_text()

    configure(first)
    err = tmp_path / "watch.err"
    env = {**cli_env, "INGEST_CONFIG": str(config)}
    with err.open("w") as stderr:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "ingest", "watch", "--log-format", "json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        arrives(first, "one.txt")
        config.write_text("sources: [\n")  # a broken edit: the watch goes on with what it had
        watcher.send_signal(signal.SIGHUP)
        logged("config not reloaded, still watching as before")
        arrives(first, "two.txt")
        configure(first, second)
        watcher.send_signal(signal.SIGHUP)
        logged("config reloaded")
        arrives(second, "three.txt")  # a source only the new config has
        assert watcher.poll() is None  # SIGHUP never stopped it
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=60)
    assert watcher.returncode == 0, err.read_text()
    events = [json.loads(line) for line in err.read_text().splitlines()]  # JSON logs: every line
    [kept] = [e for e in events if e["message"].startswith("config not reloaded")]
    assert kept["level"] == "error" and f"{config}: not valid YAML" in kept["message"]
    [reloaded] = [e for e in events if e["message"].startswith("config reloaded")]
    assert f"config {config}" in reloaded["message"]
    assert f"watching {first}, {second} every 0.2 s" in reloaded["message"]


class LostRenewal(FaultProxy):
    """Loses the reply to the first lease renewal (a conditional PUT under locks/): the store applies it,
    the client never hears, and its retry then loses the condition to its own write."""

    lost = False

    def _pick(self, head: bytes = b"") -> str | None:
        line, _, headers = head.partition(b"\r\n")
        renewal = line.startswith(b"PUT ") and b"/locks/" in line and b"\r\nif-match:" in b"\r\n" + headers.lower()
        with self._lock:
            if renewal and not self.lost:
                self.lost = True
                return "lost"
        return super()._pick(head)


def test_a_lost_reply_to_a_lease_renewal_keeps_the_lease_and_the_file_moves(
    tmp_path: Path, local_s3: object, prefix: str
) -> None:
    drop = tmp_path / "drop"
    fill(drop, 3, now=datetime.now(UTC))
    proxy = LostRenewal(os.environ["AWS_ENDPOINT_URL"])
    settings = load_settings({"bucket": BUCKET, "prefix": prefix}, env={})
    store = S3Store(settings.bucket, attempts=3, max_seconds=10, client=proxied_client(proxy, read_timeout=2))
    # A clock a minute on at every reading: every group is past half its lease when the batch moves (so it is
    # renewed), and a renewal writes other bytes than the acquire.
    ticks = iter(range(10_000))
    start = datetime.now(UTC)
    clocked = settings.model_copy(update={"sources": [SourceSettings(name="drop", location=str(drop))]})
    report = run_once(
        clocked,
        store,
        open_sources(clocked),
        Reporter("text", out=io.StringIO()),
        clock=lambda: start + timedelta(minutes=next(ticks)),
    )
    proxy.close()
    assert proxy.lost and proxy.stats["lost"] == 1  # the reply really was lost
    assert [(f.outcome, f.message) for f in report.files] == [("created", None)] * 3  # none "taken over"
    assert len(list((drop / "processed").rglob("*.txt"))) == 3
    healthy = S3Store(settings.bucket, attempts=3, max_seconds=10)
    assert list(healthy.list_keys(f"{prefix}locks/")) == []  # released with the ETag of our own write


#: Scraped samples by (name, sorted labels).
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> Samples:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape_until(port: int, wanted: Samples, seconds: float = 60) -> Samples:
    """Scrape until every sample in ``wanted`` has its value (the gauges are looked at again at most every 5 s,
    and a sweep records its state after its files are counted); the last scrape."""
    deadline, seen = time.time() + seconds, Samples()
    while time.time() < deadline:
        try:
            seen = _scrape(port)
        except OSError:
            seen = {}  # not listening yet
        if all(seen.get(name) == value for name, value in wanted.items()):
            break
        time.sleep(0.25)
    return seen


def test_watch_serves_metrics_that_change_as_files_arrive(tmp_path: Path, cli_env: dict[str, str]) -> None:
    drop = tmp_path / "drop"
    fill(drop, 2, now=datetime.now(UTC))
    port = _free_port()
    watcher = _ingest(
        "watch", "--source", str(drop), "--interval", "0.2", "--metrics-port", str(port), "--metrics-host",
        "127.0.0.1", "--log-format", "json", env=cli_env,
    )  # fmt: skip
    src = (("source", "drop"),)
    created = ("ingest_files_total", (("outcome", "created"), ("source", "drop")))
    failed = ("ingest_files_total", (("outcome", "failed"), ("source", "drop")))
    refused = ("ingest_file_errors_total", (("check", "headline"), ("source", "drop")))
    try:
        seen = _scrape_until(port, {created: 2, ("ingest_source_backlog_files", src): 0})
        assert seen.get(created) == 2 and seen.get(("ingest_source_backlog_files", src)) == 0
        assert seen[("ingest_stage_duration_seconds_count", (("stage", "store"),))] >= 1
        assert failed not in seen and refused not in seen
        (drop / "bad.txt").write_bytes(b"")
        os.utime(drop / "bad.txt", (time.time() - 60, time.time() - 60))
        seen = _scrape_until(port, {refused: 1, failed: 1, ("ingest_source_failed_files", src): 1})
        assert seen.get(refused) == 1 and seen.get(failed) == 1 and seen[created] == 2
        assert seen.get(("ingest_source_failed_files", src)) == 1
        assert seen.get(("ingest_source_last_success_timestamp_seconds", src), 0) > time.time() - 300
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 1, err  # a file was refused during the watch
    assert "Traceback" not in err
