"""The stores every test in this folder runs against: the in-memory store, and the real SeaweedFS."""

from __future__ import annotations

import pytest

from ingest.stores.base import Store
from ingest.stores.memory import MemoryStore
from ingest.stores.s3 import S3Store
from tests.conftest import BUCKET


@pytest.fixture(params=["memory", pytest.param("s3", marks=pytest.mark.s3)])
def any_store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore()
    request.getfixturevalue("local_s3")  # starts SeaweedFS once and points the AWS_* variables at it
    store = S3Store(BUCKET, attempts=3, max_seconds=10)
    store.ensure_bucket()
    return store
