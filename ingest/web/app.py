"""The operator's page (``ingest serve``): its routes, the pages they render and the one action it takes.

Pages read through the library's front door (``ingest.api``) and the read side (``ingest.archive``); the
templates only lay out what they are given, and Jinja2 escapes every value in them (autoescape is on for
every template, whatever its name). Handlers that touch storage are plain functions, which Starlette runs in
its thread pool: the store and the sources block.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest import __version__, api
from ingest.archive import Archive
from ingest.clock import Clock
from ingest.errors import IngestError, InvalidDocument, NotFound, StoreError, printable
from ingest.keys import run_key, status_key
from ingest.metrics import Metrics, Totals
from ingest.report import RunReport
from ingest.settings import Settings
from ingest.status import Status, age, when
from ingest.stores.base import Store
from ingest.versioning import safe_id
from ingest.web.guard import CSRF_COOKIE, CSRF_FIELD, DISABLED, TOKEN_FIELD, Guard, new_session

log = logging.getLogger("ingest.web")

#: A run id as ``ingest.commit.new_run_id`` makes them (``20261124T131357-f5e3f7``); nothing else becomes a key.
RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{6}")
#: File records shown on a run's page; the rest are counted.
FILES_SHOWN = 1000
#: The largest form body read (a Retry form is a few hundred bytes).
FORM_BYTES = 16 * 1024
#: Every response: no script runs at all (the page needs none), styles only from the page itself, forms post
#: only here, no framing; and pages of live state and article text are never cached.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def retry_action(source: str, name: str) -> str:
    """The path a Retry form posts to, for file ``name`` in ``failed/`` of ``source``."""
    return f"/sources/{quote(source, safe='')}/failed/{quote(name, safe='')}/retry"


def article_path(article_id: str, *rest: str) -> str:
    return "/".join([f"/articles/{quote(article_id, safe='')}", *rest])


class _Refused(Exception):
    """A request answered with a page saying why (a 4xx): the web layer's own, never raised outside it."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("ingest.web", "templates"),
        autoescape=True,  # every template, not only *.html: article text must never become markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        stamp=_stamp,
        age=lambda seconds: age(seconds) if seconds is not None else "unknown",
        counts=_counts,
        seconds=lambda s: f"{s:.1f} s" if s is not None else "",
        article=article_path,
    )
    return env


