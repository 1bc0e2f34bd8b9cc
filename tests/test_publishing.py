"""Never publish what must not be published: non-public notes, embargoes, kills (issue 9, points 1-3).

* A note the source marks non-public never reaches any output, and agency notes for editors never reach a
  reader-facing field (the correction note included): the real dpa sample, with its reporters' contacts.
* An embargo is carried from every format into the document, its change-feed entry and ``ingest parse``.
* A kill is its own action, ``withdrawn``: in the commit outcome, the document, the feed, the history, and
  the diff.

Commits run against the in-memory store (same conditional-write semantics as S3, proved by the contract
suite in ``tests/stores``); the last test runs the same through the CLI over the real SeaweedFS.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest

from ingest.archive import Archive
from ingest.commit import Committer
from ingest.errors import ParseError
from ingest.models import Content
from ingest.outcome import Outcome
from ingest.parsers import registry
from ingest.parsers.base import Draft
from ingest.parsers.newsml_g2 import CORRECTION_SIGNALLED
from ingest.prepare import Prepared, prepare
from ingest.reader import decode
from ingest.stores.memory import MemoryStore
from tests.conftest import CORPUS, RECEIVED, RULES, SEED, cli, need_shared
from tests.test_parsers import as_json

FIXTURES = Path(__file__).resolve().parent / "formats"
DPA = CORPUS / "wire" / "newsml-g2" / "superdesk-core" / "tests" / "io" / "fixtures" / "dpa.xml"
PREFIX = "t/"
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class Clock:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self._ticks = count()

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=next(self._ticks))


def _draft(data: bytes, name: str) -> Draft:
    decoded = decode(data, name)
    return registry.detect(name, decoded.text).parse(decoded, name)


def _item(data: dict[str, object], name: str = "story.json") -> Prepared:
    return prepare(json.dumps(data).encode(), name, RULES, received_at=T0)


def _words(text: str) -> set[str]:
    return {word.strip(".,:;()[]\"'").casefold() for word in text.split()} - {""}


def _strings(value: object) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(s for v in value.values() for s in _strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _printed(text: str) -> str:
    """Printed or stored text with its JSON decoded (no escape can hide a word): a whole JSON document, or
    JSON lines, other lines as they are."""
    try:
        return " ".join(_strings(json.loads(text)))
    except ValueError:
        pass
    out = []
    for line in text.splitlines():
        try:
            out += _strings(json.loads(line))
        except ValueError:
            out.append(line)
    return " ".join(out)


# ---------------------------------------------------------------------------------------------- 1. notes


def _non_public(element: ET.Element) -> bool:
    return any(
        key.rsplit("}", 1)[-1].lower() in ("pubconstraint", "class") and "nonpublic" in value.lower()
        for key, value in element.attrib.items()
    )


def _secret_words(xml: bytes) -> set[str]:
    """Words of the parts the source marks non-public that appear nowhere else in the file (the reporters'
    names, e-mail addresses and phone numbers, the "not for publication" line)."""
    secret: list[str] = []
    public: list[str] = []

    def walk(element: ET.Element) -> None:
        if _non_public(element):
            secret.append(" ".join(element.itertext()))
        else:
            public.append(element.text or "")
            for sub in element:
                walk(sub)
        public.append(element.tail or "")

    walk(ET.fromstring(xml))  # trusted corpus file; only the tests parse it this way
    return _words(" ".join(secret)) - _words(" ".join(public))


def _dpa_correction(tmp_path: Path) -> tuple[Path, set[str]]:
    """dpa's sample as the issue saw it: its edNotes beside a ``sig:correction`` signal."""
    xml = need_shared(DPA).read_bytes()
    assert xml.count(b"</itemMeta>") == 1
    path = tmp_path / "dpa-correction.xml"
    path.write_bytes(xml.replace(b"</itemMeta>", b'<signal qcode="sig:correction"/></itemMeta>'))
    secret = _secret_words(xml)
    assert {"030285232232", "degenhardt", "reichardt.patrick@dpa.com", "sport@dpa.com", "veröffentlichung"} <= secret
    return path, secret


