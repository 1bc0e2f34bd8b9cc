"""Every storage key ingest writes, built in one place.

Under the configured prefix (fixed: CMSs, scripts and dashboards depend on it)::

    articles/{id}/v{N}.json                   one immutable version, written once with If-None-Match: *
    articles/{id}/latest.json                 the newest version, byte-identical to it
    articles/{id}/v{N}.{format}.json          version N as a rendition (``renditions`` setting: ninjs, ans ...)
    articles/{id}/latest.{format}.json        the newest version's rendition, byte-identical to it
    raw/{id}/v{N}{ext}                        the input file exactly as received
    changes/{time}-{run}-{batch}.jsonl        changes feed: one object per batch, one line per new version
    runs/{run-id}.json                        one report per run
    status/{source}.json                      a source's last sweep, last item, counts by the hour (``ingest status``)
    locks/{hash}.json                         a lease on a group of input files while a run works on them
    backfills/{name}.json                     how far an archive load got (``ingest backfill``)
    webhooks/{name}/cursor.json               how far a webhook endpoint's deliveries got (``ingest notify``)
    webhooks/{name}/log/{time}-{sender}-{n}.jsonl   what was delivered to it: one object per checkpoint

``STORE_FOLDERS`` lists the top-level folders, so an S3 inbox can be refused when it overlaps them.
Pure functions only; the stores do the I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath

#: Every top-level folder ingest writes under its prefix.
STORE_FOLDERS = ("articles", "raw", "changes", "runs", "status", "locks", "backfills", "webhooks")
#: How a changes-feed (or delivery-log) object's name starts: the UTC time it was written, to the microsecond.
_TIME_NAME = "%Y%m%dT%H%M%S%fZ"
#: Content types of archived raw inputs, by extension.
_RAW_TYPES = {".json": "application/json", ".xml": "application/xml", ".txt": "text/plain", ".md": "text/markdown"}


@dataclass(frozen=True)
class Keys:
    """Storage keys of one article under a prefix."""

    prefix: str
    id: str

    def version(self, n: int) -> str:
        return f"{self.prefix}articles/{self.id}/v{n}.json"

    @property
    def latest(self) -> str:
        return f"{self.prefix}articles/{self.id}/latest.json"

    def rendition(self, n: int, fmt: str) -> str:
        """Version ``n`` as the rendition ``fmt`` (a name from ``ingest.renditions.registry``)."""
        return f"{self.prefix}articles/{self.id}/v{n}.{fmt}.json"

    def latest_rendition(self, fmt: str) -> str:
        """The newest version as the rendition ``fmt``."""
        return f"{self.prefix}articles/{self.id}/latest.{fmt}.json"

    def raw(self, n: int, ext: str) -> str:
        return f"{self.prefix}raw/{self.id}/v{n}{ext}"


def raw_extension(file_name: str) -> str:
    """The extension kept on the archived raw input: lowercase, key-safe, at most 16 characters."""
    suffix = PurePath(file_name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,15}", suffix) else ".bin" if suffix else ""


def raw_content_type(ext: str) -> str:
    """The Content-Type an archived raw input is stored with."""
    return _RAW_TYPES.get(ext, "application/octet-stream")


def changes_prefix(prefix: str) -> str:
    """Where the changes feed lives."""
    return f"{prefix}changes/"


def changes_key(prefix: str, written_at: datetime, run_id: str, batch: int) -> str:
    """One changes-feed object. Names sort by write time, so a reader can skip by name (``--since``)."""
    return f"{changes_prefix(prefix)}{written_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{run_id}-{batch:05d}.jsonl"


def changes_start_after(prefix: str, since: datetime) -> str:
    """The listing start point that skips every changes object written before ``since``."""
    return f"{changes_prefix(prefix)}{since.astimezone(UTC):%Y%m%dT%H%M%S}"


def changes_key_time(prefix: str, key: str) -> datetime | None:
    """When a changes-feed object was written, read back from its name; None for a name ingest did not make."""
    name = key.removeprefix(changes_prefix(prefix)) if key.startswith(changes_prefix(prefix)) else ""
    try:
        return datetime.strptime(name[:22], _TIME_NAME).replace(tzinfo=UTC)
    except ValueError:
        return None


def webhook_cursor_key(prefix: str, name: str) -> str:
    """How far the deliveries to webhook endpoint ``name`` got (``ingest.webhooks``)."""
    return f"{prefix}webhooks/{name}/cursor.json"


def webhook_log_prefix(prefix: str, name: str) -> str:
    """Where webhook endpoint ``name``'s delivery log lives."""
    return f"{prefix}webhooks/{name}/log/"


def webhook_log_key(prefix: str, name: str, written_at: datetime, sender: str) -> str:
    """One object of a delivery log; names sort by write time, as the changes feed's do."""
    return f"{webhook_log_prefix(prefix, name)}{written_at.astimezone(UTC):{_TIME_NAME}}-{sender}.jsonl"


def webhook_log_start_after(prefix: str, name: str, since: datetime) -> str:
    """The listing start point that skips every delivery-log object written before ``since``."""
    return f"{webhook_log_prefix(prefix, name)}{since.astimezone(UTC):%Y%m%dT%H%M%S}"


def run_key(prefix: str, run_id: str) -> str:
    """A run report."""
    return f"{prefix}runs/{run_id}.json"


def status_key(prefix: str, source: str) -> str:
    """A source's stored state (``ingest.status``)."""
    return f"{prefix}status/{source}.json"


def lock_key(prefix: str, ref: str) -> str:
    """A lease, named by what it covers (``ref``: a group of input files, ``ingest.claims.shard_for``)."""
    return f"{prefix}locks/{hashlib.sha256(ref.encode()).hexdigest()[:40]}.json"


def backfill_key(prefix: str, name: str) -> str:
    """An archive load's checkpoint; its refusals go beside it, under ``backfills/{name}/``."""
    return f"{prefix}backfills/{name}.json"


def store_folders(prefix: str) -> list[str]:
    """Every top-level folder ingest writes, with the prefix: an inbox must not overlap any."""
    return [f"{prefix}{folder}/" for folder in STORE_FOLDERS]
