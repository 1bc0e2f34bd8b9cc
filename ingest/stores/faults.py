"""A ``Store`` wrapper that fails on purpose, shipped so crash and outage handling can be tested anywhere.

After dlt's dummy destination, which fails jobs by probability. Two ways to fail, usable together:

* **By chance**: each call fails with probability ``rate``, either *before* it reaches the inner store
  (nothing happened) or *after* it was applied (the reply was lost: the write happened, but the caller sees
  an error; a retry must recognise the write as its own). Seeded, so a failing run replays exactly, as long
  as calls arrive in the same order (one thread).
* **At one point**: the ``fail_at``-th write (``put``, ``put_new``, ``replace``, ``delete``, ``copy``;
  1-based) fails ``when`` before or after it is applied. With a ``BaseException`` subclass as ``exc_type``
  that stands for the process dying there, which no ``except Exception`` can swallow: a crash test counts
  the writes of a clean run (``writes``), then fails at each one in turn.

Faults are ``StoreUnavailable`` by default: what ``S3Store`` raises once its retries are spent.
``operations`` limits faults (and the ``fail_at`` count) to some methods, by name.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, Literal, TypeVar

from ingest.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from ingest.stores.base import Listed, Store, Stored

T = TypeVar("T")
When = Literal["before", "after"]

#: The methods that change the store: what ``fail_at`` counts.
WRITES = frozenset({"put", "put_new", "replace", "delete", "copy"})
#: Every method a fault can be injected into (``credential_values`` makes no request).
OPERATIONS = WRITES | {"ensure_bucket", "get", "exists", "list_keys", "list_objects", "list_level"}


class FaultyStore:
    """``inner``, with faults injected before or after calls reach it."""

    def __init__(
        self,
        inner: Store,
        *,
        rate: float = 0.0,
        seed: int = 0,
        before: bool = True,
        after: bool = True,
        operations: frozenset[str] | None = None,
        fail_at: int | None = None,
        exc_type: type[BaseException] = StoreUnavailable,
        when: When = "before",
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, not {rate}")
        if rate and not (before or after):
            raise ValueError("a fault rate needs before=True or after=True")
        if unknown := (operations or frozenset()) - OPERATIONS:
            raise ValueError(f"unknown operations: {sorted(unknown)}")
        self.inner = inner
        self.bucket = inner.bucket
        self.rate = rate
        self.operations = operations
        self.fail_at = fail_at
        self.exc_type = exc_type
        self.when: When = when
        sides: tuple[tuple[When, bool], ...] = (("before", before), ("after", after))
        self._sides = [side for side, on in sides if on]
        #: Faults injected, by "<when> <method>", e.g. ``stats["after put_new"]``.
        self.stats: Counter[str] = Counter()
        #: Write calls seen so far (those ``operations`` allows): the count ``fail_at`` is compared with.
        self.writes = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _fault(self, op: str) -> When | None:
        """When this call fails, if it does; counted in ``stats`` as it is decided."""
        with self._lock:
            if self.operations is not None and op not in self.operations:
                return None
            when: When | None = None
            if op in WRITES:
                self.writes += 1
                if self.writes == self.fail_at:
                    when = self.when
            if when is None and self.rate and self._random.random() < self.rate:
                when = self._random.choice(self._sides)
            if when is not None:
                self.stats[f"{when} {op}"] += 1
            return when

    def _error(self, when: When, op: str, key: str) -> BaseException:
        message = f"storage unreachable: injected fault {when} {op} {key}"
        if issubclass(self.exc_type, StoreError):
            return self.exc_type(message, operation=op, key=key)
        return self.exc_type(message)

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        when = self._fault(op)
        if when == "before":
            raise self._error(when, op, key)
        result = fn()
        if when == "after":
            raise self._error(when, op, key)
        return result

    def _listing(self, op: str, prefix: str, open_: Callable[[], Iterator[T]]) -> Iterator[T]:
        # Decided when iteration starts, as the first LIST request is sent; "after" fails once all is listed.
        when = self._fault(op)
        if when == "before":
            raise self._error(when, op, prefix)
        yield from open_()
        if when == "after":
            raise self._error(when, op, prefix)

    def credential_values(self) -> list[str]:
        return self.inner.credential_values()

    def ensure_bucket(self) -> None:
        self._call("ensure_bucket", "", self.inner.ensure_bucket)

    def get(self, key: str) -> Stored | None:
        return self._call("get", key, lambda: self.inner.get(key))

    def exists(self, key: str) -> bool:
        return self._call("exists", key, lambda: self.inner.exists(key))

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        return self._call("put_new", key, lambda: self.inner.put_new(key, body, content_type))

    def replace(self, key: str, body: bytes, etag: str | None, content_type: str = "application/json") -> str | None:
        return self._call("replace", key, lambda: self.inner.replace(key, body, etag, content_type))

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        self._call("put", key, lambda: self.inner.put(key, body, content_type))

    def put_file(self, key: str, body: BinaryIO, content_type: str = "application/json") -> None:
        self._call("put", key, lambda: self.inner.put_file(key, body, content_type))

    def delete(self, key: str, if_match: str | None = None) -> bool:
        return self._call("delete", key, lambda: self.inner.delete(key, if_match))

    def copy(self, source_key: str, target_key: str, if_match: str | None = None) -> bool:
        return self._call("copy", source_key, lambda: self.inner.copy(source_key, target_key, if_match))

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        return self._listing("list_keys", prefix, lambda: self.inner.list_keys(prefix, start_after))

    def list_objects(self, prefix: str, start_after: str = "") -> Iterator[tuple[str, int]]:
        return self._listing("list_objects", prefix, lambda: self.inner.list_objects(prefix, start_after))

    def list_level(self, prefix: str) -> Iterator[Listed]:
        return self._listing("list_level", prefix, lambda: self.inner.list_level(prefix))


if TYPE_CHECKING:  # mypy proves FaultyStore keeps to the protocol
    _: type[Store] = FaultyStore
