"""One input, several documents: a message of items becomes one document per item, through `ingest parse`,
`ingest file` and runs; the file moves only when every item is stored, and a re-send is unchanged per item."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.api import open_sources
from ingest.keys import Keys
from ingest.report import Reporter
from ingest.runner import run_once
from ingest.settings import SourceSettings, load_settings
from ingest.stores.memory import MemoryStore
from tests.conftest import cli
from tests.test_runner import NOW, aged

G2 = "http://iptc.org/std/nar/2006-10-01/"


def item(guid: str, headline: str, body: str) -> str:
    return (
        f'<newsItem guid="{guid}" version="1"><itemMeta><itemClass qcode="ninat:text"/></itemMeta>'
        f"<contentMeta><headline>{headline}</headline></contentMeta><contentSet>"
        f'<inlineXML contenttype="application/xhtml+xml"><html xmlns="http://www.w3.org/1999/xhtml"><body>'
        f"<p>{body}</p></body></html></inlineXML></contentSet></newsItem>"
    )


def message(*items: str) -> str:
    picture = '<newsItem guid="urn:x:pic"><itemMeta><itemClass qcode="ninat:picture"/></itemMeta></newsItem>'
    return f'<newsMessage xmlns="{G2}"><itemSet>{"".join(items)}{picture}</itemSet></newsMessage>'


THREE = message(
    item("urn:wire:ferry", "Ferry Strike Ends", "Crews return on Monday."),
    item("urn:wire:budget", "Budget Passes", "The council voted 31 to 12."),
    item("urn:wire:storm", "Storm Warning Lifted", "Winds eased overnight."),
)


def test_parse_prints_one_document_per_item(tmp_path: Path) -> None:
    path = tmp_path / "bundle.xml"
    path.write_text(THREE)
    out = cli("parse", str(path))
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(d["id"], d["headline"]) for d in docs] == [
        ("wire-ferry", "Ferry Strike Ends"),
        ("wire-budget", "Budget Passes"),
        ("wire-storm", "Storm Warning Lifted"),
    ]


@pytest.mark.s3
def test_file_stores_each_item_and_a_resend_is_unchanged_for_every_one(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = tmp_path / "bundle.xml"
    path.write_text(THREE)
    first = cli("file", "--json", str(path), env=cli_env)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert [(r["path"], r["id"], r["outcome"]) for r in rows] == [
        (f"{path}#1", "wire-ferry", "created"),
        (f"{path}#2", "wire-budget", "created"),
        (f"{path}#3", "wire-storm", "created"),
    ]
    again = cli("file", str(path), env=cli_env)
    assert again.stdout.count("unchanged") == 3


def test_a_run_moves_the_file_once_every_item_is_stored_and_archives_it_per_item(tmp_path: Path) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "bundle.xml").write_text(THREE)
    aged(drop / "bundle.xml")
    settings = load_settings({"prefix": "t/"}, env={}).model_copy(
        update={"sources": [SourceSettings(name="drop", location=str(drop))]}
    )
    report = run_once(settings, store, open_sources(settings), Reporter("text", out=io.StringIO()), clock=lambda: NOW)
    assert [(f.path, f.outcome) for f in report.files] == [
        (f"{drop / 'bundle.xml'}#{n}", "created") for n in (1, 2, 3)
    ]
    assert {f.moved_to for f in report.files} == {str(drop / "processed" / NOW.strftime("%Y-%m-%d") / "bundle.xml")}
    for article in ("wire-ferry", "wire-budget", "wire-storm"):
        raw = store.get(Keys("t/", article).raw(1, ".xml"))
        assert raw is not None and raw.body == THREE.encode()  # each item archives the message it came in


def test_an_item_that_breaks_a_rule_sends_the_file_to_failed_and_the_others_are_stored(tmp_path: Path) -> None:
    store = MemoryStore()
    drop = tmp_path / "drop"
    drop.mkdir()
    broken = message(item("urn:wire:ok", "Fine Story", "A paragraph."), item("urn:wire:empty", "", ""))
    (drop / "mixed.xml").write_text(broken)
    aged(drop / "mixed.xml")
    settings = load_settings({"prefix": "t/"}, env={}).model_copy(
        update={"sources": [SourceSettings(name="drop", location=str(drop))]}
    )
    report = run_once(settings, store, open_sources(settings), Reporter("text", out=io.StringIO()), clock=lambda: NOW)
    assert [f.outcome for f in report.files] == ["created", "failed"]
    assert store.get(Keys("t/", "wire-ok").latest) is not None
    error = json.loads((drop / "failed" / "mixed.xml.error.json").read_text())
    assert error["path"].endswith("mixed.xml#2") and error["check"] == "headline"


def test_a_ninjs_response_gives_one_document_per_text_item_and_a_picture_item_is_refused() -> None:
    from ingest.errors import InputError
    from ingest.prepare import Prepared, prepare_items
    from tests.conftest import RECEIVED, RULES

    def ninjs(uri: str, kind: str, headline: str) -> dict[str, object]:
        return {"uri": uri, "type": kind, "headline": headline, "body_text": f"{headline}: the story."}

    response = {
        "total": 3,
        "item": [
            ninjs("urn:a", "text", "First"),
            ninjs("urn:p", "picture", "A photo"),
            ninjs("urn:b", "text", "Second"),
        ],
    }
    items = prepare_items(json.dumps(response).encode(), "search.json", RULES, received_at=RECEIVED)
    assert [(i.path, i.id, i.content.headline) for i in items if isinstance(i, Prepared)] == [
        ("search.json#1", "a", "First"),
        ("search.json#2", "b", "Second"),
    ]
    with pytest.raises(InputError, match="is a ninjs picture item, not text"):
        prepare_items(json.dumps(ninjs("urn:p", "picture", "A photo")).encode(), "p.json", RULES, received_at=RECEIVED)
    only_media = {"total": 1, "item": [ninjs("urn:p", "picture", "A photo")]}
    with pytest.raises(InputError, match=r"is a ninjs response holding no text item \(picture\)"):
        prepare_items(json.dumps(only_media).encode(), "r.json", RULES, received_at=RECEIVED)


class Crash(BaseException):
    """Stands for the process dying mid-message."""


@pytest.mark.parametrize("crash_at", range(1, 9))
def test_a_run_killed_between_items_is_repaired_by_running_again(tmp_path: Path, crash_at: int) -> None:
    from ingest.stores.faults import FaultyStore

    store = MemoryStore()
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "bundle.xml").write_text(THREE)
    aged(drop / "bundle.xml")
    settings = load_settings({"prefix": "t/"}, env={}).model_copy(
        update={"sources": [SourceSettings(name="drop", location=str(drop))]}
    )
    dying = FaultyStore(store, fail_at=crash_at, exc_type=Crash, operations=frozenset({"put_new", "put", "replace"}))
    with pytest.raises(Crash):
        run_once(settings, dying, open_sources(settings), Reporter("text", out=io.StringIO()), clock=lambda: NOW)
    assert (drop / "bundle.xml").exists()  # not moved: its items were not all stored
    later = NOW + timedelta(seconds=settings.lease_seconds + 1)  # the dead run's leases have expired
    report = run_once(settings, store, open_sources(settings), Reporter("text", out=io.StringIO()), clock=lambda: later)
    assert {f.outcome for f in report.files} <= {"created", "unchanged"} and len(report.files) == 3
    for article in ("wire-ferry", "wire-budget", "wire-storm"):
        keys = Keys("t/", article)
        assert store.get(keys.latest) == store.get(keys.version(1)) and store.get(keys.version(2)) is None
    assert not (drop / "bundle.xml").exists()


def test_one_unreadable_item_does_not_hold_back_the_others_of_its_bundle() -> None:
    from ingest.outcome import Outcome
    from ingest.prepare import Prepared, prepare_items
    from tests.conftest import RECEIVED, RULES

    bad = item("urn:wire:held", "Held Story", "Text.").replace(
        '<itemClass qcode="ninat:text"/>', '<itemClass qcode="ninat:text"/><embargoed>soon</embargoed>'
    )
    bundle = message(item("urn:wire:a", "First", "One."), bad, item("urn:wire:b", "Third", "Three."))
    items = prepare_items(bundle.encode(), "b.xml", RULES, received_at=RECEIVED)
    assert [type(i).__name__ for i in items] == ["Prepared", "Outcome", "Prepared"]
    refused = items[1]
    assert isinstance(refused, Outcome) and refused.error is not None
    assert str(refused.error).startswith("b.xml#2: field itemMeta/embargoed: embargo")
    assert [i.id for i in items if isinstance(i, Prepared)] == ["wire-a", "wire-b"]
