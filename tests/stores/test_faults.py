"""FaultyStore: faults before a call (nothing applied) and after it (applied, reply lost), by chance or at one
point, over the in-memory store."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ingest.errors import StoreError, StoreUnavailable
from ingest.stores import FaultyStore, Listed, ListedObject, ListedPrefix, MemoryStore, Store


class ProcessDied(BaseException):
    """Stands for kill -9: no ``except Exception`` in the code under test can swallow it."""


def workload(store: Store, n: int = 200) -> list[str]:
    """A fixed mix of calls; what became of each ("ok" or the error's type)."""
    outcomes = []
    for i in range(n):
        key = f"k{i % 7}"
        try:
            match i % 5:
                case 0:
                    store.put(key, b"%d" % i)
                case 1:
                    store.put_new(key, b"new")
                case 2:
                    store.get(key)
                case 3:
                    store.delete(key)
                case _:
                    list(store.list_keys("k"))
            outcomes.append("ok")
        except StoreError as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


def test_a_fault_before_the_call_leaves_the_store_untouched() -> None:
    inner = MemoryStore()
    faulty = FaultyStore(inner, rate=1.0, after=False)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        faulty.put_new("a", b"body")
    assert inner.get("a") is None
    assert inner.calls["PUT"] == 0  # never reached the store
    assert faulty.stats == {"before put_new": 1}


def test_a_fault_after_the_call_applied_it_but_lost_the_reply() -> None:
    inner = MemoryStore()
    faulty = FaultyStore(inner, rate=1.0, before=False)
    with pytest.raises(StoreUnavailable) as err:
        faulty.put_new("a", b"body")
    assert (err.value.operation, err.value.key) == ("put_new", "a")
    stored = inner.get("a")
    assert stored is not None and stored.body == b"body"  # the write happened
    assert inner.put_new("a", b"body") is None  # so the caller's retry finds it there
    with pytest.raises(StoreUnavailable):
        faulty.delete("a")
    assert not inner.exists("a")
    assert faulty.stats == {"after put_new": 1, "after delete": 1}


def test_rate_zero_never_faults_and_passes_everything_through() -> None:
    inner = MemoryStore(bucket="docs")
    faulty = FaultyStore(inner)
    assert set(workload(faulty)) == {"ok"}
    assert faulty.stats == {}
    assert inner.calls == {"PUT": 80, "GET": 40, "DELETE": 40, "LIST": 40}
    assert faulty.bucket == "docs"
    assert faulty.credential_values() == []


def test_faults_come_at_about_the_rate_asked_on_both_sides() -> None:
    faulty = FaultyStore(MemoryStore(), rate=0.25, seed=7)
    outcomes = workload(faulty, 1000)
    faults = sum(faulty.stats.values())
    assert outcomes.count("StoreUnavailable") == faults
    assert 180 <= faults <= 320
    sides = Counter(name.split()[0] for name in faulty.stats.elements())
    assert sides["before"] > 50 and sides["after"] > 50


def test_the_same_seed_replays_the_same_faults() -> None:
    first, second, other = (FaultyStore(MemoryStore(), rate=0.3, seed=s) for s in (1, 1, 2))
    assert workload(first) == workload(second)
    assert first.stats == second.stats
    assert workload(other) != workload(first)


def test_operations_limits_where_faults_land() -> None:
    inner = MemoryStore()
    faulty = FaultyStore(inner, rate=1.0, operations=frozenset({"replace"}))
    etag = faulty.put_new("a", b"1")
    assert etag is not None and faulty.get("a") is not None
    with pytest.raises(StoreUnavailable):
        faulty.replace("a", b"2", etag)
    assert set(faulty.stats) <= {"before replace", "after replace"}
    with pytest.raises(ValueError, match="unknown operations"):
        FaultyStore(inner, operations=frozenset({"PUT"}))


def test_fail_at_fails_exactly_the_nth_write_after_applying_it() -> None:
    inner = MemoryStore()
    faulty = FaultyStore(inner, fail_at=3, when="after", exc_type=ProcessDied)
    faulty.put("v1", b"1")
    faulty.get("v1")  # reads are not counted
    faulty.put_new("raw", b"2")
    with pytest.raises(ProcessDied):
        faulty.copy("v1", "latest")
    assert inner.exists("latest")  # applied, then the process died
    faulty.delete("raw")  # the 4th write: the fault was one point only
    assert not inner.exists("raw")
    assert faulty.writes == 4
    assert faulty.stats == {"after copy": 1}


def test_fail_at_before_stops_the_nth_write_from_happening() -> None:
    inner = MemoryStore()
    faulty = FaultyStore(inner, fail_at=2, exc_type=ProcessDied)
    faulty.put("a", b"1")
    with pytest.raises(ProcessDied, match="injected fault before replace b"):
        faulty.replace("b", b"2", None)
    assert not inner.exists("b")
    assert faulty.stats == {"before replace": 1}


def test_listing_faults_fire_when_iteration_starts_or_after_the_last_key() -> None:
    inner = MemoryStore()
    for key in ("k1", "k2"):
        inner.put(key, b"")
    listing = FaultyStore(inner, rate=1.0, after=False).list_keys("k")
    with pytest.raises(StoreUnavailable):
        next(listing)
    seen: list[str] = []
    with pytest.raises(StoreUnavailable):
        seen.extend(FaultyStore(inner, rate=1.0, before=False).list_keys("k"))
    assert seen == ["k1", "k2"]


def test_a_one_level_listing_faults_as_the_other_listings() -> None:
    inner = MemoryStore()
    for key in ("in/a", "in/sub/b"):
        inner.put(key, b"")
    with pytest.raises(StoreUnavailable, match="before list_level in/"):
        next(FaultyStore(inner, rate=1.0, after=False).list_level("in/"))
    assert inner.calls["LIST"] == 0  # never reached the store
    seen: list[Listed] = []
    faulty = FaultyStore(inner, rate=1.0, before=False, operations=frozenset({"list_level"}))
    with pytest.raises(StoreUnavailable):
        seen.extend(faulty.list_level("in/"))
    assert seen == [ListedObject("in/a", 0), ListedPrefix("in/sub/")]
    assert list(faulty.list_keys("in/")) == ["in/a", "in/sub/b"]  # only list_level was asked to fail
    assert faulty.stats == {"after list_level": 1}


@pytest.mark.parametrize(
    "kwargs",
    [{"rate": 1.5}, {"rate": -0.1}, {"rate": 0.5, "before": False, "after": False}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="rate"):
        FaultyStore(MemoryStore(), **kwargs)
