"""Hostile and awkward input: a one-line reason (or a correct document), bounded time, the run goes on."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.api import open_sources
from ingest.errors import InputError
from ingest.outcome import Outcome
from ingest.prepare import Prepared, guarded, prepare_file
from ingest.report import Reporter
from ingest.runner import run_once
from ingest.settings import SourceSettings, load_settings
from ingest.stores.memory import MemoryStore
from tests.conftest import RECEIVED, RULES, prepared

SETTINGS = load_settings(env={})


def read(path: Path) -> Prepared | Outcome:
    """One file (of one item) through the pure unit, every failure an outcome, as a run reads it."""
    (item,) = guarded(str(path), lambda: prepare_file(path, RULES, SETTINGS.max_bytes, received_at=RECEIVED))
    return item
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb"

HOSTILE: dict[str, tuple[bytes, str]] = {
    "empty.txt": (b"", "empty"),
    "blank.txt": (b" \n\t\n\r\n   \n", "empty"),
    "image.txt": (PNG, "binary"),
    "photo.txt": (JPEG, "binary"),
    "utf16-no-bom.txt": ("Headline\n\nBody.\n".encode("utf-16-le"), "binary"),
    "nul.txt": (b"Headline\n\nBody \x00 text.\n", "NUL byte"),
    "control.txt": (b"Headline\n\nBody \x1b[31m red.\n", "control character U+001B"),
    "not-text.txt": (b"Headline\n\n\x81\x8d\x8f\x90\x9d\n", "neither UTF-8 nor Windows-1252"),
    "headline-only.txt": (b"Just a headline\n", "no body paragraph"),
    "only-modules.txt": (b"READ MORE One\n\nRelated from The Site\n\nFollow us on Twitter\n", "no headline"),
    "modules-no-body.txt": (b"A headline\n\nREAD MORE One\n\nFollow us on Twitter\n", "link modules or boilerplate"),
    "one-huge-line.txt": (b"word " * 400_000, "too long for a headline"),
    "many-tiny-paragraphs.txt": (b"Headline\n\n" + b"a\n\n" * 1_000_000, "above the 20,000 limit"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_in_one_line_quickly(tmp_path: Path, name: str) -> None:
    data, words = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(data)
    started = time.monotonic()
    result = read(path)
    elapsed = time.monotonic() - started
    assert isinstance(result, Outcome), f"{name} was accepted"
    message = str(result.error)
    assert message.startswith(f"{path}: ")
    assert words in message
    assert "\n" not in message and "Traceback" not in message
    assert elapsed < 30, f"{name} took {elapsed:.1f}s"  # a generous bound against runaway work, not a benchmark


def test_a_file_far_above_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as fh:
        fh.truncate(200 * 1024**3)  # sparse: reading it would need 200 GiB
    result = read(path)
    assert isinstance(result, Outcome)
    assert result.error is not None and result.error.check == "size-limit"


def test_html_and_script_are_kept_as_text_never_interpreted() -> None:
    text = "Headline <b>bold</b>\n\n<script>alert('x')</script> &amp; <img src=x onerror=alert(1)>\n\nMore text.\n"
    doc = prepared(text.encode(), "html.txt", RULES).content
    assert doc.headline == "Headline <b>bold</b>"
    assert doc.body[0].text == "<script>alert('x')</script> &amp; <img src=x onerror=alert(1)>"


@pytest.mark.parametrize(
    ("file_name", "expected_id"),
    [
        ("../../etc/passwd.txt", "passwd"),
        ("$(rm -rf ~); `id`.txt", "rm--rf-id"),
        ("-rf --help.txt", "rf---help"),
        ("new\nline.txt", "new-line"),
        ("..txt", None),
        ("ｆｕｌｌ／ｗｉｄｔｈ.txt", "full-width"),
    ],
)
def test_file_names_cannot_escape_their_key_or_break_a_line(file_name: str, expected_id: str | None) -> None:
    data = b"Headline\n\nBody.\n"
    if expected_id is None:
        with pytest.raises(InputError, match="no usable id"):
            prepared(data, file_name, RULES)
        return
    assert prepared(data, file_name, RULES).id == expected_id


def test_hostile_files_in_a_drop_folder_do_not_stop_the_good_ones(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for name, (data, _) in HOSTILE.items():
        if name != "many-tiny-paragraphs.txt":  # slow-ish; covered above
            (drop / name).write_bytes(data)
    for name in ("good one.txt", "$(touch pwned).txt", "new\nline.txt"):
        (drop / name).write_text("Good Story\n\nA body paragraph.\n")
    (drop / "escape.txt").symlink_to("/etc/passwd")
    for path in drop.iterdir():
        os.utime(path, (time.time() - 60, time.time() - 60), follow_symlinks=False)
    settings = SETTINGS.model_copy(update={"sources": [SourceSettings(name="drop", location=str(drop))]})
    out = io.StringIO()
    report = run_once(settings, MemoryStore(), open_sources(settings), Reporter("text", out=out))
    assert report.counts.get("created") == 3
    assert report.counts.get("failed") == len(HOSTILE) - 1 + 1
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    lines = out.getvalue().splitlines()
    assert len(lines) == len(report.files) + 1  # one line per file, whatever its name, plus the summary


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"", b"---\n", b"{", b"<?xml version='1.0'?>", b"\xef\xbb\xbf", b"\xff\xfe"]),
    st.binary(max_size=300),
)
def test_property_any_bytes_after_any_format_marker_give_a_document_or_our_error(head: bytes, tail: bytes) -> None:
    message = ""
    try:
        prepared(head + tail, "fuzz.txt", RULES)
    except InputError as exc:
        message = str(exc)
    assert "\n" not in message


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    result = read(fifo)  # would block forever if opened for a blocking read
    assert isinstance(result, Outcome)
    assert "not a regular file" in str(result.error)


def test_names_without_usable_characters_get_a_stable_hashed_id() -> None:
    first = prepared(b"Headline\n\nBody.\n", "ファイル名.txt", RULES).id
    assert first.startswith("file-") and len(first) == 17
    assert prepared(b"Other\n\nText.\n", "ファイル名.txt", RULES).id == first


def test_a_wire_story_opening_with_a_rule_of_dashes_is_plain_text() -> None:
    result = prepared(b"---\nStorm Hits Coast\n\nWinds reached 90 mph.\n", "dashes.txt", RULES)
    assert result.source.format == "text"
    assert result.content.body[-1].text == "Winds reached 90 mph."
