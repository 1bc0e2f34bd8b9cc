"""``ingest serve``: a small web application for the person on call.

Server-rendered HTML that needs no JavaScript (none runs: the pages' Content-Security-Policy forbids it)::

    /                                        every source: healthy, quiet or failing and why; last sweep, last
                                             clean sweep, last item, backlog, 24 h counts; failed files with
                                             their reasons and a Retry button each; a form to open an article
    POST /sources/{source}/failed/{name}/retry   put one refused file back (``ingest retry-failed SOURCE NAME``)
    /runs/{run_id}                           a run report: counts, timings, errors, file records
    /articles/{id}                           an article's history; /articles/{id}/v/{n}[?as=ninjs|ninjs3|ans]
                                             a version's document or rendition; /articles/{id}/diff?a=1&b=2
                                             the paragraph diff between two versions (as ``ingest diff``)
    /metrics                                 Prometheus text: per-source gauges and the stored file counters
    /healthz                                 ``200 ok`` when the store can be read, else 503 (plain text)

Reading is open to whoever reaches the server, which is why it binds to loopback by default (and, bound there,
answers only requests addressed to a loopback name). Changing anything (Retry) needs the token from
``INGEST_UI_TOKEN`` and passes the cross-site checks described in ``ingest.web.guard``.

Why Starlette and Jinja2: Starlette is a small, well-kept ASGI toolkit (routing, requests and responses, a
test client) without the ORM, forms and settings machinery of a full framework this app would not use; Jinja2
escapes every value it renders, so article text cannot become markup; uvicorn serves it.

This module imports neither: ``create_app`` and ``serve`` load them when called, so the other commands do
not pay for the web stack.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from ingest.clock import Clock, utcnow
from ingest.settings import Settings
from ingest.stores.base import Store

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["LOOPBACK_NAMES", "create_app", "is_loopback", "serve"]

#: The host names a loopback-bound server answers to.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def create_app(
    settings: Settings,
    store: Store | None = None,
    *,
    open_store: Callable[[str], Store] | None = None,
    token: str | None = None,
    clock: Clock = utcnow,
    secret: bytes | None = None,
    hosts: Collection[str] | None = None,
) -> Starlette:
    """The operator's page as an ASGI app over ``store`` (by default ``api.open_store(settings)``); S3 inboxes
    are read through ``open_store(bucket)`` as ``api.status`` does. ``token`` switches Retry on (None: off).
    ``secret`` keys the forms' cross-site checks (default: random, made now). With ``hosts``, requests addressed
    to any other host name are refused (421)."""
    from ingest import api
    from ingest.web.app import build
    from ingest.web.guard import Guard

    guard = Guard(token) if secret is None else Guard(token, secret)
    return build(
        settings, store or api.open_store(settings), open_store=open_store, guard=guard, clock=clock, hosts=hosts
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080, *, token: str | None = None) -> None:
    """Serve the page on ``host``:``port`` until SIGINT or SIGTERM, then return. The settings are checked and the
    port bound before anything is served: a bad config is a ``ConfigError``, a port that cannot be had a
    ``RunError`` (both exit 2). A host other than loopback is logged as a warning: whoever reaches it reads."""
    from ingest.web.server import run

    run(settings, host, port, token=token)
