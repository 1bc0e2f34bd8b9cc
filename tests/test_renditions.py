"""Renditions (``--as ninjs|ninjs3|ans``), checked against the official schemas, not our reading of them.

The IPTC ninjs 2.1 and 3.1 JSON Schemas are read from ``../shared/corpus/wire/ninjs/schemas/``, the Arc XP ANS
0.10.12 schemas from ``../shared/corpus/schemas/ans-0.10.12/``; ``$ref``s resolve to those files through a
``referencing`` registry that has no way to fetch anything, so validation never touches the network. ANS's
``story.json`` asks of a content element only that it has a ``type``; as ANS's own validator does, every typed
object of a story (content elements, the links of a ``link_list``, corrections, authors, sections) is also
validated against its own schema, all the way down. Formats are checked (``jsonschema[format-nongpl]``): a bare
word is not a ``uri`` and a time without its zone is not a ``date-time``.

Every rendition of the seed, the examples, the 2,225 BBC articles, the 302 web articles and every wire sample
that parses must validate; documents are parsed once per session.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from ingest import ConfigError, render, rendition_formats
from ingest.errors import InputError
from ingest.models import Association, Block, Document, InlineLink, ModuleHeading, RelatedLink
from ingest.prepare import Prepared, prepare_items, preview
from ingest.renditions import Registry as RenditionRegistry
from ingest.renditions import Rendition, registry
from ingest.renditions._values import as_uri, is_uri, item_uri, safe_href, web_uri
from ingest.settings import load_settings
from ingest.versioning import new_version
from tests.conftest import CORPUS, EXAMPLES, RECEIVED, RULES, SEED, cli, need_shared

NINJS_SCHEMAS = CORPUS / "wire" / "ninjs" / "schemas" / "newsinjson" / "specification"
ANS_SCHEMAS = CORPUS / "schemas" / "ans-0.10.12"
TEMPLATE = "urn:newsml:example.com:{id}"
FORMATS = ("ninjs", "ninjs3", "ans")
#: The ninjs standard version each ninjs rendition claims.
NINJS = {"ninjs": "2.1", "ninjs3": "3.1"}


# ---------------------------------------------------------------------------------------------- the schemas


def _validator(schema: dict[str, Any], registry: Registry[Any]) -> Validator:
    cls = validator_for(schema)
    cls.check_schema(schema)
    # The registry has no ``retrieve``: a $ref outside it is an error, never a download.
    validator: Validator = cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
    return validator


@functools.cache
def _ninjs(version: str) -> Validator:
    schema = json.loads(need_shared(NINJS_SCHEMAS / f"ninjs-schema_{version}.json").read_text(encoding="utf-8"))
    return _validator(schema, Registry().with_resource(schema["$id"], Resource.from_contents(schema)))


@dataclass(frozen=True)
class _Ans:
    story: Validator
    #: Each ANS object type (``text``, ``link_list``, ``author`` ...) with its own schema's validator.
    by_type: dict[str, Validator]


@functools.cache
def _ans() -> _Ans:
    root = need_shared(ANS_SCHEMAS)
    schemas = {path: json.loads(path.read_text(encoding="utf-8")) for path in sorted(root.rglob("*.json"))}
    registry = Registry().with_resources(
        (schema["id"], Resource.from_contents(schema, default_specification=DRAFT4)) for schema in schemas.values()
    )
    by_type: dict[str, Validator] = {}
    # The type an object declares picks its schema: the schema whose `type` admits only that value, a
    # story element's first, then a top-level document's (`story.json`, not `utils/story-summary.json`).
    for folder in (root / "story_elements", root, root / "utils"):
        claimed: dict[str, Validator] = {}
        for path in sorted(folder.glob("*.json")):
            enum = schemas[path].get("properties", {}).get("type", {}).get("enum", [])
            if len(enum) == 1:
                assert enum[0] not in claimed, f"two ANS schemas in {folder} for type {enum[0]!r}"
                claimed[enum[0]] = _validator(schemas[path], registry)
        by_type = claimed | by_type
    return _Ans(by_type.pop("story"), by_type)


def schema_errors(rendition: dict[str, Any], fmt: str) -> list[str]:
    """Every way ``rendition`` breaks its official schema, as "where: what" lines."""
    if fmt in NINJS:
        return [
            f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _ninjs(NINJS[fmt]).iter_errors(rendition)
        ]
    ans = _ans()
    errors = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in ans.story.iter_errors(rendition)]
    for where, element in _typed(rendition, ""):
        validator = ans.by_type.get(element["type"])
        if validator is None:
            errors.append(f"{where}: no ANS schema has type {element['type']!r}")
            continue
        errors += [
            f"{where}/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(element)
        ]
    return errors


def _typed(value: object, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object below the story that declares its ANS type (the grab-bag ``additional_properties`` aside)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "additional_properties":
                continue
            if isinstance(item, dict) and isinstance(item.get("type"), str):
                yield f"{where}/{key}", item
            yield from _typed(item, f"{where}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict) and isinstance(item.get("type"), str):
                yield f"{where}/{i}", item
            yield from _typed(item, f"{where}/{i}")


def assert_valid(document: Document, label: str = "") -> dict[str, dict[str, Any]]:
    """Every rendition of ``document`` validates; the renditions, by format."""
    out = {}
    for fmt in FORMATS:
        rendition = render_json(document, fmt)
        errors = schema_errors(rendition, fmt)
        assert not errors, (label or document.id, fmt, errors[:5])
        out[fmt] = rendition
    return out


def render_json(document: Document, fmt: str, template: str = TEMPLATE) -> dict[str, Any]:
    """A rendition as a CMS receives it: through JSON text."""
    rendition: dict[str, Any] = json.loads(json.dumps(registry.get(fmt).render(document, template)))
    return rendition


# ---------------------------------------------------------------------------------------------- documents


def documents_of(path: Path) -> list[Document]:
    """The documents a file gives as new articles (none when it is refused)."""
    try:
        items = prepare_items(path.read_bytes(), path.name, RULES, received_at=RECEIVED)
    except InputError:
        return []
    return [preview(item, RECEIVED) for item in items if isinstance(item, Prepared)]


@functools.cache
def corpus(name: str) -> list[tuple[str, Document]]:
    """(file, document) of one corpus set, parsed once per session."""
    if name == "bbc":
        paths = sorted(need_shared(CORPUS / "bbc" / "bbc").glob("*/*.txt"))
    elif name == "web":
        index = json.loads(need_shared(CORPUS / "web" / "MODULES_INDEX.json").read_text(encoding="utf-8"))
        paths = [CORPUS / "web" / article["file"] for article in index["articles"]]
    elif name == "wire":
        paths = sorted(p for p in need_shared(CORPUS / "wire").rglob("*") if p.is_file())
    else:
        paths = [need_shared(SEED), *sorted(EXAMPLES.glob("*"))]
    return [(path.name, doc) for path in paths for doc in documents_of(path)]


def story(**changes: Any) -> Document:
    """A version 1 with a bit of everything; ``changes`` replace content fields."""
    fields: dict[str, Any] = {
        "headline": "Bridge closes for repairs",
        "byline": "Ann Lee",
        "section": "Local",
        "tags": ["transport", "bridges"],
        "language": "en",
        "url": "https://news.example.com/bridge-closes",
        "published_at": datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        "slugline": "BRIDGE-CLOSURE",
        "urgency": 3,
        "abstract": "The harbour bridge shuts on Saturday.",
        "copyright": "© 2026 Example News",
        "usage_terms": "No archive use",
        "body": [
            Block(type="paragraph", text="The bridge closes on Saturday, the council said."),
            Block(type="heading", text="Buses & <diversions>"),
            Block(type="paragraph", text="Buses divert via the\nring road."),
        ],
        "inline_links": [
            InlineLink(block=0, start=35, end=42, text="council", url="https://council.example/x?a=1&b=2")
        ],
        "related_links": [
            RelatedLink(
                title="Ferry strike ends",
                url="https://news.example.com/ferry",
                label="READ MORE",
                heading="More transport",
                position=1,
                text="READ MORE: Ferry strike ends https://news.example.com/ferry",
            ),
            RelatedLink(title="Road works", position=1, heading="More transport", text="Road works"),
            RelatedLink(title="Tram map", url="/maps/tram", position=3, text="SEE ALSO: Tram map"),
        ],
        "module_headings": [
            ModuleHeading(text="More transport", position=1),
            ModuleHeading(text="Elsewhere", position=3),
        ],
        "associations": [
            Association(kind="picture", uri="AP-123 456", caption="The bridge", credit="AP", role="featured")
        ],
    }
    fields.update(changes)
    return Document(
        **fields,
        id="bridge",
        version=1,
        content_sha256="0" * 64,
        action="withdrawn" if fields.get("withdrawn") else "created",
        created_at=datetime(2026, 11, 23, 8, 1, 12, tzinfo=UTC),
        source={
            "format": "json",
            "file_name": "bridge.json",
            "raw_sha256": "1" * 64,
            "raw_key": "raw/bridge/v1.json",
            "size_bytes": 100,
            "received_at": datetime(2026, 11, 23, 8, 1, tzinfo=UTC),
            "encoding": "utf-8",
            "encoding_rule": "utf-8",
            "line_endings": "lf",
            "input_version": "4",
            "internal_notes": ["Desk: call Ann on 555-0100 before use"],
        },
    )


def next_version(
    prev: Document, *, note: str | None = None, rolled_back_to: int | None = None, **changes: Any
) -> Document:
    content = prev.content().model_copy(update=changes)
    return new_version(
        prev,
        article_id=prev.id,
        content=content,
        content_sha256=content.sha256(),
        source=prev.source,
        now=prev.created_at + timedelta(hours=1),
        note=note,
        editor="Desk Editor" if note else None,
        rolled_back_to=rolled_back_to,
    )


def rolled_back(prev: Document, to: Document, note: str | None = None) -> Document:
    """What ``ingest rollback --to`` makes after ``prev``: ``to``'s content as a new version."""
    return new_version(
        prev,
        article_id=prev.id,
        content=to.content(),
        content_sha256=to.content_sha256,
        source=to.source,
        now=prev.created_at + timedelta(hours=1),
        note=note or f"Desk restored v{to.version}",
        editor="Desk",
        rolled_back_to=to.version,
    )


