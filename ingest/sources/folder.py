"""A local drop folder: files arrive at its top level; ``processed/`` and ``failed/`` live inside it.

A file is taken once settled (size and modification time unchanged for ``settle_seconds``, and at
least ``min_age_seconds`` old), never while a writer may still be appending; with ``done_marker``
only once ``<name><done_marker>`` is beside it. It is stored only if what was read is what settled:
the same file (device, inode), size and mtime when listed, when opened and after reading, and still
old enough then; anything else raises ``SourceChanged`` and the file waits for the next run. A move
renames first and checks after: what moved that was not what was read is put back, never archived
unread. Hidden and temporary names are never taken; ``processed`` and ``failed`` that are not folders
stop the source with a ``SourceError``. A symlink that points outside the folder is refused (moved to
``failed/`` as the link itself, never followed). Files in sub-folders other than ``processed`` and
``failed`` are never taken, only counted (``Scan.not_taken``), without following symlinked folders.
"""

from __future__ import annotations

import json
import os
import stat
from array import array
from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path

from ingest.errors import Check, ReadError, SourceChanged, SourceError
from ingest.reader import read_file
from ingest.settings import SourceSettings
from ingest.sources import Backlog, Candidate, FailedFile, ReadMemory, Scan, ignored

PROCESSED, FAILED = "processed", "failed"


