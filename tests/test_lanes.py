"""``ingest.lanes``: a batch committed by several processes, over the real SeaweedFS (processes open it)."""

from __future__ import annotations

import json

import pytest

from ingest.commit import Committer
from ingest.errors import Check, InvalidDocument
from ingest.keys import Keys
from ingest.lanes import MIN_ITEMS, LaneCommitter
from ingest.outcome import Outcome
from ingest.prepare import Prepared
from ingest.settings import Settings
from ingest.stores.s3 import S3Store
from tests.conftest import prepared, read_feed

pytestmark = pytest.mark.s3


def test_lanes_keep_each_articles_files_in_order_and_carry_refusals_back(
    settings: Settings, store: S3Store, prefix: str
) -> None:
    batch: list[Prepared | Outcome] = []
    for n in range(MIN_ITEMS + 8):
        batch.append(prepared(f"Story {n}\n\nParagraph of story {n}.\n".encode(), f"s-{n:03d}.txt"))
    for n in range(1, 4):  # three revisions of one article, in order, spread through the batch
        text = f"---\nid: moving\nheadline: Revision {n}\n---\nThe story as told the {n}th time.\n"
        batch.insert(n * 10, prepared(text.encode(), f"moving-{n}.txt"))
    refused = Outcome.failed("bad.txt", InvalidDocument("bad.txt", "no headline", check=Check.HEADLINE))
    batch.insert(5, refused)
    # A refusal made in a lane process (an unrelated story under a stored name-made id) comes back whole.
    Committer(store, prefix).commit([prepared(b"Harbour bridge closes\n\nTraffic is diverted.\n", "clash.txt")])
    batch.insert(7, prepared(b"Cricket final tonight\n\nThe teams are ready.\n", "clash.txt"))
    lanes = LaneCommitter(settings.model_copy(update={"processes": 2}), store, 2)
    try:
        outcomes = lanes.commit(batch)
    finally:
        lanes.close()
    assert len(outcomes) == len(batch)
    assert [o.path for o in outcomes] == [b.path for b in batch]  # one outcome per entry, in order
    assert outcomes[5].error is not None and outcomes[5].error.check == Check.HEADLINE
    clash = outcomes[7]
    assert clash.outcome == "failed" and clash.error is not None and clash.error.check == Check.ID_CONFLICT
    assert "shares no headline or paragraph" in clash.error.reason
    moving = [o for o in outcomes if o.id == "moving"]
    assert [(o.outcome, o.version) for o in moving] == [("created", 1), ("updated", 2), ("updated", 3)]
    latest = store.get(Keys(prefix, "moving").latest)
    assert latest is not None and json.loads(latest.body)["headline"] == "Revision 3"
    assert len(read_feed(store, prefix)) == 1 + MIN_ITEMS + 8 + 3


def test_a_small_batch_starts_no_process(settings: Settings, store: S3Store) -> None:
    lanes = LaneCommitter(settings, store, 2)
    outcomes = lanes.commit([prepared(b"Alone\n\nOne file.\n", "alone.txt")])
    assert [o.outcome for o in outcomes] == ["created"]
    assert lanes._pool is None  # ingest file story.txt never pays for starting processes