def test_dpa_non_public_notes_reach_no_field_of_the_draft(tmp_path: Path) -> None:
    path, secret = _dpa_correction(tmp_path)
    draft = _draft(path.read_bytes(), path.name)
    assert draft.note == CORRECTION_SIGNALLED  # a correction, with the fixed note, never the edNote text
    # Nowhere at all: not in reader-facing fields, not even in the internal notes.
    assert not _words(" ".join(_strings(as_json(draft)))) & secret
    # The public advice to editors is kept, apart from anything a reader sees.
    assert "Foto Archiv" in draft.internal_notes
    assert "Zu diesem Text finden Sie folgende Bilder im dpa Bildangebot:" in draft.internal_notes
    reader_facing = [draft.headline, draft.byline, draft.section, draft.url, draft.note, draft.editor, *draft.tags]
    reader_facing += [block.text for block in draft.blocks] + [link.title for link in draft.links]
    assert not set(draft.internal_notes) & {text for text in reader_facing if text}


def test_dpa_non_public_notes_never_appear_in_parse_output(tmp_path: Path) -> None:
    path, secret = _dpa_correction(tmp_path)
    out = cli("parse", str(path))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["correction"] == {"note": CORRECTION_SIGNALLED, "editor": None}
    assert not _words(_printed(out.stdout) + " " + out.stderr) & secret
    for text in ("030285232232", "Degenhardt", "reichardt.patrick@dpa.com", "sport@dpa.com", "nicht zur"):
        assert text not in out.stdout + out.stderr


def test_the_dpa_correction_is_recorded_with_the_fixed_note_and_history_shows_no_contact(tmp_path: Path) -> None:
    path, secret = _dpa_correction(tmp_path)
    corrected = path.read_bytes()
    first = corrected.replace(b"Hintereggers Tr\xc3\xa4nen", b"Hintereggers Abschied").replace(
        b'<signal qcode="sig:correction"/>', b""
    )
    assert first != corrected
    store = MemoryStore()
    committer = Committer(store, PREFIX, workers=2, clock=Clock())
    committer.commit([prepare(first, "dpa.xml", RULES, received_at=T0)])
    (outcome,) = committer.commit([prepare(corrected, "dpa.xml", RULES, received_at=T0)])
    assert (outcome.outcome, outcome.version) == ("updated", 2)
    rows = Archive(store, PREFIX).history(outcome.id or "")
    assert [(r.action, r.note) for r in rows] == [("created", None), ("corrected", CORRECTION_SIGNALLED)]
    stored = [s.body.decode() for k in store.list_keys(PREFIX) if (s := store.get(k)) and "/raw/" not in k]
    assert len(stored) == 5  # v1, v2, latest and two feed objects
    assert not any(_words(_printed(body)) & secret for body in stored)  # every document, feed and latest


def test_non_public_marks_are_honoured_in_any_case_and_prefix_and_inside_a_notepad() -> None:
    path = FIXTURES / "newsml-g2" / "embargoed.xml"
    draft = _draft(path.read_bytes(), path.name)
    assert draft.internal_notes == (
        "Editorial notes Photos of the vote are on the picture service. agy al ed",
        "Embargoed until 00:01 CET Wednesday",
    )
    out = cli("parse", str(path))
    assert out.returncode == 0, out.stderr
    for text in ("+64 21 555 0101", "ann.lee@agency.example", "555 0199", "off the record", "not for publication"):
        assert text not in out.stdout
        assert text not in repr(draft)


