"""An in-process ``Store`` with S3's semantics, shipped so every layer above storage can be tested fast.

Like httpx's ``MockTransport``: a fake that honours the real contract (``tests/stores/test_contract.py``
runs the same cases against it and against SeaweedFS). ETags are S3's for single-part uploads (the quoted
MD5 hex of the body), conditions are checked and applied under one lock, so racing writers behave as they
do against S3, and ``calls`` counts requests by HTTP method so tests can hold a request budget
(``listings`` tells the LIST requests apart).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from ingest.errors import StoreError
from ingest.stores.base import Listed, ListedObject, ListedPrefix, Stored

if TYPE_CHECKING:
    from ingest.stores.base import Store

#: Keys per LIST request, as S3 pages them (so ``calls["LIST"]`` matches what S3 would be sent).
PAGE_SIZE = 1000


def etag_of(body: bytes) -> str:
    """S3's ETag of a single-part upload: the MD5 hex of the body, in double quotes."""
    return f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'


def _holds(held: Stored | None, if_match: str) -> bool:
    """Whether ``If-Match: if_match`` holds: a missing object has no ETag to match. S3 accepts an ETag with or
    without its quotes, and ``*`` for "any object"."""
    return held is not None and (if_match == "*" or if_match.strip('"') == held.etag.strip('"'))


class MemoryStore:
    """Objects in a dict, with S3's conditional writes and ETags. Thread-safe; nothing persists.

    Content types are accepted and dropped: nothing in the ``Store`` API reads them back.
    """

    def __init__(self, bucket: str = "memory", *, page_size: int = PAGE_SIZE) -> None:
        self.bucket = bucket
        #: Keys (and sub-prefixes) per LIST request; smaller only so tests can page past a page cheaply.
        self.page_size = page_size
        #: Requests made, by HTTP method: "GET", "HEAD", "PUT", "DELETE", "LIST", "COPY" (a copy is a PUT
        #: on the wire; it is counted apart so a test can tell a server-side move from an upload).
        self.calls: Counter[str] = Counter()
        #: LIST requests by their ``(Prefix, Delimiter)``: ``("in/", "/")`` for one level of ``in/`` (``list_level``),
        #: ``("in/", "")`` for everything under it; so a test can tell which prefixes were listed, and how.
        self.listings: Counter[tuple[str, str]] = Counter()
        self._objects: dict[str, Stored] = {}
        #: When each object was last written (epoch seconds), as S3's LastModified; ``clock`` tells the time.
        self._modified: dict[str, float] = {}
        self.clock: Callable[[], float] = time.time
        self._lock = threading.Lock()

    def credential_values(self) -> list[str]:
        """None: there are no secrets to redact."""
        return []

    def ensure_bucket(self) -> None:
        """Nothing to create: the bucket is this object."""

    def get(self, key: str) -> Stored | None:
        with self._lock:
            self.calls["GET"] += 1
            return self._objects.get(key)

    def exists(self, key: str) -> bool:
        with self._lock:
            self.calls["HEAD"] += 1
            return key in self._objects

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        return self.replace(key, body, None, content_type)

    def replace(self, key: str, body: bytes, etag: str | None, content_type: str = "application/json") -> str | None:
        with self._lock:
            self.calls["PUT"] += 1
            held = self._objects.get(key)
            if (held is not None) if etag is None else not _holds(held, etag):
                return None
            return self._write(key, body)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        with self._lock:
            self.calls["PUT"] += 1
            self._write(key, body)

    def put_file(self, key: str, body: BinaryIO, content_type: str = "application/json") -> None:
        body.seek(0)
        self.put(key, body.read(), content_type)

    def delete(self, key: str, if_match: str | None = None) -> bool:
        with self._lock:
            self.calls["DELETE"] += 1
            held = self._objects.get(key)
            if if_match and not _holds(held, if_match):
                return False
            self._objects.pop(key, None)
            self._modified.pop(key, None)
            return True

    def copy(self, source_key: str, target_key: str, if_match: str | None = None) -> bool:
        with self._lock:
            self.calls["COPY"] += 1
            held = self._objects.get(source_key)
            if held is None:  # as S3: a missing source is an error, not a lost condition
                what = f"COPY {source_key} -> {target_key}"
                message = f"{self.bucket} {what}: NoSuchKey (HTTP 404)"
                raise StoreError(message, operation=what, key=source_key, status=404)
            if if_match and not _holds(held, if_match):
                return False
            self._objects[target_key] = held
            self._modified[target_key] = self.clock()
            return True

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        for key, _size in self.list_objects(prefix, start_after):
            yield key

    def list_objects(self, prefix: str, start_after: str = "") -> Iterator[tuple[str, int]]:
        # Page by page, each read under the lock, as S3 does: writes between pages show up in later pages.
        after = start_after
        while True:
            with self._lock:
                self.calls["LIST"] += 1
                self.listings[prefix, ""] += 1
                found = sorted(k for k in self._objects if k.startswith(prefix) and k > after)[: self.page_size]
                page = [(k, len(self._objects[k].body)) for k in found]
            yield from page
            if len(page) < self.page_size:
                return
            after = page[-1][0]

    def list_level(self, prefix: str) -> Iterator[Listed]:
        after, below = "", None  # the last entry listed; the sub-prefix it was, whose keys are all listed
        while True:
            with self._lock:
                self.calls["LIST"] += 1
                self.listings[prefix, "/"] += 1
                page, truncated = self._level_page(prefix, after, below)
            yield from page
            if not truncated:
                return
            after = page[-1].key
            below = after if isinstance(page[-1], ListedPrefix) else None

    def _level_page(self, prefix: str, after: str, below: str | None) -> tuple[list[Listed], bool]:
        """One page of ``list_level``, and whether more follow. Called under the lock."""
        keys = sorted(
            k for k in self._objects if k.startswith(prefix) and k > after and not (below and k.startswith(below))
        )
        page: list[Listed] = []
        for key in keys:
            slash = key.find("/", len(prefix))
            entry: Listed = ListedObject(key, len(self._objects[key].body), self._modified.get(key))
            if slash != -1:
                # A sub-prefix's keys sort together, right after it: it is new only at the first of them.
                if page and page[-1].key == key[: slash + 1]:
                    continue
                entry = ListedPrefix(key[: slash + 1])
            if len(page) == self.page_size:
                return page, True
            page.append(entry)
        return page, False

    def _write(self, key: str, body: bytes) -> str:
        stored = Stored(body=bytes(body), etag=etag_of(body))
        self._objects[key] = stored
        self._modified[key] = self.clock()
        return stored.etag


if TYPE_CHECKING:  # mypy proves MemoryStore keeps to the protocol
    _: type[Store] = MemoryStore
