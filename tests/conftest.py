"""Shared fixtures. The suite starts its own SeaweedFS and Redis, each once per session, on free loopback ports."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import devredis, devserver
from ingest.keys import Keys
from ingest.models import ChangeEntry, Document
from ingest.prepare import Prepared, prepare
from ingest.rules import load_rules
from ingest.settings import ModuleSettings, Settings, load_settings
from ingest.split import Rules
from ingest.stores.s3 import S3Store

ROOT = Path(__file__).resolve().parents[1]
#: The time every input of the pure tests is received at: prepare is pure, so the tests pass it in.
RECEIVED = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
SHARED = ROOT.parent / "shared"
SEED = SHARED / "seeds" / "000_a02b289d76dca1f3.txt"
CORPUS = SHARED / "corpus"
EXAMPLES = ROOT / "examples"
BUCKET = "ingest-test"


#: The packaged module rules, compiled once for the tests.
RULES: Rules = load_rules(ModuleSettings())


def prepared(data: bytes, file_name: str, rules: Rules = RULES, **options: object) -> Prepared:
    """``prepare`` as the pure tests call it: received at ``RECEIVED``."""
    return prepare(data, file_name, rules, received_at=RECEIVED, **options)  # type: ignore[arg-type]


def need_shared(path: Path) -> Path:
    """Skip the calling test, with the reason, when ../shared is not beside the checkout."""
    if not path.exists():
        pytest.skip(f"{path} not found: ../shared/ is not beside this checkout")
    return path


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devserver.LocalS3]:
    server = devserver.start(tmp_path_factory.mktemp("s3"))
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        yield server
    finally:
        devserver.stop(server, grace=0.3)  # its data is thrown away: no need to wait for a clean exit
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def local_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devredis.LocalRedis]:
    server = devredis.start(tmp_path_factory.mktemp("redis"))
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        yield server
    finally:
        devredis.stop(server, grace=0.3)  # nothing is persisted: no need to wait for a clean exit
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test: tests share one bucket (SeaweedFS buckets are costly) but no keys."""
    return f"t-{uuid.uuid4().hex[:10]}/"


@pytest.fixture
def settings(prefix: str) -> Settings:
    return load_settings({"bucket": BUCKET, "prefix": prefix}, env={})


@pytest.fixture
def store(local_s3: devserver.LocalS3, settings: Settings) -> S3Store:
    s = S3Store(settings.bucket, attempts=3, max_seconds=10)
    s.ensure_bucket()
    return s


class RequestCounter:
    """Counts the HTTP requests a client really sends, by operation (botocore's event hooks)."""

    def __init__(self, store: S3Store) -> None:
        self.calls: Counter[str] = Counter()
        store.client.meta.events.register("before-send.s3", self._count)

    def _count(self, request: object, **kwargs: object) -> None:
        method = getattr(request, "method", "?")
        self.calls[str(method)] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def requests(store: S3Store) -> RequestCounter:
    return RequestCounter(store)


@pytest.fixture
def cli_env(local_s3: devserver.LocalS3, prefix: str) -> dict[str, str]:
    """Environment for running the `ingest` console script against the test server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(local_s3.env())
    env.update({"INGEST_BUCKET": BUCKET, "INGEST_PREFIX": prefix})
    return env


def read_feed(store: S3Store, prefix: str) -> list[ChangeEntry]:
    """Every changes-feed entry under ``prefix``, in object order."""
    entries: list[ChangeEntry] = []
    for key in store.list_keys(f"{prefix}changes/"):
        stored = store.get(key)
        assert stored is not None
        entries += [ChangeEntry.model_validate_json(line) for line in stored.body.decode().splitlines()]
    return entries


def stored_versions(store: S3Store, keys: Keys) -> list[Document]:
    """v1, v2, ... of one article, until the first missing number."""
    docs, n = [], 1
    while (stored := store.get(keys.version(n))) is not None:
        docs.append(Document.model_validate_json(stored.body))
        n += 1
    return docs


@dataclass(frozen=True)
class Ran:
    """What one CLI invocation did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, env: dict[str, str] | None = None) -> Ran:
    """Run ``ingest ARGS`` in this process (``ingest.cli.main``), with ``env`` as the whole environment."""
    from ingest.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help, --version, bad flags
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Ran(code, out.getvalue(), err.getvalue())
