"""The stores every test in this folder runs against: the in-memory store, and the real SeaweedFS."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ingest.stores.base import Store
from ingest.stores.memory import PAGE_SIZE, MemoryStore
from ingest.stores.s3 import S3Store
from tests.conftest import BUCKET

#: A new store of the backend under test, listing ``page_size`` keys per LIST request.
MakeStore = Callable[[int], Store]


@pytest.fixture(params=["memory", pytest.param("s3", marks=pytest.mark.s3)])
def make_store(request: pytest.FixtureRequest) -> MakeStore:
    """Stores of one backend; a small ``page_size`` lets a test page past a page without writing 1000 keys."""
    if request.param == "memory":
        return lambda page_size: MemoryStore(page_size=page_size)
    request.getfixturevalue("local_s3")  # starts SeaweedFS once and points the AWS_* variables at it

    def s3(page_size: int) -> Store:
        store = S3Store(BUCKET, attempts=3, max_seconds=10, page_size=page_size)
        store.ensure_bucket()
        return store

    return s3


@pytest.fixture
def any_store(make_store: MakeStore) -> Store:
    return make_store(PAGE_SIZE)
