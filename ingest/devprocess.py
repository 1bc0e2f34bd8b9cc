"""What the local development servers share: ``ingest.devserver`` (S3) and ``ingest.devredis`` (Redis).

Each of those modules keeps what is its own -- finding its binary, its command line or config file, its
readiness probe, its environment variables -- and describes itself to one :class:`DevProcess`, which does the
rest the same way for both: a server process in its own session with its output in a log file, the state
record ``server.json`` in the state directory, an is-running check that does not trust a recycled pid,
waiting until the server is ready, a firm stop (SIGTERM, a grace period, then SIGKILL of the process group),
and the ``up`` / ``down`` / ``env`` command line whose stdout is a file of shell exports.
Development and tests only; never used in production.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import Field, asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

RECORD = "server.json"


class DevProcessError(Exception):
    """A local development server could not be found, started or stopped.

    Each server module raises its own subclass (``DevServerError``, ``DevRedisError``)."""


class Server(Protocol):
    """What a server module's record of a running server is: a frozen dataclass with at least these."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def pid(self) -> int: ...

    @property
    def state_dir(self) -> Path: ...

    def env(self) -> dict[str, str]: ...


S = TypeVar("S", bound=Server)

# Servers this process started: polling their Popen reaps them, else a dead one would linger
# as a zombie that still looks alive to os.kill(pid, 0).
_children: dict[int, subprocess.Popen[bytes]] = {}


def _no_cleanup(server: Any) -> None:
    return None