def strings(value: object) -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON value."""
    if isinstance(value, str):
        yield "", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from ((f"/{key}{p}", s) for p, s in strings(item))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from ((f"/{i}{p}", s) for p, s in strings(item))


# ---------------------------------------------------------------------------------------------- what a reader gets back


def text_of(fragment: str) -> str:
    """The words of one block's HTML: links and line breaks undone, entities read."""
    plain = re.sub(r'<a href="[^"]*">|</a>', "", fragment).replace("<br>", "\n")
    return html.unescape(plain)


def body_of(rendition: dict[str, Any], fmt: str) -> list[tuple[str, str]]:
    """(type, text) of each body block a rendition carries, in order."""
    if fmt == "ans":
        kinds = {"text": "paragraph", "header": "heading"}
        return [(kinds[e["type"]], text_of(e["content"])) for e in rendition["content_elements"] if e["type"] in kinds]
    bodies = rendition.get("bodies", [])
    if not bodies:
        return []
    found = []
    for line in bodies[0]["value"].split("\n"):
        tag = re.fullmatch(r"<(p|h2)>(.*)</\1>", line, re.DOTALL)
        assert tag is not None, line
        found.append(("paragraph" if tag[1] == "p" else "heading", text_of(tag[2])))
    return found


def links_of(rendition: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    """Each related link a rendition carries, in order: its title, original line, position and heading."""
    if fmt == "ans":
        out, blocks = [], 0
        for element in rendition["content_elements"]:
            if element["type"] in ("text", "header"):
                blocks += 1
            elif element["type"] == "link_list":
                for item in element["items"]:
                    about = item["additional_properties"]
                    out.append(
                        {
                            "title": html.unescape(item["content"]),
                            "line": about["text"],
                            "position": blocks,
                            "heading": element.get("title"),
                            "url": item.get("url", about.get("url")),
                        }
                    )
        return out
    out = []
    for entry in rendition.get("associations", []):
        if not entry["name"].startswith("related-"):
            continue
        said = {d["role"]: d["value"] for d in entry["descriptions"]}
        page = [r["href"] for r in entry.get("renditions", [])]
        given = [a["value"] for a in entry.get("altIds", entry.get("altids", [])) if a["role"] == "url"]
        out.append(
            {
                "title": entry["headlines"][0]["value"] if "headlines" in entry else said["line"],
                "line": said["line"],
                "position": int(said["position"]),
                "heading": said.get("heading"),
                "url": (page or given or [None])[0],
            }
        )
    return out


def expected_links(document: Document, fmt: str) -> list[dict[str, Any]]:
    """What ``links_of`` must find: every related link of the document, in order."""
    out = []
    for link in document.related_links:
        href = safe_href(link.url)
        out.append(
            {
                "title": link.title or link.text,
                "line": link.text,
                # ANS places a link where it stood, so a position past the last block reads as after it
                "position": min(link.position, len(document.body)) if fmt == "ans" else link.position,
                "heading": link.heading or None,
                # ANS links a safe target and keeps an unsafe one unlinked; ninjs has only safe ones, as URIs
                "url": (href or link.url or None) if fmt == "ans" else href and (web_uri(href) or href),
            }
        )
    return out


# ---------------------------------------------------------------------------------------------- corpus


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["seed-and-examples", "bbc", "web", "wire"])
def test_every_rendition_of_every_corpus_document_validates_against_the_official_schemas(name: str) -> None:
    documents = corpus(name)
    # Of the 302 web articles, ingest itself refuses 3 (two first lines over 1,000 characters, one whose every
    # line is a module): they have no document, so no rendition. The wire samples give 177 documents.
    expected = {"seed-and-examples": 6, "bbc": 2225, "web": 299, "wire": 177}
    assert len(documents) == expected[name]
    failures = []
    for label, document in documents:
        for fmt in FORMATS:
            rendition = render_json(document, fmt)
            if errors := schema_errors(rendition, fmt):
                failures.append((label, fmt, errors[:3]))
            if body_of(rendition, fmt) != [(b.type, b.text) for b in document.body]:
                failures.append((label, fmt, ["body changed"]))
            if links_of(rendition, fmt) != expected_links(document, fmt):
                failures.append((label, fmt, ["related links changed"]))
    assert not failures, failures[:5]


