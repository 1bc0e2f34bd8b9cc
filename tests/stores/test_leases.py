"""Leases: one run per input file, expiry judged by an injected clock (no sleeping), in any store."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from ingest.errors import StoreUnavailable
from ingest.stores import FaultyStore, MemoryStore, Store, Stored
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
    assert first.acquire("/in/a.txt")
    assert not second.acquire("/in/a.txt")  # held
    clock.advance(2.9)
    assert not second.acquire("/in/a.txt")  # still held, just
    clock.advance(0.1)
    assert second.acquire("/in/a.txt")  # expired: taken over
    assert not first.renew("/in/a.txt")  # so the first run must not move the file
    first.release("/in/a.txt")  # and must not delete the second run's lease
    assert lease_at(any_store, second.key("/in/a.txt"))["run_id"] == "run-b"
    assert not Leases(any_store, prefix, "run-c", seconds=60, clock=clock).acquire("/in/a.txt")


def test_a_lease_is_one_object_under_locks_naming_the_run_file_and_expiry(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    leases = Leases(store, prefix, "run-a", seconds=120, clock=clock)
    assert leases.acquire("/srv/inbox/wires/a.txt")
    digest = hashlib.sha256(b"/srv/inbox/wires/a.txt").hexdigest()[:40]
    key = f"{prefix}locks/{digest}.json"
    assert leases.key("/srv/inbox/wires/a.txt") == key
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
    key = ours.key("a.txt")
    assert ours.acquire("a.txt")
    assert ours.acquire("a.txt")  # ours already (a retried acquire): still ours
    assert not theirs.acquire("a.txt")
    assert ours.acquire("b.txt")  # another file: another lease
    clock.advance(50)
    assert ours.renew("a.txt")
    assert lease_at(store, key)["expires_at"] == (clock.now + timedelta(seconds=60)).isoformat()
    clock.advance(50)  # past the first expiry, within the renewed one
    assert not theirs.acquire("a.txt")
    ours.release("a.txt")
    assert not store.exists(key)
    assert theirs.acquire("a.txt")
    ours.release("a.txt")  # released already: nothing to delete, theirs stays
    assert lease_at(store, key)["run_id"] == "run-b"


def test_a_run_whose_lease_was_taken_over_never_deletes_the_new_one(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    first = Leases(store, prefix, "run-a", seconds=3, clock=clock)
    second = Leases(store, prefix, "run-b", seconds=60, clock=clock)
    assert first.acquire("a.txt") and first.acquire("b.txt")
    clock.advance(3)
    assert second.acquire("a.txt") and second.acquire("b.txt")
    first.release("a.txt")  # not renewed first: its ETag is stale, the delete is conditional
    assert lease_at(store, first.key("a.txt"))["run_id"] == "run-b"
    assert not first.renew("b.txt")
    store.calls.clear()
    first.release("b.txt")  # known lost at renewal: not even a request
    assert store.calls == {}
    assert lease_at(store, first.key("b.txt"))["run_id"] == "run-b"


class ReleasedMeanwhile(MemoryStore):
    """The holder releases its lease between our failed create and our first read of it."""

    def get(self, key: str) -> Stored | None:
        if not self.calls["GET"]:
            self.delete(key)
        return super().get(key)


def test_a_lease_released_while_we_looked_at_it_is_taken(prefix: str, clock: FakeClock) -> None:
    store = ReleasedMeanwhile()
    assert Leases(store, prefix, "run-b", seconds=60, clock=clock).acquire("a.txt")
    ours = Leases(store, prefix, "run-a", seconds=60, clock=clock)
    assert ours.acquire("a.txt")
    assert lease_at(store, ours.key("a.txt"))["run_id"] == "run-a"


def test_a_lease_that_is_not_a_lease_protects_nothing(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    leases = Leases(store, prefix, "run-a", seconds=60, clock=clock)
    key = leases.key("a.txt")
    for junk in (b"not json", b"[]", b'{"run_id": "run-b"}', b'{"run_id": "run-b", "expires_at": "2099-01-01"}'):
        store.put(key, junk)  # the last: a naive time, not one ingest writes
        assert leases.acquire("a.txt"), junk
        assert lease_at(store, key)["run_id"] == "run-a"


def test_a_naive_clock_is_refused_rather_than_stealing_leases(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    assert Leases(store, prefix, "run-a", seconds=60, clock=clock).acquire("a.txt")
    naive = Leases(store, prefix, "run-b", seconds=60, clock=lambda: datetime(2099, 1, 1))  # naive: no tzinfo
    with pytest.raises(TypeError):
        naive.acquire("a.txt")
    assert lease_at(store, naive.key("a.txt"))["run_id"] == "run-a"


def test_a_lost_reply_on_renewal_is_recognised_as_our_own_write(prefix: str, clock: FakeClock) -> None:
    store = MemoryStore()
    # The renewal is applied, then its reply is lost: the caller sees an error and its retry loses the
    # condition (412), because the ETag moved, to our own write.
    lossy = FaultyStore(store, fail_at=2, when="after", exc_type=StoreUnavailable)
    leases = Leases(RetryOnce(lossy), prefix, "run-a", seconds=60, clock=clock)
    assert leases.acquire("/in/a.txt")
    clock.advance(1)  # the renewal writes other bytes (a later expiry), so the retry's ETag is stale
    assert leases.renew("/in/a.txt")  # still ours, not "taken over"
    assert lossy.stats == {"after replace": 1}
    leases.release("/in/a.txt")
    assert list(store.list_keys(prefix)) == []  # released with the ETag of our own applied write


def test_a_release_that_fails_is_logged_and_the_lease_expires(
    prefix: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    failing = FaultyStore(store, operations=frozenset({"delete"}), rate=1.0)
    leases = Leases(failing, prefix, "run-a", seconds=60, clock=clock)
    assert leases.acquire("/in/a.txt")
    with caplog.at_level("WARNING", logger="ingest.run"):
        leases.release("/in/a.txt")  # no exception: the work is done, the lease will expire
    assert "could not release the lease on /in/a.txt" in caplog.text
    clock.advance(61)
    assert Leases(store, prefix, "run-b", seconds=60, clock=clock).acquire("/in/a.txt")


class RetryOnce:
    """A store whose writes are retried once after a transient error, as S3Store's retry policy does."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        if name not in {"put_new", "replace", "delete"}:
            return attr

        def retried(*args: object, **kwargs: object) -> object:
            try:
                return attr(*args, **kwargs)
            except StoreUnavailable:
                return attr(*args, **kwargs)

        return retried