class Folder(ReadMemory[tuple[int, int, int, int]]):  # a file as read: (device, inode, size, mtime)
    parallel_moves = False  # a move is a rename (and a few stats)
    def __init__(self, settings: SourceSettings) -> None:
        super().__init__()
        self.settings = settings
        self.root = Path(settings.location)

    def scan(self, now: float) -> Scan:
        """The folder's top level in arrival order (modification time, then name), lazily: only the names
        are held; each file is looked at as the run reaches it, so a folder of 100,000 files costs its
        names, not 100,000 candidates. Arrival order keeps revisions of an article in the order they came,
        whichever batches they fall in."""
        if not self.root.is_dir():
            raise SourceError(f"source {self.settings.name}: {self.root} is not a folder")
        self._check_reserved()
        with os.scandir(self.root) as listing:
            order = _Packed(sorted(_arrival(entry) for entry in listing))
        waiting: list[str] = []
        not_taken: dict[str, int] = {}
        return Scan(self._ready(order, now, waiting, not_taken), waiting, not_taken)

    def _ready(
        self, order: _Packed, now: float, waiting: list[str], not_taken: dict[str, int]
    ) -> Iterator[Candidate]:
        real_root = self.root.resolve()
        marker = self.settings.done_marker
        # temporary names too: a done marker may be any suffix
        present = {_name(key) for key in order} if marker else set()
        for key in order:
            name = _name(key)
            if ignored(name) or name in (PROCESSED, FAILED):
                continue
            path = self.root / name
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue  # taken by another run between listing and looking
            mode = info.st_mode
            if stat.S_ISDIR(mode):  # never input: counted, so the run can say so
                count = self._count_below(path)
                if count:
                    not_taken[str(path) + os.sep] = count
                continue
            if marker and name.endswith(marker):
                continue  # a done marker announces its file; it is never input itself
            if marker and name + marker not in present:
                waiting.append(str(path))  # its writer has not said it is done
                continue
            is_link = stat.S_ISLNK(mode)
            if is_link and not self._inside(path, real_root):
                refusal = "is a symlink pointing outside the drop folder; it is not followed"
                yield Candidate(str(path), name, 0, str(path), refusal=refusal)
                continue
            if is_link:  # what it points to, from here on
                try:
                    info = os.stat(path)
                except FileNotFoundError:
                    continue
            if not stat.S_ISREG(info.st_mode):  # a FIFO, socket or device: never opened
                yield Candidate(str(path), name, 0, str(path), refusal="is not a regular file")
                continue
            if self._too_young(info, now) is not None or not self._announced(path, info):
                waiting.append(str(path))
                continue
            listed, arrived = _identity(info), _arrived(info)
            yield Candidate(str(path), name, info.st_size, str(path), is_link=is_link, listed=listed, arrived=arrived)

    def _count_below(self, folder: Path) -> int:
        """Files at any depth in ``folder`` that would be input at the top level: not hidden or temporary,
        nor in a hidden folder, nor done markers (``Scan.not_taken``). A symlink is counted as one file,
        never followed; a folder that cannot be listed (unreadable, removed meanwhile) counts nothing."""
        marker = self.settings.done_marker
        count, folders = 0, [folder]
        while folders:  # a stack, not recursion: no depth is too deep
            try:
                with os.scandir(folders.pop()) as listing:
                    for entry in listing:
                        if ignored(entry.name) or (marker and entry.name.endswith(marker)):
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(Path(entry.path))
                        else:
                            count += 1
            except OSError:
                continue
        return count

    def _check_reserved(self) -> None:
        """``processed`` and ``failed`` must be folders (or absent): a file there would wedge every move."""
        for name, kept in ((PROCESSED, "stored inputs"), (FAILED, "refused inputs")):
            place = self.root / name
            try:
                mode = os.lstat(place).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(mode):
                what = "a symlink" if stat.S_ISLNK(mode) else "a file" if stat.S_ISREG(mode) else "a special file"
                raise SourceError(
                    f"source {self.settings.name}: {place} is {what}, not a folder: "
                    f"ingest keeps {kept} there; move it away"
                )

    def _too_young(self, info: os.stat_result, now: float) -> str | None:
        """Why a file modified at ``info.st_mtime`` may still be being written at ``now``; None if old enough."""
        settle, min_age = self.settings.settle_seconds, self.settings.min_age_seconds
        age = now - info.st_mtime
        if age >= max(settle, min_age) or settle == min_age == 0:  # 0 and 0: taken at once, clock skew or not
            return None
        key, need = ("min_age_seconds", min_age) if min_age > settle else ("settle_seconds", settle)
        return f"was modified {max(age, 0):.1f} s before it was read, under {key} ({need:g} s)"

    def _announced(self, path: Path, info: os.stat_result) -> bool:
        """Whether the file's done marker (if the source uses them) is there and not older than the file:
        a marker older than its file belongs to an earlier revision, written over since."""
        if self.settings.done_marker is None:
            return True
        try:
            marked = os.lstat(path.with_name(path.name + self.settings.done_marker))
        except FileNotFoundError:
            return False
        return marked.st_mtime_ns >= info.st_mtime_ns

    @staticmethod
    def _inside(path: Path, real_root: Path) -> bool:
        target = path.resolve()
        return target.is_relative_to(real_root) and target.is_file()

    def read(self, candidate: Candidate, max_bytes: int, now: float) -> bytes | None:
        """The file's bytes, only if they are the whole of what settled (else ``SourceChanged``)."""
        self._read_as.pop(candidate.ref, None)
        self._marked_as.pop(candidate.ref, None)
        path = Path(candidate.ref)
        if candidate.is_link and not path.is_symlink():
            return None  # gone since it was listed (a plain file that is gone shows as missing when opened)
        # Checked again at read time: a link swapped in after the scan must not lead outside.
        if candidate.is_link and not self._inside(path, self.root.resolve()):
            reason = "is a symlink pointing outside the drop folder; it is not followed"
            raise ReadError(candidate.display, reason, check=Check.REFUSED)
        # A link is moved as itself: what a move must find is the link as it was when its target was read.
        link = _entry(path) if candidate.is_link else None
        try:
            data, opened = read_file(path, max_bytes, follow_symlinks=candidate.is_link)
        except ReadError as exc:
            if exc.check == Check.MISSING:
                return None
            raise
        self._check_whole(candidate, data, opened, now)
        if link is not None and _entry(path) != link:
            raise SourceChanged(f"{candidate.display} changed while it was read (the link was replaced)")
        self._read_as[candidate.ref] = link or _identity(opened)
        if self.settings.done_marker is not None:
            marked = _entry(path.with_name(path.name + self.settings.done_marker))
            if marked is not None:
                self._marked_as[candidate.ref] = marked
        return data

    def _check_whole(self, candidate: Candidate, data: bytes, opened: os.stat_result, now: float) -> None:
        """Raise ``SourceChanged`` unless what was read is what settled: the same file, size and mtime as
        listed, as opened and after reading (the path still naming it), and old enough at read time."""
        name, read_as = candidate.display, _identity(opened)
        if candidate.listed is not None and read_as != candidate.listed:
            raise SourceChanged(f"{name} changed after it was listed ({_difference(candidate.listed, read_as)})")
        # Same inode as opened, so this is the opened file's status now: a write during the read shows here.
        after = _entry(candidate.ref, follow=candidate.is_link)
        if after != read_as:
            raise SourceChanged(f"{name} changed while it was read ({_difference(read_as, after)})")
        if len(data) != opened.st_size:
            raise SourceChanged(f"{name} changed while it was read ({len(data)} bytes read of {opened.st_size})")
        too_young = self._too_young(opened, now)
        if too_young is not None:
            raise SourceChanged(f"{name} {too_young}: it may still be being written")
        if not self._announced(Path(candidate.ref), opened):
            raise SourceChanged(f"{name} lost its done marker, or was written again after it, while it was read")

    def done(self, candidate: Candidate, when: datetime) -> str:
        return str(self._move(candidate, self.root / PROCESSED / when.strftime("%Y-%m-%d")))

    def fail(self, candidate: Candidate, error: dict[str, str | None], when: datetime) -> str:
        target = self._move(candidate, self.root / FAILED)
        record = {**error, "source": self.settings.name, "failed_at": when.isoformat(), "file": target.name}
        error_file = target.with_name(target.name + ".error.json")
        error_file.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return str(target)

    def backlog(self, now: float) -> Backlog:
        if not self.root.is_dir():
            raise SourceError(f"source {self.settings.name}: {self.root} is not a folder")
        marker = self.settings.done_marker

        def times() -> Iterator[float]:
            with os.scandir(self.root) as listing:
                for entry in listing:
                    name = entry.name
                    if ignored(name) or name in (PROCESSED, FAILED) or (marker and name.endswith(marker)):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            continue  # never input (counted by a run as not taken)
                        yield min(_arrived(entry.stat(follow_symlinks=False)), now)
                    except FileNotFoundError:
                        continue  # taken meanwhile

        try:
            return Backlog.of(times())
        except OSError as exc:
            raise SourceError(f"source {self.settings.name}: cannot list {self.root}: {exc.strerror or exc}") from exc

    def failed_files(self, limit: int) -> tuple[list[FailedFile], int]:
        failed = self.root / FAILED
        marker = self.settings.done_marker
        found: list[tuple[float, str]] = []
        try:
            with os.scandir(failed) as listing:
                for entry in listing:
                    name = entry.name
                    if name.endswith(".error.json") or (marker and name.endswith(marker)) or entry.is_dir():
                        continue
                    try:
                        found.append((entry.stat(follow_symlinks=False).st_mtime, name))
                    except FileNotFoundError:
                        continue
        except FileNotFoundError:
            return [], 0
        except OSError as exc:
            raise SourceError(f"source {self.settings.name}: cannot list {failed}: {exc.strerror or exc}") from exc
        found.sort(reverse=True)
        shown = []
        for _, name in found[:limit]:
            try:
                error_file: bytes | None = (failed / f"{name}.error.json").read_bytes()
            except OSError:
                error_file = None
            shown.append(FailedFile.of(name, str(failed / name), error_file))
        return shown, len(found)

    def retry_failed(self, names: Collection[str] | None = None, *, dry_run: bool = False) -> list[str]:
        failed = self.root / FAILED
        if not failed.is_dir():
            return []
        moved = []
        marker = self.settings.done_marker
        for path in sorted(failed.iterdir()):
            if path.name.endswith(".error.json") or not (path.is_file() or path.is_symlink()):
                continue
            if marker and path.name.endswith(marker):
                continue  # goes back with its file, below
            if names is not None and path.name not in names:
                continue
            if dry_run:
                moved.append(path.name)
                continue
            target = _free_name(self.root / path.name)
            os.replace(path, target)
            path.with_name(path.name + ".error.json").unlink(missing_ok=True)
            if marker and path.with_name(path.name + marker).exists():
                os.replace(path.with_name(path.name + marker), target.with_name(target.name + marker))
            moved.append(target.name)
        return moved

    def _move(self, candidate: Candidate, folder: Path) -> Path:
        read_as = self._read_as.pop(candidate.ref, None)
        if read_as is None and candidate.refusal is None and not candidate.is_link:
            read_as = candidate.listed  # refused unread (too large, unreadable): still only what was listed
        try:
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
        # Moved first, checked after: a check before the rename would leave a window in which a correction
        # renamed over the input is archived unread. Whatever moved that was not read goes back.
        if read_as is not None and _entry(target) != read_as:
            back = self._put_back(candidate, target)
            where = "" if back == Path(candidate.ref) else f" (put back as {back.name}: its name was taken meanwhile)"
            raise SourceChanged(f"{candidate.display} changed after it was read{where}")
        self._carry_marker(candidate, target)
        return target

    def _put_back(self, candidate: Candidate, moved: Path) -> Path:
        """Return ``moved`` to the folder under the candidate's name, or a free name beside it, never over
        a file: a hard link fails rather than replace what a writer put there meanwhile."""
        home = place = Path(candidate.ref)
        try:
            while True:
                try:
                    os.link(moved, place, follow_symlinks=False)
                except FileExistsError:
                    place = _free_name(home)
                    continue
                except OSError:  # no hard links here (FAT, some network shares): a free name, then rename
                    place = _free_name(home)
                    os.replace(moved, place)
                    return place
                os.unlink(moved)
                return place
        except OSError as exc:
            raise SourceError(
                f"source {self.settings.name}: {candidate.display} changed after it was read, "
                f"and {moved} cannot be put back: {exc.strerror or exc}"
            ) from exc

    def _carry_marker(self, candidate: Candidate, target: Path) -> None:
        """Move the file's done marker beside it: left behind, it would announce the next file of that name.
        A marker written since the file was read announces a newer file: it goes back (unless yet another
        marker is there already)."""
        marked_as = self._marked_as.pop(candidate.ref, None)
        if self.settings.done_marker is None:
            return
        home = self.root / (candidate.name + self.settings.done_marker)
        moved = target.with_name(target.name + self.settings.done_marker)
        try:
            os.replace(home, moved)
            if marked_as is not None and _entry(moved) != marked_as:
                try:
                    os.link(moved, home, follow_symlinks=False)
                    os.unlink(moved)
                except FileExistsError:
                    os.unlink(moved)
                except OSError:  # no hard links here: back by rename, only if the name is still free
                    if _entry(home) is None:
                        os.replace(moved, home)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SourceError(
                f"source {self.settings.name}: cannot move the done marker of {candidate.display}: "
                f"{exc.strerror or exc}"
            ) from exc


