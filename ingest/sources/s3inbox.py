"""An S3 inbox: objects under ``s3://bucket/prefix/``, with ``processed/`` and ``failed/`` under it.

An object is complete once it is listed (S3 writes are atomic), so there is no settling. Moving is a
server-side copy followed by a delete, and the delete only ever happens after the copy succeeded.
"""

from __future__ import annotations

import json
from datetime import datetime

from ingest.errors import Check, ReadError, SourceChanged, StoreError
from ingest.reader import human_size
from ingest.settings import SourceSettings
from ingest.sources import Candidate, Scan, ignored
from ingest.stores.base import Store

PROCESSED, FAILED = "processed/", "failed/"


class S3Inbox:
    def __init__(self, settings: SourceSettings, store: Store) -> None:
        self.settings = settings
        prefix = settings.location[len("s3://") :].partition("/")[2]
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        #: The inbox's bucket (its own, or the document bucket under another prefix).
        self.store = store
        # ETag of each object as read: a re-upload since then is neither moved nor deleted.
        self._read_as: dict[str, str] = {}

    def scan(self, now: float) -> Scan:
        ready = []
        for key, size in self.store.list_objects(self.prefix):
            name = key[len(self.prefix) :]
            # Like a drop folder: only the top level; processed/, failed/ and other "folders" are not input.
            if "/" in name or not name or ignored(name):
                continue
            ready.append(Candidate(key, name, size, f"s3://{self.store.bucket}/{key}"))
        return Scan(ready, [])

    def read(self, candidate: Candidate, max_bytes: int, now: float) -> bytes | None:
        if candidate.size > max_bytes:
            reason = f"is {candidate.size} bytes, above the {max_bytes}-byte limit"
            raise ReadError(candidate.display, reason, check=Check.SIZE_LIMIT)
        stored = self.store.get(candidate.ref)
        if stored is None:
            return None
        if len(stored.body) > max_bytes:
            raise ReadError(candidate.display, f"grew past the {human_size(max_bytes)} limit", check=Check.SIZE_LIMIT)
        self._read_as[candidate.ref] = stored.etag
        return stored.body

    def done(self, candidate: Candidate, when: datetime) -> str:
        target = self._free_key(f"{self.prefix}{PROCESSED}{when:%Y-%m-%d}/{candidate.name}")
        self._move(candidate.ref, target)
        return f"s3://{self.store.bucket}/{target}"

    def fail(self, candidate: Candidate, error: dict[str, str | None], when: datetime) -> str:
        target = self._free_key(f"{self.prefix}{FAILED}{candidate.name}")
        self._move(candidate.ref, target)
        name = target.rsplit("/", 1)[-1]
        record = {**error, "source": self.settings.name, "failed_at": when.isoformat(), "file": name}
        self.store.put(target + ".error.json", (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode())
        return f"s3://{self.store.bucket}/{target}"

    def retry_failed(self) -> list[str]:
        moved = []
        for key in list(self.store.list_keys(self.prefix + FAILED)):
            name = key.rsplit("/", 1)[-1]
            if name.endswith(".error.json"):
                continue
            self._move(key, self._free_key(self.prefix + name))
            self.store.delete(key + ".error.json")
            moved.append(name)
        return moved

    def _free_key(self, key: str) -> str:
        """``key``, or ``name-1.ext``, ``name-2.ext``... when taken: a move never overwrites an object."""
        stem, dot, ext = key.rpartition(".") if "." in key.rsplit("/", 1)[-1] else (key, "", "")
        candidate, n = key, 0
        while self.store.exists(candidate):
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        return candidate

    def _move(self, source: str, target: str) -> None:
        etag = self._read_as.pop(source, None)
        try:
            copied = self.store.copy(source, target, if_match=etag)
        except StoreError as exc:
            if exc.status != 404:
                raise
            raise SourceChanged(f"s3://{self.store.bucket}/{source} was removed after it was read") from None
        if not copied:
            raise SourceChanged(f"s3://{self.store.bucket}/{source} changed after it was read")
        # Conditional too: a re-upload that landed after our copy stays for the next run.
        self.store.delete(source, if_match=etag)
