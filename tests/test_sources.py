"""Drop folders, S3 inboxes, runs and watch, with real folders and the real SeaweedFS."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.errors import StoreError
from ingest.models import Document
from ingest.report import Reporter, RunReport
from ingest.runner import run_once
from ingest.settings import Settings, SourceSettings, load_settings
from ingest.sources import Candidate, open_source
from ingest.stores.s3 import S3Store
from ingest.versioning import Keys
from tests.conftest import BUCKET, EXAMPLES, run_cli
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.s3


def story(n: int) -> str:
    return f"Story {n}\n\nParagraph of story {n}.\n\nREAD MORE Another story\n"


def fill(folder: Path, count: int, age: float = 60.0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"story-{n:03d}.txt"
        path.write_text(story(n))
        os.utime(path, (time.time() - age, time.time() - age))
        paths.append(path)
    return paths


def sweep(settings: Settings, store: S3Store, location: Path | str, **source: object) -> RunReport:
    conf = SourceSettings(name="drop", location=str(location), **source)  # type: ignore[arg-type]
    settings = settings.model_copy(update={"sources": [conf]})
    return run_once(settings, store, [open_source(conf, 2, 5)], Reporter("text", out=io.StringIO()))


def test_folder_run_moves_stored_and_refused_files(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    drop = tmp_path / "drop"
    fill(drop, 3)
    (drop / "empty.txt").write_text("")
    (drop / ".hidden.txt").write_text(story(9))
    (drop / "upload.txt.part").write_text(story(9))
    (drop / "upload.crdownload").write_text(story(9))
    (drop / "link-out.txt").symlink_to("/etc/hostname")
    (drop / "link-in.txt").symlink_to(drop / "story-000.txt")  # inside the folder: allowed
    for p in drop.iterdir():
        os.utime(p, (time.time() - 60, time.time() - 60), follow_symlinks=False)
    report = sweep(settings, store, drop, settle_seconds=1)
    assert report.counts == {"created": 4, "failed": 2}  # link-in.txt is its own article, "link-in"
    left = sorted(p.name for p in drop.iterdir() if p.is_file() or p.is_symlink())
    assert left == [".hidden.txt", "upload.crdownload", "upload.txt.part"]  # never taken
    day = next((drop / "processed").iterdir())
    assert {p.name for p in day.iterdir()} >= {"story-000.txt", "story-001.txt", "story-002.txt"}
    error = json.loads((drop / "failed" / "empty.txt.error.json").read_text())
    assert (error["check"], error["field"]) == ("headline", "headline")
    assert "empty" in error["message"]
    assert (drop / "failed" / "link-out.txt").is_symlink()  # the link moved, its target untouched
    assert Path("/etc/hostname").exists()
    stored = store.get(f"{settings.prefix}runs/{report.run_id}.json")
    assert stored is not None
    saved = RunReport.model_validate_json(stored.body)
    assert saved.counts == report.counts
    assert set(saved.timings) == {"scan", "read_and_parse", "store", "move"}
    assert [f.error["check"] for f in saved.files if f.error] == ["headline", "refused"]


def test_a_file_still_being_written_is_left_until_it_settles(
    tmp_path: Path, settings: Settings, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "slow.txt"
    writing = threading.Event()
    writing.set()
    started = threading.Event()

    def writer() -> None:
        with path.open("w") as fh:
            fh.write("Slow Story\n\n")
            fh.flush()
            started.set()
            for n in range(25):
                fh.write(f"Paragraph {n} arrives slowly.\n\n")
                fh.flush()
                time.sleep(0.1)  # well inside settle_seconds, even on a loaded machine
        writing.clear()

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait(10)
    runs = 0
    while writing.is_set():
        report = sweep(settings, store, drop, settle_seconds=2)
        runs += 1
        assert report.files == [], "a file was taken while it was being written"
        assert report.waiting == [str(path)]
        time.sleep(0.3)
    thread.join()
    assert runs >= 3
    time.sleep(2.1)
    report = sweep(settings, store, drop, settle_seconds=2)
    assert [f.outcome for f in report.files] == ["created"]
    doc = Document.model_validate_json(store.get(Keys(settings.prefix, "slow").latest).body)  # type: ignore[union-attr]
    assert len(doc.body) == 25  # the whole file, not a prefix of it


def _ingest(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_overlapping_runs_never_take_a_file_twice(
    tmp_path: Path, cli_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    drop = tmp_path / "drop"
    fill(drop, 40)
    env = {**cli_env, "INGEST_BATCH_SIZE": "5"}
    runs = [_ingest("run", "--source", str(drop), "--log-format", "json", env=env) for _ in range(3)]
    outputs = [proc.communicate(timeout=180) for proc in runs]
    assert [proc.returncode for proc in runs] == [0, 0, 0], outputs
    events = [json.loads(line) for _, err in outputs for line in err.splitlines() if '"event": "file"' in line]
    taken = [e["path"] for e in events]
    assert sorted(taken) == sorted(str(drop / f"story-{n:03d}.txt") for n in range(40))  # each exactly once
    assert {e["outcome"] for e in events} == {"created"}
    processed = [p.name for p in (drop / "processed").rglob("*.txt")]
    assert len(processed) == 40
    for n in (0, 17, 39):
        assert store.get(Keys(prefix, f"story-{n:03d}").version(2)) is None


class OutageProxy(FaultProxy):
    """Storage goes away after ``after`` requests, and comes back when told."""

    def __init__(self, upstream: str, after: int) -> None:
        super().__init__(upstream)
        self.after = after

    def _pick(self) -> str | None:
        with self._lock:
            if sum(self.stats.values()) >= self.after:
                self.down = True
        return super()._pick()


def test_storage_outage_mid_run_moves_nothing_and_the_next_run_completes(
    tmp_path: Path, local_s3: object, prefix: str, settings: Settings
) -> None:
    drop = tmp_path / "drop"
    fill(drop, 10)
    proxy = OutageProxy(os.environ["AWS_ENDPOINT_URL"], after=25)
    settings = load_settings({"bucket": BUCKET, "prefix": prefix, "lease_seconds": 1.0, "batch_size": 50}, env={})
    broken = S3Store(settings.bucket, attempts=2, max_seconds=2, client=_client(proxy.url))
    with pytest.raises(StoreError, match="unreachable"):
        sweep(settings, broken, drop, settle_seconds=0)
    assert len(list(drop.glob("*.txt"))) == 10  # nothing moved
    assert not (drop / "processed").exists()
    proxy.close()
    time.sleep(1.1)  # leases the dead run held expire
    healthy = S3Store(settings.bucket, attempts=3, max_seconds=10)
    report = sweep(settings, healthy, drop, settle_seconds=0)
    # Versions the dead run wrote are adopted ("created"); any whose latest it also moved are "unchanged".
    assert len(report.files) == 10
    assert {f.outcome for f in report.files} <= {"created", "unchanged"}
    assert len(list((drop / "processed").rglob("*.txt"))) == 10
    for n in range(10):
        assert healthy.get(Keys(prefix, f"story-{n:03d}").version(2)) is None
        assert healthy.get(Keys(prefix, f"story-{n:03d}").latest) is not None


def _client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
    )


def test_s3_inbox_takes_objects_and_moves_them_by_prefix(settings: Settings, store: S3Store, prefix: str) -> None:
    inbox = f"{prefix}inbox/"
    for n in range(3):
        store.put(f"{inbox}story-{n}.txt", story(n).encode(), "text/plain")
    store.put(f"{inbox}broken.txt", b"\x00\x00binary", "text/plain")
    store.put(f"{inbox}.hidden.txt", story(7).encode(), "text/plain")
    report = sweep(settings, store, f"s3://{BUCKET}/{inbox}")
    assert report.counts == {"created": 3, "failed": 1}
    keys = set(store.list_keys(inbox))
    day = report.started_at.strftime("%Y-%m-%d")
    assert {f"{inbox}processed/{day}/story-{n}.txt" for n in range(3)} <= keys
    assert {f"{inbox}failed/broken.txt", f"{inbox}failed/broken.txt.error.json", f"{inbox}.hidden.txt"} <= keys
    assert f"{inbox}story-0.txt" not in keys
    error = json.loads(store.get(f"{inbox}failed/broken.txt.error.json").body)  # type: ignore[union-attr]
    assert error["check"] == "binary"
    source = open_source(SourceSettings(name="inbox", location=f"s3://{BUCKET}/{inbox}"))
    assert source.retry_failed() == ["broken.txt"]
    keys = set(store.list_keys(inbox))
    assert f"{inbox}broken.txt" in keys and f"{inbox}failed/broken.txt" not in keys


def test_retry_failed_puts_files_back_for_the_next_run(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "fixme.txt").write_text("Only a headline\n")
    os.utime(drop / "fixme.txt", (time.time() - 60, time.time() - 60))
    assert sweep(settings, store, drop, settle_seconds=0).counts == {"failed": 1}
    conf = SourceSettings(name="drop", location=str(drop))
    assert open_source(conf).retry_failed() == ["fixme.txt"]
    assert not (drop / "failed" / "fixme.txt.error.json").exists()
    (drop / "fixme.txt").write_text("Only a headline\n\nAnd now a body.\n")
    assert sweep(settings, store, drop, settle_seconds=0).counts == {"created": 1}


def test_run_command_exit_codes_and_watch_stops_cleanly(tmp_path: Path, cli_env: dict[str, str]) -> None:
    drop = tmp_path / "drop"
    fill(drop, 2)
    (drop / "bad.txt").write_bytes(b"\x00")
    os.utime(drop / "bad.txt", (time.time() - 60, time.time() - 60))
    run = run_cli("run", "--source", str(drop), "--log-format", "text", env=cli_env)
    assert run.returncode == 1, run.stderr
    assert "2 created" in run.stdout and "1 failed" in run.stdout
    watcher = _ingest("watch", "--source", str(drop), "--interval", "0.2", "--log-format", "json", env=cli_env)
    try:
        example = next(EXAMPLES.glob("*.txt"))
        (drop / example.name).write_bytes(example.read_bytes())
        os.utime(drop / example.name, (time.time() - 60, time.time() - 60))
        deadline = time.time() + 60
        while not list((drop / "processed").rglob(example.name)) and time.time() < deadline:
            time.sleep(0.2)
        assert list((drop / "processed").rglob(example.name))
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "SIGTERM" in err
    assert "Traceback" not in err


def test_an_s3_inbox_overlapping_the_document_store_is_refused(settings: Settings) -> None:
    from ingest.errors import ConfigError
    from ingest.runner import open_sources

    for location in (f"s3://{BUCKET}/", f"s3://{BUCKET}/{settings.prefix}", f"s3://{BUCKET}/{settings.prefix}raw/"):
        bad = settings.model_copy(update={"sources": [SourceSettings(name="inbox", location=location)]})
        with pytest.raises(ConfigError, match="overlaps the document store"):
            open_sources(bad)
    fine = SourceSettings(name="inbox", location=f"s3://{BUCKET}/{settings.prefix}inbox/")
    assert len(open_sources(settings.model_copy(update={"sources": [fine]}))) == 1


def test_s3_inbox_moves_never_overwrite_and_subfolders_are_not_input(
    settings: Settings, store: S3Store, prefix: str
) -> None:
    inbox = f"{prefix}inbox2/"
    location = f"s3://{BUCKET}/{inbox}"
    store.put(f"{inbox}nested/deep.txt", story(5).encode())
    for n in range(2):
        store.put(f"{inbox}same.txt", story(10 + n).encode())
        assert sweep(settings, store, location).counts == {"created" if n == 0 else "updated": 1}
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    keys = set(store.list_keys(f"{inbox}processed/"))
    assert keys == {f"{inbox}processed/{day}/same.txt", f"{inbox}processed/{day}/same-1.txt"}
    assert store.exists(f"{inbox}nested/deep.txt")  # like a drop folder's subfolders: left alone


class FlakyStorage(FaultProxy):
    """Down for the first ``down_for`` seconds, then healthy."""

    def __init__(self, upstream: str, down_for: float) -> None:
        super().__init__(upstream)
        self.until = time.monotonic() + down_for

    def _pick(self) -> str | None:
        self.down = time.monotonic() < self.until
        return super()._pick()


def test_watch_rides_out_a_storage_outage(tmp_path: Path, settings: Settings, local_s3: object) -> None:
    from ingest.runner import watch

    drop = tmp_path / "drop"
    fill(drop, 2)
    proxy = FlakyStorage(os.environ["AWS_ENDPOINT_URL"], down_for=2.0)
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3", endpoint_url=proxy.url, config=Config(retries={"total_max_attempts": 1}, connect_timeout=1)
    )
    store = S3Store(settings.bucket, attempts=2, max_seconds=1, client=client)
    conf = SourceSettings(name="drop", location=str(drop), settle_seconds=0)
    watched = settings.model_copy(update={"sources": [conf], "poll_seconds": 0.2})
    stop = threading.Event()
    out = io.StringIO()
    thread = threading.Thread(
        target=lambda: watch(watched, store, [open_source(conf)], Reporter("text", out=out), stop)
    )
    thread.start()
    deadline = time.time() + 60
    while len(list((drop / "processed").rglob("*.txt"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    stop.set()
    thread.join(30)
    proxy.close()
    assert not thread.is_alive()
    assert len(list((drop / "processed").rglob("*.txt"))) == 2
    assert proxy.stats["down"] > 0  # it really was down at first


class ReplacedAfterRead:
    """Wraps a source: right after a file is read, a publisher replaces it (temp name, then rename)."""

    def __init__(self, inner: object, replace: Callable[[Candidate], None]) -> None:
        self.inner, self.replace = inner, replace
        self.settings = inner.settings  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def read(self, candidate: Candidate, max_bytes: int) -> bytes | None:
        data = self.inner.read(candidate, max_bytes)  # type: ignore[attr-defined]
        self.replace(candidate)
        return data


def _run_with(settings: Settings, store: S3Store, source: object) -> RunReport:
    conf = source.settings  # type: ignore[attr-defined]
    return run_once(
        settings.model_copy(update={"sources": [conf]}),
        store,
        [source],  # type: ignore[list-item]
        Reporter("text", out=io.StringIO()),
    )


def test_a_file_replaced_after_it_was_read_is_not_moved(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "story.txt").write_text("Story\n\nFirst version.\n")

    def publish(candidate: Candidate) -> None:
        tmp = drop / "story.txt.tmp"
        tmp.write_text("Story\n\nCorrected version.\n")
        os.replace(tmp, drop / "story.txt")

    conf = SourceSettings(name="drop", location=str(drop), settle_seconds=0)
    report = _run_with(settings, store, ReplacedAfterRead(open_source(conf), publish))
    (record,) = report.files
    assert record.outcome == "created" and record.moved_to is None
    assert "changed after it was read" in (record.message or "")
    assert (drop / "story.txt").read_text() == "Story\n\nCorrected version.\n"  # still there, not lost
    again = sweep(settings, store, drop, settle_seconds=0)
    assert [(f.outcome, f.version) for f in again.files] == [("updated", 2)]


def test_an_s3_object_reuploaded_after_it_was_read_is_not_moved(
    settings: Settings, store: S3Store, prefix: str
) -> None:
    inbox = f"{prefix}inbox3/"
    store.put(f"{inbox}story.txt", b"Story\n\nFirst version.\n")

    def reupload(candidate: Candidate) -> None:
        store.put(candidate.ref, b"Story\n\nCorrected version.\n")

    conf = SourceSettings(name="inbox", location=f"s3://{BUCKET}/{inbox}")
    report = _run_with(settings, store, ReplacedAfterRead(open_source(conf), reupload))
    assert report.files[0].moved_to is None
    assert store.get(f"{inbox}story.txt").body == b"Story\n\nCorrected version.\n"  # type: ignore[union-attr]
    assert [k for k in store.list_keys(inbox) if "/processed/" in k] == []
    again = sweep(settings, store, f"s3://{BUCKET}/{inbox}")
    assert [(f.outcome, f.version) for f in again.files] == [("updated", 2)]


def test_a_lease_taken_over_after_expiry_is_not_ours_to_renew_or_release(settings: Settings, store: S3Store) -> None:
    from ingest.runner import Leases

    first = Leases(store, settings.prefix, "run-a", seconds=3)
    second = Leases(store, settings.prefix, "run-b", seconds=60)
    assert first.acquire("drop", "/in/a.txt")
    assert not second.acquire("drop", "/in/a.txt")  # held
    time.sleep(3.1)
    assert second.acquire("drop", "/in/a.txt")  # expired: taken over
    assert not first.renew("drop", "/in/a.txt")  # so the first run must not move the file
    first.release("drop", "/in/a.txt")  # and must not delete the second run's lease
    assert store.get(second.key("drop", "/in/a.txt")) is not None
    assert not Leases(store, settings.prefix, "run-c", seconds=60).acquire("drop", "/in/a.txt")