@pytest.mark.corpus
def test_every_wire_format_that_gives_documents_is_in_the_check() -> None:
    wire = corpus("wire")
    formats = {doc.source.format for _, doc in wire}
    # Every wire format that gives documents is in the check (a change in the corpus or the parsers shows here).
    assert formats >= {
        "ninjs",
        "nitf",
        "newsml-g2",
        "newsml-1.2",
        "anpa-1312",
        "iptc-7901",
        "ap-media",
        "atom",
        "ritzau",
    }


# ---------------------------------------------------------------------------------------------- the four errors


@pytest.mark.corpus
def test_a_bare_id_is_not_a_uri_to_the_format_checker() -> None:
    checker: FormatChecker = Draft202012Validator.FORMAT_CHECKER
    assert not checker.conforms("bridge", "uri")  # without jsonschema[format-nongpl], this would pass
    assert checker.conforms("urn:newsml:example.com:bridge", "uri")
    rendition = render_json(story(), "ninjs")
    rendition["uri"] = "bridge"
    assert schema_errors(rendition, "ninjs") == ["/uri: 'bridge' is not a 'uri'"]
    ans = render_json(story(embargoed=datetime(2026, 11, 24, 8, 0, tzinfo=UTC)), "ans")
    assert not schema_errors(ans, "ans")
    ans["content_restrictions"]["embargo"]["end_time"] = "2026-11-24 08:00"
    assert any("is not a 'date-time'" in e for e in schema_errors(ans, "ans"))


