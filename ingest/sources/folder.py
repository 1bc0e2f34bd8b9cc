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

from ingest.errors import ConfigError, ReadError
from ingest.reader import read_bytes
from ingest.settings import SourceSettings
from ingest.sources import Candidate, Scan, ignored

PROCESSED, FAILED = "processed", "failed"


class Folder:
    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        self.root = Path(settings.location)

    def scan(self, now: float) -> Scan:
        if not self.root.is_dir():
            raise ConfigError(f"source {self.settings.name}: {self.root} is not a folder")
        real_root = self.root.resolve()
        ready: list[Candidate] = []
        waiting: list[str] = []
        with os.scandir(self.root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if ignored(entry.name) or entry.is_dir(follow_symlinks=False):
                    continue
                path = self.root / entry.name
                if entry.is_symlink():
                    target = path.resolve()
                    if not target.is_relative_to(real_root) or not target.is_file():
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
                ready.append(Candidate(str(path), entry.name, info.st_size, str(path)))
        return Scan(ready, waiting)

    def read(self, candidate: Candidate, max_bytes: int) -> bytes | None:
        path = Path(candidate.ref)
        if not path.exists() and not path.is_symlink():
            return None
        try:
            data = read_bytes(path, max_bytes)
        except ReadError as exc:
            if exc.check == "missing":
                return None
            raise
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
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder / candidate.name)
        # os.replace renames the directory entry: a symlink moves as a link, its target is untouched.
        os.replace(candidate.ref, target)
        return target


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
