"""Package-level promises: public API, JSON Schemas current, ids key-safe, corpus accuracy."""

from __future__ import annotations

import json
import types

import pytest

import ingest
from ingest import schema
from ingest.errors import InvalidDocument
from ingest.models import Document
from ingest.pipeline import draft, prepare
from ingest.settings import load_settings
from ingest.versioning import Keys, safe_id
from tests import bench
from tests.conftest import CORPUS, EXAMPLES, need_shared


def test_public_api_is_complete() -> None:
    public = {
        name
        for name, value in vars(ingest).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, types.ModuleType)
    }
    assert public <= set(ingest.__all__)
    assert all(hasattr(ingest, name) for name in ingest.__all__)


def test_json_schemas_are_current() -> None:
    assert schema.stale() == [], "run `make schemas`"


def test_published_schema_requires_the_contract_fields_and_documents_round_trip() -> None:
    published = json.loads((schema.DEFAULT_DIR / "document.schema.json").read_text())
    assert set(published["required"]) >= {"id", "version", "content_sha256", "headline", "body", "source"}
    rules = load_settings(env={}).rules
    for path in EXAMPLES.glob("*.txt"):
        doc = draft(prepare(path.read_bytes(), path.name, rules))
        assert Document.model_validate_json(doc.to_json()) == doc


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
    found, total = bench.score_web(load_settings(env={}).rules).rate(("recirculation", "cta"))
    assert found / total >= 0.99


@pytest.mark.corpus
def test_bbc_corpus_has_no_false_positives() -> None:
    need_shared(CORPUS / "bbc")
    articles, paragraphs, false_positives, examples = bench.score_bbc(load_settings(env={}).rules)
    assert articles == 2225 and paragraphs > 10_000
    assert false_positives == 0, examples[:5]
