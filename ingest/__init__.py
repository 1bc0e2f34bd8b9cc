"""ingest: article files in, versioned JSON documents in S3-compatible storage out.

The public API is what this module re-exports; everything else may change between releases.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ingest.errors import (
    ConfigError,
    IngestError,
    InputError,
    InvalidDocument,
    ParseError,
    ReadError,
    RunError,
    StoreConflict,
    StoreError,
)
from ingest.models import Block, Boilerplate, Content, Document, ModuleHeading, RelatedLink, SourceInfo
from ingest.pipeline import Outcome, ingest_files, prepare
from ingest.report import RunReport
from ingest.runner import run_once
from ingest.settings import Settings, SourceSettings, load_settings

__all__ = [
    "Block",
    "Boilerplate",
    "ConfigError",
    "Content",
    "Document",
    "IngestError",
    "InputError",
    "InvalidDocument",
    "ModuleHeading",
    "Outcome",
    "ParseError",
    "ReadError",
    "RelatedLink",
    "RunError",
    "RunReport",
    "Settings",
    "SourceInfo",
    "SourceSettings",
    "StoreConflict",
    "StoreError",
    "__version__",
    "ingest_files",
    "load_settings",
    "prepare",
    "run_once",
]