@pytest.mark.corpus
def test_the_old_mapping_tables_errors_are_what_the_schemas_reject() -> None:
    killed = render_json(story(withdrawn=True), "ninjs")
    assert killed["pubstatus"] == "canceled"
    assert schema_errors({**killed, "pubstatus": "withdrawn"}, "ninjs")
    assert killed["version"] == "1"
    assert schema_errors({**killed, "version": 1}, "ninjs")
    assert killed["uri"] == "urn:newsml:example.com:bridge"
    assert {"role": "ingest-id", "value": "bridge"} in killed["altids"]


def test_a_correction_is_published_and_agency_notes_reach_only_the_desk_fields() -> None:
    corrected = next_version(story(), note="Closure is on Saturday, not Friday", headline="Bridge closes Saturday")
    note = "Desk: call Ann on 555-0100 before use"
    for fmt in FORMATS:
        rendition = render_json(corrected, fmt)
        where = {path for path, text in strings(rendition) if "555-0100" in text}
        desk = {"ninjs": {"/ednote"}, "ninjs3": {"/edNote"}, "ans": {"/planning/internal_note"}}[fmt]
        assert where == desk, fmt
        fixed = [path for path, text in strings(rendition) if text == "Closure is on Saturday, not Friday"]
        assert fixed and not any("ednote" in p.lower() or "planning" in p for p in fixed), fmt
    ninjs = render_json(corrected, "ninjs")
    assert ninjs["ednote"] == note
    assert {"role": "correction", "value": "Closure is on Saturday, not Friday"} in ninjs["descriptions"]
    ans = render_json(corrected, "ans")
    assert ans["corrections"] == [
        {
            "type": "correction",
            "correction_type": "correction",
            "text": "Closure is on Saturday, not Friday",
            "additional_properties": {"version": 2, "time": "2026-11-23T09:01:12Z", "editor": "Desk Editor"},
        }
    ]
    assert "editor_note" not in ans  # ANS shows that one "near the content"


