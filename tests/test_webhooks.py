"""Webhooks (``ingest.webhooks``), driven by the changes feed: signed, retried, resumable, at least once.

Every delivery goes to a real HTTP receiver on 127.0.0.1 that verifies it with ``standardwebhooks`` (the
reference implementation), so a signature the spec's own library rejects fails here. Most tests run on the
in-memory store with the retry waits injected (no test sleeps through a backoff); the CLI's exit codes and a
sender killed with SIGKILL while its receiver was down run against the suite's SeaweedFS.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from ingest.archive import Archive
from ingest.commit import Committer
from ingest.errors import ConfigError
from ingest.feed import FeedCursor
from ingest.keys import changes_key, changes_key_time, webhook_cursor_key, webhook_log_prefix
from ingest.models import ChangeEntry
from ingest.report import Reporter
from ingest.runner import open_sources, watch
from ingest.settings import Settings, SourceSettings, load_settings
from ingest.stores.faults import FaultyStore
from ingest.stores.memory import MemoryStore
from ingest.stores.s3 import S3Store
from ingest.webhooks import Delivery, Notified, Notifier, delivery_log, webhook_id
from tests.conftest import cli, prepared, read_feed

#: A signing secret in Standard Webhooks' form: whsec_ and the base64 of 32 bytes.
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
ENV = {"CMS_SECRET": SECRET}
PREFIX = "t/"
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
LAG = timedelta(seconds=300)


# ---------------------------------------------------------------------------------------------- a receiver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Got:
    """One request the receiver verified, and what it answered."""

    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any]
    status: int = 0

    @property
    def version(self) -> tuple[str, int]:
        return self.payload["data"]["id"], self.payload["data"]["version"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A sender killed mid-request leaves a broken pipe: that is the point, not an error."""


