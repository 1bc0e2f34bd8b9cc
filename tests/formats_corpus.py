"""What the wire-format tests share: what a reader gets from one input, and a format's corpus checked against
the expected JSON kept beside the tests.

Corpus files are read in place under ``../shared/corpus/wire/`` (never copied); each has its expected JSON in
``tests/formats/<format>/corpus/<file name>.expected.json``. After a deliberate parser change the test module
rewrites them (``python -m tests.test_format_<format>``, which calls ``Corpus.write``), and the diff is read
like any other change: the expected JSON is what a reader of the documents was promised.

Two shapes of expected JSON are kept, as the formats' inputs differ: ``observed`` (one object per file: its
document, ``{"items": [...]}`` when it holds several, or the refusal) suits wire takes, mostly one story a
file; ``documents`` (a list per file, one entry per item with its path) suits envelopes and feeds, which hold
several items as a rule and refuse some of them on their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.errors import InputError
from ingest.outcome import Outcome
from ingest.prepare import Prepared, prepare_items
from tests.conftest import RECEIVED, RULES, need_shared


def observed(data: bytes, name: str) -> dict[str, object]:
    """What ingest makes of one input: its document(s), or the refusal."""
    try:
        items = prepare_items(data, name, RULES, received_at=RECEIVED)
    except InputError as exc:
        return {"refused": {"check": str(exc.check), "message": str(exc)}}
    found: list[dict[str, object]] = []
    for item in items:
        if isinstance(item, Prepared):
            found.append(
                {
                    "format": item.source.format,
                    "id": item.id,
                    "input_version": item.source.input_version,
                    "headline_repeated": item.source.headline_repeated,
                    "encoding_rule": item.source.encoding_rule,
                    "internal_notes": item.source.internal_notes,
                    "content": item.content.model_dump(mode="json"),
                }
            )
        else:
            assert item.error is not None
            found.append({"refused": {"check": str(item.error.check), "message": str(item.error)}})
    return found[0] if len(found) == 1 else {"items": found}


def documents(data: bytes, name: str) -> list[dict[str, object]]:
    """What a reader gets from one input: one entry per item (a refused item as its one-line reason)."""
    out: list[dict[str, object]] = []
    for item in prepare_items(data, name, RULES, received_at=RECEIVED):
        if isinstance(item, Outcome):
            out.append({"path": item.path, "refused": str(item.error)})
            continue
        out.append(
            {
                "path": item.path,
                "format": item.source.format,
                "id": item.id,
                "input_version": item.source.input_version,
                "headline_repeated": item.source.headline_repeated,
                "internal_notes": item.source.internal_notes,
                "content": item.content.model_dump(mode="json"),
            }
        )
    return out


def refusal(data: bytes, name: str, format: str | None = None) -> InputError:
    """The error a whole input is refused with (the test fails when it is not refused); ``format`` names
    the parser, as ``prepare_items`` takes it, when content is not to decide."""
    with pytest.raises(InputError) as caught:
        prepare_items(data, name, RULES, received_at=RECEIVED, format=format)
    return caught.value


def error_of(data: bytes, name: str) -> str:
    """The error a whole input is refused with, "" when it is not refused; any error but ours fails the test."""
    try:
        prepare_items(data, name, RULES, received_at=RECEIVED)
    except InputError as exc:  # anything else fails the test
        return str(exc)
    return ""


def one_line_refusal(data: bytes, name: str) -> InputError:
    """The refusal of a whole input, which must be one line that starts with the file's name."""
    error = refusal(data, name)
    message = str(error)
    assert message.startswith(f"{name}: ") and "\n" not in message, message
    return error


def documents_or_our_error(data: bytes, name: str) -> None:
    """Any input gives documents, items refused on their own, or our one-line refusal: never a crash."""
    messages: list[str] = []
    try:
        items = prepare_items(data, name, RULES, received_at=RECEIVED)
    except InputError as exc:  # anything else fails the test
        items, messages = [], [str(exc)]
    messages += [str(item.error) for item in items if isinstance(item, Outcome)]
    assert all(isinstance(item, Prepared) or item.error is not None for item in items)
    assert not any("\n" in message for message in messages)


@dataclass(frozen=True)
class Corpus:
    """One format's corpus files, read in place, and the expected JSON of each, ``read`` from it."""

    #: The corpus folder, under ``../shared/corpus/wire/``.
    wire: Path
    #: ``tests/formats/<format>/corpus``.
    expected_dir: Path
    #: What a reader gets from one file's bytes: ``observed`` or ``documents``.
    read: Callable[[bytes, str], object]

    def files(self) -> list[Path]:
        return sorted(p for p in self.wire.rglob("*") if p.is_file())

    def relative(self) -> list[str]:
        """The corpus files as paths below the corpus folder; none when ../shared is absent (so that the
        tests parametrized on them are collected, and then skipped)."""
        return sorted(str(p.relative_to(self.wire)) for p in self.files()) if self.wire.is_dir() else []

    def expected(self, path: Path) -> Path:
        return self.expected_dir / f"{path.name}.expected.json"

    def expected_files(self) -> list[Path]:
        return sorted(self.expected_dir.glob("*.expected.json"))

    def check_each_has_one(self, count: int) -> None:
        """``count`` corpus files, each with its expected JSON, and no expected JSON without its file."""
        need_shared(self.wire)
        files = self.files()
        assert len(files) == count
        assert {self.expected(p) for p in files} == set(self.expected_dir.glob("*.expected.json"))

    def check_expected(self, expected: Path) -> None:
        """The corpus file of ``expected`` gives what it says."""
        name = expected.name.removesuffix(".expected.json")
        need_shared(self.wire)
        path = next((p for p in self.files() if p.name == name), None)
        assert path is not None, f"{name} is not in {self.wire}"
        assert self.read(path.read_bytes(), path.name) == json.loads(expected.read_text(encoding="utf-8"))

    def check_file(self, rel: str, refused: Mapping[str, str]) -> None:
        """The corpus file ``rel`` gives its expected JSON, or, when ``refused`` names it, is refused in one
        line holding the words given there."""
        path = need_shared(self.wire / rel)
        if rel in refused:
            assert refused[rel] in one_line_refusal(path.read_bytes(), path.name).reason
            return
        expected = self.expected(path)
        assert expected.is_file(), f"{rel} has no {expected.name}"
        assert self.read(path.read_bytes(), path.name) == json.loads(expected.read_text(encoding="utf-8"))

    def check_no_orphans(self, refused: Collection[str]) -> None:
        """Every expected JSON belongs to a corpus file, and every file said to be refused is one."""
        need_shared(self.wire)
        names = {Path(rel).name for rel in self.relative()}
        assert {p.name.removesuffix(".expected.json") for p in self.expected_dir.glob("*.expected.json")} <= names
        assert set(refused) <= set(self.relative())

    def write(self, refused: Collection[str] = ()) -> None:
        """Rewrite the expected JSON from what the parser gives now (then read the diff); the files in
        ``refused`` (relative paths) are checked by their reason, not by expected JSON."""
        self.expected_dir.mkdir(parents=True, exist_ok=True)
        for path in self.files():
            if str(path.relative_to(self.wire)) in refused:
                continue
            text = json.dumps(self.read(path.read_bytes(), path.name), indent=2, ensure_ascii=False) + "\n"
            self.expected(path).write_text(text, encoding="utf-8")