def test_a_rollback_note_is_the_desks_and_is_never_published() -> None:
    v1 = story()
    v2 = next_version(v1, note="Wrong day", headline="Bridge closes Sunday")
    v3 = next_version(v2, headline="Bridge closes on Sunday")
    v4 = rolled_back(v3, v2, note="Legal asked to restore v2")
    for fmt in FORMATS:
        rendition = render_json(v4, fmt)
        # ANS keeps the document's own record in additional_properties, which no reader is shown
        published = [text for path, text in strings(rendition) if not path.startswith("/additional_properties/")]
        assert "Wrong day" in published and "Legal asked to restore v2" not in published, fmt
    assert render_json(v4, "ans")["additional_properties"]["correction"]["note"] == "Legal asked to restore v2"


def published_corrections(document: Document, fmt: str) -> list[str]:
    rendition = render_json(document, fmt)
    if fmt == "ans":
        return [c["text"] for c in rendition.get("corrections", [])]
    return [d["value"] for d in rendition.get("descriptions", []) if d["role"] == "correction"]


def test_a_rollback_drops_the_corrections_of_what_it_undid_and_a_later_correction_counts() -> None:
    v1 = story()
    v2 = next_version(v1, note="Three weekends, not two", headline="Bridge closes for three weekends")
    v3 = rolled_back(v2, v1)  # v1's content: v2's correction is not about it
    v4 = next_version(v3, note="Closures start at 10 p.m.", headline="Bridge closes at 10 p.m.")
    v5 = rolled_back(v4, v2)  # v2's content again, and its correction with it
    v6 = rolled_back(v5, v3)  # a rollback to a rollback: v1's content
    v7 = next_version(v6, note="Buses use Mill Street", headline="Bridge closes; buses use Mill Street")
    expected = [
        (v2, ["Three weekends, not two"]),
        (v3, []),
        (v4, ["Closures start at 10 p.m."]),
        (v5, ["Three weekends, not two"]),
        (v6, []),
        (v7, ["Buses use Mill Street"]),
    ]
    for document, notes in expected:
        for fmt in FORMATS:
            assert published_corrections(document, fmt) == notes, (document.version, fmt)


@pytest.mark.corpus
def test_withdrawal_and_embargo_are_in_each_formats_own_fields() -> None:
    held = story(embargoed=datetime(2026, 11, 24, 6, 0, tzinfo=UTC), withdrawn=True)
    out = assert_valid(held)
    assert (out["ninjs"]["pubstatus"], out["ninjs"]["embargoed"]) == ("canceled", "2026-11-24T06:00:00Z")
    assert (out["ninjs3"]["pubStatus"], out["ninjs3"]["embargoedUntil"]) == ("canceled", "2026-11-24T06:00:00Z")
    assert out["ans"]["status"] == "withdrawn"
    assert out["ans"]["content_restrictions"] == {"embargo": {"active": True, "end_time": "2026-11-24T06:00:00Z"}}
    live = assert_valid(story())
    assert live["ninjs"]["pubstatus"] == "usable" and "embargoed" not in live["ninjs"]
    assert "status" not in live["ans"] and "content_restrictions" not in live["ans"]
    kill_notice = assert_valid(story(withdrawn=True, body=[], inline_links=[], related_links=[]))
    assert "bodies" not in kill_notice["ninjs"] and kill_notice["ans"]["content_elements"] == []


# ---------------------------------------------------------------------------------------------- the mapping


