"""A reader's place in the changes feed, kept so that an object that shows up late is still read.

The feed is one object per batch, ``changes/{time}-{run}-{batch}.jsonl``, named by the time its writer took
*before* the PUT. A listing in name order is therefore not the order objects became visible: a writer whose
PUT is slow or retried (up to ``retry_max_seconds``), or whose clock is behind another machine's, makes an
object whose name sorts before names already listed. A reader that only remembers "the last name I read"
(``StartAfter=last``) never sees it.

So a ``FeedCursor`` remembers a window, not a point::

    position   the newest object read whole
    done       the objects read whole whose names fall inside the window: less than ``lag`` before
               ``position`` (by the time in their names)
    partial    an object read only up to a line (a reader stopped inside it), and how many lines
    floor      nothing at or before this name is ever read (a reader told to start at a time)

Each pass lists from ``lag`` before ``position`` (``start_after``) and reads every listed object that is not in
``done``: new objects, and late ones inside the window. ``done`` is pruned as the window moves, so its size is
the number of feed objects written in ``lag`` (with batches of 100 every second, 300 names for 5 minutes). An
object that becomes visible more than ``lag`` after objects named later than it were read is missed: ``lag``
(``feed_lag_seconds``, default 300 s) must cover a writer's longest retry (``retry_max_seconds``, 60 s) plus the
clock skew between writers. That is the trade: a longer lag costs a longer re-listing each pass, never a
re-read (listing a window of 300 names is one LIST request).

Why not a lease on the feed, or a sequence number per object: both need a writer to coordinate with every
other writer on one key, which the feed avoids on purpose (each batch writes one object of its own, no
condition). The window needs nothing from the writers.

Pure: no I/O and no clock; ``ingest.webhooks`` stores a cursor per endpoint (written conditionally, merged with
``merge`` when another sender moved it meanwhile), ``ingest.archive.Archive.follow`` keeps one in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ingest.keys import changes_key_time, changes_prefix, changes_start_after


@dataclass
class FeedCursor:
    """How far a reader got in the changes feed under ``prefix`` (keys are full keys, prefix included)."""

    prefix: str
    #: How long after a later-named object an object may still become visible and be read.
    lag: timedelta
    #: The newest feed object read whole ("" before the first).
    position: str = ""
    #: Feed objects read whole that a listing from ``start_after()`` can still return.
    done: set[str] = field(default_factory=set)
    #: ``(key, lines)``: the first ``lines`` lines of ``key`` are read, the rest are not.
    partial: tuple[str, int] | None = None
    #: Nothing at or before this key is read (a reader told to start at a time); "" for the whole feed.
    floor: str = ""

    def start_after(self) -> str:
        """Where the next listing starts: ``lag`` before ``position`` (and never before ``floor``)."""
        start = self.floor
        if self.position:
            written = changes_key_time(self.prefix, self.position)
            # A name ingest did not make carries no time: then no window, only the name itself.
            mark = self.position if written is None else changes_start_after(self.prefix, written - self.lag)
            start = max(start, mark)
        return start

    def skip(self, key: str) -> int | None:
        """How many lines of the listed object ``key`` are already read; None when all of them are."""
        if key <= self.start_after() or key in self.done:
            return None
        if self.partial is not None and self.partial[0] == key:
            return self.partial[1]
        return 0

    def read(self, key: str, lines: int | None = None) -> None:
        """Record ``key`` as read whole, or (with ``lines``) its first ``lines`` lines."""
        if lines is not None:
            self.partial = (key, lines)
            return
        if self.partial is not None and self.partial[0] == key:
            self.partial = None
        self.done.add(key)
        self.position = max(self.position, key)
        self._prune()

    def merge(self, other: FeedCursor) -> None:
        """Take in what another reader of the same feed recorded (a cursor it stored meanwhile): together, both
        read what either read. Sound because each cursor's promise is "everything up to my ``position`` is in my
        ``done`` or before my window", and the union keeps both promises."""
        self.position = max(self.position, other.position)
        self.floor = max(self.floor, other.floor)
        self.done |= other.done
        mine, theirs = self.partial, other.partial
        if mine is None or (theirs is not None and theirs[0] == mine[0] and theirs[1] > mine[1]):
            self.partial = theirs
        self._prune()
        if self.partial is not None and self.skip(self.partial[0]) is None:
            self.partial = None

    def _prune(self) -> None:
        start = self.start_after()
        self.done = {key for key in self.done if key > start}

    # ---- stored form: names relative to changes/, so a cursor reads the same under any prefix

    def to_json(self) -> dict[str, Any]:
        cut = len(changes_prefix(self.prefix))
        return {
            "position": self.position[cut:],
            "done": sorted(key[cut:] for key in self.done),
            "partial": None if self.partial is None else {"name": self.partial[0][cut:], "lines": self.partial[1]},
            "floor": self.floor[cut:],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], prefix: str, lag: timedelta) -> FeedCursor:
        """A cursor from ``to_json``'s form; a ``KeyError``/``TypeError``/``ValueError`` when it is not one."""
        base = changes_prefix(prefix)

        def full(name: object) -> str:
            if not isinstance(name, str):
                raise TypeError(f"not a name: {name!r}")
            return f"{base}{name}" if name else ""

        partial = data["partial"]
        return cls(
            prefix,
            lag,
            position=full(data["position"]),
            done={full(name) for name in data["done"]},
            partial=None if partial is None else (full(partial["name"]), int(partial["lines"])),
            floor=full(data["floor"]),
        )