@dataclass
class Receiver:
    """A real HTTP endpoint that verifies every delivery with ``standardwebhooks``. Down until ``start``."""

    secret: str = SECRET
    port: int = field(default_factory=free_port)
    #: What to answer next, in order: ``(status, headers)``; then 204.
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    got: list[Got] = field(default_factory=list)
    unverified: list[bytes] = field(default_factory=list)
    #: Called with each verified request before it is answered (in the request's thread).
    on_request: Callable[[Got], None] | None = None
    _server: _Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ingest?token=in-the-url"

    def start(self) -> Receiver:
        receiver = self
        verifier = Webhook(self.secret)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    got = Got(headers, body, verifier.verify(body, headers))
                except WebhookVerificationError:
                    receiver.unverified.append(body)
                    status, extra = 401, {}
                else:
                    receiver.got.append(got)
                    if receiver.on_request is not None:
                        receiver.on_request(got)
                    status, extra = receiver.answers.pop(0) if receiver.answers else (204, {})
                    got.status = status
                self.send_response(status)
                for name, value in {**extra, "content-length": "0"}.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[tuple[str, int]]:
        """(id, version) of each delivery answered 2xx, in the order they came."""
        return [g.version for g in self.got if 200 <= g.status < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


# ---------------------------------------------------------------------------------------------- the feed


def publish(store: MemoryStore | S3Store, *stories: tuple[str, str], at: datetime = T0) -> str:
    """One batch of stories (file stem, headline) stored, making one feed object named at ``at``; its key."""
    committer = Committer(store, PREFIX, workers=1, clock=lambda: at)
    # Versions of one story share a paragraph (else a name-made id refuses them as another story).
    text = "{}\n\nA story about {}.\n\nWhat happened: {}.\n"
    items = [prepared(text.format(h, stem, h.lower()).encode(), f"{stem}.txt") for stem, h in stories]
    outcomes = committer.commit(items)
    assert all(o.error is None for o in outcomes), outcomes
    return changes_key(PREFIX, at, committer.run_id, 1)


def feed_keys(store: MemoryStore | S3Store) -> list[str]:
    return list(store.list_keys(f"{PREFIX}changes/"))


def feed_time(key: str) -> datetime:
    when = changes_key_time(PREFIX, key)
    assert when is not None
    return when


def feed_versions(store: MemoryStore) -> list[tuple[str, int]]:
    return [(e.id, e.version) for e in Archive(store, PREFIX).changes()]


def make_settings(url: str, *hooks: dict[str, Any], **extra: Any) -> Settings:
    webhooks = list(hooks) or [{"name": "cms", "url": url, "secret_env": "CMS_SECRET"}]
    return load_settings({"prefix": PREFIX, "webhooks": webhooks, "webhook_attempts": 3, **extra}, env={})


class Waits(list[float]):
    """The backoff waits a notifier asked for; none is slept."""


def notifier(settings: Settings, store: Any, waits: Waits | None = None, **options: Any) -> Notifier:
    return Notifier(settings, store, env=ENV, sleep=(waits if waits is not None else Waits()).append, **options)


def logged(store: MemoryStore) -> list[Delivery]:
    """Endpoint cms's delivery log, read back (no secret needed)."""
    return list(delivery_log(make_settings("http://127.0.0.1:9/"), store))


# ---------------------------------------------------------------------------------------------- signatures


def test_a_delivery_verifies_with_standardwebhooks_and_a_wrong_secret_or_a_changed_body_does_not(
    receiver: Receiver,
) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes for repairs"))
    [done] = notifier(make_settings(receiver.url), store).notify()
    assert (done.delivered, done.rejected, done.behind) == (1, 0, None)
    [got] = receiver.got
    assert not receiver.unverified
    assert got.headers["webhook-id"] == webhook_id("cms", "bridge", 1)
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.headers["content-type"] == "application/json"
    [entry] = Archive(store, PREFIX).changes()
    assert got.payload == {
        "type": "article.created",
        "timestamp": "2026-11-24T08:00:00Z",
        "data": {
            **json.loads(entry.model_dump_json()),
            "headline": "Bridge closes for repairs",
            "withdrawn": False,
            "previous_version": None,
            "slugline": None,
            "section": None,
            "language": None,
            "urgency": None,
            "url": None,
            "published_at": None,
        },
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(got.body.replace(b"closes", b"opens"), got.headers)


def test_the_webhook_id_is_the_same_at_every_redelivery_and_the_body_too(receiver: Receiver) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"))
    publish(store, ("bridge", "Bridge closes on Saturday"), at=T0 + timedelta(seconds=1))
    receiver.answers = [(503, {})]
    settings = make_settings(receiver.url)
    notifier(settings, store).notify()
    first, retried, second = receiver.got
    assert (first.status, retried.status, second.status) == (503, 204, 204)
    assert first.headers["webhook-id"] == retried.headers["webhook-id"] == webhook_id("cms", "bridge", 1)
    assert first.body == retried.body
    assert second.headers["webhook-id"] == webhook_id("cms", "bridge", 2) != first.headers["webhook-id"]
    # The cursor lost (a new bucket copy, an operator's reset): everything comes again, under the same ids.
    store.delete(webhook_cursor_key(PREFIX, "cms"))
    notifier(settings, store).notify()
    assert [g.headers["webhook-id"] for g in receiver.got[3:]] == [g.headers["webhook-id"] for g in (first, second)]
    assert [g.body for g in receiver.got[3:]] == [first.body, second.body]
    assert webhook_id("other", "bridge", 1) != webhook_id("cms", "bridge", 1)  # one id per endpoint


# ---------------------------------------------------------------------------------------------- retries


def test_a_receiver_that_is_down_loses_nothing_and_the_next_notify_delivers_everything_in_order() -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"), ("ferry", "Ferry strike"))
    publish(store, ("bridge", "Bridge reopens"), at=T0 + timedelta(seconds=1))
    down = Receiver()  # nothing listens on its port: connection refused
    settings = make_settings(down.url)
    waits = Waits()
    [done] = notifier(settings, store, waits).notify()
    assert done.delivered == 0 and done.behind is not None
    assert done.behind.startswith("not delivered: bridge v1 (no answer: ")
    assert len(waits) == settings.webhook_attempts - 1  # bounded: it gave up, it did not hang
    assert store.get(webhook_cursor_key(PREFIX, "cms")) is None  # the cursor is where it was: nowhere
    [failed] = logged(store)
    assert (failed.outcome, failed.status, failed.attempts, failed.id) == ("failed", None, 3, "bridge")
    down.start()
    try:
        [done] = notifier(settings, store).notify()
        assert (done.delivered, done.behind) == (3, None)
        assert down.accepted() == feed_versions(store) == [("bridge", 1), ("ferry", 1), ("bridge", 2)]
        [done] = notifier(settings, store).notify()
        assert done.delivered == 0 and len(down.got) == 3  # nothing twice
    finally:
        down.stop()


def test_5xx_408_and_429_are_retried_with_backoff_heeding_retry_after(receiver: Receiver) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"))
    receiver.answers = [(500, {}), (408, {}), (429, {"Retry-After": "7"}), (502, {})]
    waits = Waits()
    [done] = notifier(make_settings(receiver.url, webhook_attempts=5), store, waits).notify()
    assert (done.delivered, done.behind) == (1, None)
    assert [g.status for g in receiver.got] == [500, 408, 429, 502, 204]
    assert len(waits) == 4 and all(0 <= w <= 30 for w in waits)
    assert waits[2] >= 7  # the wait after the 429 is at least what it asked for
    [record] = logged(store)
    assert (record.outcome, record.status, record.attempts, record.error) == ("delivered", 204, 5, None)


@pytest.mark.parametrize(("status", "headers"), [(400, {}), (410, {}), (302, {"Location": "http://127.0.0.1:9/x"})])
def test_a_4xx_or_3xx_is_recorded_and_skipped_never_retried(
    receiver: Receiver, status: int, headers: dict[str, str]
) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"), ("ferry", "Ferry strike"))
    receiver.answers = [(status, headers)]
    settings = make_settings(receiver.url)
    [done] = notifier(settings, store).notify()
    assert (done.delivered, done.rejected, done.behind) == (1, 1, None)
    assert [(g.version, g.status) for g in receiver.got] == [(("bridge", 1), status), (("ferry", 1), 204)]
    rejected, delivered = logged(store)
    assert (rejected.outcome, rejected.status, rejected.attempts) == ("rejected", status, 1)
    assert rejected.error is not None and rejected.error.startswith(f"HTTP {status}")
    assert delivered.outcome == "delivered"
    notifier(settings, store).notify()
    assert len(receiver.got) == 2  # skipped for good: the cursor moved past it


def test_one_articles_versions_arrive_in_feed_order_and_a_pass_resumes_inside_an_object(
    receiver: Receiver,
) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"), ("bridge", "Bridge closes on Saturday"), ("ferry", "Ferry strike"))
    publish(store, ("bridge", "Bridge reopens"), at=T0 + timedelta(seconds=1))
    assert feed_versions(store) == [("bridge", 1), ("bridge", 2), ("ferry", 1), ("bridge", 3)]
    settings = make_settings(receiver.url)
    receiver.answers = [(204, {})] + [(503, {})] * settings.webhook_attempts  # v1 taken, then v2 kept failing
    [done] = notifier(settings, store).notify()
    assert done.delivered == 1 and done.behind is not None and "bridge v2" in done.behind
    assert receiver.accepted() == [("bridge", 1)]  # nothing after the failure was sent: no overtaking
    [done] = notifier(settings, store).notify()
    assert done.delivered == 3
    # v1 was not sent again: the cursor remembers how far into the feed object the last pass got.
    assert receiver.accepted() == feed_versions(store)


def test_a_polling_sender_waits_longer_each_time_an_endpoint_stays_down() -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"))
    down = Receiver()
    now = [T0]
    settings = make_settings(down.url, poll_seconds=2, webhook_attempts=1)
    sender = notifier(settings, store, clock=lambda: now[0])
    tries = []
    for step in range(12):
        now[0] = T0 + timedelta(seconds=step)
        [done] = sender.poll()
        tries.append(done.behind is not None and done.behind.startswith("not delivered"))
    assert [s for s, tried in enumerate(tries) if tried] == [0, 2, 6]  # waits 2 s, then 4 s, then 8 s
    now[0] = T0 + timedelta(hours=1)
    [done] = sender.poll()
    assert done.behind is not None and done.behind.startswith("not delivered")  # never more than 5 minutes


def test_a_looping_sender_sums_up_the_whole_run_not_its_last_poll(receiver: Receiver) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"), ("ferry", "Ferry strike"))
    receiver.answers = [(204, {}), (410, {})]
    sender = notifier(make_settings(receiver.url, poll_seconds=0.01), store)
    stop = threading.Event()
    polls: list[list[Notified]] = []
    poll = sender.poll

    def poll_then_stop_after_three() -> list[Notified]:
        polls.append(poll())
        if len(polls) == 3:
            stop.set()
        return polls[-1]

    sender.poll = poll_then_stop_after_three  # type: ignore[method-assign]  # counting the polls
    assert sender.run(stop) == [Notified("cms", delivered=1, rejected=1)]
    assert polls[1:] == [[Notified("cms")], [Notified("cms")]]  # the later polls found nothing new


def test_a_stopped_sender_ends_its_pass_before_the_next_delivery_and_keeps_what_it_delivered(
    receiver: Receiver,
) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"), ("ferry", "Ferry strike"), ("harbour", "Harbour reopens"))
    stop = threading.Event()
    settings = make_settings(receiver.url)
    [done] = notifier(settings, store, stop=stop, on_delivery=lambda record: stop.set()).poll()
    assert done.delivered == 1 and done.behind is not None and done.behind.startswith("stopped")
    [done] = notifier(settings, store).notify()
    assert done.delivered == 2
    assert receiver.accepted() == feed_versions(store)  # the one delivered before the stop was not sent again


# ---------------------------------------------------------------------------------------------- the cursor


def test_a_feed_object_that_becomes_visible_late_is_still_delivered(receiver: Receiver) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"))
    late = publish(store, ("ferry", "Ferry strike"), at=T0 + timedelta(seconds=10))
    publish(store, ("harbour", "Harbour reopens"), at=T0 + timedelta(seconds=20))
    held = store.get(late)
    assert held is not None
    store.delete(late)  # its writer's PUT is still on the way
    settings = make_settings(receiver.url)
    notifier(settings, store).notify()
    assert receiver.accepted() == [("bridge", 1), ("harbour", 1)]
    store.put(late, held.body)  # lands now, named before what was delivered
    [done] = notifier(settings, store).notify()
    assert done.delivered == 1
    assert receiver.accepted() == [("bridge", 1), ("harbour", 1), ("ferry", 1)]
    # Beyond the lag it is missed: the documented bound (feed_lag_seconds covers retries and clock skew).
    far = publish(store, ("tram", "Tram fares rise"), at=T0 + timedelta(seconds=30))
    kept = store.get(far)
    assert kept is not None
    store.delete(far)
    publish(store, ("zoo", "Zoo opens"), at=T0 + timedelta(seconds=30) + LAG + timedelta(seconds=2))
    notifier(settings, store).notify()
    store.put(far, kept.body)
    notifier(settings, store).notify()
    assert ("tram", 1) not in receiver.accepted() and receiver.accepted()[-1] == ("zoo", 1)


def test_changes_follow_reads_new_and_late_objects_once(receiver: Receiver) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"))
    late = publish(store, ("ferry", "Ferry strike"), at=T0 + timedelta(seconds=10))
    held = store.get(late)
    assert held is not None
    store.delete(late)
    publish(store, ("harbour", "Harbour reopens"), at=T0 + timedelta(seconds=20))
    stop = threading.Event()
    entries = Archive(store, PREFIX).follow(stop, poll_seconds=0, lag=LAG)
    assert [next(entries).id, next(entries).id] == ["bridge", "harbour"]
    store.put(late, held.body)
    publish(store, ("tram", "Tram fares rise"), at=T0 + timedelta(seconds=30))
    assert [next(entries).id, next(entries).id] == ["ferry", "tram"]
    stop.set()
    assert list(entries) == []  # stopped, and nothing was read twice


def _simulate(objects: list[tuple[int, int]], polls: list[int]) -> tuple[list[str], dict[str, datetime]]:
    """Objects (written at second t, visible d seconds later) read by a cursor stored and read back each poll."""
    visible = {
        changes_key(PREFIX, T0 + timedelta(seconds=t), f"run{i}", 1): T0 + timedelta(seconds=t + d)
        for i, (t, d) in enumerate(objects)
    }
    cursor, read = FeedCursor(PREFIX, LAG), []
    for poll in [*sorted(polls), 10**6]:
        now = T0 + timedelta(seconds=poll)
        start = cursor.start_after()
        for key in sorted(k for k, when in visible.items() if when <= now and k > start):
            if cursor.skip(key) is not None:
                read.append(key)
                cursor.read(key)
        if cursor.position:  # what it remembers is bounded: only names inside the window
            position = feed_time(cursor.position)
            assert all(feed_time(k) >= position - LAG - timedelta(seconds=1) for k in cursor.done)
        cursor = FeedCursor.from_json(json.loads(json.dumps(cursor.to_json())), PREFIX, LAG)
    return read, visible


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 900), st.integers(0, 299)), min_size=1, max_size=25),
    st.lists(st.integers(0, 1200), max_size=20),
)
def test_every_object_visible_within_the_lag_is_read_exactly_once(
    objects: list[tuple[int, int]], polls: list[int]
) -> None:
    read, visible = _simulate(objects, polls)
    assert sorted(read) == sorted(visible)
    assert len(read) == len(set(read))