def test_agency_notes_of_every_format_are_internal_and_never_a_correction() -> None:
    for fixture, note in [
        ("ninjs/v1.json", "Corrects closure day to Saturday"),  # ninjs ednote
        ("ninjs/v3-embargoed.json", "Embargoed until 0700 NZDT Wednesday. Not for broadcast before then."),  # edNote
        ("nitf/basic.xml", "Updates with final vote count"),  # NITF ed-msg
        ("newsml-g2/basic.xml", "Corrects wind speed to 110 km/h"),  # NewsML-G2 edNote
    ]:
        path = FIXTURES / fixture
        draft = _draft(path.read_bytes(), path.name)
        assert draft.internal_notes == (note,), fixture
        assert draft.note in (None, CORRECTION_SIGNALLED), fixture
        item = prepare(path.read_bytes(), path.name, RULES, received_at=T0)
        assert note not in json.dumps(item.content.model_dump(mode="json")), fixture


# ---------------------------------------------------------------------------------------------- 2. embargo

EMBARGO = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
STORY: dict[str, object] = {
    "uri": "urn:wire.example:rates-1",
    "headline": "Reserve Bank holds the official cash rate",
    "body_text": "The Reserve Bank held the official cash rate.\n\nEconomists had expected it.",
}


def test_every_format_reads_its_embargo() -> None:
    expected = {
        "ninjs/v3-embargoed.json": "2026-11-25T07:00:00+13:00",  # embargoedUntil (3.x)
        "newsml-g2/embargoed.xml": "2026-11-25T00:01:00+01:00",  # itemMeta/embargoed
        "nitf/embargoed.xml": "2026-12-31T00:01:00+13:00",  # date.release later than date.issue
        "json/basic.json": "2026-11-18T09:30:00+00:00",  # no offset: UTC
        "frontmatter/basic.md": "2026-11-20T06:00:00+11:00",
        "nitf/basic.xml": None,  # no date.release
        "ninjs/v1.json": None,
    }
    for fixture, when in expected.items():
        path = FIXTURES / fixture
        content = prepare(path.read_bytes(), path.name, RULES, received_at=T0).content
        assert (content.embargoed.isoformat() if content.embargoed else None) == when, fixture
    ninjs_2 = _item({**STORY, "embargoed": "2026-11-25T07:00:00Z"}).content
    assert ninjs_2.embargoed == EMBARGO


def test_a_nitf_release_time_is_an_embargo_only_when_later_than_the_issue_time() -> None:
    def embargo(docdata: str) -> datetime | None:
        xml = f"<nitf><head><docdata>{docdata}</docdata></head><body><body.head><hedline><hl1>H</hl1></hedline>"
        xml += "</body.head><body.content><p>P.</p></body.content></body></nitf>"
        return _draft(xml.encode(), "n.xml").embargoed

    issue = '<date.issue norm="20150218T160141+1100"/>'
    assert embargo(issue + '<date.release norm="20150218T160141+1100"/>') is None  # AAP: release = issue
    assert embargo(issue + '<date.release norm="20150218T050141Z"/>') is None  # the same instant in UTC
    later = embargo(issue + '<date.release norm="20150219T000100+1100"/>')
    assert later == datetime(2015, 2, 18, 13, 1, tzinfo=UTC)
    assert embargo('<date.release norm="20150219T000100+1100"/>') == later  # nothing to compare with: held
    assert embargo(issue + '<date.release norm="YYYYMMDD000000-HHMM"/>') is None  # a placeholder, as before


def test_an_embargo_that_cannot_be_read_refuses_the_item_rather_than_drop_it() -> None:
    for data, name in [
        (json.dumps({**STORY, "embargoed": "Next Monday"}).encode(), "n.json"),
        (
            b'<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/"><itemMeta><embargoed>soon</embargoed>'
            b"</itemMeta><contentMeta><headline>H</headline></contentMeta></newsItem>",
            "g.xml",
        ),
    ]:
        with pytest.raises(ParseError) as refused:
            prepare(data, name, RULES, received_at=T0)
        assert "embargo" in str(refused.value) and "\n" not in str(refused.value)
    # An empty NewsML-G2 <embargoed/> is no embargo (the schema allows it; templates send it).
    empty = (FIXTURES / "newsml-g2" / "basic.xml").read_bytes().replace(b"<pubStatus", b"<embargoed/><pubStatus")
    assert prepare(empty, "g.xml", RULES, received_at=T0).content.embargoed is None


