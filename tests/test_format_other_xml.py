"""The agency XML of ``../shared/corpus/wire/other-xml/``: Atom (WENN) and Ritzau, each file checked against
its expected JSON (kept in ``tests/corpus_expected/other-xml/``), and what no format reads, refused by name.

``python -m tests.test_format_other_xml`` rewrites the expected JSON from the parsers as they are now.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.formats_corpus import Corpus, documents

WIRE = CORPUS / "wire" / "other-xml"
EXPECTED = Path(__file__).resolve().parent / "corpus_expected" / "other-xml"
CORPUS_FILES = Corpus(WIRE, EXPECTED, documents)

#: Files no format reads, with the words their one-line refusal must contain.
REFUSED: dict[str, str] = {
    # A Reuters API search result (a listing of item ids, no story): not an article format.
    "reuters-api-results/superdesk-core/tests/io/fixtures/channel1": "is XML with the root element <results>",
}


@pytest.mark.corpus
@pytest.mark.parametrize("rel", CORPUS_FILES.relative() or ["(corpus absent)"])
def test_every_file_gives_the_documents_a_reader_expects_or_is_refused_by_name(rel: str) -> None:
    CORPUS_FILES.check_file(rel, REFUSED)


@pytest.mark.corpus
def test_every_expected_file_belongs_to_a_corpus_file_and_the_counts_hold() -> None:
    CORPUS_FILES.check_no_orphans(REFUSED)
    # 5 files: WENN's Atom feed (2 entries), Ritzau's item, item with a note and feed (2 items); 1 refused.
    assert (len(CORPUS_FILES.relative()), len(CORPUS_FILES.expected_files()), len(REFUSED)) == (5, 4, 1)


if __name__ == "__main__":
    CORPUS_FILES.write(refused=REFUSED)


AGENCY_OTHER = CORPUS / "wire" / "agency-json" / "other" / "superdesk-cp/server/tests/ingest/parser/fixtures"


@pytest.mark.corpus
def test_the_other_agency_json_gives_a_transcript_and_refuses_an_events_list_by_name() -> None:
    from tests.conftest import need_shared
    from tests.formats_corpus import one_line_refusal

    transcript = need_shared(AGENCY_OTHER / "cp_transcripts/cp_transcripts.json")
    (doc,) = documents(transcript.read_bytes(), transcript.name)
    assert doc["format"] == "ninjs" and doc["content"]["headline"]  # type: ignore[index]
    events = need_shared(AGENCY_OTHER / "cp_onclusive/cp_onclusive.json")
    reason = one_line_refusal(events.read_bytes(), events.name).reason
    assert reason.startswith("is an array of") and "not an article" in reason
