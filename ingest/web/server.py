"""``ingest serve``'s process: check the settings, bind the port, run uvicorn until a signal stops it."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn

from ingest import api
from ingest.errors import RunError
from ingest.settings import UI_TOKEN_ENV, Settings
from ingest.web import LOOPBACK_NAMES, create_app, is_loopback

log = logging.getLogger("ingest.web")


def run(settings: Settings, host: str, port: int, *, token: str | None) -> None:
    """``ingest.web.serve``."""
    # One store per bucket for the life of the server, trying a request only briefly: a page or a probe says
    # storage is down within seconds rather than after a minute of retries.
    open_store = api.store_cache(settings)
    store = open_store(settings.bucket)
    api.open_sources(settings, open_store)  # no sources, a bad rule, an inbox overlapping the store: said now
    loopback = is_loopback(host)
    sock = bind(host, port)
    where = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}/"
    if not loopback:
        log.warning("serving on %s, which is not loopback: anyone who can reach it can read the stories", where)
    app = create_app(settings, store, open_store=open_store, token=token, hosts=LOOPBACK_NAMES if loopback else None)
    # log_config=None: uvicorn's loggers go through ingest's logging (text or JSON lines, errors only)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", server_header=False)
    log.info(
        "serving %s on %s (retry %s); stop with Ctrl-C or SIGTERM",
        settings.in_use(),
        where,
        "on: the token is needed" if token else f"off: ${UI_TOKEN_ENV} is not set",
    )
    with sock:
        _Server(config).run(sockets=[sock])
    log.info("stopped serving %s", where)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port); a ``RunError`` when it cannot be had."""
    if not 0 <= port <= 65535:
        raise RunError(f"cannot listen on {host}:{port}: a port is a number from 1 to 65535 (0: any free one)")
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    try:
        return socket.create_server((bare, port), family=family)
    except OSError as exc:
        raise RunError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


class _Server(uvicorn.Server):
    """uvicorn's server, stopped by SIGINT or SIGTERM as ``ingest watch`` is: the signal ends the serving and
    ``run`` returns. (uvicorn itself raises the signal again once stopped, which would kill the process with it,
    so ``ingest serve`` could not exit 0 on a clean stop.) A second Ctrl-C stops at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        saved = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
