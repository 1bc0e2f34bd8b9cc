"""Reading input bytes safely and turning them into text by a fixed, recorded rule.

The encoding rule, in order:

1. a byte-order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) decides, and the mark is removed;
2. otherwise bytes that are valid UTF-8 are UTF-8;
3. otherwise they are read as Windows-1252 (what legacy newsroom systems write); bytes that are not
   defined in Windows-1252 either are refused.

Text holding NUL or other control characters (besides tab, LF, CR and form feed) is refused as binary:
an image renamed ``.txt`` must not become an article. Line endings become LF; the original style is
recorded. ``decode`` is pure; ``read_bytes`` is the only function here that touches the file system.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingest.errors import Check, ReadError

LineEndings = Literal["lf", "crlf", "cr", "mixed", "none"]
EncodingRule = Literal["bom", "utf-8", "cp1252-fallback"]

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its LE mark starts with the UTF-16 LE mark.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Decoded:
    """Text ready for a parser, and how it was obtained."""

    text: str
    encoding: str
    rule: EncodingRule
    line_endings: LineEndings


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes``, refusing larger ones before reading them."""
    return read_file(path, max_bytes)[0]


def read_file(path: Path, max_bytes: int, *, follow_symlinks: bool = True) -> tuple[bytes, os.stat_result]:
    """``read_bytes``, plus the file's status as it was read (to tell later whether it was replaced).

    With ``follow_symlinks=False`` a path that is a symlink is refused instead of followed.
    """
    name = str(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever; regular files ignore it.
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ReadError(name, "no such file", check=Check.MISSING) from None
    except IsADirectoryError:
        raise ReadError(name, "is a directory, not a file", check=Check.NOT_A_FILE) from None
    except PermissionError:
        raise ReadError(name, "permission denied", check=Check.PERMISSION) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            reason = "became a symlink after it was listed; it is not followed"
            raise ReadError(name, reason, check=Check.REFUSED) from None
        raise ReadError(name, f"cannot open: {exc.strerror or exc}", check=Check.OPEN) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ReadError(name, f"is {what}, not an article file", check=Check.NOT_A_FILE)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > max_bytes:
            limit = f"is {human_size(info.st_size)}, above the {human_size(max_bytes)} limit"
            raise ReadError(name, limit, check=Check.SIZE_LIMIT)
        # Read one byte past the limit: a file still growing after fstat is refused, not truncated.
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ReadError(name, f"grew past the {human_size(max_bytes)} limit while being read", check=Check.SIZE_LIMIT)
    return data, info


def decode(data: bytes, name: str, *, controls: frozenset[str] | None = frozenset()) -> Decoded:
    """Decode input bytes by the module's encoding rule; raise ``ReadError`` naming ``name``.

    Control characters other than those in ``controls`` are refused as binary. A wire format whose framing
    is made of control characters (ANPA 1312, IPTC 7901: SOH, STX, ETX, SYN ...) claims them: the caller
    decodes with ``controls=None`` (no check), lets content pick the format, then calls
    ``check_controls`` with what that format claims. NUL is never accepted.
    """
    encoding: str
    rule: EncodingRule
    for bom, codec in _BOMS:
        if data.startswith(bom):
            encoding, rule = codec, "bom"
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise ReadError(
                    name,
                    f"has a {codec} byte-order mark but invalid {codec} at byte {exc.start + len(bom)}",
                    check=Check.ENCODING,
                ) from None
            break
    else:
        if b"\x00" in data:
            raise ReadError(name, f"is binary, not text (NUL byte at offset {data.index(0)})", check=Check.BINARY)
        try:
            text, encoding, rule = data.decode("utf-8"), "utf-8", "utf-8"
        except UnicodeDecodeError:
            try:
                text, encoding, rule = data.decode("cp1252"), "cp1252", "cp1252-fallback"
            except UnicodeDecodeError as exc:
                raise ReadError(
                    name,
                    f"is neither UTF-8 nor Windows-1252 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                    check=Check.ENCODING,
                ) from None
    if controls is not None:
        _refuse_controls(text, name, controls)
    return Decoded(text=_to_lf(text), encoding=encoding, rule=rule, line_endings=_line_endings(text))


def check_controls(decoded: Decoded, name: str, controls: frozenset[str] = frozenset()) -> None:
    """Refuse decoded text holding control characters its format does not claim (``decode`` did not look)."""
    _refuse_controls(decoded.text, name, controls)


def _refuse_controls(text: str, name: str, controls: frozenset[str]) -> None:
    for found in _CONTROL.finditer(text):
        if found.group() in controls:
            continue
        line = text.count("\n", 0, found.start()) + 1
        kind = "binary, not text" if found.group() == "\x00" else "not clean text"
        raise ReadError(
            name, f"is {kind} (control character U+{ord(found.group()):04X} on line {line})", check=Check.BINARY
        )


def _line_endings(text: str) -> LineEndings:
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    kinds = [kind for kind, n in (("crlf", crlf), ("cr", cr), ("lf", lf)) if n]
    if not kinds:
        return "none"
    if len(kinds) > 1:
        return "mixed"
    found: LineEndings = kinds[0]  # type: ignore[assignment]  # one of the three literals above
    return found


def _to_lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def human_size(n: int) -> str:
    """``512 bytes``, ``6.8 MiB``: sizes as people read them in messages."""
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"
