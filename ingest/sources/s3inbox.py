"""An S3 inbox: objects under ``s3://bucket/prefix/``, with ``processed/`` and ``failed/`` under it.

Only the top level is input, and only the top level is listed (one level, ``Delimiter="/"``), so a sweep
costs the same however much ``processed/`` holds. Objects under other sub-prefixes are never taken; they
are counted (``Scan.not_taken``), by listing those sub-prefixes, normally absent or small.

An object is complete once it is listed (S3 writes are atomic), so there is no settling; with
``done_marker`` it is taken only once ``<name><done_marker>`` is listed too (an uploader's "this set is
complete"). Moving is a server-side copy conditional on the ETag read (a re-upload landed since is not
copied), then a delete conditional on it too (a re-upload landed after the copy stays): a correction is
never archived unread. The delete only ever happens after the copy succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime

from ingest.errors import Check, ReadError, SourceChanged, StoreError
from ingest.reader import human_size
from ingest.settings import SourceSettings
from ingest.sources import Backlog, Candidate, FailedFile, ReadMemory, Scan, ignored
from ingest.stores.base import Listed, ListedObject, Store

PROCESSED, FAILED = "processed/", "failed/"


class S3Inbox(ReadMemory[str]):  # an object as read: its ETag (a re-upload since is neither moved nor deleted)
    parallel_moves = True  # a move is a copy and a delete request
    def __init__(self, settings: SourceSettings, store: Store) -> None:
        super().__init__()
        self.settings = settings
        self.prefix = settings.inbox_prefix
        #: The inbox's bucket (its own, or the document bucket under another prefix).
        self.store = store

    def scan(self, now: float) -> Scan:
        waiting: list[str] = []
        not_taken: dict[str, int] = {}
        if self.settings.done_marker:  # a marker may be listed before or after its object: know every name
            entries: Iterable[Listed] = list(self.store.list_level(self.prefix))
        else:  # taken as listed, page by page: never the whole listing in memory
            entries = self.store.list_level(self.prefix)
        return Scan(self._ready(entries, waiting, not_taken), waiting, not_taken)

    def _ready(self, entries: Iterable[Listed], waiting: list[str], not_taken: dict[str, int]) -> Iterator[Candidate]:
        marker = self.settings.done_marker
        names = {e.key[len(self.prefix) :] for e in entries if isinstance(e, ListedObject)} if marker else set()
        # Only the top level is listed: processed/ grows with every file ever taken, and is never input.
        for entry in entries:
            if not isinstance(entry, ListedObject):
                sub = entry.key[len(self.prefix) :]
                if sub in (PROCESSED, FAILED) or ignored(sub.rstrip("/")):
                    continue
                count = self._count_below(entry.key)
                if count:
                    not_taken[f"s3://{self.store.bucket}/{entry.key}"] = count
                continue
            key, name = entry.key, entry.key[len(self.prefix) :]
            if not name or ignored(name) or (marker and name.endswith(marker)):
                continue
            if marker and name + marker not in names:
                waiting.append(f"s3://{self.store.bucket}/{key}")  # its uploader has not said it is done
                continue
            yield Candidate(key, name, entry.size, f"s3://{self.store.bucket}/{key}", arrived=entry.modified)

    def _count_below(self, sub_prefix: str) -> int:
        """Objects at any depth under ``sub_prefix`` that would be input at the top level: not hidden or
        temporary, nor under a hidden "folder", nor done markers (``Scan.not_taken``)."""
        marker = self.settings.done_marker
        count = 0
        for key, _size in self.store.list_objects(sub_prefix):
            *folders, name = key[len(sub_prefix) :].split("/")
            if not name or ignored(name) or any(map(ignored, folders)) or (marker and name.endswith(marker)):
                continue
            count += 1
        return count

    def read(self, candidate: Candidate, max_bytes: int, now: float) -> bytes | None:
        if candidate.size > max_bytes:
            reason = f"is {candidate.size} bytes, above the {max_bytes}-byte limit"
            raise ReadError(candidate.display, reason, check=Check.SIZE_LIMIT)
        if self.settings.done_marker is not None:  # read first: the object read is then at least that new
            mark = self.store.get(candidate.ref + self.settings.done_marker)
            if mark is None:
                raise SourceChanged(f"{candidate.display} lost its done marker before it was read")
            self._marked_as[candidate.ref] = mark.etag
        stored = self.store.get(candidate.ref)
        if stored is None:
            return None
        if len(stored.body) > max_bytes:
            raise ReadError(candidate.display, f"grew past the {human_size(max_bytes)} limit", check=Check.SIZE_LIMIT)
        self._read_as[candidate.ref] = stored.etag
        return stored.body

    def done(self, candidate: Candidate, when: datetime) -> str:
        target = self._free_key(f"{self.prefix}{PROCESSED}{when:%Y-%m-%d}/{candidate.name}")
        if self._move(candidate.ref, target):
            self._carry_marker(candidate.ref, target)
        return f"s3://{self.store.bucket}/{target}"

    def fail(self, candidate: Candidate, error: dict[str, str | None], when: datetime) -> str:
        target = self._free_key(f"{self.prefix}{FAILED}{candidate.name}")
        if self._move(candidate.ref, target):
            self._carry_marker(candidate.ref, target)
        name = target.rsplit("/", 1)[-1]
        record = {**error, "source": self.settings.name, "failed_at": when.isoformat(), "file": name}
        self.store.put(target + ".error.json", (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode())
        return f"s3://{self.store.bucket}/{target}"

    def backlog(self, now: float) -> Backlog:
        marker = self.settings.done_marker
        times = []
        for entry in self.store.list_level(self.prefix):
            name = entry.key[len(self.prefix) :]
            if not isinstance(entry, ListedObject) or not name or ignored(name) or (marker and name.endswith(marker)):
                continue
            times.append(min(entry.modified, now) if entry.modified is not None else now)
        return Backlog.of(times)

    def failed_files(self, limit: int) -> tuple[list[FailedFile], int]:
        marker = self.settings.done_marker
        found = [
            (entry.modified or 0.0, entry.key)
            for entry in self.store.list_level(self.prefix + FAILED)
            if isinstance(entry, ListedObject)
            and not entry.key.endswith(".error.json")
            and not (marker and entry.key.endswith(marker))
        ]
        found.sort(reverse=True)
        shown = []
        for _, key in found[:limit]:
            error_file = self.store.get(key + ".error.json")
            name = key.rsplit("/", 1)[-1]
            where = f"s3://{self.store.bucket}/{key}"
            shown.append(FailedFile.of(name, where, error_file.body if error_file else None))
        return shown, len(found)

    def retry_failed(self, names: Collection[str] | None = None, *, dry_run: bool = False) -> list[str]:
        moved = []
        marker = self.settings.done_marker
        for key in list(self.store.list_keys(self.prefix + FAILED)):
            name = key.rsplit("/", 1)[-1]
            if name.endswith(".error.json") or (marker and name.endswith(marker)):
                continue  # a done marker goes back with its file, below
            if names is not None and name not in names:
                continue
            if dry_run:
                moved.append(name)
                continue
            target = self._free_key(self.prefix + name)
            self._move(key, target)
            self.store.delete(key + ".error.json")
            self._carry_marker(key, target)
            moved.append(target.rsplit("/", 1)[-1])  # the name it went back under, as a folder says
        return moved

    def _free_key(self, key: str) -> str:
        """``key``, or ``name-1.ext``, ``name-2.ext``... when taken: a move never overwrites an object."""
        stem, dot, ext = key.rpartition(".") if "." in key.rsplit("/", 1)[-1] else (key, "", "")
        candidate, n = key, 0
        while self.store.exists(candidate):
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        return candidate

    def _move(self, source: str, target: str) -> bool:
        """Copy ``source`` to ``target`` if it is still what was read, then delete it if it still is; whether
        it was deleted (a re-upload that landed after the copy stays for the next run)."""
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
        return self.store.delete(source, if_match=etag)

    def _carry_marker(self, source: str, target: str) -> None:
        """Move the object's done marker beside it, if it is still the marker seen when the object was read:
        a newer one announces a newer upload and stays."""
        marker = self.settings.done_marker
        if marker is None:
            return
        etag = self._marked_as.pop(source, None)
        try:
            if not self.store.copy(source + marker, target + marker, if_match=etag):
                return
        except StoreError as exc:
            if exc.status != 404:
                raise
            return
        self.store.delete(source + marker, if_match=etag)
