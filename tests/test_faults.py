"""Storage faults, process kills and credentials, against the real SeaweedFS (through our fault proxy)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from ingest.errors import StoreDenied
from ingest.keys import Keys
from ingest.models import Document
from ingest.settings import Settings
from ingest.stores.s3 import S3Store
from tests.conftest import BUCKET, RequestCounter, cli, read_feed, stored_versions
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.s3

ARTICLES = 150


def test_a_quarter_of_requests_faulted_still_lands_every_article_exactly_once(
    tmp_path: Path, cli_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    # The CLI as cron runs it, in its own process (its worker processes' log lines included), with the
    # shipped retry policy (defaults only: not config/ingest.yaml), through the proxy.
    proxy = FaultProxy(cli_env["AWS_ENDPOINT_URL"], rate=0.25, seed=7, slow_seconds=0.03)
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("")
    env = {**cli_env, "AWS_ENDPOINT_URL": proxy.url, "INGEST_CONFIG": str(defaults), "INGEST_BATCH_SIZE": "50"}
    drop = tmp_path / "drop"
    drop.mkdir()
    for n in range(ARTICLES):
        path = drop / f"wire-{n:03d}.txt"
        path.write_text(f"Wire story {n}\n\nFirst paragraph of {n}.\n\nREAD MORE Other story\n\nLast paragraph.\n")
        os.utime(path, (time.time() - 60, time.time() - 60))
    names = sorted(p.name for p in drop.iterdir())

    first = _ingest("run", "--source", str(drop), "--log-format", "text", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _lines(first.stdout, "created") == names  # a line per file, each stored
    processed = sorted((drop / "processed").rglob("*.txt"))
    assert [p.name for p in processed] == names and not list(drop.glob("*.txt"))
    injected = {k: v for k, v in proxy.stats.items() if k != "ok"}
    assert set(injected) == {"slowdown", "error500", "drop", "lost", "slow"}, proxy.stats
    assert sum(proxy.stats.values()) > 4 * ARTICLES
    retries = [line for line in first.stderr.splitlines() if "retrying " in line]
    assert len(retries) >= injected["slowdown"] + injected["error500"]  # one log line per retry

    again = _ingest("file", *map(str, processed), env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _lines(again.stdout, "unchanged") == names

    fixed = processed[::10]
    for path in fixed:
        path.write_text(path.read_text().replace("Last paragraph.", "Last paragraph, corrected."))
    corrected = _ingest("file", "--note", "Fixed the last paragraph", "--editor", "Desk", *map(str, fixed), env=env)
    assert corrected.returncode == 0, corrected.stderr[-3000:]
    assert _lines(corrected.stdout, "updated") == [p.name for p in fixed]
    assert all(line.endswith("/v2.json") for line in corrected.stdout.splitlines())
    proxy.close()

    for path in processed:  # read back directly, not through the proxy
        keys = Keys(prefix, path.stem)
        expected = [1, 2] if path in fixed else [1]
        assert [d.version for d in stored_versions(store, keys)] == expected, path.name
        latest = store.get(keys.latest)
        assert latest is not None and latest == store.get(keys.version(expected[-1]))
        assert store.get(keys.raw(expected[-1], ".txt")) is not None
    pairs = {(e.id, e.version) for e in read_feed(store, prefix)}
    assert pairs == {(p.stem, 1) for p in processed} | {(p.stem, 2) for p in fixed}


def _ingest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingest", *args], env=env, capture_output=True, text=True, timeout=600)


def _lines(stdout: str, outcome: str) -> list[str]:
    """The file names of the ``<outcome>  <path> -> <key>`` lines, sorted; any other file line fails."""
    names = []
    for line in stdout.splitlines():
        if line.startswith(("run ", "note: ")):  # the run's summary, and what it used
            continue
        word, path, arrow, _key = line.split()
        assert (word, arrow) == (outcome, "->"), line
        names.append(Path(path).name)
    return sorted(names)


def test_permanent_errors_are_not_retried(settings: Settings, local_s3: object) -> None:
    wrong = boto3.session.Session().client(
        "s3",
        aws_access_key_id="nobody",
        aws_secret_access_key="wrong-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    store = S3Store(BUCKET, attempts=6, max_seconds=30, client=wrong)
    counter = RequestCounter(store)
    with pytest.raises(StoreDenied, match="access denied") as err:
        store.get(f"{settings.prefix}articles/x/latest.json")
    assert err.value.status == 403
    assert counter.total == 1
    missing = S3Store("no-such-bucket-here", attempts=6, max_seconds=30)
    counter = RequestCounter(missing)
    with pytest.raises(StoreDenied, match="does not exist"):
        missing.get("x")
    assert counter.total == 1


def test_storage_down_for_the_whole_run_exits_2_and_leaves_inputs(tmp_path: Path, cli_env: dict[str, str]) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for n in range(3):
        (drop / f"s{n}.txt").write_text(f"Story {n}\n\nBody {n}.\n")
        os.utime(drop / f"s{n}.txt", (time.time() - 60, time.time() - 60))
    proxy = FaultProxy(cli_env["AWS_ENDPOINT_URL"])
    proxy.down = True
    env = {**cli_env, "AWS_ENDPOINT_URL": proxy.url, "INGEST_RETRY_ATTEMPTS": "3", "INGEST_RETRY_MAX_SECONDS": "3"}
    down = cli("run", "--source", str(drop), "--log-format", "text", env=env)
    assert down.returncode == 2
    assert down.stderr.splitlines()[-1].startswith("error: ")
    assert "Traceback" not in down.stderr
    assert sorted(p.name for p in drop.iterdir()) == ["s0.txt", "s1.txt", "s2.txt"]
    proxy.close()
    up = cli("run", "--source", str(drop), "--log-format", "text", env=cli_env)
    assert up.returncode == 0, up.stderr
    assert "3 created" in up.stdout


def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    tmp_path: Path, cli_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    count = 300
    for n in range(count):
        (drop / f"k{n:03d}.txt").write_text(f"Killed story {n}\n\nBody of {n}.\n\nREAD MORE Other\n")
    old = time.time() - 60
    for path in drop.iterdir():
        os.utime(path, (old, old))
    env = {**cli_env, "INGEST_BATCH_SIZE": "20", "INGEST_LEASE_SECONDS": "0.3"}
    rng = random.Random(3)
    kills = 0
    for _ in range(4):
        # Kill at a random point of progress (after 1-40 more files were moved), not at a random time:
        # on a slow machine a timer may fire before the run has done anything, or after it is done.
        target = _moved(drop) + rng.randint(1, 40)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", "run", "--source", str(drop), "--log-format", "json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and _moved(drop) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        time.sleep(0.35)  # a real process died holding real leases: let them expire (lease_seconds 0.3)
    final = cli("run", "--source", str(drop), "--log-format", "json", env=env)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills == 4
    assert sorted(p.name for p in drop.iterdir()) == ["processed"]  # no input left behind
    moved = sorted(p.name for p in (drop / "processed").rglob("*") if p.is_file())
    assert moved == [f"k{n:03d}.txt" for n in range(count)]  # each exactly once, none half-moved or renamed
    pairs = {(e.id, e.version) for e in read_feed(store, prefix)}
    for n in range(count):
        keys = Keys(prefix, f"k{n:03d}")
        assert [d.version for d in stored_versions(store, keys)] == [1]
        latest = store.get(keys.latest)
        assert latest is not None and Document.model_validate_json(latest.body).version == 1
        assert (f"k{n:03d}", 1) in pairs  # the changes feed is complete


def test_credentials_never_appear_in_output_reports_or_documents(
    tmp_path: Path, cli_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "good.txt").write_text("Story\n\nBody.\n")
    (drop / "bad.txt").write_bytes(b"\x00")
    for path in drop.iterdir():
        os.utime(path, (time.time() - 60, time.time() - 60))
    secret, key_id = cli_env["AWS_SECRET_ACCESS_KEY"], cli_env["AWS_ACCESS_KEY_ID"]
    outputs = []
    for args in (
        ["run", "--source", str(drop), "--debug", "--log-format", "json"],
        ["file", "--debug", str(tmp_path / "missing.txt")],
        ["show", "good", "--debug"],
    ):
        done = cli(*args, env=cli_env)
        outputs += [done.stdout, done.stderr]
    assert "botocore" in "".join(outputs)  # --debug really logged the requests
    stored = [store.get(k) for k in store.list_keys(prefix)]
    texts = outputs + [s.body.decode("utf-8", "replace") for s in stored if s is not None]
    texts += [p.read_text() for p in drop.rglob("*.json")]
    for text in texts:
        assert secret not in text
        assert key_id not in text
    assert any(json.loads(t).get("run_id") for t in texts if t.startswith('{\n  "run_id"'))


def _moved(drop: Path) -> int:
    processed = drop / "processed"
    return sum(1 for p in processed.rglob("*.txt")) if processed.exists() else 0
