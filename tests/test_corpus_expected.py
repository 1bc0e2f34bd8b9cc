"""The text samples of the NewsML-G2, ninjs and NITF corpora, each checked against the documents a reader
expects, kept as JSON in ``tests/corpus_expected/<format>/`` (the corpus itself is read in place).

``python -m tests.test_corpus_expected`` rewrites the expected JSON from the parsers as they are now: read
the diff before committing it. Refused samples are listed, with their reasons, in ``tests/test_formats.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.formats_corpus import documents
from tests.test_formats import EXPECTED_FAILURES, IS_TEXT, _files

EXPECTED = Path(__file__).resolve().parent / "corpus_expected"


def _samples() -> list[tuple[str, str]]:
    """(format, path below its corpus folder) of every text sample that gives documents."""
    out = []
    for fmt, is_text in sorted(IS_TEXT.items()):
        root = CORPUS / "wire" / fmt
        if root.is_dir():
            for path in _files(root):
                rel = str(path.relative_to(root))
                if is_text(path) and rel not in EXPECTED_FAILURES[fmt]:
                    out.append((fmt, rel))
    return out


def _expected(fmt: str, rel: str) -> Path:
    return EXPECTED / fmt / (rel.replace("/", "__") + ".expected.json")


@pytest.mark.corpus
@pytest.mark.parametrize(("fmt", "rel"), _samples() or [("(corpus absent)", "")])
def test_every_text_sample_gives_the_documents_a_reader_expects(fmt: str, rel: str) -> None:
    if fmt == "(corpus absent)":
        pytest.skip("../shared/corpus is not beside this checkout")
    path = CORPUS / "wire" / fmt / rel
    expected = _expected(fmt, rel)
    assert expected.is_file(), f"{rel} has no {expected.name}: run python -m tests.test_corpus_expected"
    assert documents(path.read_bytes(), path.name) == json.loads(expected.read_text(encoding="utf-8"))


@pytest.mark.corpus
def test_no_expected_file_is_left_without_its_sample() -> None:
    wanted = {_expected(fmt, rel) for fmt, rel in _samples()}
    if not wanted:
        pytest.skip("../shared/corpus is not beside this checkout")
    assert set(EXPECTED.glob("*/*.expected.json")) - set(EXPECTED.glob("other-xml/*")) == wanted


def _write() -> None:
    for fmt, rel in _samples():
        path = CORPUS / "wire" / fmt / rel
        target = _expected(fmt, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(documents(path.read_bytes(), path.name), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    _write()
