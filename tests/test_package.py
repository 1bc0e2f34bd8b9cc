"""Package-level promises: public API, JSON Schemas current, ids key-safe, corpus accuracy."""

from __future__ import annotations

import ast
import json
import types
from datetime import UTC, datetime

import pytest

import ingest
from ingest import schema
from ingest.errors import InvalidDocument
from ingest.keys import Keys
from ingest.models import Document
from ingest.prepare import prepare, preview
from ingest.rules import load_rules
from ingest.settings import ModuleSettings
from ingest.versioning import safe_id
from tests import bench
from tests.conftest import CORPUS, EXAMPLES, ROOT, need_shared

RULES = load_rules(ModuleSettings())
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


#: What ingest means to be public: the names a library user or another front end calls.
PUBLIC = [
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


def test_public_api_is_what_is_meant_to_be_public_sorted() -> None:
    assert ingest.__all__ == PUBLIC
    assert sorted(ingest.__all__) == ingest.__all__
    exported = {
        name
        for name, value in vars(ingest).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, types.ModuleType)
    }
    assert exported | {"__version__"} == set(ingest.__all__)  # nothing public by accident


def _imports(module: str) -> set[str]:
    """The ``ingest`` modules a package module imports (ast: what the source says, not what loads)."""
    tree = ast.parse((ROOT / "ingest" / f"{module.replace('.', '/')}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "ingest" or name.startswith("ingest.")}


def test_the_cli_imports_only_the_public_api_and_the_settings() -> None:
    assert _imports("cli") <= {"ingest", "ingest.settings"}


def test_settings_know_neither_the_splitter_nor_the_parsers() -> None:
    assert not {m for m in _imports("settings") if m.startswith(("ingest.split", "ingest.parsers", "ingest.rules"))}


def test_the_pipeline_depends_on_the_store_protocol_not_on_s3() -> None:
    for module in ("commit", "archive", "runner", "sources.__init__", "sources.s3inbox", "prepare"):
        assert "ingest.stores.s3" not in _imports(module), module


def test_json_schemas_are_current() -> None:
    assert schema.stale() == [], "run `make schemas`"


def test_published_schema_requires_the_contract_fields_and_documents_round_trip() -> None:
    published = json.loads((schema.DEFAULT_DIR / "document.schema.json").read_text())
    assert set(published["required"]) >= {"id", "version", "content_sha256", "headline", "body", "source"}
    for path in EXAMPLES.glob("*.txt"):
        doc = preview(prepare(path.read_bytes(), path.name, RULES, received_at=T0), T0)
        assert Document.model_validate_json(doc.to_json()) == doc


def test_times_the_input_states_keep_its_offset_times_ingest_records_are_utc_and_the_docs_say_which() -> None:
    data = (
        b"---\nid: t1\ndates:\n  published: 2026-11-23T09:00:00+02:00\n  updated: 2026-11-23T10:30:00+02:00\n"
        b"embargoed: 2026-11-23T12:00:00-05:00\n---\nHeadline\n\nBody.\n"
    )
    stored = json.loads(preview(prepare(data, "t.md", RULES, received_at=T0), T0).to_json())
    assert (stored["published_at"], stored["updated_at"], stored["embargoed"]) == (
        "2026-11-23T09:00:00+02:00",  # the newsroom's local publication time, as the input gave it
        "2026-11-23T10:30:00+02:00",
        "2026-11-23T12:00:00-05:00",
    )
    assert stored["created_at"] == stored["source"]["received_at"] == "2026-11-24T08:00:00Z"
    published = json.loads((schema.DEFAULT_DIR / "document.schema.json").read_text())["properties"]
    for name in ("published_at", "updated_at", "embargoed"):
        assert "in the input's own UTC offset" in published[name]["description"], name
    assert "(UTC)" in published["created_at"]["description"]
    readme = (ROOT / "README.md").read_text().splitlines()
    [row] = [line for line in readme if line.startswith("| `published_at`, `updated_at` |")]
    assert "in the input's own UTC offset" in row
    [times] = [line for line in readme if line.startswith("**Times.**")]
    assert "UTC" in times  # the paragraph under the document table that says which is which


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("story-1", "story-1"),
        ("../../etc/passwd", "etc-passwd"),
        ("/abs/path", "abs-path"),
        ("a..b", "a.b"),
        ("ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ("naïve café", "naive-cafe"),
        ("x" * 300, "x" * 200),
        ("with\\backslash", "with-backslash"),
        ("‥／evil", "evil"),
    ],
)
def test_ids_cannot_escape_their_key(raw: str, expected: str) -> None:
    result = safe_id(raw, "f.txt")
    assert result == expected
    assert ".." not in result and "/" not in result
    assert Keys("p/", result).version(1).startswith(f"p/articles/{result}/")


@pytest.mark.parametrize("raw", ["..", "/", "...", "日本語"])
def test_ids_with_nothing_usable_are_refused(raw: str) -> None:
    with pytest.raises(InvalidDocument, match="no usable id"):
        safe_id(raw, "f.txt")


@pytest.mark.corpus
def test_web_corpus_recall_is_at_least_99_percent() -> None:
    need_shared(CORPUS / "web")
    found, total = bench.score_web(RULES).rate(("recirculation", "cta"))
    assert found / total >= 0.99


@pytest.mark.corpus
def test_bbc_corpus_has_no_false_positives() -> None:
    need_shared(CORPUS / "bbc")
    articles, paragraphs, false_positives, examples = bench.score_bbc(RULES)
    assert articles == 2225 and paragraphs > 10_000
    assert false_positives == 0, examples[:5]
