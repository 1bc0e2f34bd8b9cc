"""Leases in the document store, so overlapping runs never take the same input file.

A lease is one object, ``{prefix}locks/{sha256(ref)[:40]}.json`` (``ingest.keys.lock_key``), holding
``{"run_id", "file", "expires_at"}``. Runs lease groups of files (``ingest.claims``: ``ref`` is the folder or
inbox and a group number), never one lease per file. ``ref`` names where the files are (an absolute path,
an ``s3://`` URL), never the source that lists them, so two sources, or a configured source and a
``--source`` for the same place, lease the same files under the same key. It is created with
``If-None-Match: *``; a run that finds another run's lease expired takes it over with ``If-Match`` on the
ETag it read, so of two runs racing for an expired lease one wins. The holder renews it (``If-Match``
again) before moving files once half its time has passed, so a run whose lease expired and was taken over
learns it and leaves the files to the run that holds it now; it is released (deleted, ``If-Match``) only
while it is still ours, and only on a best-effort basis: a lease that cannot be released expires. A lost
reply (the write applied, its retry then losing its condition) is recognised by reading the lease back: it
holds exactly what we wrote.

Leases use only the ``Store`` protocol, so they live beside the stores. The clock is passed in, so tests
move time instead of sleeping; it must return timezone-aware times (a naive one raises ``TypeError``
rather than making every lease look expired).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ingest.clock import Clock, utcnow
from ingest.errors import StoreError
from ingest.keys import lock_key

if TYPE_CHECKING:
    from ingest.stores.base import Store, Stored

# The runner's logger: a takeover is an event of the run, and operators already follow that stream.
log = logging.getLogger("ingest.run")


@dataclass
class Leases:
    """The leases one run holds, in ``store`` under ``prefix``."""

    store: Store
    prefix: str
    #: Written into each lease, so a run recognises its own (and re-takes it after a retried write).
    run_id: str
    #: How long a lease protects a file without being renewed; a run that dies frees its files after this.
    seconds: float
    #: The time now, timezone-aware: injected so tests move time instead of sleeping.
    clock: Clock = utcnow
    #: ETag of each lease we hold, by key: the condition for renewing and releasing it.
    _etags: dict[str, str] = field(default_factory=dict)

    def key(self, ref: str) -> str:
        """Where the lease on ``ref`` (a file's absolute path or ``s3://`` URL) lives."""
        return lock_key(self.prefix, ref)

    def acquire(self, ref: str) -> bool:
        """Take the lease on ``ref``: True when we now hold it (new, ours already, or expired and taken over)."""
        key = self.key(ref)
        etag = self.store.put_new(key, self._body(ref))
        if etag is None:
            etag = self._take_over(key, ref)
        if etag is None:
            return False
        self._etags[key] = etag
        return True

    def renew(self, ref: str) -> bool:
        """Extend our lease; False when another run took it over meanwhile (then the file is not ours)."""
        key = self.key(ref)
        body = self._body(ref)
        etag = self.store.replace(key, body, self._etags.get(key))
        if etag is None:
            held = self.store.get(key)  # lost the condition: to another run, or to our own applied write?
            etag = held.etag if held is not None and held.body == body else None
        if etag is None:
            self._etags.pop(key, None)
            return False
        self._etags[key] = etag
        return True

    def release(self, ref: str) -> None:
        """Delete our lease, best effort: one another run holds now is left alone, and one that cannot be
        deleted (storage trouble after the work is done) simply expires."""
        key = self.key(ref)
        etag = self._etags.pop(key, None)
        if etag is None:
            return
        try:
            self.store.delete(key, if_match=etag)
        except StoreError as exc:
            log.warning("could not release the lease on %s (%s); it expires in %.0f s", ref, exc, self.seconds)

    def _body(self, ref: str) -> bytes:
        expires = self.clock() + timedelta(seconds=self.seconds)
        return json.dumps({"run_id": self.run_id, "file": ref, "expires_at": expires.isoformat()}).encode()

    def _take_over(self, key: str, ref: str) -> str | None:
        held = self.store.get(key)
        if held is None:  # released between our two requests: try once more
            return self.store.put_new(key, self._body(ref))
        holder, expires = _read(held)
        ours = holder.get("run_id") == self.run_id
        expired = expires is None or expires <= self.clock()  # an unreadable lease protects nothing
        if not (ours or expired):
            return None
        if expired and not ours:
            log.warning("taking over the expired lease on %s (run %s)", ref, holder.get("run_id", "?"))
        return self.store.replace(key, self._body(ref), held.etag)


def _read(held: Stored) -> tuple[dict[str, object], datetime | None]:
    """A lease's fields and expiry time; ``({}, None)`` when it is not a lease we can read."""
    try:
        holder = json.loads(held.body)
        expires = datetime.fromisoformat(holder["expires_at"])
    except (ValueError, KeyError, TypeError):
        return {}, None
    if expires.tzinfo is None:
        return {}, None
    return holder, expires
