"""Which run may take which input file: shard leases, a few requests per sweep instead of three per file.

A source's files fall into ``SHARDS`` groups by a hash of their name. A sweep leases the groups of the files
it listed (one lease per group, ``ingest.stores.leases``, all requested side by side), takes the files of the
groups it holds in listing order, renews the groups only when half their lease has passed, and releases them
(side by side again) when the sweep ends. So two overlapping runs never take the same file (a file's group
has one holder at a time), several runs on one source split it between them instead of racing file by file,
and a sweep of 2,000 files costs 3 x 16 lease requests, not 3 x 2,000.

A group is named by where the files are (the folder's absolute path, the inbox's ``s3://`` URL) and its
number, never by the source that lists them, like the per-file leases this replaces. ``SHARDS`` is fixed
in code, not configurable: runs that disagreed on it would lease different names for the same file.
At most ``SHARDS`` runs work on one source at the same time; a run that dies holds its groups until their
leases expire (``lease_seconds``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from ingest.sources import Candidate
from ingest.stores.leases import Leases

#: Lease groups per source. Part of the lease layout: every run must use the same number.
SHARDS = 16


def where(candidate: Candidate) -> str:
    """Where a file is (absolute path, ``s3://`` URL), whichever source lists it."""
    return candidate.display if candidate.display.startswith("s3://") else os.path.abspath(candidate.ref)


def shard_of(candidate: Candidate) -> str:
    """The lease group of a file: its folder (or inbox) and a number from its name."""
    return shard_for(where(candidate))


@functools.lru_cache(maxsize=8192)  # a file's group is asked for several times a batch
def shard_for(place: str) -> str:
    """The lease group of the file at ``place`` (an absolute path or ``s3://`` URL)."""
    folder, _, name = place.rpartition("/")
    number = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % SHARDS
    return f"{folder}/#shard-{number:02d}"


class ShardClaims:
    """The lease groups one sweep holds. Not thread-safe: one sweep, one thread, uses it."""

    def __init__(self, leases: Leases, pool: ThreadPoolExecutor) -> None:
        self.leases = leases
        self.pool = pool
        #: Each group we hold, with when its lease was last written (by ``leases.clock``).
        self._held: dict[str, datetime] = {}
        self._refused: set[str] = set()

    def claim(self, candidates: Sequence[Candidate]) -> tuple[list[Candidate], int]:
        """The candidates this sweep may take, in their order, and how many another run holds."""
        wanted = sorted({shard_of(c) for c in candidates} - self._held.keys() - self._refused)
        random.Random(self.leases.run_id).shuffle(wanted)  # runs started together split the groups
        for shard, got in zip(wanted, self.pool.map(self.leases.acquire, wanted), strict=True):
            if got:
                self._held[shard] = self.leases.clock()
            else:
                self._refused.add(shard)
        mine = [c for c in candidates if shard_of(c) in self._held]
        return mine, len(candidates) - len(mine)

    def keep(self, candidates: Iterable[Candidate]) -> set[str]:
        """The groups of ``candidates`` still ours, renewing those past half their lease first (a run that
        lost one to a takeover leaves its files to the run holding it now)."""
        shards = {shard_of(c) for c in candidates} & self._held.keys()
        half = timedelta(seconds=self.leases.seconds / 2)
        now = self.leases.clock()
        stale = [s for s in shards if now - self._held[s] >= half]
        for shard, ok in zip(stale, self.pool.map(self.leases.renew, stale), strict=True):
            if ok:
                self._held[shard] = now
            else:
                del self._held[shard]
                shards.discard(shard)
        return shards

    def release(self) -> None:
        """Give every group back (best effort: one that cannot be released expires)."""
        held, self._held = list(self._held), {}
        self._refused.clear()
        list(self.pool.map(self.leases.release, held))