@dataclass(frozen=True)
class DevProcess(Generic[S]):
    """One kind of local server: what tells it apart, and the machinery every kind shares."""

    #: The module run as ``python -m MODULE``, e.g. ``ingest.devserver``: names the CLI and its errors.
    module: str
    #: What the CLI calls the server, as in "S3 dev server started".
    label: str
    #: What error messages call the process, as in "weed exited with code 1 during start-up".
    program: str
    #: The error the server module raises.
    error: type[DevProcessError]
    #: The log file in the state directory that takes the process's stdout and stderr.
    log_name: str
    #: Whether ``cmdline`` (NUL-separated, from /proc) is a server of this kind for the state directory given.
    owns: Callable[[bytes, Path], bool]
    #: The server recorded in ``server.json``; raises KeyError, TypeError or ValueError for a bad record.
    from_record: Callable[[dict[str, Any], Path], S]
    #: Whether a running server answers (``ensure`` restarts one that does not).
    answers: Callable[[S], bool]
    #: The address the CLI reports, e.g. the endpoint URL.
    address: Callable[[S], str]
    #: Seconds between checks while waiting for the server to become ready, and to exit.
    ready_poll: float
    stop_poll: float
    #: The record holds credentials: written readable by its owner only.
    secret_record: bool = False
    #: What to tidy up once the server has exited (files it leaves outside its state directory).
    cleanup: Callable[[S], None] = _no_cleanup

    def claim(self, state_dir: Path) -> Path:
        """``state_dir`` resolved, or the error if a server of this kind already runs there."""
        state_dir = state_dir.resolve()
        if (running := self.load(state_dir)) is not None:
            raise self.error(f"a server (pid {running.pid}) already runs in {state_dir}")
        return state_dir

    def spawn(self, command: list[str], state_dir: Path, *, append: bool = False) -> subprocess.Popen[bytes]:
        """Start ``command`` in ``state_dir``, its output going to the log file (truncated unless ``append``)."""
        # A server holding the caller's stdout/stderr keeps its pipes open (CI hangs); its own
        # session keeps it out of the terminal's Ctrl-C and lets stop() kill the whole group.
        with (state_dir / self.log_name).open("ab" if append else "wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=state_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        return proc

    def write_record(self, server: S, /, **extra: object) -> None:
        """Record ``server`` (and ``extra``) in its state directory. Call it before waiting for the server, so
        ``down`` can clean up even if the starting process dies meanwhile."""
        record = {**asdict(server), "state_dir": str(server.state_dir), **extra}
        text = json.dumps(record, indent=2)
        path = server.state_dir / RECORD
        if self.secret_record:
            write_private(path, text)
        else:
            path.write_text(text)

    def wait_ready(
        self,
        server: S,
        proc: subprocess.Popen[bytes],
        probe: Callable[[], str | None],
        *,
        timeout: float,
        late: Callable[[str], str],
    ) -> None:
        """Wait until ``probe`` returns None (ready) instead of why the server is not ready yet; raise with
        ``late(last reason)`` and the log's tail after ``timeout`` seconds, or at once if the process exits.
        A server that does not become ready is stopped."""
        try:
            deadline = time.monotonic() + timeout
            reason = "none"
            log = server.state_dir / self.log_name
            while proc.poll() is None:
                if (not_ready := probe()) is None:
                    return
                reason = not_ready
                if time.monotonic() >= deadline:
                    raise self.error(f"{late(reason)}; log: {log}{log_tail(log)}")
                time.sleep(self.ready_poll)
            why = f"{self.program} exited with code {proc.returncode} during start-up"
            raise self.error(f"{why}; log: {log}{log_tail(log)}")
        except BaseException:
            self.stop(server)
            raise

    def is_running(self, pid: int, state_dir: Path) -> bool:
        """Whether ``pid`` is alive and (where /proc tells) a server of this kind for ``state_dir``."""
        if (child := _children.get(pid)) is not None and child.poll() is not None:
            del _children[pid]
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        if not Path("/proc/self").exists():
            return True
        # The pid may have been recycled (or be a zombie): trust it only if its command line says it is
        # a server of this kind for this dir.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return self.owns(cmdline, state_dir.resolve())

    def stop(self, server: S, *, grace: float = 3.0) -> None:
        """Stop ``server`` firmly: SIGTERM to its process group, then SIGKILL if it has not exited after
        ``grace`` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            if not self.is_running(server.pid, server.state_dir):
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, sig)
            deadline = time.monotonic() + wait
            while self.is_running(server.pid, server.state_dir) and time.monotonic() < deadline:
                time.sleep(self.stop_poll)
        if self.is_running(server.pid, server.state_dir):
            raise self.error(f"{self.program} (pid {server.pid}) survived SIGKILL")
        if (child := _children.pop(server.pid, None)) is not None:
            child.wait(timeout=5)  # reap it, or it stays a zombie while this process lives
        self.cleanup(server)

    def load(self, state_dir: Path) -> S | None:
        """The server recorded in ``state_dir`` if its process is still running, else None."""
        state_dir = state_dir.resolve()
        try:
            server = self.from_record(read_record(state_dir) or {}, state_dir)
        except (KeyError, TypeError, ValueError):
            return None
        return server if self.is_running(server.pid, state_dir) else None

    def ensure(self, state_dir: Path, start: Callable[[], S]) -> S:
        """The running server of ``state_dir`` if it answers, else the one ``start()`` starts."""
        if (server := self.load(state_dir)) is not None:
            if self.answers(server):
                return server
            self.stop(server)
        return start()

    def stop_dir(self, state_dir: Path) -> bool:
        """Stop the server recorded in ``state_dir``; True if one was running."""
        if (server := self.load(state_dir)) is None:
            return False
        self.stop(server)
        return True

    def main(
        self,
        argv: list[str] | None,
        *,
        ensure: Callable[[Path], S],
        default_dir: Path,
        description: str,
        dir_help: str,
    ) -> int:
        """The ``up`` / ``down`` / ``env`` command line: exports on stdout, status on stderr; exit 2 on error."""
        prog = f"python -m {self.module}"
        parser = argparse.ArgumentParser(prog=prog, description=description, epilog=f'typical use: eval "$({prog} up)"')
        commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        for name, text in (
            ("up", "start the server (or reuse the running one) and print its shell exports"),
            ("down", "stop the server"),
            ("env", "print the shell exports of the running server; exit 1 if none runs"),
        ):
            sub = commands.add_parser(name, help=text, description=text)
            sub.add_argument("--dir", type=Path, default=default_dir, help=f"{dir_help} (default: %(default)s)")
        args = parser.parse_args(argv)
        try:
            if args.command == "up":
                before, began = self.load(args.dir), time.monotonic()
                server = ensure(args.dir)
                reused = before is not None and before.pid == server.pid
                status = "already running" if reused else f"started in {time.monotonic() - began:.1f}s"
                print(f"{self.label} dev server {status}: {self.address(server)} (pid {server.pid})", file=sys.stderr)
                print(exports(server))
            elif args.command == "down":
                status = "stopped" if self.stop_dir(args.dir) else "was not running"
                print(f"{self.label} dev server in {args.dir} {status}", file=sys.stderr)
            elif (running := self.load(args.dir)) is None:
                print(f"no {self.label} dev server running in {args.dir}", file=sys.stderr)
                return 1
            else:
                print(exports(running))
        except (self.error, OSError) as exc:
            name = self.module.rpartition(".")[2]
            print(f"{name}: error: {(str(exc).splitlines() or [type(exc).__name__])[0]}", file=sys.stderr)
            return 2
        return 0


def find_program(name: str) -> Path | None:
    """The executable ``name`` beside the running interpreter (its venv) if there, else on PATH, else None."""
    # A venv's bin dir is often not on PATH (`.venv/bin/python -m ...`).
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    return None if found is None else Path(found)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback TCP ports that are free right now."""
    # Holding all the sockets open at once makes the kernel hand out distinct ports.
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def read_record(state_dir: Path) -> dict[str, Any] | None:
    """The state record of ``state_dir`` as written, or None if missing or unreadable."""
    try:
        record = json.loads((state_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_private(path: Path, text: str) -> None:
    """Write a file that holds a secret: readable by its owner only (when it is created)."""
    path.touch(mode=0o600)
    path.write_text(text)


def log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of ``log`` under a heading, for an error message; empty if unreadable."""
    with contextlib.suppress(OSError):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        return f"\n--- last {lines} lines of {log.name} ---\n" + "\n".join(tail)
    return ""


def exports(server: Server) -> str:
    """``server``'s environment as shell ``export`` lines, to ``eval`` or source."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in server.env().items())
