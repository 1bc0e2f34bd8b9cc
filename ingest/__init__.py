"""ingest: article files in, versioned JSON documents in S3-compatible storage out.

The public API is what this module re-exports (``__all__``); everything else may change between
releases. One way through the package::

    sources/ -> reader -> parsers/ (Draft) -> compose -> prepare (pure) -> commit -> stores/
                                                              archive (read side) <- stores/
    api (one call per command), runner (sweeps), cli (flags and printing)
"""

from __future__ import annotations

__version__ = "0.1.0"

from ingest.api import (
    backfill,
    committer_for,
    delivery_log,
    dispatched_files,
    dispatcher,
    formats,
    ingest_files,
    ingest_stream,
    notify,
    open_sources,
    open_store,
    preview_files,
    render,
    rendition_formats,
    retry_failed,
    rollback,
    serve_metrics,
    start_worker,
    status,
)
from ingest.archive import Archive
from ingest.commit import Committer
from ingest.errors import (
    Check,
    ConfigError,
    IngestError,
    InputError,
    InvalidDocument,
    NotFound,
    ParseError,
    ReadError,
    RunError,
    SourceChanged,
    SourceError,
    StoreConflict,
    StoreCorrupt,
    StoreDenied,
    StoreError,
    StoreUnavailable,
)
from ingest.models import (
    Block,
    Boilerplate,
    ChangeEntry,
    Content,
    Document,
    ModuleHeading,
    RelatedLink,
    SourceInfo,
    VersionRecord,
)
from ingest.outcome import Outcome
from ingest.prepare import Prepared, prepare
from ingest.report import LogFormat, Reporter, RunReport, setup_logging
from ingest.runner import Reload, Watching, run_once, watch
from ingest.settings import Settings, SourceSettings, load_settings
from ingest.status import SourceStatus, Status
from ingest.stores import FaultyStore, MemoryStore, S3Store, Store
from ingest.web import serve
from ingest.webhooks import Delivery, Notified, Notifier

__all__ = [
    "Archive",
    "Block",
    "Boilerplate",
    "ChangeEntry",
    "Check",
    "Committer",
    "ConfigError",
    "Content",
    "Delivery",
    "Document",
    "FaultyStore",
    "IngestError",
    "InputError",
    "InvalidDocument",
    "LogFormat",
    "MemoryStore",
    "ModuleHeading",
    "NotFound",
    "Notified",
    "Notifier",
    "Outcome",
    "ParseError",
    "Prepared",
    "ReadError",
    "RelatedLink",
    "Reload",
    "Reporter",
    "RunError",
    "RunReport",
    "S3Store",
    "Settings",
    "SourceChanged",
    "SourceError",
    "SourceInfo",
    "SourceSettings",
    "SourceStatus",
    "Status",
    "Store",
    "StoreConflict",
    "StoreCorrupt",
    "StoreDenied",
    "StoreError",
    "StoreUnavailable",
    "VersionRecord",
    "Watching",
    "__version__",
    "backfill",
    "committer_for",
    "delivery_log",
    "dispatched_files",
    "dispatcher",
    "formats",
    "ingest_files",
    "ingest_stream",
    "load_settings",
    "notify",
    "open_sources",
    "open_store",
    "prepare",
    "preview_files",
    "render",
    "rendition_formats",
    "retry_failed",
    "rollback",
    "run_once",
    "serve",
    "serve_metrics",
    "setup_logging",
    "start_worker",
    "status",
    "watch",
]