@pytest.mark.corpus
def test_the_story_is_mapped_field_by_field() -> None:
    doc = next_version(story(), note="Fixed the day")
    out = assert_valid(doc)
    ninjs, ninjs3, ans = out["ninjs"], out["ninjs3"], out["ans"]
    assert ninjs["version"] == "2" and ninjs["firstcreated"] == "2026-11-23T08:01:12Z"
    assert ninjs["versioncreated"] == "2026-11-23T09:01:12Z" and ninjs["contentcreated"] == "2026-11-23T07:00:00Z"
    assert ninjs["headlines"] == [{"role": "main", "value": "Bridge closes for repairs"}]
    assert ninjs["by"] == "Ann Lee" and ninjs["slugline"] == "BRIDGE-CLOSURE" and ninjs["urgency"] == 3
    assert ninjs["renditions"] == [
        {"name": "web", "href": "https://news.example.com/bridge-closes", "contenttype": "text/html"}
    ]
    assert ninjs["subjects"] == [{"name": "transport"}, {"name": "bridges"}, {"name": "Local", "rel": "section"}]
    assert ninjs["bodies"][0]["value"] == (
        '<p>The bridge closes on Saturday, the <a href="https://council.example/x?a=1&amp;b=2">council</a> said.</p>\n'
        "<h2>Buses &amp; &lt;diversions&gt;</h2>\n"
        "<p>Buses divert via the<br>ring road.</p>"
    )
    assert ninjs["altids"] == [
        {"role": "ingest-id", "value": "bridge"},
        {"role": "source-version", "value": "4"},
        {"role": "raw-key", "value": "raw/bridge/v1.json"},
    ]
    picture, ferry, road, tram = ninjs["associations"]
    assert picture == {
        "name": "featured",
        "uri": "urn:newsml:example.com:bridge#picture-1",
        "type": "picture",
        "representationtype": "partial",
        "by": "AP",
        "descriptions": [{"role": "caption", "value": "The bridge"}],
        "altids": [{"role": "ref", "value": "AP-123 456"}],
    }
    assert ferry["uri"] == "https://news.example.com/ferry" and ferry["name"] == "related-1"
    assert {"role": "position", "value": "1"} in ferry["descriptions"]
    assert {"role": "heading", "value": "More transport"} in ferry["descriptions"]
    assert road["uri"] == "urn:newsml:example.com:bridge#related-2"
    assert tram["altids"] == [{"role": "url", "value": "/maps/tram"}]  # relative: not a uri
    assert [a.get("rel") for a in ninjs3["associations"]] == ["featured", "related", "related", "related"]
    assert not any("rel" in a for a in ninjs["associations"])  # 2.1 associations have no rel

    assert ans["_id"] == "urn:newsml:example.com:bridge" and ans["source"]["source_id"] == "bridge"
    assert ans["revision"] == {"revision_id": "2", "parent_id": "1"}
    assert (ans["first_publish_date"], ans["publish_date"]) == ("2026-11-23T07:00:00Z", "2026-11-23T09:00:00Z")
    assert ans["credits"] == {"by": [{"type": "author", "name": "Ann Lee"}]}
    assert ans["canonical_url_external"] == "https://news.example.com/bridge-closes"
    assert ans["taxonomy"]["sections"][0]["name"] == "Local" and ans["slug"] == "BRIDGE-CLOSURE"
    assert [e["type"] for e in ans["content_elements"]] == ["text", "link_list", "header", "text", "link_list"]
    first_list = ans["content_elements"][1]
    assert first_list["title"] == "More transport"
    assert [i["type"] for i in first_list["items"]] == ["interstitial_link", "text"]
    extra = ans["additional_properties"]
    assert extra["module_headings"] == [{"text": "Elsewhere", "position": 3}]  # it heads no link
    assert extra["urgency"] == 3 and extra["associations"][0]["uri"] == "AP-123 456"
    assert "internal_notes" not in ans["source"]["additional_properties"]


@pytest.mark.corpus
def test_a_module_of_more_than_ten_links_is_several_link_lists_in_place() -> None:
    links = [
        RelatedLink(title=f"Story {n}", url=f"https://x.example/{n}", heading="More", position=1, text=f"Story {n}")
        for n in range(23)
    ]
    ans = assert_valid(story(related_links=links, inline_links=[]))["ans"]
    lists = [e for e in ans["content_elements"] if e["type"] == "link_list"]
    assert [len(e["items"]) for e in lists] == [10, 10, 3] and {e["title"] for e in lists} == {"More"}
    assert [e["type"] for e in ans["content_elements"]][:5] == ["text", "link_list", "link_list", "link_list", "header"]


@pytest.mark.corpus
def test_unsafe_link_targets_are_never_links() -> None:
    evil = "java\tscript:alert(1)"
    doc = story(
        inline_links=[InlineLink(block=0, start=4, end=10, text="bridge", url=evil)],
        related_links=[RelatedLink(title="Click", url="javascript:alert(1)", position=0, text="Click")],
        url="javascript:alert(2)",
    )
    out = assert_valid(doc)
    for fmt, rendition in out.items():
        kept = [path for path, text in strings(rendition) if "script:" in text]
        # ninjs has nowhere to keep a target no reader may follow; ANS keeps it in its grab-bag, unlinked
        assert kept == (
            ["/content_elements/0/items/0/additional_properties/url", "/additional_properties/url"]
            if fmt == "ans"
            else []
        ), fmt
        assert "<a " not in json.dumps(rendition), fmt


def test_a_uri_template_that_makes_no_uri_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="uri_template"):
        item_uri("http://[zz]/{id}", "bridge")
    assert render_json(story(), "ninjs", "https://news.example.com/articles/{id}")["uri"] == (
        "https://news.example.com/articles/bridge"
    )


