"""Leases: one run per input file, expiry judged by an injected clock (no sleeping), in any store."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from ingest.stores import MemoryStore, Store, Stored
from ingest.stores.leases import Leases


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def lease_at(store: Store, key: str) -> dict[str, str]:
    stored = store.get(key)
    assert stored is not None, key
    data: dict[str, str] = json.loads(stored.body)
    return data


def test_a_lease_taken_over_after_expiry_is_not_ours_to_renew_or_release(
    any_store: Store, prefix: str, clock: FakeClock
) -> None:
    first = Leases(any_store, prefix, "run-a", seconds=3, clock=clock)
    second = Leases(any_store, prefix, "run-b", seconds=60, clock=clock)
    assert first.acquire("drop", "/in/a.txt")
    assert not second.acquire("drop", "/in/a.txt")  # held
    clock.advance(2.9)
    assert not second.acquire("drop", "/in/a.txt")  # still held, just
    clock.advance(0.1)
    assert second.acquire("drop", "/in/a.txt")  # expired: taken over
    assert not first.renew("drop", "/in/a.txt")  # so the first run must not move the file
    first.release("drop", "/in/a.txt")  # and must not delete the second run's lease
    assert lease_at(any_store, second.key("drop", "/in/a.txt"))["run_id"] == "run-b"
    assert not Leases(any_store, prefix, "run-c", seconds=60, clock=clock).acquire("drop", "/in/a.txt")


def test_a_lease_is_one_object_under_locks_naming_the_run_file_and_expiry(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    leases = Leases(store, prefix, "run-a", seconds=120, clock=clock)
    assert leases.acquire("wires", "/srv/inbox/wires/a.txt")
    digest = hashlib.sha256(b"/srv/inbox/wires/a.txt").hexdigest()[:40]
    key = f"{prefix}locks/wires/{digest}.json"
    assert leases.key("wires", "/srv/inbox/wires/a.txt") == key
    assert list(store.list_keys(prefix)) == [key]
    assert lease_at(store, key) == {
        "run_id": "run-a",
        "file": "/srv/inbox/wires/a.txt",
        "expires_at": "2026-11-23T08:02:00+00:00",
    }


def test_acquire_renew_release(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    ours = Leases(store, prefix, "run-a", seconds=60, clock=clock)
    theirs = Leases(store, prefix, "run-b", seconds=60, clock=clock)
    key = ours.key("drop", "a.txt")
    assert ours.acquire("drop", "a.txt")
    assert ours.acquire("drop", "a.txt")  # ours already (a retried acquire): still ours
    assert not theirs.acquire("drop", "a.txt")
    assert ours.acquire("drop", "b.txt")  # another file: another lease
    clock.advance(50)
    assert ours.renew("drop", "a.txt")
    assert lease_at(store, key)["expires_at"] == (clock.now + timedelta(seconds=60)).isoformat()
    clock.advance(50)  # past the first expiry, within the renewed one
    assert not theirs.acquire("drop", "a.txt")
    ours.release("drop", "a.txt")
    assert not store.exists(key)
    assert theirs.acquire("drop", "a.txt")
    ours.release("drop", "a.txt")  # released already: nothing to delete, theirs stays
    assert lease_at(store, key)["run_id"] == "run-b"


def test_a_run_whose_lease_was_taken_over_never_deletes_the_new_one(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    first = Leases(store, prefix, "run-a", seconds=3, clock=clock)
    second = Leases(store, prefix, "run-b", seconds=60, clock=clock)
    assert first.acquire("drop", "a.txt") and first.acquire("drop", "b.txt")
    clock.advance(3)
    assert second.acquire("drop", "a.txt") and second.acquire("drop", "b.txt")
    first.release("drop", "a.txt")  # not renewed first: its ETag is stale, the delete is conditional
    assert lease_at(store, first.key("drop", "a.txt"))["run_id"] == "run-b"
    assert not first.renew("drop", "b.txt")
    store.calls.clear()
    first.release("drop", "b.txt")  # known lost at renewal: not even a request
    assert store.calls == {}
    assert lease_at(store, first.key("drop", "b.txt"))["run_id"] == "run-b"


class ReleasedMeanwhile(MemoryStore):
    """The holder releases its lease between our failed create and our first read of it."""

    def get(self, key: str) -> Stored | None:
        if not self.calls["GET"]:
            self.delete(key)
        return super().get(key)


def test_a_lease_released_while_we_looked_at_it_is_taken(prefix: str, clock: FakeClock) -> None:
    store = ReleasedMeanwhile()
    assert Leases(store, prefix, "run-b", seconds=60, clock=clock).acquire("drop", "a.txt")
    ours = Leases(store, prefix, "run-a", seconds=60, clock=clock)
    assert ours.acquire("drop", "a.txt")
    assert lease_at(store, ours.key("drop", "a.txt"))["run_id"] == "run-a"


def test_a_lease_that_is_not_a_lease_protects_nothing(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    leases = Leases(store, prefix, "run-a", seconds=60, clock=clock)
    key = leases.key("drop", "a.txt")
    for junk in (b"not json", b"[]", b'{"run_id": "run-b"}', b'{"run_id": "run-b", "expires_at": "2099-01-01"}'):
        store.put(key, junk)  # the last: a naive time, not one ingest writes
        assert leases.acquire("drop", "a.txt"), junk
        assert lease_at(store, key)["run_id"] == "run-a"


def test_a_naive_clock_is_refused_rather_than_stealing_leases(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    assert Leases(store, prefix, "run-a", seconds=60, clock=clock).acquire("drop", "a.txt")
    naive = Leases(store, prefix, "run-b", seconds=60, clock=lambda: datetime(2099, 1, 1))  # naive: no tzinfo
    with pytest.raises(TypeError):
        naive.acquire("drop", "a.txt")
    assert lease_at(store, naive.key("drop", "a.txt"))["run_id"] == "run-a"