def test_the_embargo_is_in_the_document_the_feed_and_parse_output_and_lifting_it_is_a_new_version() -> None:
    store = MemoryStore()
    committer = Committer(store, PREFIX, workers=2, clock=Clock())
    held = _item({**STORY, "embargoed": "2026-11-25T07:00:00Z"})
    (first,) = committer.commit([held])
    archive = Archive(store, PREFIX)
    assert first.outcome == "created"
    assert archive.document(held.id).embargoed == EMBARGO
    (lifted,) = committer.commit([_item(STORY)])
    assert (lifted.outcome, lifted.version) == ("updated", 2)
    assert archive.document(held.id).embargoed is None
    assert [(e.version, e.embargoed) for e in archive.changes()] == [(1, EMBARGO), (2, None)]
    raw = b"".join(s.body for k in store.list_keys(f"{PREFIX}changes/") if (s := store.get(k)) is not None)
    assert b'"embargoed":"2026-11-25T07:00:00Z"' in raw  # in the feed line a CMS reads
    assert "-[embargoed until 2026-11-25T07:00:00+00:00]" in archive.diff(held.id, 1, 2)


def test_parse_prints_the_embargo() -> None:
    out = cli("parse", str(FIXTURES / "ninjs" / "v3-embargoed.json"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embargoed"] == "2026-11-25T07:00:00+13:00"


def test_content_without_the_later_fields_keeps_the_hash_it_had_before_they_existed() -> None:
    content = _item(STORY).content
    later = ("embargoed", "slugline", "urgency", "abstract", "copyright", "usage_terms", "associations", "inline_links")
    before = json.dumps(
        {k: v for k, v in content.model_dump(mode="json").items() if k not in later},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert content.sha256() == hashlib.sha256(before.encode()).hexdigest()
    assert Content.model_validate({**content.model_dump(), "embargoed": EMBARGO}).sha256() != content.sha256()
    assert Content.model_validate({**content.model_dump(), "slugline": "BRIDGE"}).sha256() != content.sha256()


def test_the_seed_keeps_the_content_hash_stored_before_any_field_was_added() -> None:
    seed = need_shared(SEED)
    prepared_seed = prepare(seed.read_bytes(), seed.name, RULES, received_at=RECEIVED)
    assert prepared_seed.content_sha256 == "860ca9898a27122b2607fd55afa1250ab56de9419be3383768a433bc70da5090"


# ---------------------------------------------------------------------------------------------- 3. kills


def test_a_kill_is_withdrawn_in_outcome_document_feed_history_and_diff() -> None:
    store = MemoryStore()
    committer = Committer(store, PREFIX, workers=2, clock=Clock())
    live = _item({**STORY, "pubstatus": "usable"})
    killed = _item({**STORY, "pubstatus": "canceled"})
    assert live.content.body == killed.content.body  # only `withdrawn` differs
    committer.commit([live])
    (outcome,) = committer.commit([killed])
    assert isinstance(outcome, Outcome)
    assert (outcome.outcome, outcome.version) == ("withdrawn", 2)
    assert outcome.as_json()["outcome"] == "withdrawn"  # what `ingest file --json` prints
    assert outcome.line().startswith("withdrawn  ")
    archive = Archive(store, PREFIX)
    assert archive.document(live.id).action == "withdrawn"
    assert [e.action for e in archive.changes()] == ["created", "withdrawn"]
    assert [row.action for row in archive.history(live.id)] == ["created", "withdrawn"]  # `ingest history`
    assert "+[withdrawn]" in archive.diff(live.id, 1, 2)  # not "same content"
    assert "-[withdrawn]" in archive.diff(live.id, 2, 1)


def test_withdrawn_wins_over_corrected_stays_once_and_a_rollback_is_a_rollback() -> None:
    store = MemoryStore()
    committer = Committer(store, PREFIX, workers=2, clock=Clock())
    # A kill that arrives first is already a kill.
    (first,) = committer.commit([_item({**STORY, "uri": "urn:wire.example:other", "pubstatus": "withdrawn"})])
    assert first.outcome == "withdrawn"
    assert Archive(store, PREFIX).document(first.id or "").action == "withdrawn"
    # A kill with an editor's note is a kill (the note is kept).
    live = _item(STORY)
    committer.commit([live])
    (kill,) = committer.commit([_item({**STORY, "pubstatus": "canceled"})], note="Legal: withdrawn", editor="Ann")
    doc = Archive(store, PREFIX).document(live.id)
    assert (kill.outcome, doc.action) == ("withdrawn", "withdrawn")
    assert doc.correction is not None and doc.correction.note == "Legal: withdrawn"
    # A change to an item that is already withdrawn is an update, not a second kill.
    notice = {**STORY, "pubstatus": "canceled", "body_text": "This story has been withdrawn."}
    (again,) = committer.commit([_item(notice)])
    assert (again.outcome, Archive(store, PREFIX).document(live.id).action) == ("updated", "updated")
    # Restoring the live version is a rollback, not a kill or an update.
    back = committer.rollback(live.id, 1, note="Withdrawn in error", editor="Ann")
    assert (back.outcome, Archive(store, PREFIX).document(live.id).action) == ("rolled_back", "rolled_back")
    assert [r.action for r in Archive(store, PREFIX).history(live.id)] == [
        "created",
        "withdrawn",
        "updated",
        "rolled_back",
    ]


# ---------------------------------------------------------------------------------------------- end to end


@pytest.mark.s3
def test_over_seaweedfs_the_cli_holds_embargoes_announces_kills_and_never_prints_a_contact(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    story = tmp_path / "rates.json"
    story.write_text(json.dumps({**STORY, "embargoed": "2026-11-25T07:00:00Z"}))
    held = cli("file", "--json", str(story), env=cli_env)
    assert held.returncode == 0, held.stderr
    article = json.loads(held.stdout)["id"]
    story.write_text(json.dumps({**STORY, "pubstatus": "canceled"}))  # the embargo lifted, and killed
    killed = cli("file", "--json", str(story), env=cli_env)
    assert json.loads(killed.stdout)["outcome"] == "withdrawn"
    changes = [json.loads(line) for line in cli("changes", "--json", env=cli_env).stdout.splitlines()]
    assert [(c["action"], c["embargoed"]) for c in changes] == [
        ("created", "2026-11-25T07:00:00Z"),
        ("withdrawn", None),
    ]
    history = cli("history", article, env=cli_env).stdout.splitlines()
    assert [line.split()[3] for line in history] == ["created", "withdrawn"]
    diff = cli("diff", article, "1", "2", env=cli_env).stdout.splitlines()
    assert "-[embargoed until 2026-11-25T07:00:00+00:00]" in diff and "+[withdrawn]" in diff

    path, secret = _dpa_correction(tmp_path)
    first = tmp_path / "dpa.xml"
    first.write_bytes(path.read_bytes().replace(b"Hintereggers Tr\xc3\xa4nen", b"Hintereggers Abschied"))
    outputs = [cli("file", str(first), env=cli_env), cli("file", str(path), env=cli_env)]
    dpa = json.loads(cli("show", "newsml-dpa.com-20090101-221011-930-4303", env=cli_env).stdout)
    outputs += [cli("history", dpa["id"], env=cli_env), cli("changes", env=cli_env)]
    outputs += [cli("show", dpa["id"], "--version", str(v), env=cli_env) for v in (1, 2)]
    assert dpa["correction"]["note"] == CORRECTION_SIGNALLED
    assert outputs[2].stdout.rstrip().endswith(f'corrected    "{CORRECTION_SIGNALLED}"')
    for out in outputs:
        assert out.returncode == 0, out.stderr
        assert not _words(_printed(out.stdout) + " " + out.stderr) & secret
