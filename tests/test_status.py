"""``ingest status``: what each source's runs recorded (``status/{source}.json``) and a live look at its backlog and
``failed/``; quiet sources; exit codes 0, 1 and 2."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.api import open_sources, status
from ingest.errors import SourceError, StoreDenied
from ingest.keys import status_key
from ingest.report import Reporter
from ingest.runner import run_once, watch
from ingest.settings import Settings, SourceSettings, load_settings, parse_duration
from ingest.status import Sweep, Tallies, read_state, record
from ingest.stores.faults import FaultyStore
from ingest.stores.memory import MemoryStore
from tests.conftest import BUCKET, cli
from tests.test_runner import NOW, aged, fill, story

PREFIX = "t/"


def settings_for(*sources: SourceSettings) -> Settings:
    return load_settings({"prefix": PREFIX}, env={}).model_copy(update={"sources": list(sources)})


def run(store: MemoryStore, settings: Settings, at: datetime = NOW) -> None:
    sources = open_sources(settings, open_store=lambda bucket: store)
    run_once(settings, store, sources, Reporter("text", out=io.StringIO()), clock=lambda: at)


def look(store: MemoryStore, settings: Settings, at: datetime) -> dict[str, object]:
    report = status(settings, store, open_store=lambda bucket: store, clock=lambda: at)
    data: dict[str, object] = json.loads(report.model_dump_json())
    data["exit_code"] = report.exit_code
    return data


def test_a_drop_folder_shows_its_last_sweep_day_counts_backlog_and_failed_files_with_reasons(tmp_path: Path) -> None:
    store, drop = MemoryStore(), tmp_path / "drop"
    fill(drop, 2)
    (drop / "broken.json").write_text("{not json")
    aged(drop / "broken.json")
    settings = settings_for(SourceSettings(name="wires", location=str(drop), settle_seconds=1))
    run(store, settings)
    (drop / "late.txt").write_text(story(7))
    aged(drop / "late.txt", seconds=30)

    data = look(store, settings, NOW + timedelta(minutes=5))
    (wires,) = data["sources"]  # type: ignore[misc]
    assert wires["state"] == "failing" and data["healthy"] is False and data["exit_code"] == 1
    assert wires["problems"] == ["1 file in failed/"]
    assert wires["last_sweep"]["counts"] == {"created": 2, "failed": 1}
    assert wires["last_sweep"]["error"] is None and wires["last_success_at"] is not None
    assert wires["last_24h"] == {"created": 2, "failed": 1}
    assert wires["backlog_files"] == 1  # late.txt, written after the run
    assert wires["oldest_file_age_seconds"] == pytest.approx(30 + 300, abs=1)
    assert wires["failed_count"] == 1
    (failed,) = wires["failed_files"]
    assert failed["name"] == "broken.json" and failed["check"] == "parse"
    assert "JSON" in failed["reason"]
    # the newest file seen: late.txt, waiting (half a minute before NOW); the stored ones are a minute old
    assert datetime.fromisoformat(wires["last_item_at"]) == NOW - timedelta(seconds=30)


def test_counts_older_than_a_day_leave_the_24_hours_but_stay_in_the_totals(tmp_path: Path) -> None:
    store, drop = MemoryStore(), tmp_path / "drop"
    settings = settings_for(SourceSettings(name="wires", location=str(drop), settle_seconds=1))
    fill(drop, 2, now=NOW - timedelta(hours=30))
    run(store, settings, at=NOW - timedelta(hours=30))
    (drop / "new.txt").write_text(story(5))
    aged(drop / "new.txt")
    run(store, settings)
    (wires,) = look(store, settings, NOW)["sources"]  # type: ignore[misc]
    assert wires["last_24h"] == {"created": 1}
    assert wires["totals"] == {"created": 3}
    assert wires["state"] == "healthy"


def test_a_quiet_source_is_flagged_after_quiet_after_and_exits_1(tmp_path: Path) -> None:
    store, drop = MemoryStore(), tmp_path / "drop"
    fill(drop, 1)  # arrived a minute before NOW
    settings = settings_for(SourceSettings(name="wires", location=str(drop), settle_seconds=1, quiet_after="2h"))
    run(store, settings)
    fresh = look(store, settings, NOW + timedelta(hours=1))
    assert fresh["sources"][0]["state"] == "healthy" and fresh["exit_code"] == 0  # type: ignore[index]
    later = look(store, settings, NOW + timedelta(hours=3))
    (wires,) = later["sources"]  # type: ignore[misc]
    assert wires["state"] == "quiet" and wires["quiet"] is True and later["exit_code"] == 1
    assert wires["problems"] == ["quiet: no file has arrived for 3h 1m (quiet_after 2h)"]
    # without quiet_after, the same silence is healthy
    plain = settings_for(SourceSettings(name="wires", location=str(drop), settle_seconds=1))
    assert look(store, plain, NOW + timedelta(days=3))["exit_code"] == 0


def test_a_source_nothing_ever_arrived_in_is_quiet_counted_from_its_first_sweep(tmp_path: Path) -> None:
    store, drop = MemoryStore(), tmp_path / "drop"
    drop.mkdir()
    settings = settings_for(SourceSettings(name="wires", location=str(drop), quiet_after=600))
    never_swept = look(store, settings, NOW)  # a watch that never started is no sign of life
    (wires,) = never_swept["sources"]  # type: ignore[misc]
    assert wires["last_sweep"] is None and wires["state"] == "quiet" and never_swept["exit_code"] == 1
    assert wires["problems"] == ["quiet: no run has swept it yet, and nothing is waiting in it"]
    plain = settings_for(SourceSettings(name="wires", location=str(drop)))
    assert look(store, plain, NOW)["exit_code"] == 0  # without quiet_after, nothing to say
    run(store, settings)
    assert look(store, settings, NOW + timedelta(minutes=5))["exit_code"] == 0
    (wires,) = look(store, settings, NOW + timedelta(minutes=11))["sources"]  # type: ignore[misc]
    assert wires["state"] == "quiet" and wires["problems"][0].startswith("quiet: nothing has arrived for 11m")


def test_an_s3_inbox_shows_backlog_by_last_modified_and_failed_files(tmp_path: Path) -> None:
    store = MemoryStore()
    store.clock = lambda: (NOW - timedelta(minutes=10)).timestamp()
    store.put("in/good.txt", story(1).encode())
    store.put("in/bad.txt", b"")
    settings = settings_for(SourceSettings(name="inbox", location=f"s3://{store.bucket}/in/", settle_seconds=0))
    run(store, settings)
    store.clock = lambda: (NOW - timedelta(minutes=3)).timestamp()
    store.put("in/waiting.txt", story(2).encode())
    store.put("in/sub/never-taken.txt", story(3).encode())  # a sub-prefix is not the backlog
    (inbox,) = look(store, settings, NOW)["sources"]  # type: ignore[misc]
    assert inbox["last_sweep"]["counts"] == {"created": 1, "failed": 1}
    assert inbox["backlog_files"] == 1 and inbox["oldest_file_age_seconds"] == pytest.approx(180)
    assert [(f["name"], f["check"]) for f in inbox["failed_files"]] == [("bad.txt", "headline")]
    assert inbox["failed_files"][0]["location"] == f"s3://{store.bucket}/in/failed/bad.txt"
    assert inbox["state"] == "failing"


def test_a_source_that_cannot_be_listed_is_failing_and_says_why(tmp_path: Path) -> None:
    store = MemoryStore()
    settings = settings_for(SourceSettings(name="wires", location=str(tmp_path / "missing")))
    (wires,) = look(store, settings, NOW)["sources"]  # type: ignore[misc]
    assert wires["state"] == "failing" and wires["backlog_files"] is None
    assert "is not a folder" in wires["problems"][0]


def test_a_failed_sweep_is_recorded_with_its_error_and_does_not_move_the_last_clean_one(tmp_path: Path) -> None:
    store = MemoryStore()
    record(store, PREFIX, Sweep("wires", "/in", "r1", NOW, NOW + timedelta(seconds=1), 1.0))
    later = NOW + timedelta(minutes=1)
    record(store, PREFIX, Sweep("wires", "/in", "r2", later, later, 0.5, error="source wires: /in is not a folder"))
    state = read_state(store, PREFIX, "wires")
    assert state is not None and state.last_sweep is not None
    assert state.last_sweep.run_id == "r2" and state.last_sweep.error == "source wires: /in is not a folder"
    assert state.last_success_at == NOW + timedelta(seconds=1)


def test_runs_racing_on_one_state_lose_no_counts() -> None:
    store = MemoryStore()
    from collections import Counter

    def add(n: int) -> None:
        for _ in range(10):
            record(store, PREFIX, Sweep("wires", "/in", f"r{n}", NOW, NOW, 0.1, Counter(created=1)))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = read_state(store, PREFIX, "wires")
    assert state is not None and state.totals == {"created": 40}


def test_a_state_that_cannot_be_written_is_a_warning_not_the_runs_error(caplog: pytest.LogCaptureFixture) -> None:
    store = FaultyStore(MemoryStore(), rate=1.0, exc_type=StoreDenied)
    record(store, PREFIX, Sweep("wires", "/in", "r1", NOW, NOW, 0.1))
    assert "state of source wires not updated" in caplog.text


def test_an_idle_watch_writes_its_state_on_the_heartbeat_not_every_sweep(tmp_path: Path) -> None:
    store, drop = MemoryStore(), tmp_path / "drop"
    drop.mkdir()
    settings = settings_for(SourceSettings(name="wires", location=str(drop))).model_copy(update={"poll_seconds": 0.01})
    sources = open_sources(settings, open_store=lambda bucket: store)
    stop, sweeps = threading.Event(), []

    def after() -> None:
        sweeps.append(1)
        if len(sweeps) >= 5:
            stop.set()

    watch(settings, store, sources, Reporter("text", out=io.StringIO()), stop, after_sweep=after)
    assert len(sweeps) == 5
    puts = [k for k in store._modified if k == status_key(PREFIX, "wires")]
    assert puts and store.calls["PUT"] <= 2 + 1  # one state and one report on the first (heartbeat) sweep only


def test_quiet_after_takes_seconds_or_a_duration() -> None:
    assert parse_duration("90") == 90 and parse_duration("90s") == 90
    assert parse_duration("30m") == 1800 and parse_duration("2h") == 7200 and parse_duration("1.5d") == 129600
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("soon")
    assert SourceSettings(name="w", location="/in", quiet_after="2h").quiet_after == 7200


def test_the_cli_reports_a_drop_folder_and_an_s3_inbox_and_exits_0_1_2(
    tmp_path: Path, cli_env: dict[str, str], store: object, prefix: str
) -> None:
    drop = tmp_path / "drop"
    fill(drop, 1, now=datetime.now(UTC))
    config = tmp_path / "ingest.yaml"
    config.write_text(
        f"bucket: {BUCKET}\nprefix: {prefix}\nsources:\n"
        f"  - {{name: wires, location: {drop}, settle_seconds: 0, min_age_seconds: 0}}\n"
        f"  - {{name: inbox, location: 's3://{BUCKET}/{prefix}inbox/', settle_seconds: 0}}\n"
    )
    ran = cli("run", "--config", str(config), env=cli_env)
    assert ran.returncode == 0, ran.stderr
    healthy = cli("status", "--json", "--config", str(config), env=cli_env)
    assert healthy.returncode == 0, healthy.stderr
    data = json.loads(healthy.stdout)
    assert [s["name"] for s in data["sources"]] == ["wires", "inbox"]
    assert data["sources"][0]["last_sweep"]["counts"] == {"created": 1}
    assert data["sources"][1]["last_sweep"]["counts"] == {} and data["sources"][1]["backlog_files"] == 0

    (drop / "bad.txt").write_text("")
    assert cli("run", "--config", str(config), env=cli_env).returncode == 1
    failing = cli("status", "--config", str(config), env=cli_env)
    assert failing.returncode == 1
    assert "wires  FAILING" in failing.stdout and "bad.txt  (headline:" in failing.stdout
    assert "inbox  HEALTHY" in failing.stdout

    denied = {**cli_env, "AWS_SECRET_ACCESS_KEY": "wrong"}
    broken = cli("status", "--config", str(config), env=denied)
    assert broken.returncode == 2 and broken.stderr.startswith("error: ")
    probe = cli("status", "--json", "--config", str(config), env=denied)  # a probe parsing stdout gets an object
    assert probe.returncode == 2 and json.loads(probe.stdout)["healthy"] is False
    assert "access denied" in json.loads(probe.stdout)["error"]


def test_a_workers_counts_gather_and_are_written_soon_without_making_a_sweep() -> None:
    from collections import Counter

    store = MemoryStore()
    tallies = Tallies(every=0.2)
    tallies.add(store, PREFIX, "wires", "/in", Counter(created=1), Counter())
    tallies.add(store, PREFIX, "wires", "/in", Counter(failed=1), Counter(parse=1))
    assert read_state(store, PREFIX, "wires") is None  # gathered, not yet written
    deadline = time.monotonic() + 10
    while read_state(store, PREFIX, "wires") is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the timer writes them
    state = read_state(store, PREFIX, "wires")
    assert state is not None
    assert state.totals == {"created": 1, "failed": 1} and state.error_totals == {"parse": 1}
    assert state.last_sweep is None and state.last_success_at is None  # a worker's task is not a sweep

    # counts a write cannot get in are kept for the next one
    faulty = FaultyStore(store, rate=1.0, exc_type=StoreDenied)
    tallies = Tallies(every=60)
    tallies.add(faulty, PREFIX, "wires", "/in", Counter(created=1), Counter())
    tallies.flush()
    faulty.rate = 0.0
    tallies.flush()
    state = read_state(store, PREFIX, "wires")
    assert state is not None and state.totals == {"created": 2, "failed": 1}


def test_a_source_that_cannot_be_swept_does_not_mark_the_others_failing(tmp_path: Path) -> None:
    store, drop = MemoryStore(), tmp_path / "drop"
    fill(drop, 1)
    settings = settings_for(
        SourceSettings(name="fine", location=str(drop), settle_seconds=1),
        SourceSettings(name="gone", location=str(tmp_path / "missing")),
    )
    with pytest.raises(SourceError):
        run(store, settings)
    data = look(store, settings, NOW)
    fine, gone = data["sources"]  # type: ignore[misc]
    assert fine["state"] == "healthy" and fine["last_sweep"]["error"] is None, fine["problems"]
    assert gone["state"] == "failing" and "is not a folder" in gone["last_sweep"]["error"]


def test_a_watch_records_an_idle_source_now_and_then_and_at_once_when_it_fails_or_recovers(tmp_path: Path) -> None:
    store, busy, idle = MemoryStore(), tmp_path / "busy", tmp_path / "idle"
    busy.mkdir()
    settings = settings_for(
        SourceSettings(name="busy", location=str(busy), settle_seconds=0),
        SourceSettings(name="idle", location=str(idle), settle_seconds=0),
    ).model_copy(update={"poll_seconds": 0.01})
    sources = open_sources(settings, open_store=lambda bucket: store)
    clock = [NOW]
    stop, sweeps = threading.Event(), []

    def after() -> None:  # each sweep: a file for busy, a minute on the clock; idle vanishes, then comes back
        sweeps.append(1)
        n = len(sweeps)
        (busy / f"s-{n}.txt").write_text(story(n))
        clock[0] += timedelta(minutes=1)
        if n == 3:
            idle.mkdir()
        if n == 12:
            stop.set()

    reporter = Reporter("text", out=io.StringIO())
    watch(settings, store, sources, reporter, stop, after_sweep=after, clock=lambda: clock[0])
    state = read_state(store, PREFIX, "idle")
    assert state is not None and state.last_sweep is not None
    assert state.last_sweep.error is None  # recovered, and recorded at once though it took nothing
    # idle for 8 minutes after that, busy taking a file every minute: still recorded at least every 5 minutes
    assert (clock[0] - state.last_sweep.finished_at) <= timedelta(minutes=5, seconds=30)
    assert state.last_success_at is not None and state.last_success_at > NOW + timedelta(minutes=4)


def test_an_inbox_whose_store_is_down_still_leaves_the_sources_swept_before_it_recorded(tmp_path: Path) -> None:
    from ingest.errors import StoreUnavailable

    store, drop = MemoryStore(), tmp_path / "drop"
    fill(drop, 3)
    inbox = FaultyStore(MemoryStore("inbox"), rate=1.0, operations=frozenset({"list_level"}))
    settings = settings_for(
        SourceSettings(name="a", location=str(drop), settle_seconds=1),
        SourceSettings(name="b", location="s3://inbox/in/", settle_seconds=0),
    )
    sources = open_sources(settings, open_store=lambda bucket: inbox if bucket == "inbox" else store)
    with pytest.raises(StoreUnavailable):
        run_once(settings, store, sources, Reporter("text", out=io.StringIO()), clock=lambda: NOW)
    state = read_state(store, PREFIX, "a")
    assert state is not None and state.totals == {"created": 3}  # a's files are stored: so is what it took
    assert read_state(store, PREFIX, "b") is None  # b took nothing: not tried against a store that is down