def _arrival(entry: os.DirEntry[str]) -> bytes:
    """A file's place in arrival order as one bytes object that sorts as (mtime, name): the modification
    time in nanoseconds, offset to be unsigned, in 8 big-endian bytes, then the name as the filesystem
    spells it. One small object per file instead of a tuple, an int and a str: a listing of 100,000 files
    costs about 6 MB rather than 18 while it is sorted and gone through."""
    try:
        stamp = entry.stat(follow_symlinks=False).st_mtime_ns
    except FileNotFoundError:  # gone already: its place does not matter
        stamp = 0
    return (stamp + _EPOCH_OFFSET).to_bytes(8, "big") + os.fsencode(entry.name)


_EPOCH_OFFSET = 1 << 63  # so that times before 1970 (negative) sort before those after


class _Packed:
    """Sorted arrival keys packed into one buffer while a sweep goes through them: 100,000 keys hold about
    2 MB here instead of 7 MB as separate bytes objects (which are freed once packed)."""

    def __init__(self, keys: list[bytes]) -> None:
        self._ends = array("Q")
        self._blob = bytearray()
        for key in keys:
            self._blob += key
            self._ends.append(len(self._blob))
        keys.clear()

    def __iter__(self) -> Iterator[bytes]:
        start = 0
        for end in self._ends:
            yield bytes(self._blob[start:end])
            start = end


def _name(key: bytes) -> str:
    return os.fsdecode(key[8:])


def _arrived(info: os.stat_result) -> float:
    """When a file came into the folder, as near as a stat tells: its mtime, or its ctime when later (a copy
    that kept an old mtime, ``cp -p`` or ``rsync -a``, or a rename into the folder, still changes the ctime)."""
    return max(info.st_mtime, info.st_ctime)


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _entry(path: Path | str, *, follow: bool = False) -> tuple[int, int, int, int] | None:
    """The identity of what ``path`` names now (the link itself unless ``follow``); None when nothing."""
    try:
        return _identity(os.stat(path, follow_symlinks=follow))
    except FileNotFoundError:
        return None


def _difference(before: tuple[int, int, int, int], after: tuple[int, int, int, int] | None) -> str:
    """How a file's identity changed, in words for the log line."""
    if after is None:
        return "removed"
    if before[:2] != after[:2]:
        return "replaced by another file"
    if before[2] != after[2]:
        return f"size {before[2]} -> {after[2]} bytes"
    return "modified again"


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
