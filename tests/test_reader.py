"""Reading bytes safely and decoding them by the documented rule."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from ingest.errors import ReadError
from ingest.reader import decode, read_bytes

TEXT = "Headline “quoted” — dash\n\nBody paragraph café.\n"


@pytest.mark.parametrize(
    ("data", "encoding", "rule"),
    [
        (TEXT.encode("utf-8"), "utf-8", "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8", "bom"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le", "bom"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be", "bom"),
        (codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), "utf-32-le", "bom"),
        (TEXT.encode("cp1252"), "cp1252", "cp1252-fallback"),
    ],
)
def test_decoding_rule_is_recorded_and_text_is_exact(data: bytes, encoding: str, rule: str) -> None:
    decoded = decode(data, "a.txt")
    assert decoded.text == TEXT
    assert (decoded.encoding, decoded.rule) == (encoding, rule)


@pytest.mark.parametrize(
    ("raw", "endings"),
    [(b"a\r\nb\r\n", "crlf"), (b"a\rb\r", "cr"), (b"a\nb\n", "lf"), (b"a\r\nb\n", "mixed"), (b"ab", "none")],
)
def test_line_endings_become_lf_and_are_recorded(raw: bytes, endings: str) -> None:
    decoded = decode(raw, "a.txt")
    assert "\r" not in decoded.text
    assert decoded.line_endings == endings


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"Headline\n\nbody \x00 here", "NUL byte at offset 15"),
        (b"Headline\n\nbell \x07 here", "U+0007 on line 3"),
        (b"\x81\x8d\x8f not cp1252 either", "neither UTF-8 nor Windows-1252"),
        (codecs.BOM_UTF16_LE + b"\x00\xd8", "invalid utf-16-le"),
    ],
)
def test_binary_and_undecodable_bytes_are_refused_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(ReadError) as err:
        decode(data, "bad.txt")
    assert str(err.value).startswith("bad.txt: ")
    assert words in str(err.value)


def test_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as fh:  # sparse: 64 GiB on paper, nothing on disk; reading it would exhaust memory
        fh.truncate(64 * 1024**3)
    with pytest.raises(ReadError, match=r"huge.txt: is 64.0 GiB, above the 1.0 MiB limit"):
        read_bytes(huge, 1024 * 1024)


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="no such file"):
        read_bytes(tmp_path / "nope.txt", 100)
    with pytest.raises(ReadError, match="directory"):
        read_bytes(tmp_path, 100)