def _stamp(text: str | None) -> str:
    """An ISO 8601 time as written in an ``.error.json`` (``failed_at``), shown as the other times are."""
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return when(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _counts(counts: Mapping[str, int] | None) -> str:
    return ", ".join(f"{n} {word}" for word, n in sorted((counts or {}).items())) or "none"


class _Pages:
    """What each route answers, over one set of settings, one store and one guard."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        open_store: Callable[[str], Store] | None,
        guard: Guard,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.open_store = open_store
        self.guard = guard
        self.clock = clock
        self.archive = Archive(store, settings.prefix)
        self.env = _templates()
        self.renditions = [r.name for r in api.rendition_formats()]

    # ------------------------------------------------------------------------------------------ helpers

    def page(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        now = self.clock()

        def ago(moment: datetime | None) -> str:
            return f"{age((now - moment).total_seconds())} ago" if moment is not None else ""

        html = self.env.get_template(template).render(
            now=now, ago=ago, version=__version__, bucket=self.settings.bucket, prefix=self.settings.prefix, **context
        )
        return HTMLResponse(html, status_code=status_code)

    def problem(self, status_code: int, title: str, message: str) -> HTMLResponse:
        return self.page("problem.html", status_code, title=title, message=message, code=status_code)

    def _article_id(self, raw: str) -> str:
        try:
            return safe_id(raw, raw)
        except InvalidDocument:
            why = f"{raw!r} is not an article id (it has no letters or digits)"
            raise _Refused(404, "No such article", why) from None

    # ------------------------------------------------------------------------------------------ pages

    def index(self, request: Request) -> Response:
        status = api.status(self.settings, self.store, open_store=self.open_store, clock=self.clock)
        session = request.cookies.get(CSRF_COOKIE) or new_session()
        response = self.page(
            "index.html",
            status=status,
            retry_enabled=self.guard.enabled,
            disabled=DISABLED,
            retry_action=retry_action,
            csrf=lambda action: self.guard.form_token(session, action),
            csrf_field=CSRF_FIELD,
            token_field=TOKEN_FIELD,
            message=_retried_message(request.query_params, status),
        )
        if request.cookies.get(CSRF_COOKIE) != session:
            response.set_cookie(
                CSRF_COOKIE, session, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
            )
        return response

    def open_article(self, request: Request) -> Response:
        raw = request.query_params.get("id", "").strip()
        if not raw:
            raise _Refused(400, "No article id", "Type an article id (e.g. harbour-bridge-closure) to open it.")
        return RedirectResponse(article_path(self._article_id(raw)), status_code=303)

    def article(self, request: Request) -> Response:
        raw = request.path_params["id"]
        article_id = self._article_id(raw)
        if article_id != raw:  # "ferry strike" is ferry-strike, as ingest made it (307: never remembered)
            return RedirectResponse(article_path(article_id), status_code=307)
        latest = self.archive.document(article_id)
        history = self.archive.history(article_id)
        return self.page("article.html", doc=latest, history=history, renditions=self.renditions)

    def version(self, request: Request) -> Response:
        article_id = self._article_id(request.path_params["id"])
        number: int = request.path_params["n"]
        fmt = request.query_params.get("as", "document")
        if fmt not in self.renditions:
            raise _Refused(404, "No such rendition", f"{fmt!r} is not a rendition; known: {', '.join(self.renditions)}")
        if fmt == "document":
            value = json.loads(self.archive.stored(article_id, number))
        else:
            value = api.render(self.archive.document(article_id, number), fmt, self.settings)
        return self.page(
            "version.html",
            article_id=article_id,
            number=number,
            fmt=fmt,
            renditions=self.renditions,
            text=json.dumps(value, indent=2, ensure_ascii=False),
        )

    def diff(self, request: Request) -> Response:
        article_id = self._article_id(request.path_params["id"])
        history = self.archive.history(article_id)
        a, b = _version_param(request, "a"), _version_param(request, "b")
        lines = self.archive.diff(article_id, a, b)
        rows = [(_line_kind(line), line) for line in lines]
        return self.page("diff.html", article_id=article_id, history=history, a=a, b=b, rows=rows)

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if not RUN_ID.fullmatch(run_id):
            raise _Refused(404, "No such run", f"{run_id!r} is not a run id (they look like 20261124T131357-f5e3f7)")
        key = run_key(self.settings.prefix, run_id)
        stored = self.store.get(key)
        if stored is None:
            raise _Refused(404, "No such run", f"no report of run {run_id} is stored ({key})")
        try:
            report = RunReport.model_validate_json(stored.body)
        except ValidationError:
            raise _Refused(500, "Unreadable run report", f"{key} is not a run report ingest wrote") from None
        files = report.files
        return self.page(
            "run.html", report=report, files=files[:FILES_SHOWN], total=len(files), shown=FILES_SHOWN, key=key
        )

    def healthz(self, request: Request) -> Response:
        try:
            self.store.get(status_key(self.settings.prefix, "healthz"))  # one GET: the bucket is there and readable
        except StoreError as exc:
            return PlainTextResponse(f"storage cannot be read: {exc}\n", status_code=503)
        return PlainTextResponse("ok\n")

    def metrics(self, request: Request) -> Response:
        try:
            status = api.status(
                self.settings, self.store, open_store=self.open_store, clock=self.clock, failed_shown=0
            )  # the gauges count failed/, they need no reasons
        except IngestError as exc:
            return PlainTextResponse(f"metrics unavailable: {exc}\n", status_code=503)
        body, content_type = _exposition(status, request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    async def retry(self, request: Request) -> Response:
        source, name = request.path_params["source"], request.path_params["name"]
        action = retry_action(source, name)
        form = await _form(request)
        why = self.guard.refusal(request.headers, request.cookies.get(CSRF_COOKIE), form, action)
        if why is not None:
            log.warning("retry of %s in %s refused: %s", printable(name), printable(source), why)
            raise _Refused(403, "Retry refused", why)
        if source not in {s.name for s in self.settings.sources}:  # never a one-run source made of the URL
            raise _Refused(404, "No such source", f"{source!r} is not a configured source")
        if name in {"", ".", ".."} or "/" in name or "\x00" in name:
            raise _Refused(404, "No such file", f"{name!r} is not a file name")
        try:
            await run_in_threadpool(self._put_back, source, name)
        except NotFound:
            raise _Refused(
                404, "Not in failed/", f"{name} is not in failed/ of {source} (was it put back already?)"
            ) from None
        log.info("%s: %s put back from failed/ through the operator's page", source, printable(name))
        return RedirectResponse("/?" + urlencode({"retried": name, "source": source}), status_code=303)

    def _put_back(self, source: str, name: str) -> None:
        only = self.settings.model_copy(update={"sources": [s for s in self.settings.sources if s.name == source]})
        api.retry_failed(only, [name], open_store=self.open_store)

    # ------------------------------------------------------------------------------------------ errors

    def refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Refused)
        return self.problem(exc.status, exc.title, exc.message)

    def not_found(self, request: Request, exc: Exception) -> Response:
        return self.problem(404, "Not found", str(exc))

    def store_failed(self, request: Request, exc: Exception) -> Response:
        return self.problem(503, "Storage failed", str(exc))

    def failed(self, request: Request, exc: Exception) -> Response:
        return self.problem(500, "Something went wrong", str(exc))

    def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return self.problem(404, "Not found", f"nothing here: {request.url.path}")
        return self.problem(exc.status_code, "Not allowed", exc.detail)


def _retried_message(query: Mapping[str, str], status: Status) -> str | None:
    """What a successful Retry redirects to says: only for a configured source, so no link can make the page
    say something else."""
    name, source = query.get("retried"), query.get("source")
    where = next((s for s in status.sources if s.name == source), None)
    if not name or where is None:
        return None
    return f"{name} was put back into {where.name} ({where.location}); the next run will take it."


def _version_param(request: Request, which: str) -> int:
    raw = request.query_params.get(which, "")
    if not raw.isdigit() or int(raw) < 1:
        raise _Refused(400, "Which versions?", f"{which} must be a version number (1, 2, ...), not {raw!r}")
    return int(raw)


def _line_kind(line: str) -> str:
    if line.startswith(("---", "+++")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("-"):
        return "removed"
    if line.startswith("+"):
        return "added"
    return "same"


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form body (the only kind the page posts), at most ``FORM_BYTES``; anything else is empty."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_BYTES:
            raise _Refused(413, "Form too large", f"a form is at most {FORM_BYTES} bytes")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _exposition(status: Status, accept: str) -> tuple[bytes, str]:
    """``/metrics``: the per-source gauges and the files the runs counted (each source's stored totals), from one
    look at the sources. This process ingests nothing, so it counts nothing of its own."""
    totals = Totals(
        files={s.name: s.totals for s in status.sources}, errors={s.name: s.error_totals for s in status.sources}
    )
    metrics = Metrics(totals=lambda: totals)
    looked = api.gauges(status)
    metrics.watch_sources(lambda: looked)
    return metrics.exposition(accept)


class _FrontDoor:
    """Every response gets ``SECURITY_HEADERS``; with ``hosts``, a request addressed to another host name is
    refused, so a web page elsewhere cannot reach a loopback server by pointing its own name at 127.0.0.1
    (DNS rebinding) and read the stories."""

    def __init__(self, app: ASGIApp, hosts: Collection[str] | None) -> None:
        self.app = app
        self.hosts = {h.lower().strip("[]") for h in hosts} if hosts is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.hosts is not None:
            host = _host_name(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
            if host not in self.hosts:
                names = ", ".join(sorted(self.hosts))
                text = f"this server answers only requests addressed to {names}, not {host or 'no host'!r}\n"
                await PlainTextResponse(text, status_code=421, headers=SECURITY_HEADERS)(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in have]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _host_name(host: str) -> str:
    try:
        return (urlsplit(f"//{host}").hostname or "").lower()
    except ValueError:
        return ""


def build(
    settings: Settings,
    store: Store,
    *,
    open_store: Callable[[str], Store] | None,
    guard: Guard,
    clock: Clock,
    hosts: Collection[str] | None,
) -> Starlette:
    """The app ``ingest.web.create_app`` documents."""
    pages = _Pages(settings, store, open_store, guard, clock)
    routes = [
        Route("/", pages.index),
        Route("/articles", pages.open_article),
        Route("/articles/{id}", pages.article),
        Route("/articles/{id}/v/{n:int}", pages.version),
        Route("/articles/{id}/diff", pages.diff),
        Route("/runs/{run_id}", pages.run),
        Route("/sources/{source}/failed/{name}/retry", pages.retry, methods=["POST"]),
        Route("/healthz", pages.healthz),
        Route("/metrics", pages.metrics),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Response]] = {
        _Refused: pages.refused,
        NotFound: pages.not_found,
        StoreError: pages.store_failed,
        IngestError: pages.failed,
        HTTPException: pages.http_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(_FrontDoor, hosts=hosts)
    return app