# ---------------------------------------------------------------------------------------------- URIs


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
    | st.sampled_from(["a:b", "http://[::1]/x"])
)
def test_as_uri_gives_only_what_the_official_format_checker_takes(text: str) -> None:
    uri = as_uri(text)
    assert uri is None or Draft202012Validator.FORMAT_CHECKER.conforms(uri, "uri"), (text, uri)
    if is_uri(text):
        assert Draft202012Validator.FORMAT_CHECKER.conforms(text, "uri"), text


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://news.example.com/a?b=1#c", "https://news.example.com/a?b=1#c"),
        ("https://example.com/café et thé", "https://example.com/caf%C3%A9%20et%20th%C3%A9"),
        ("https://example.com/100%/a#b#c", "https://example.com/100%25/a#b%23c"),
        ("http://[::1]:8080/x[1]", "http://[::1]:8080/x%5B1%5D"),
        ("/news/relative", None),
        ("bridge", None),
    ],
)
def test_a_link_is_made_a_uri_by_escaping_what_a_uri_may_not_hold(given: str, expected: str | None) -> None:
    assert as_uri(given) == expected


# ---------------------------------------------------------------------------------------------- property


_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30).filter(str.strip)
_URL = (
    st.none()
    | st.sampled_from(
        [
            "https://example.com/a",
            "https://example.com/café?q=1&r=<2>#x#y",
            "/relative/path",
            "javascript:alert(1)",
            "mailto:desk@example.com",
            "http://[::1]/x",
            "http://[zz]/x",
            "  https://padded.example/  ",
            "news:comp.lang",
        ]
    )
    | _TEXT
)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    body = draw(st.lists(st.builds(Block, type=st.sampled_from(["paragraph", "heading"]), text=_TEXT), max_size=6))
    withdrawn = not body or draw(st.booleans())
    positions = sorted(draw(st.lists(st.integers(0, len(body)), max_size=14)))
    headings = draw(
        st.lists(st.none() | st.sampled_from(["More", "Related <b>"]), min_size=len(positions), max_size=len(positions))
    )
    links = [
        RelatedLink(
            title=draw(st.just("") | _TEXT),
            url=draw(_URL),
            label=draw(st.none() | _TEXT),
            media=draw(st.none() | st.just("PHOTOS")),
            heading=heading,
            position=position,
            text=draw(_TEXT),
        )
        for position, heading in zip(positions, headings, strict=True)
    ]
    inline = []
    for i, block in enumerate(body):
        if draw(st.booleans()):
            start = draw(st.integers(0, len(block.text) - 1))
            end = draw(st.integers(start + 1, len(block.text)))
            inline.append(InlineLink(block=i, start=start, end=end, text=block.text[start:end], url=draw(_URL) or "x"))
    when = st.none() | st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC) | st.none()
    )
    first = story(
        body=body,
        withdrawn=withdrawn,
        related_links=links,
        inline_links=inline,
        headline=draw(_TEXT),
        byline=draw(st.none() | _TEXT),
        url=draw(_URL),
        published_at=draw(when),
        updated_at=draw(when),
        embargoed=draw(when),
        tags=draw(st.lists(_TEXT, max_size=3)),
        associations=draw(
            st.lists(
                st.builds(
                    Association, kind=st.sampled_from(["picture", "other", "text"]), uri=_URL, caption=st.none() | _TEXT
                ),
                max_size=3,
            )
        ),
    )
    if draw(st.booleans()):
        return next_version(first, note=draw(st.none() | _TEXT), headline=draw(_TEXT))
    return first


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_a_rendition_loses_no_body_block_or_related_link(document: Document) -> None:
    for fmt in FORMATS:
        rendition = render_json(document, fmt)
        assert body_of(rendition, fmt) == [(b.type, b.text) for b in document.body], fmt
        assert links_of(rendition, fmt) == expected_links(document, fmt), fmt


@pytest.mark.corpus
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_a_rendition_of_any_document_validates(document: Document) -> None:
    assert_valid(document)


# ---------------------------------------------------------------------------------------------- registry, API, CLI


def test_the_registry_lists_the_formats_and_refuses_a_second_of_one_name() -> None:
    assert [r.name for r in rendition_formats()] == ["document", "ninjs", "ninjs3", "ans"]
    again = RenditionRegistry()
    again.register(registry.get("ans"))
    with pytest.raises(ConfigError, match="registered twice"):
        again.register(Rendition("ans", "another", registry.get("ans").render, registry.get("ans").version_of))
    with pytest.raises(ConfigError, match=r"unknown rendition format 'nitf' \(known: document, ninjs, ninjs3, ans\)"):
        registry.get("nitf")


