"""The storage seam: the one interface the pipeline, runner, sources and CLI are typed against.

``Store`` is a ``typing.Protocol``: a backend satisfies it by shape, without inheriting anything. Its
semantics are S3's, because S3 is what production runs on: objects are whole byte strings under flat keys,
each with an ETag; writes can be made conditional (``If-None-Match: *`` to create only, ``If-Match`` to
overwrite only what was read), and a lost condition is an answer (``None``/``False``), never an exception.
Failures are ``ingest.errors.StoreError`` subclasses: ``StoreUnavailable`` (transient, retries already
spent), ``StoreDenied`` (terminal: credentials, policy, missing bucket), plain ``StoreError`` otherwise.

Backends: ``s3.S3Store`` (S3 and compatible servers), ``memory.MemoryStore`` (in-process, same
conditions and ETags), and ``faults.FaultyStore`` (wraps either and injects failures). One contract suite,
``tests/stores/test_contract.py``, runs against the memory store and a real SeaweedFS.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class Stored:
    """An object read back: its bytes and its ETag (for ``If-Match``)."""

    body: bytes
    etag: str


@dataclass(frozen=True)
class ListedObject:
    """An object one level under the listed prefix (``Store.list_level``): its full key and size in bytes."""

    key: str
    size: int
    #: When it was last written (epoch seconds), when the backend says; not part of equality.
    modified: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ListedPrefix:
    """A sub-prefix one level under the listed prefix (S3's ``CommonPrefixes``): the listed prefix plus one
    more segment, ending in ``/`` (``in/2024/`` under ``in/``). What lies below it was not listed."""

    key: str


#: One entry of ``Store.list_level``.
Listed = ListedObject | ListedPrefix


class Store(Protocol):
    """Objects in one bucket, with S3's conditional writes. Keys are full keys (any prefix included).

    ETags are opaque strings; pass back exactly what a read or write returned. Conditions are checked
    atomically by the backend, so two writers racing on one key cannot both win.
    """

    #: The bucket (or, for the memory store, its name): shown in messages and ``s3://`` locations.
    bucket: str

    def ensure_bucket(self) -> None:
        """Make sure the bucket exists, creating it when missing; fail early (``StoreError``) when storage is
        unreachable or denied. Cheap to call again."""
        ...

    def get(self, key: str) -> Stored | None:
        """The object at ``key`` with its ETag, or ``None`` when there is none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists (a HEAD: the body is not read)."""
        ...

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        """Create ``key`` only if absent (``If-None-Match: *``): the new ETag, or ``None`` when it already
        existed (the existing object is left exactly as it was)."""
        ...

    def replace(self, key: str, body: bytes, etag: str | None, content_type: str = "application/json") -> str | None:
        """Overwrite ``key`` only while it still has ``etag`` (``If-Match``); with ``etag=None``, create it
        only if absent (as ``put_new``). The new ETag, or ``None`` when the condition failed: someone changed
        it, or it is gone (or, with ``None``, it exists). The caller reads it again and decides."""
        ...

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        """Unconditional write, for objects no one else writes (changes-feed batches, run reports)."""
        ...

    def put_file(self, key: str, body: BinaryIO, content_type: str = "application/json") -> None:
        """Unconditional write of a file's bytes, read from ``body`` (seekable, from its start) without
        holding them all: a run report of 100,000 files."""
        ...

    def delete(self, key: str, if_match: str | None = None) -> bool:
        """Remove ``key``; with ``if_match``, only while it still has that ETag.

        ``False`` when the condition failed: the object changed, or is already gone (a missing object has
        no ETag to match; S3 answers 404 and SeaweedFS 412, both reported as ``False``). Without
        ``if_match``, removing what is already gone is ``True``: the key is absent either way.
        """
        ...

    def copy(self, source_key: str, target_key: str, if_match: str | None = None) -> bool:
        """Server-side copy inside the bucket, overwriting ``target_key``; with ``if_match``, only while the
        source still has that ETag. ``False`` when it had changed. A missing source is not a lost condition:
        S3 answers 404 ``NoSuchKey``, raised as ``StoreError`` with ``status == 404``."""
        ...

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (a plain string prefix: ``"a"`` matches ``"ab/c"``), after
        ``start_after``, in the order of ``list_objects``. Lazy: requests are made as it is iterated."""
        ...

    def list_objects(self, prefix: str, start_after: str = "") -> Iterator[tuple[str, int]]:
        """``(key, size in bytes)`` for keys starting with ``prefix`` and sorting after ``start_after``.

        Order is lexical by UTF-8 bytes on S3 and in the memory store. SeaweedFS differs where keys nest:
        it walks folders, so ``a/x`` comes before ``a-b`` (``-`` sorts below ``/``), and a ``start_after``
        equal to a folder name (``a`` with ``a/x`` stored) skips that folder. Page with ``start_after`` only
        over flat folders (``changes/``), where every backend agrees.
        """
        ...

    def list_level(self, prefix: str) -> Iterator[Listed]:
        """One level under ``prefix``, as S3 lists with ``Delimiter="/"``: each key with no ``/`` after
        ``prefix`` as a ``ListedObject``, and each deeper "folder" once, as a ``ListedPrefix`` (``prefix`` up
        to and including the next ``/``), however many keys it holds: what lies below a sub-prefix costs
        nothing to list. ``prefix`` is a plain string prefix, as in ``list_objects``; it normally ends in
        ``/``, and an object named exactly ``prefix`` (a "folder marker") is listed as an object.

        Lazy and paged as ``list_objects`` (one request per page of objects and sub-prefixes together).
        Order is lexical by key, sub-prefixes among the objects, on S3 and in the memory store; SeaweedFS
        pages by walking folders, so ``a/`` can come before ``a-b``. Rely on which entries come, not on
        their order.
        """
        ...

    def credential_values(self) -> list[str]:
        """Secrets in use (access key, secret, token), so output and logs can redact them; never logged."""
        ...
