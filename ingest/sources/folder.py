"""A local drop folder: files arrive at its top level; ``processed/`` and ``failed/`` live inside it.

A file is taken once settled (size and modification time unchanged for ``settle_seconds``), never
while a writer may still be appending. Hidden and temporary names are never taken. A symlink that
points outside the folder is refused (moved to ``failed/`` as the link itself, never followed).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from ingest.errors import Check, ReadError, SourceChanged, SourceError
from ingest.reader import read_file
from ingest.settings import SourceSettings
from ingest.sources import Candidate, Scan, ignored

PROCESSED, FAILED = "processed", "failed"


class Folder:
    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        self.root = Path(settings.location)
        # What each file was when read: (device, inode, size, mtime). A file replaced since is not moved.
        self._read_as: dict[str, tuple[int, int, int, int]] = {}

    def scan(self, now: float) -> Scan:
        if not self.root.is_dir():
            raise SourceError(f"source {self.settings.name}: {self.root} is not a folder")
        real_root = self.root.resolve()
        ready: list[Candidate] = []
        waiting: list[str] = []
        with os.scandir(self.root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if ignored(entry.name) or entry.is_dir(follow_symlinks=False):
                    continue
                path = self.root / entry.name
                is_link = entry.is_symlink()
                if is_link and not self._inside(path, real_root):
                    refusal = "is a symlink pointing outside the drop folder; it is not followed"
                    ready.append(Candidate(str(path), entry.name, 0, str(path), refusal=refusal))
                    continue
                try:
                    info = entry.stat()
                except FileNotFoundError:
                    continue  # taken by another run between listing and looking
                if not entry.is_file():  # a FIFO, socket or device: never opened
                    ready.append(Candidate(str(path), entry.name, 0, str(path), refusal="is not a regular file"))
                    continue
                if now - info.st_mtime < self.settings.settle_seconds:
                    waiting.append(str(path))
                    continue
                ready.append(Candidate(str(path), entry.name, info.st_size, str(path), is_link=is_link))
        return Scan(ready, waiting)

    @staticmethod
    def _inside(path: Path, real_root: Path) -> bool:
        target = path.resolve()
        return target.is_relative_to(real_root) and target.is_file()

    def read(self, candidate: Candidate, max_bytes: int, now: float) -> bytes | None:
        path = Path(candidate.ref)
        if not path.exists() and not path.is_symlink():
            return None
        # Checked again at read time: a link swapped in after the scan must not lead outside.
        if candidate.is_link and not self._inside(path, self.root.resolve()):
            reason = "is a symlink pointing outside the drop folder; it is not followed"
            raise ReadError(candidate.display, reason, check=Check.REFUSED)
        try:
            data, info = read_file(path, max_bytes, follow_symlinks=candidate.is_link)
        except ReadError as exc:
            if exc.check == Check.MISSING:
                return None
            raise
        self._read_as[candidate.ref] = _identity(info)
        return data

    def done(self, candidate: Candidate, when: datetime) -> str:
        return str(self._move(candidate, self.root / PROCESSED / when.strftime("%Y-%m-%d")))

    def fail(self, candidate: Candidate, error: dict[str, str | None], when: datetime) -> str:
        target = self._move(candidate, self.root / FAILED)
        record = {**error, "source": self.settings.name, "failed_at": when.isoformat(), "file": target.name}
        error_file = target.with_name(target.name + ".error.json")
        error_file.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return str(target)

    def retry_failed(self) -> list[str]:
        failed = self.root / FAILED
        if not failed.is_dir():
            return []
        moved = []
        for path in sorted(failed.iterdir()):
            if path.name.endswith(".error.json") or not (path.is_file() or path.is_symlink()):
                continue
            target = _free_name(self.root / path.name)
            os.replace(path, target)
            path.with_name(path.name + ".error.json").unlink(missing_ok=True)
            moved.append(target.name)
        return moved

    def _move(self, candidate: Candidate, folder: Path) -> Path:
        read_as = self._read_as.pop(candidate.ref, None)
        try:
            if read_as is not None and _identity(os.stat(candidate.ref)) != read_as:
                raise SourceChanged(f"{candidate.display} changed after it was read")
            folder.mkdir(parents=True, exist_ok=True)
            target = _free_name(folder / candidate.name)
            # os.replace renames the directory entry: a symlink moves as a link, its target is untouched.
            os.replace(candidate.ref, target)
        except FileNotFoundError:
            raise SourceChanged(f"{candidate.display} was removed after it was read") from None
        except OSError as exc:
            raise SourceError(
                f"source {self.settings.name}: cannot move {candidate.display} into {folder}: {exc.strerror or exc}"
            ) from exc
        return target


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _free_name(path: Path) -> Path:
    """``path``, or ``name-1.ext``, ``name-2.ext``... when taken: a move never overwrites a file."""
    if not path.exists() and not path.is_symlink():
        return path
    n = 1
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
        n += 1
