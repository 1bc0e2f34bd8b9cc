"""Webhooks: every new version, POSTed and signed to each configured endpoint (``ingest notify``, ``ingest watch``).

**The changes feed is the record; a webhook is only the doorbell.** Nothing is queued for a webhook: each
endpoint keeps a cursor into the feed, ``webhooks/{name}/cursor.json`` in the document bucket, and a pass reads
the feed from it, delivers what is new, and moves the cursor after each feed object delivered. A sender that
dies, or a receiver that is down, leaves the cursor where the last delivered object left it; the next pass (any
process, any machine) resumes there. So deliveries are **at least once**: a sender killed between a delivery and
its cursor write delivers that object again, with the same ``webhook-id``, and the receiver deduplicates by it.

**The cursor is a window, not a point** (``ingest.feed``). Feed objects are named by the time their writer took
before its PUT, so an object can become visible after a later-named one was read (a slow or retried PUT,
another machine's clock). A cursor holding only "the last name read" would skip it for ever. A ``FeedCursor``
keeps the newest object delivered and the names of the objects it delivered in the ``feed_lag_seconds`` (300 s)
before it; each pass re-lists that window and delivers any object in it not yet delivered. An object later than
that is missed: the lag must cover a writer's longest retry (``retry_max_seconds``, 60 s) plus clock skew.

**Two senders on one endpoint** (two ``ingest watch`` with webhooks, or a ``watch`` and a ``notify``) cannot both
silently move the cursor: it is written with ``If-Match`` on the ETag read (``If-None-Match: *`` the first time).
A sender that loses the race reads the winner's cursor, merges it into its own (``FeedCursor.merge``: the union
of what both delivered) and writes again, so neither's progress is lost; both then skip what the other already
delivered. Racing senders may deliver one object twice (at least once, as above); never none.

**Order.** Entries are delivered in feed order: objects in name order, lines in order. A delivery that the
receiver does not take (no answer, 5xx, 408, 429, after its retries) stops that endpoint's pass there; nothing
after it is sent until it is delivered, so one article's versions arrive in the order the feed lists them. A
late object is delivered when it shows up, which can be after a later one: a receiver should keep the highest
``version`` it has per ``id`` (the payload carries both), as a poller of the feed must.

**Retries** use the project's one policy (``ingest.retry.policy``): up to ``webhook_attempts`` tries (5) per
delivery while the receiver answers 5xx, 408 or 429 or does not answer (refused, reset, ``webhook_timeout_seconds``
without an answer), with full-jitter exponential backoff from 1 s doubling to at most 30 s a wait, at least the
``Retry-After`` the receiver asks for (up to that cap); a log line per retry. Then the endpoint is **behind**: the
pass leaves its cursor just before that delivery and goes on to the next endpoint; ``notify --once`` exits 1,
and a polling sender (``notify``, ``watch``) waits before trying that endpoint again, doubling the wait up to 5
minutes while it stays down. So no invocation hangs on a receiver: one delivery takes at most ``webhook_attempts``
× ``webhook_timeout_seconds`` plus the waits (5 × 15 s + 15 s). Any other answer (3xx, which is never followed,
and 4xx other than 408/429) is **rejected**: recorded in the delivery log, and skipped, never retried.

**Signatures** follow Standard Webhooks: ``webhook-id`` (``msg_`` + 32 hex of SHA-256 over the endpoint's name,
the article id and the version: the same for every redelivery of one version to one endpoint),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of
``{id}.{timestamp}.{body}`` with the key the ``whsec_`` secret encodes). The secret is read from the variable the
endpoint's ``secret_env`` names (``ingest.settings.webhook_secret``) when a ``Notifier`` is made, registered with
the log redactor, and kept nowhere else: not in the settings, the cursor, the delivery log or any message.

**The payload** (``payload``) is ``{"type": "article.<action>", "timestamp": <the version's time>, "data": {...}}``
with the feed entry's fields (``id``, ``version``, ``key``, ``action``, ``content_sha256``, ``time``, ``embargoed``,
``backfill``) and what a CMS needs to decide without fetching, which the feed entry does not carry: ``headline``,
``withdrawn``, ``previous_version``, ``slugline``, ``section``, ``language``, ``urgency``, ``url``,
``published_at``; with the endpoint's ``rendition`` set, ``rendition: {"format", "content"}`` too. For those the
version document is read: **one GET per version delivered**, shared by every endpoint in the same pass (a small
cache), and the body of one version to one endpoint is the same bytes at every redelivery.

**The delivery log**: each checkpoint (each feed object delivered, and the point where a pass stops) also writes
``webhooks/{name}/log/{time}-{sender}-{n}.jsonl``, one ``Delivery`` per line: the webhook-id, the article id and
version, the feed object, the outcome (``delivered``, ``rejected``, ``failed``: not taken this pass, tried again
next), the last HTTP status, the attempts, the time and the error. ``delivery_log`` reads it back (``ingest notify
--log``). Objects are never rewritten or deleted: expire them with a bucket lifecycle rule on the prefix.

**Requests per pass and endpoint**: a GET of the cursor and one LIST of the window (one per 1,000 feed objects);
per feed object not yet delivered, a GET (shared between endpoints) and two PUTs (the log, the cursor); per
version delivered, a GET of its document (shared) and the POSTs. An idle pass costs two requests.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import RetryCallState, wait_random_exponential

from ingest.archive import feed_entries, load_document
from ingest.clock import Clock, utcnow
from ingest.errors import ConfigError, StoreConflict, StoreCorrupt, StoreError, Transient
from ingest.feed import FeedCursor
from ingest.keys import (
    changes_prefix,
    changes_start_after,
    webhook_cursor_key,
    webhook_log_key,
    webhook_log_prefix,
    webhook_log_start_after,
)
from ingest.models import ChangeEntry, Document
from ingest.renditions import render
from ingest.report import redact_values
from ingest.retry import policy
from ingest.settings import Settings, WebhookSettings, webhook_secret
from ingest.stores.base import Store

log = logging.getLogger("ingest.webhooks")

#: Backoff between tries of one delivery: full jitter, 1 s doubling, at most 30 s a wait (``Retry-After`` too).
WAIT_MULTIPLIER = 1.0
WAIT_MAX = 30.0
#: A polling sender waits this long at most before trying an endpoint that stayed down again.
MAX_PAUSE_SECONDS = 300.0
#: Deliveries per endpoint in one pass of a polling sender (``ingest watch``), so a backlog never holds a sweep.
POLL_LIMIT = 1000
#: Racing senders: cursor writes lost in a row before giving up (each loss means another sender progressed).
MAX_RACES = 16
#: The shortest and longest signing key (bytes) Standard Webhooks allows.
KEY_BYTES = (24, 64)
#: Entries and documents kept between endpoints of one pass.
_CACHED = 512
_DRAIN = 64 * 1024
_USER_AGENT = "ingest-webhooks/1"

Outcome = Literal["delivered", "rejected", "failed"]


class Delivery(BaseModel):
    """What happened to one delivery: one line of an endpoint's delivery log (``ingest notify --log``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str = Field(description="The endpoint's name.")
    webhook_id: str = Field(description="The `webhook-id` header: the same for every delivery of this version.")
    id: str = Field(description="Article id.")
    version: int = Field(ge=1)
    feed_key: str = Field(description="The changes-feed object the entry is in.")
    outcome: Outcome = Field(
        description="delivered (2xx); rejected (3xx or 4xx other than 408/429: skipped, not retried); failed "
        "(no answer, 5xx, 408 or 429 through every try: the endpoint is behind and the next pass tries again)."
    )
    status: int | None = Field(description="The receiver's last HTTP status; null when it did not answer.")
    attempts: int = Field(ge=1)
    time: datetime = Field(description="When the last try ended.")
    error: str | None = Field(default=None, description="Why it was not delivered.")

    def line(self) -> str:
        """One line for people."""
        status = str(self.status) if self.status is not None else "-"
        tries = f"{self.attempts} {'try' if self.attempts == 1 else 'tries'}"
        why = f"  {self.error}" if self.error else ""
        return (
            f"{self.outcome:<10} {self.webhook}  {self.id} v{self.version}  {status}  {self.webhook_id}  "
            f"({tries}){why}"
        )

    def stamped_line(self) -> str:
        """``line`` with its time first (``ingest notify --log``)."""
        return f"{self.time:%Y-%m-%d %H:%M:%S}Z  {self.line()}"