def test_the_document_rendition_is_the_document_and_the_api_uses_the_uri_template() -> None:
    doc = story()
    assert render(doc, "document", load_settings(env={})) == json.loads(doc.to_json())
    chosen = load_settings(env={"INGEST_URI_TEMPLATE": "https://news.example.com/a/{id}"})
    assert render(doc, "ninjs", chosen)["uri"] == "https://news.example.com/a/bridge"
    assert render(doc, "ans", load_settings(env={}))["_id"] == "urn:newsml:localhost:bridge"  # the default


def test_uri_template_follows_the_settings_precedence_and_bad_ones_are_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("uri_template: 'urn:newsml:file.example:{id}'\n")
    assert load_settings(config=config, env={}).uri_template == "urn:newsml:file.example:{id}"
    env = {"INGEST_URI_TEMPLATE": "urn:newsml:env.example:{id}"}
    assert load_settings(config=config, env=env).uri_template == "urn:newsml:env.example:{id}"
    assert load_settings({"uri_template": "tag:cli.example,2026:{id}"}, config=config, env=env).uri_template == (
        "tag:cli.example,2026:{id}"
    )
    for bad, words in [
        ("bridge", "must contain {id}"),
        ("{id}", "must be an absolute URI"),
        ("urn:x:{id}:{version}", "{id} is the only placeholder"),
        ("https://x.example/{id}#top", "fragment"),
        ("https://x.example/a b/{id}", "must be an absolute URI"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(words)) as caught:
            load_settings(env={"INGEST_URI_TEMPLATE": bad})
        assert "uri_template (from $INGEST_URI_TEMPLATE)" in str(caught.value)


@pytest.mark.corpus
def test_parse_as_prints_each_rendition_valid_one_line_a_document() -> None:
    files = [str(p) for p in sorted(EXAMPLES.glob("*.txt"))]
    for fmt in FORMATS:
        out = cli("parse", "--as", fmt, *files)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert len(lines) == len(files)
        for line in lines:
            assert not schema_errors(json.loads(line), fmt), fmt
    pretty = cli("parse", "--as", "ans", "--pretty", files[0])
    assert pretty.stdout.startswith('{\n  "type": "story",\n  "version": "0.10.12",')
    as_document, default = (cli("parse", *flags, *files).stdout for flags in (["--as", "document"], []))
    assert _timeless(as_document) == _timeless(default) and as_document.count("\n") == len(files)


def _timeless(output: str) -> list[dict[str, Any]]:
    """Parse output without the times a parse takes from the clock."""
    docs = [json.loads(line) for line in output.splitlines()]
    for doc in docs:
        del doc["created_at"], doc["source"]["received_at"]
    return docs


def test_an_unknown_format_is_one_line_and_exit_2_before_anything_is_read(tmp_path: Path) -> None:
    out = cli("parse", "--as", "nitf", str(tmp_path / "missing.txt"))
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == "error: --as: unknown format 'nitf' (known: document, ninjs, ninjs3, ans)\n"
    shown = cli("show", "bridge", "--as", "NINJS", env={"PATH": "/usr/bin:/bin"})
    assert shown.returncode == 2 and shown.stderr.count("\n") == 1 and "unknown format 'NINJS'" in shown.stderr


@pytest.mark.s3
@pytest.mark.corpus
def test_show_as_renders_a_stored_version(tmp_path: Path, cli_env: dict[str, str]) -> None:
    story_file = tmp_path / "bridge.txt"
    story_file.write_text("Bridge Closes\n\nIt closes Friday.\n\nBuses divert.\n")
    assert cli("file", str(story_file), env=cli_env).returncode == 0
    story_file.write_text("Bridge Closes\n\nIt closes Saturday.\n\nBuses divert.\n")
    assert cli("file", "--note", "Wrong day", str(story_file), env=cli_env).returncode == 0
    stored = cli("show", "bridge", env=cli_env).stdout
    assert cli("show", "bridge", "--as", "document", env=cli_env).stdout == stored
    env = {**cli_env, "INGEST_URI_TEMPLATE": "urn:newsml:example.com:{id}"}
    ninjs = json.loads(cli("show", "bridge", "--as", "ninjs", env=env).stdout)
    assert (ninjs["uri"], ninjs["version"]) == ("urn:newsml:example.com:bridge", "2")
    assert {"role": "correction", "value": "Wrong day"} in ninjs["descriptions"]
    first = json.loads(cli("show", "bridge", "--as", "ans", "--version", "1", env=env).stdout)
    assert first["revision"] == {"revision_id": "1"} and "corrections" not in first
    for fmt, rendition in (("ninjs", ninjs), ("ans", first)):
        assert not schema_errors(rendition, fmt)
