"""Storage behaviour against the real SeaweedFS the suite starts: keys, versions, budgets, feed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.models import Document
from ingest.pipeline import Committer, ingest_files, prepare
from ingest.settings import Settings
from ingest.stores.s3 import S3Store
from ingest.versioning import Keys
from tests.conftest import SEED, RequestCounter, need_shared, read_feed

pytestmark = pytest.mark.s3

STORY = "Bridge Closes for Repairs\n\nThe bridge closes on Friday.\n\nREAD MORE Ferry Times\n\nBuses will divert.\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def doc_at(store: S3Store, key: str) -> Document:
    stored = store.get(key)
    assert stored is not None, key
    return Document.model_validate_json(stored.body)


def test_seed_is_stored_as_v1_latest_and_raw_then_unchanged(
    tmp_path: Path, settings: Settings, store: S3Store, requests: RequestCounter
) -> None:
    seed = need_shared(SEED)
    (first,) = ingest_files([seed], settings, store)
    assert (first.outcome, first.version) == ("created", 1)
    keys = Keys(settings.prefix, "000_a02b289d76dca1f3")
    assert first.key == keys.version(1)
    v1, latest, raw = store.get(keys.version(1)), store.get(keys.latest), store.get(keys.raw(1, ".txt"))
    assert v1 is not None and latest is not None and raw is not None
    assert latest.body == v1.body  # byte-identical
    assert raw.body == seed.read_bytes()
    doc = Document.model_validate_json(v1.body)
    assert (doc.version, doc.action, len(doc.body), len(doc.related_links)) == (1, "created", 18, 8)
    assert doc.source.raw_key == keys.raw(1, ".txt")
    requests.reset()
    (again,) = ingest_files([seed], settings, store)
    assert (again.outcome, again.version) == ("unchanged", 1)
    assert requests.calls == {"GET": 1}  # budget: one read, no write


def test_new_article_costs_at_most_four_requests_plus_one_feed_object(
    tmp_path: Path, settings: Settings, store: S3Store, requests: RequestCounter
) -> None:
    paths = [write(tmp_path, f"story-{i}.txt", STORY.replace("Friday", f"day {i}")) for i in range(5)]
    requests.reset()
    outcomes = ingest_files(paths, settings, store)
    assert [o.outcome for o in outcomes] == ["created"] * 5
    # 5 articles x (GET latest + PUT version + PUT raw + PUT latest) + 1 batched changes object
    assert requests.calls == {"GET": 5, "PUT": 5 * 3 + 1}
    entries = read_feed(store, settings.prefix)
    assert sorted((e.id, e.version, e.action) for e in entries) == [(f"story-{i}", 1, "created") for i in range(5)]


def test_content_change_makes_v2_with_summary_and_history(
    tmp_path: Path, settings: Settings, store: S3Store, requests: RequestCounter
) -> None:
    path = write(tmp_path, "bridge.txt", STORY)
    ingest_files([path], settings, store)
    path.write_text(STORY.replace("Buses will divert.", "Buses will divert via Mill Street.\n\nA new paragraph."))
    requests.reset()
    (outcome,) = ingest_files([path], settings, store)
    assert (outcome.outcome, outcome.version) == ("updated", 2)
    assert requests.calls == {"GET": 1, "PUT": 4}
    keys = Keys(settings.prefix, "bridge")
    v2 = doc_at(store, keys.latest)
    assert (v2.version, v2.action, v2.previous_version) == (2, "updated", 1)
    assert v2.change_summary is not None
    assert (v2.change_summary.paragraphs_changed, v2.change_summary.paragraphs_added) == (1, 1)
    assert [h.version for h in v2.history] == [1]
    assert doc_at(store, keys.version(1)).version == 1  # v1 untouched
    assert store.get(keys.raw(2, ".txt")) is not None


def test_correction_records_note_editor_and_a_note_alone_records_nothing(
    tmp_path: Path, settings: Settings, store: S3Store
) -> None:
    path = write(tmp_path, "bridge.txt", STORY)
    ingest_files([path], settings, store)
    (same,) = ingest_files([path], settings, store, note="typo", editor="Ann")
    assert same.outcome == "unchanged"
    assert same.message == "note not recorded: content unchanged"
    path.write_text(STORY.replace("Friday", "Saturday"))
    (fixed,) = ingest_files([path], settings, store, note="Closure day was wrong", editor="Ann Lee")
    assert (fixed.outcome, fixed.version) == ("updated", 2)
    doc = doc_at(store, Keys(settings.prefix, "bridge").latest)
    assert doc.action == "corrected"
    assert doc.correction is not None
    assert (doc.correction.note, doc.correction.editor) == ("Closure day was wrong", "Ann Lee")
    assert [(e.version, e.action) for e in sorted(read_feed(store, settings.prefix), key=lambda e: e.version)] == [
        (1, "created"),
        (2, "corrected"),
    ]


def test_resend_of_superseded_content_is_stale_and_rollback_restores_it(
    tmp_path: Path, settings: Settings, store: S3Store, requests: RequestCounter
) -> None:
    path = write(tmp_path, "bridge.txt", STORY)
    ingest_files([path], settings, store)
    path.write_text(STORY.replace("Friday", "Saturday"))
    ingest_files([path], settings, store, note="fixed day", editor="Ann")
    path.write_text(STORY)  # the wire re-sends the original
    requests.reset()
    (stale,) = ingest_files([path], settings, store)
    assert (stale.outcome, stale.version) == ("stale", 2)
    assert requests.calls == {"GET": 1}
    keys = Keys(settings.prefix, "bridge")
    assert doc_at(store, keys.latest).version == 2  # the correction survives
    out = Committer(store, settings.prefix).rollback("bridge", 1, "editor asked", "Bo")
    assert (out.outcome, out.version) == ("updated", 3)
    v3 = doc_at(store, keys.latest)
    assert (v3.action, v3.rolled_back_to) == ("rolled_back", 1)
    assert v3.content_sha256 == doc_at(store, keys.version(1)).content_sha256


def test_failed_files_do_not_take_good_ones_down(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    good = write(tmp_path, "good.txt", STORY)
    empty = write(tmp_path, "empty.txt", "")
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    outcomes = ingest_files([empty, good, binary, tmp_path / "missing.txt"], settings, store)
    assert [o.outcome for o in outcomes] == ["failed", "created", "failed", "failed"]
    assert all(o.error is not None and str(o.path) in str(o.error) for o in outcomes if o.outcome == "failed")


def test_outcome_json_has_the_contract_fields(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    (outcome,) = ingest_files([write(tmp_path, "a.txt", STORY)], settings, store)
    data = outcome.as_json()
    assert {"path", "id", "version", "outcome", "key"} <= set(data)
    assert json.loads(json.dumps(data))["outcome"] == "created"


def test_parse_then_store_gives_the_same_content_hash(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    path = write(tmp_path, "h.txt", STORY)
    expected = prepare(path.read_bytes(), path.name, settings.rules).content_sha256
    ingest_files([path], settings, store)
    assert doc_at(store, Keys(settings.prefix, "h").latest).content_sha256 == expected


def fm(version: int, body: str, note: str = "") -> str:
    extra = f"note: {note}\neditor: Desk\n" if note else ""
    return f"---\nid: wire-42\nversion: {version}\n{extra}---\nMarkets Close Higher\n\n{body}\n"


def test_an_input_older_than_the_stored_version_is_stale(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    path = tmp_path / "any-name.md"
    path.write_text(fm(3, "Shares rose 2 per cent."))
    assert ingest_files([path], settings, store)[0].outcome == "created"
    path.write_text(fm(2, "Shares rose 1 per cent."))  # a delayed older revision from the wire
    (late,) = ingest_files([path], settings, store)
    assert (late.outcome, late.version) == ("stale", 1)
    assert late.message == "input version 2 is older than stored 3"
    path.write_text(fm(4, "Shares rose 2.5 per cent.", note="Corrects the rise"))
    (newer,) = ingest_files([path], settings, store)
    assert (newer.outcome, newer.version) == ("updated", 2)
    doc = doc_at(store, Keys(settings.prefix, "wire-42").latest)
    assert (doc.action, doc.source.input_version) == ("corrected", "4")
    assert doc.correction is not None and (doc.correction.note, doc.correction.editor) == ("Corrects the rise", "Desk")


def test_files_of_one_article_in_one_batch_keep_their_order(tmp_path: Path, settings: Settings, store: S3Store) -> None:
    for n in range(3):
        first, second = tmp_path / f"a{n}" / f"dup{n}.txt", tmp_path / f"b{n}" / f"dup{n}.txt"
        for path, word in ((first, "first"), (second, "second")):
            path.parent.mkdir()
            path.write_text(f"Duplicate\n\nThe {word} revision.\n")
        outcomes = ingest_files([first, second], settings, store)
        assert [(o.outcome, o.version) for o in outcomes] == [("created", 1), ("updated", 2)]
        latest = doc_at(store, Keys(settings.prefix, f"dup{n}").latest)
        assert latest.body[0].text == "The second revision."


def test_many_revisions_of_one_article_in_one_batch_all_land_in_order(
    tmp_path: Path, settings: Settings, store: S3Store, requests: RequestCounter
) -> None:
    paths = []
    for n in range(70):  # more than the race budget, were each to re-read latest.json
        path = tmp_path / f"r{n:02d}" / "live.txt"
        path.parent.mkdir()
        path.write_text(f"Live Blog\n\nUpdate number {n}.\n")
        paths.append(path)
    requests.reset()
    outcomes = ingest_files(paths, settings, store)
    assert [o.version for o in outcomes] == list(range(1, 71))
    assert doc_at(store, Keys(settings.prefix, "live").latest).body[0].text == "Update number 69."
    assert requests.total < 70 * 5  # linear, not quadratic