@dataclass(frozen=True)
class Notified:
    """One endpoint after one pass."""

    webhook: str
    delivered: int = 0
    rejected: int = 0
    #: Why the endpoint is not up to date after the pass (None: everything in the feed is delivered or rejected).
    behind: str | None = None

    @property
    def failing(self) -> bool:
        """Whether the pass ended on a delivery that kept failing (not merely stopped part-way)."""
        return self.behind is not None and self.behind.startswith(_NOT_DELIVERED)

    def line(self) -> str:
        counts = f"{self.delivered} delivered, {self.rejected} rejected"
        return f"{self.webhook}: {counts}; " + (f"behind: {self.behind}" if self.behind else "up to date")


@dataclass(frozen=True)
class Answer:
    """The receiver's answer to one POST."""

    status: int
    reason: str = ""
    #: Seconds the receiver asked to wait (``Retry-After``), when it did.
    retry_after: float | None = None


#: What sends one delivery: ``(url, body, headers, timeout)`` to the receiver's answer; raises ``Unanswered``
#: when none came. Tests may pass their own; ``post`` is the real one.
Post = Callable[[str, bytes, Mapping[str, str], float], Answer]


class Unanswered(Exception):
    """One try got no HTTP answer (refused, reset, timed out), or one that is to be tried again."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


class _Rejected(Exception):
    """The receiver answered, and not with a 2xx that trying again could change."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, never followed (Standard Webhooks: a 3xx is a failure; fix the URL)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    """POST ``body`` with the standard library (proxies from the usual ``*_proxy`` variables). Messages never hold
    the URL, which may carry a token of the receiver's."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(_DRAIN)
            return Answer(response.status, str(response.reason))
    except urllib.error.HTTPError as exc:  # any status but 2xx (a 3xx too, as redirects are not followed)
        with contextlib.closing(exc):
            return Answer(exc.code, str(exc.reason), _retry_after(exc.headers.get("Retry-After")))
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise Unanswered(f"no answer: {_why(exc, timeout)}") from exc


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds; an HTTP date is not honoured (the backoff applies)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def webhook_id(webhook: str, article_id: str, version: int) -> str:
    """The ``webhook-id`` of one version to one endpoint: the same at every redelivery, so a receiver can dedupe."""
    digest = hashlib.sha256(f"{webhook}\n{article_id}\n{version}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def signing_key(webhook: WebhookSettings, secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret encodes; a ``ConfigError`` naming the variable (never the value)."""
    text = secret.removeprefix("whsec_")
    where = f"webhook {webhook.name}: ${webhook.secret_env}"
    try:
        if text == secret:  # the documented form is whsec_ + base64: a bare value is some other secret, or half one
            raise ValueError("no whsec_ prefix")
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not a signing secret: expected whsec_ followed by base64") from None
    low, high = KEY_BYTES
    if not low <= len(key) <= high:
        raise ConfigError(f"{where} holds a {len(key)}-byte key; Standard Webhooks asks for {low} to {high} bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def payload(entry: ChangeEntry, document: Document | None, rendition: tuple[str, dict[str, Any]] | None) -> bytes:
    """The JSON body of one delivery: the same bytes for the same entry, document and rendition."""
    data: dict[str, Any] = entry.model_dump(mode="json")
    doc = document.model_dump(mode="json") if document is not None else {}
    data["headline"] = doc.get("headline")
    data["withdrawn"] = doc.get("withdrawn", entry.action == "withdrawn")
    for name in ("previous_version", "slugline", "section", "language", "urgency", "url", "published_at"):
        data[name] = doc.get(name)
    if rendition is not None:
        data["rendition"] = {"format": rendition[0], "content": rendition[1]}
    body = {"type": f"article.{entry.action}", "timestamp": data["time"], "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class _Endpoint:
    settings: WebhookSettings
    key: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass
class _Progress:
    """One endpoint's cursor during a pass, with what is written and what is still to write."""

    cursor: FeedCursor
    etag: str | None
    #: The cursor as stored (or, before the first write, as it was made).
    saved: dict[str, Any]
    log: list[Delivery] = field(default_factory=list)


class _Cache(OrderedDict[Any, Any]):
    """The last few values read, so endpoints in one pass share their GETs."""

    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        while len(self) > _CACHED:
            self.popitem(last=False)


def chosen(settings: Settings, names: Sequence[str] | None = None) -> list[WebhookSettings]:
    """The configured endpoints, or those of ``names``; a ``ConfigError`` for none, or a name not configured."""
    if not settings.webhooks:
        where = settings.config_file or "the config file"
        raise ConfigError(f"no webhooks configured: add `webhooks:` (name, url, secret_env) to {where}")
    known = {w.name: w for w in settings.webhooks}
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ConfigError(f"--webhook: no webhook named {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
    return [known[n] for n in dict.fromkeys(names)] if names else list(settings.webhooks)


class Notifier:
    """Delivers the changes feed to webhook endpoints, pass by pass (see the module docstring).

    Made once per process: the signing secrets are read (a ``ConfigError`` when one is missing or malformed) and
    redacted from logs. ``notify`` is one pass over every endpoint; ``poll`` is the same for senders that loop
    (``ingest watch``, ``ingest notify``): it skips endpoints that are waiting after an outage and survives
    storage that is briefly away; ``run`` loops ``poll`` until stopped.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        webhooks: Sequence[str] | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] | None = None,
        env: Mapping[str, str] | None = None,
        send: Post = post,
        on_delivery: Callable[[Delivery], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._sleep = sleep
        self._send = send
        self._on_delivery = on_delivery
        #: Set on SIGINT/SIGTERM: a pass stops before its next delivery (its cursor keeps what was delivered).
        self._stop = stop
        endpoints = []
        for webhook in chosen(settings, webhooks):
            secret = webhook_secret(webhook, env)
            redact_values([secret, secret.removeprefix("whsec_")])
            endpoints.append(_Endpoint(webhook, signing_key(webhook, secret)))
        self.endpoints: list[_Endpoint] = endpoints
        self._lag = timedelta(seconds=settings.feed_lag_seconds)
        self._sender = secrets.token_hex(4)
        self._logs = 0
        self._entries = _Cache()
        self._documents = _Cache()
        #: A polling sender's endpoints that are waiting after an outage: until when, and the pause it was.
        self._waiting: dict[str, tuple[datetime, float]] = {}

    # ---- passes

    def notify(self, *, limit: int | None = None) -> list[Notified]:
        """Deliver what is pending to every endpoint, now; at most ``limit`` deliveries per endpoint. A storage
        error stops the pass (``StoreError``): the endpoints' cursors keep what was delivered."""
        return [self._pass(endpoint, limit) for endpoint in self.endpoints]

    def poll(self, *, limit: int | None = POLL_LIMIT) -> list[Notified]:
        """``notify`` for a sender that comes back every ``poll_seconds``: an endpoint that was behind for want
        of an answer waits (from ``poll_seconds``, doubling to 5 minutes) before it is tried again, and storage
        that is unreachable is logged and tried again at the next poll. Errors that waiting cannot fix (access
        denied, a corrupt cursor) are raised."""
        results = []
        for endpoint in self.endpoints:
            now = self.clock()
            until, pause = self._waiting.get(endpoint.name, (now, 0.0))
            if now < until:
                results.append(Notified(endpoint.name, behind=f"waiting until {until:%H:%M:%S}Z to try again"))
                continue
            try:
                done = self._pass(endpoint, limit)
            except StoreError as exc:
                if not isinstance(exc, Transient):
                    raise
                log.error("webhook %s: storage failed (%s); trying again at the next poll", endpoint.name, exc)
                results.append(Notified(endpoint.name, behind=f"storage failed: {exc}"))
                continue
            if done.behind is not None and done.behind.startswith(_NOT_DELIVERED):
                pause = min(max(pause * 2, self.settings.poll_seconds), MAX_PAUSE_SECONDS)
                self._waiting[endpoint.name] = (now + timedelta(seconds=pause), pause)
                log.warning("webhook %s is behind (%s); next try in %.0f s", endpoint.name, done.behind, pause)
            else:
                self._waiting.pop(endpoint.name, None)
            results.append(done)
        return results

    def run(self, stop: threading.Event) -> list[Notified]:
        """``poll`` every ``poll_seconds`` until ``stop`` is set (a pass in hand stops before its next delivery);
        for each endpoint polled, what the whole run delivered and rejected, and how it stands after the last
        poll (``behind``)."""
        self._stop = stop
        totals: dict[str, Notified] = {}
        while not stop.is_set():
            for done in self.poll():
                before = totals.get(done.webhook, Notified(done.webhook))
                delivered, rejected = before.delivered + done.delivered, before.rejected + done.rejected
                totals[done.webhook] = replace(done, delivered=delivered, rejected=rejected)
            stop.wait(self.settings.poll_seconds)
        return list(totals.values())

    # ---- one endpoint

    def _pass(self, endpoint: _Endpoint, limit: int | None) -> Notified:
        progress = self._load(endpoint)
        cursor = progress.cursor
        delivered = rejected = 0
        behind: str | None = None
        try:
            listing = self.store.list_keys(changes_prefix(self.settings.prefix), start_after=cursor.start_after())
            for key in listing:
                skip = cursor.skip(key)
                if skip is None:
                    continue
                entries = self._feed_object(key)
                for line in range(skip, len(entries)):
                    if limit is not None and delivered + rejected >= limit:
                        behind = f"{limit} deliveries this pass; more are pending"
                    elif self._stop is not None and self._stop.is_set():
                        behind = "stopped before delivering all; the next pass carries on"
                    else:
                        record = self._deliver(endpoint, key, entries[line])
                        progress.log.append(record)
                        if self._on_delivery is not None:
                            self._on_delivery(record)
                        if record.outcome == "rejected":
                            why = f"{record.id} v{record.version} ({record.error})"
                            log.warning("webhook %s rejected %s: recorded and skipped", endpoint.name, why)
                        if record.outcome != "failed":
                            delivered += record.outcome == "delivered"
                            rejected += record.outcome == "rejected"
                            continue
                        entry = entries[line]
                        behind = f"{_NOT_DELIVERED} {entry.id} v{entry.version} ({record.error})"
                    if line > skip:
                        cursor.read(key, line)
                    break
                else:
                    cursor.read(key)
                self._checkpoint(endpoint, progress)
                if behind is not None:
                    break
        except Exception:
            # Keep what was delivered if storage still lets us; else the cursor stays behind and it is delivered
            # again. (A process that dies writes nothing more, and the same holds.)
            with contextlib.suppress(Exception):
                self._checkpoint(endpoint, progress)
            raise
        return Notified(endpoint.name, delivered, rejected, behind)

    def _load(self, endpoint: _Endpoint) -> _Progress:
        cursor, etag = self._read_cursor(endpoint)
        return _Progress(cursor, etag, cursor.to_json())  # a new cursor is written once it has moved

    def _read_cursor(self, endpoint: _Endpoint) -> tuple[FeedCursor, str | None]:
        prefix = self.settings.prefix
        key = webhook_cursor_key(prefix, endpoint.name)
        stored = self.store.get(key)
        if stored is None:
            since = endpoint.settings.since
            return FeedCursor(prefix, self._lag, floor=changes_start_after(prefix, since) if since else ""), None
        try:
            cursor = FeedCursor.from_json(json.loads(stored.body)["feed"], prefix, self._lag)
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreCorrupt(f"{key}: not a webhook cursor ({exc})", operation="GET", key=key) from exc
        return cursor, stored.etag

    def _checkpoint(self, endpoint: _Endpoint, progress: _Progress) -> None:
        """The delivery log of what was sent since the last checkpoint, then the cursor, if it moved."""
        prefix = self.settings.prefix
        if progress.log:
            self._logs += 1
            key = webhook_log_key(prefix, endpoint.name, self.clock(), f"{self._sender}-{self._logs:06d}")
            lines = "".join(record.model_dump_json() + "\n" for record in progress.log)
            self.store.put(key, lines.encode("utf-8"), "application/x-ndjson")
            progress.log.clear()
        key = webhook_cursor_key(prefix, endpoint.name)
        for _ in range(MAX_RACES):
            state = progress.cursor.to_json()
            if state == progress.saved:
                return
            body = {"webhook": endpoint.name, "feed": state, "updated_at": self.clock().isoformat()}
            etag = self.store.replace(key, json.dumps(body).encode("utf-8"), progress.etag)
            if etag is not None:
                progress.etag, progress.saved = etag, state
                return
            # Another sender moved it since we read it: take in what it delivered, and write the union.
            theirs, progress.etag = self._read_cursor(endpoint)
            progress.saved = theirs.to_json()
            progress.cursor.merge(theirs)
            log.warning("webhook %s: another sender moved the cursor meanwhile; merged with it", endpoint.name)
        raise StoreConflict(f"could not update {key} after {MAX_RACES} tries", operation="PUT", key=key)

    # ---- one delivery

    def _deliver(self, endpoint: _Endpoint, feed_key: str, entry: ChangeEntry) -> Delivery:
        msg_id = webhook_id(endpoint.name, entry.id, entry.version)
        body = self._body(endpoint, entry)
        tries = 0
        status: int | None = None

        def attempt() -> None:
            nonlocal tries, status
            tries += 1
            stamp = str(int(self.clock().timestamp()))
            headers = {
                "content-type": "application/json",
                "user-agent": _USER_AGENT,
                "webhook-id": msg_id,
                "webhook-timestamp": stamp,
                "webhook-signature": sign(endpoint.key, msg_id, stamp, body),
            }
            try:
                answer = self._send(endpoint.settings.url, body, headers, self.settings.webhook_timeout_seconds)
            except Unanswered as exc:
                status = exc.status
                raise
            status = answer.status
            if 200 <= answer.status < 300:
                return
            said = f"HTTP {answer.status} {answer.reason}".strip()
            if answer.status in (408, 429) or answer.status >= 500:
                raise Unanswered(said, answer.status, answer.retry_after)
            raise _Rejected(said, answer.status)

        what = f"POST webhook {endpoint.name} {entry.id} v{entry.version}"
        retrying = policy(
            self.settings.webhook_attempts,
            # The attempts bound a delivery; this only stops a wait that would outlast them all.
            self.settings.webhook_attempts * (self.settings.webhook_timeout_seconds + WAIT_MAX),
            lambda exc: isinstance(exc, Unanswered),
            what,
            wait=_backoff,
            sleep=self._sleep,
            storage=False,  # a webhook endpoint's trouble is not the store's: not in ingest_storage_retries_total
        )
        outcome: Outcome = "delivered"
        error: str | None = None
        try:
            retrying(attempt)
        except _Rejected as exc:
            outcome, error = "rejected", str(exc)
        except Unanswered as exc:
            outcome, error = "failed", str(exc)
        return Delivery(
            webhook=endpoint.name,
            webhook_id=msg_id,
            id=entry.id,
            version=entry.version,
            feed_key=feed_key,
            outcome=outcome,
            status=status,
            attempts=tries,
            time=self.clock(),
            error=error,
        )

    def _body(self, endpoint: _Endpoint, entry: ChangeEntry) -> bytes:
        document = self._document(entry)
        fmt = endpoint.settings.rendition
        rendition = None
        if fmt is not None and document is not None:
            rendition = (fmt, render(document, fmt, self.settings.uri_template))
        return payload(entry, document, rendition)

    def _feed_object(self, key: str) -> list[ChangeEntry]:
        if key in self._entries:
            cached: list[ChangeEntry] = self._entries[key]
            return cached
        entries = feed_entries(self.store, key)
        self._entries.remember(key, entries)
        return entries

    def _document(self, entry: ChangeEntry) -> Document | None:
        """The version's document (for its headline and the rendition); None, with a warning, when it is gone
        or unreadable: the delivery then carries what the feed entry says."""
        if entry.key in self._documents:
            cached: Document | None = self._documents[entry.key]
            return cached
        try:
            document = load_document(self.store.get(entry.key), entry.key)
            why = "" if document is not None else f"{entry.key} is missing"
        except StoreCorrupt as exc:
            document, why = None, str(exc)
        if why:
            log.warning("%s; delivering %s v%d without its headline", why, entry.id, entry.version)
        self._documents.remember(entry.key, document)
        return document


#: How ``Notified.behind`` starts when a delivery was not taken (not when a pass only reached its limit).
_NOT_DELIVERED = "not delivered:"


def _backoff(state: RetryCallState) -> float:
    """Full-jitter exponential backoff, but at least what ``Retry-After`` asked (both capped at ``WAIT_MAX``)."""
    jitter = _JITTER(state)
    exc = state.outcome.exception() if state.outcome else None
    asked = exc.retry_after if isinstance(exc, Unanswered) and exc.retry_after is not None else 0.0
    return min(max(jitter, asked), WAIT_MAX)


_JITTER = wait_random_exponential(multiplier=WAIT_MULTIPLIER, max=WAIT_MAX)


def delivery_log(
    settings: Settings, store: Store, *, webhooks: Sequence[str] | None = None, since: datetime | None = None
) -> Iterator[Delivery]:
    """The delivery log of each endpoint (or of ``webhooks``), oldest first, endpoint by endpoint; only records
    written at or after ``since`` when given. Needs no secret."""
    for webhook in chosen(settings, webhooks):
        start_after = webhook_log_start_after(settings.prefix, webhook.name, since) if since else ""
        for key in store.list_keys(webhook_log_prefix(settings.prefix, webhook.name), start_after=start_after):
            stored = store.get(key)
            for line in stored.body.decode("utf-8").splitlines() if stored else []:
                try:
                    record = Delivery.model_validate_json(line)
                except ValidationError as exc:
                    raise StoreCorrupt(f"{key}: not a delivery record", operation="GET", key=key) from exc
                if since is None or record.time >= since:
                    yield record