def test_two_senders_on_one_endpoint_merge_their_cursors_and_lose_nothing(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    for n in range(4):
        publish(store, (f"story{n}", f"Story {n}"), at=T0 + timedelta(seconds=n))
    settings = make_settings(receiver.url)
    first, second = notifier(settings, store), notifier(settings, store)
    raced = []

    def race(got: Got) -> None:  # while the first sender's first POST is in flight, the second does everything
        if not raced:
            raced.append(got)
            second.notify()

    receiver.on_request = race
    [done] = first.notify()
    assert done.behind is None
    assert "another sender moved the cursor meanwhile; merged with it" in caplog.text
    assert set(receiver.accepted()) == set(feed_versions(store))
    assert len(receiver.accepted()) == 5  # the one in flight twice; the first sender skipped the rest
    stored = store.get(webhook_cursor_key(PREFIX, "cms"))
    last = feed_keys(store)[-1].removeprefix(f"{PREFIX}changes/")
    assert stored is not None and json.loads(stored.body)["feed"]["position"] == last


class Killed(BaseException):
    """The process dying at a write: no ``except Exception`` survives it."""


def test_a_sender_killed_at_any_write_delivers_everything_at_least_once_under_the_same_ids(
    receiver: Receiver,
) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"), ("ferry", "Ferry strike"))
    publish(store, ("bridge", "Bridge reopens"), at=T0 + timedelta(seconds=1))
    settings = make_settings(receiver.url)
    counting = FaultyStore(store)
    notifier(settings, counting).notify()
    writes = counting.writes
    assert writes == 4  # per feed object: the log, the cursor
    expected = set(feed_versions(store))
    for at in range(1, writes + 1):
        for when in ("before", "after"):
            for key in [*store.list_keys(f"{PREFIX}webhooks/")]:
                store.delete(key)
            receiver.got.clear()
            dying = FaultyStore(store, fail_at=at, when=when, exc_type=Killed)
            with pytest.raises(Killed):
                notifier(settings, dying).notify()
            notifier(settings, store).notify()  # the next process
            assert set(receiver.accepted()) == expected, (at, when)
            ids: dict[tuple[str, int], set[str]] = {}
            for got in receiver.got:
                ids.setdefault(got.version, set()).add(got.headers["webhook-id"])
            assert all(len(v) == 1 for v in ids.values())  # a duplicate is recognisable as one


# ---------------------------------------------------------------------------------------------- payloads


def test_an_endpoint_with_a_rendition_gets_it_embedded_and_it_validates_as_ninjs(receiver: Receiver) -> None:
    from tests.test_renditions import schema_errors

    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes for repairs"))
    hook = {"name": "cms", "url": receiver.url, "secret_env": "CMS_SECRET", "rendition": "ninjs"}
    notifier(make_settings(receiver.url, hook, uri_template="urn:newsml:example.com:{id}"), store).notify()
    [got] = receiver.got
    rendition = got.payload["data"]["rendition"]
    assert rendition["format"] == "ninjs"
    assert rendition["content"]["uri"] == "urn:newsml:example.com:bridge"
    assert schema_errors(rendition["content"], "ninjs") == []


def test_a_withdrawn_version_says_so_and_a_missing_document_still_gets_its_entry_delivered(
    receiver: Receiver,
) -> None:
    store = MemoryStore()
    publish(store, ("bridge", "Bridge closes"))
    [entry] = Archive(store, PREFIX).changes()
    store.delete(entry.key)  # an operator removed it; the feed still says it was stored
    kill = {"version": 2, "action": "withdrawn", "key": f"{PREFIX}articles/bridge/v2.json"}
    killed = ChangeEntry(**{**entry.model_dump(), **kill})
    store.put(changes_key(PREFIX, T0 + timedelta(seconds=1), "kill", 1), killed.model_dump_json().encode())
    notifier(make_settings(receiver.url), store).notify()
    first, kill = (g.payload for g in receiver.got)
    assert first["data"]["headline"] is None and first["type"] == "article.created"
    assert kill["type"] == "article.withdrawn" and kill["data"]["withdrawn"] is True


# ---------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("hooks", "words"),
    [
        ([{"name": "a", "url": "http://x/", "secret_env": "S"}] * 2, "webhook names must be unique; repeated: a"),
        ([{"name": "a", "url": "ftp://x/", "secret_env": "S"}], "webhooks.0.url"),
        ([{"name": "a", "url": "https://u:p@x/", "secret_env": "S"}], "must not hold a user or password"),
        ([{"name": "a", "url": "http://x/", "secret_env": "S", "rendition": "xml"}], "known: ninjs, ninjs3, ans"),
        ([{"name": "a", "url": "http://x/", "secret_env": "S", "rendition": "document"}], "always stored"),
        ([{"name": "a", "url": "http://x/", "secret_env": "not a name"}], "webhooks.0.secret_env"),
        ([{"name": "../a", "url": "http://x/", "secret_env": "S"}], "webhooks.0.name"),
        ([{"name": "a", "url": "http://x/", "secret": "whsec_abc"}], "webhooks.0.secret (from"),
    ],
)
def test_webhooks_are_validated_by_name(hooks: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"webhooks": hooks}, env={})
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "webhook cms: $CMS_SECRET is not set"),
        ({"CMS_SECRET": " "}, "webhook cms: $CMS_SECRET is empty"),
        ({"CMS_SECRET": "whsec_not*base64"}, "$CMS_SECRET is not a signing secret"),
        ({"CMS_SECRET": SECRET.removeprefix("whsec_")}, "$CMS_SECRET is not a signing secret: expected whsec_"),
        ({"CMS_SECRET": "whsec_" + base64.b64encode(b"short").decode()}, "holds a 5-byte key"),
    ],
)
def test_a_missing_or_malformed_secret_is_a_config_error_that_never_shows_it(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        Notifier(make_settings("http://127.0.0.1:9/"), MemoryStore(), env=env)
    assert words in str(err.value)
    assert all(value.strip().removeprefix("whsec_") not in str(err.value) for value in env.values() if value.strip())


def test_no_webhooks_names_the_config_file_in_use(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("webhooks: []\n")
    for settings, where in [
        (load_settings(config=bad, env={}), f"to {bad}"),
        (load_settings(env={"INGEST_CONFIG": str(bad)}), f"to {bad}"),
        (load_settings(config=bad, env={}).model_copy(update={"prefix": "x/"}), f"to {bad}"),
        (Settings(), "to the config file"),  # not loaded from any file
    ]:
        with pytest.raises(ConfigError) as err:
            Notifier(settings, MemoryStore(), env=ENV)
        assert str(err.value) == f"no webhooks configured: add `webhooks:` (name, url, secret_env) {where}"


def test_watch_delivers_after_each_sweep(tmp_path: Path, receiver: Receiver) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "bridge.txt").write_text("Bridge closes\n\nThe bridge closes.\n")
    old = time.time() - 60
    os.utime(drop / "bridge.txt", (old, old))
    store = MemoryStore()
    settings = make_settings(receiver.url).model_copy(
        update={"sources": [SourceSettings(name="drop", location=str(drop), settle_seconds=0)]}
    )
    stop = threading.Event()
    sender = notifier(settings, store)

    def deliver_then_stop() -> None:
        sender.poll()
        stop.set()

    reporter = Reporter("text", out=io.StringIO())
    watch(settings, store, open_sources(settings, lambda bucket: store), reporter, stop, after_sweep=deliver_then_stop)
    assert receiver.accepted() == [("bridge", 1)]


# ---------------------------------------------------------------------------------------------- the command


def _config(tmp_path: Path, receiver: Receiver, name: str = "ingest.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"webhooks:\n  - {{name: cms, url: '{receiver.url}', secret_env: CMS_SECRET}}\n")
    return path


def _story(tmp_path: Path, stem: str, headline: str) -> str:
    path = tmp_path / f"{stem}.txt"
    path.write_text(f"{headline}\n\nWhat happened to {headline.lower()}.\n")
    return str(path)


def test_notify_once_exit_codes_the_log_and_the_secret_never_shown(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store, prefix: str
) -> None:
    down = Receiver()
    config = str(_config(tmp_path, down))
    env = {**cli_env, "INGEST_CONFIG": config, "CMS_SECRET": SECRET, "INGEST_WEBHOOK_ATTEMPTS": "1"}
    ran = []

    def run(*args: str, **more: str) -> Any:
        result = cli(*args, env={**env, **more})
        ran.append(result)
        return result

    no_secret = cli("notify", "--once", env={k: v for k, v in env.items() if k != "CMS_SECRET"})
    assert no_secret.returncode == 2 and "$CMS_SECRET is not set" in no_secret.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    none = run("notify", "--once", INGEST_CONFIG=str(empty))
    assert none.returncode == 2 and f"add `webhooks:` (name, url, secret_env) to {empty}" in none.stderr
    stories = [_story(tmp_path, "bridge", "Bridge closes"), _story(tmp_path, "ferry", "Ferry strike")]
    assert run("file", *stories).returncode == 0

    behind = run("notify", "--once")
    assert behind.returncode == 1, behind.stderr
    assert "error: webhook cms is behind: not delivered: bridge v1 (no answer: " in behind.stderr
    assert "cms: 0 delivered, 0 rejected; behind" in behind.stdout
    down.start()
    try:
        done = run("notify", "--once", "--debug")
        assert done.returncode == 0, done.stderr
        assert [line.split()[:3] for line in done.stdout.splitlines()[:2]] == [
            ["delivered", "cms", "bridge"],
            ["delivered", "cms", "ferry"],
        ]
        assert done.stdout.splitlines()[-1] == "cms: 2 delivered, 0 rejected; up to date"
        assert run("notify", "--once", "--json").stdout == ""  # nothing new
        assert run("file", _story(tmp_path, "harbour", "Harbour reopens")).returncode == 0
        down.answers = [(422, {})]
        rejected = run("notify", "--once", "--json")
        assert rejected.returncode == 1
        [record] = [json.loads(line) for line in rejected.stdout.splitlines()]
        assert (record["outcome"], record["status"], record["id"]) == ("rejected", 422, "harbour")
    finally:
        down.stop()

    log = run("notify", "--log")
    assert log.returncode == 0
    assert [line.split()[2:4] for line in log.stdout.splitlines()] == [
        ["failed", "cms"], ["delivered", "cms"], ["delivered", "cms"], ["rejected", "cms"]
    ]
    records = [json.loads(line) for line in run("notify", "--log", "--json", "--webhook", "cms").stdout.splitlines()]
    assert [(r["id"], r["outcome"]) for r in records] == [
        ("bridge", "failed"), ("bridge", "delivered"), ("ferry", "delivered"), ("harbour", "rejected")
    ]
    assert all(r["webhook_id"] == webhook_id("cms", r["id"], r["version"]) for r in records)
    unknown = run("notify", "--once", "--webhook", "nope")
    assert unknown.returncode == 2 and "no webhook named 'nope'" in unknown.stderr

    nowhere = f"http://127.0.0.1:{free_port()}"
    storage_down = run("notify", "--once", AWS_ENDPOINT_URL=nowhere, INGEST_RETRY_ATTEMPTS="1")
    assert storage_down.returncode == 2 and storage_down.stderr.startswith("error: ")

    secret_parts = (SECRET, SECRET.removeprefix("whsec_"))
    for result in ran:
        assert not any(part in result.stdout + result.stderr for part in secret_parts)
    for key in store.list_keys(prefix):
        stored = store.get(key)
        assert stored is not None and not any(part.encode() in stored.body for part in secret_parts), key
    assert down.url not in " ".join(r.stdout + r.stderr for r in ran)  # nor the receiver's URL, which may hold a token


@pytest.mark.s3
def test_a_sender_killed_mid_delivery_while_the_receiver_was_down_loses_nothing(
    tmp_path: Path, cli_env: dict[str, str], store: S3Store, prefix: str
) -> None:
    receiver = Receiver()  # down for the first part
    env = {
        **cli_env,
        "INGEST_CONFIG": str(_config(tmp_path, receiver)),
        "CMS_SECRET": SECRET,
        "INGEST_WEBHOOK_ATTEMPTS": "1",
        "INGEST_POLL_SECONDS": "0.2",
        "INGEST_BATCH_SIZE": "2",
    }
    stories = [_story(tmp_path, f"story{n}", f"Story number {n}") for n in range(6)]
    assert cli("file", *stories, env=env).returncode == 0
    feed = {(e.id, e.version) for e in read_feed(store, prefix)}
    assert len(feed) == 6
    command = [sys.executable, "-m", "ingest"]

    first = subprocess.run([*command, "notify", "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 1, first.stderr  # down: behind, nothing lost

    arrived, release = threading.Event(), threading.Event()

    def hold_the_third(got: Got) -> None:
        if len(receiver.got) == 3:
            arrived.set()
            release.wait(30)

    receiver.on_request = hold_the_third
    receiver.start()
    sender = subprocess.Popen([*command, "notify"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert arrived.wait(60), "the third delivery never came"
        sender.kill()  # SIGKILL, in the middle of a delivery
        sender.wait(30)
    finally:
        release.set()
    receiver.on_request = None
    drop = tmp_path / "drop"
    drop.mkdir()
    watcher = subprocess.Popen(
        [*command, "watch", "--source", str(drop), "--log-format", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while set(receiver.accepted()) != feed and time.monotonic() < deadline and watcher.poll() is None:
            time.sleep(0.05)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err[-2000:]
    assert set(receiver.accepted()) == feed  # every version delivered, verified, at least once
    assert not receiver.unverified
    ids: dict[tuple[str, int], set[str]] = {}
    for got in receiver.got:
        ids.setdefault(got.version, set()).add(got.headers["webhook-id"])
    assert all(len(v) == 1 for v in ids.values())  # redeliveries carry the same webhook-id
    assert SECRET.removeprefix("whsec_") not in err
    stored = store.get(webhook_cursor_key(prefix, "cms"))
    assert stored is not None
    assert list(store.list_keys(webhook_log_prefix(prefix, "cms")))


@pytest.mark.s3
def test_changes_follow_prints_new_entries_as_they_come_until_sigint(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "INGEST_POLL_SECONDS": "0.1"}
    assert cli("file", _story(tmp_path, "bridge", "Bridge closes"), env=env).returncode == 0
    follower = subprocess.Popen(
        [sys.executable, "-m", "ingest", "changes", "--follow", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["id"] == "bridge"
        assert cli("file", _story(tmp_path, "ferry", "Ferry strike"), env=env).returncode == 0
        assert json.loads(follower.stdout.readline())["id"] == "ferry"
    finally:
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert out == ""


def test_a_looping_sender_is_failing_only_when_its_last_pass_ended_on_a_delivery_that_kept_failing() -> None:
    # What `ingest notify` without --once exits on when stopped: 1 only for this, else 0 (a service stop).
    assert not Notified("cms", delivered=3, rejected=1).failing
    assert not Notified("cms", behind="stopped before delivering all; the next pass carries on").failing
    assert Notified("cms", behind="not delivered: bridge v2 (503 Service Unavailable)").failing
