"""A fault-injecting HTTP proxy for the tests, put in front of the real SeaweedFS.

It speaks just enough HTTP/1.1 to forward one request at a time per client connection (requests
with Content-Length bodies, responses with Content-Length or chunked bodies) and, per request,
may inject a fault instead:

* ``slowdown``  answer 503 SlowDown without forwarding (the store never sees the request);
* ``error500``  answer 500 InternalError without forwarding;
* ``drop``      close the connection without forwarding (dropped before it reaches the store);
* ``lost``      forward it, let the store apply it, then close without answering (reply lost);
* ``slow``      forward it, but wait ``slow_seconds`` before answering;
* ``down``      every request is refused, as if the store were gone (set ``down = True``).

Faults are drawn with a seeded RNG at ``rate``; counts of what was done are kept in ``stats``.
Loopback only; the proxy stops with ``close()``.

``CountingProxy`` is the benchmark's pass-through (``make bench``): it counts requests by method and can
add a fixed latency to each, and it costs little itself (asyncio protocols, one upstream connection per
client connection, responses copied unparsed), which ``FaultProxy`` (a thread per connection, a new
upstream connection per request) does not try to.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FAULTS = ("slowdown", "error500", "drop", "lost", "slow")
_MAX_HEAD = 64 * 1024


def _read_head(sock: socket.socket, buf: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > _MAX_HEAD and b"\r\n\r\n" not in buf:
            return None
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end])
    del buf[:end]
    return head


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("peer closed mid-body")
        buf += chunk
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    out = {}
    for line in lines:
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def _drop_header(head: bytes, name: bytes) -> bytes:
    lines = head.split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(name + b":")]
    return b"\r\n".join(kept)


def _read_chunked(sock: socket.socket, buf: bytearray) -> bytes:
    body = bytearray()
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("peer closed mid-chunk")
            buf += chunk
        i = buf.index(b"\r\n")
        size_line = bytes(buf[: i + 2])
        del buf[: i + 2]
        size = int(size_line.split(b";")[0].strip(), 16)
        body += size_line
        body += _read_exact(sock, buf, size + 2)
        if size == 0:
            return bytes(body)


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 1,
        slow_seconds: float = 0.5,
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rate, self.faults, self.slow_seconds = rate, faults, slow_seconds
        self.down = False
        self.stats: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def _pick(self, head: bytes = b"") -> str | None:
        """The fault for the request whose head (request line and headers) is ``head``, if any."""
        with self._lock:
            if self.down:
                return "down"
            if self.rate and self._rng.random() < self.rate:
                return self._rng.choice(self.faults)
            return None

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        buf = bytearray()
        try:
            with client:
                while True:
                    head = _read_head(client, buf)
                    if head is None:
                        return
                    headers = _headers(head)
                    if headers.get("expect", "").lower() == "100-continue":
                        # botocore waits for this before sending a PUT body; answer it ourselves and
                        # forward the request without the header, so the store answers only once.
                        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                        head = _drop_header(head, b"expect")
                    body = _read_exact(client, buf, int(headers.get("content-length", "0")))
                    fault = self._pick(head)
                    with self._lock:
                        self.stats[fault or "ok"] += 1
                    if fault in ("down", "drop"):
                        return
                    if fault in ("slowdown", "error500"):
                        code, word = (503, "SlowDown") if fault == "slowdown" else (500, "InternalError")
                        payload = (
                            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{word}</Code>'
                            f"<Message>injected by the test proxy</Message></Error>"
                        ).encode()
                        client.sendall(
                            f"HTTP/1.1 {code} {word}\r\nContent-Type: application/xml\r\n"
                            f"Content-Length: {len(payload)}\r\n\r\n".encode()
                            + payload
                        )
                        continue
                    response = self._forward(head, body)
                    if fault == "lost":
                        return  # the store applied it; the client never hears back
                    if fault == "slow":
                        time.sleep(self.slow_seconds)
                    client.sendall(response)
        except (ConnectionError, OSError, ValueError):
            return

    def _forward(self, head: bytes, body: bytes) -> bytes:
        method = head.split(b" ", 1)[0]
        with socket.create_connection(self.upstream, timeout=30) as up:
            up.sendall(head + body)
            buf = bytearray()
            rhead = _read_head(up, buf)
            while rhead is not None and rhead.startswith(b"HTTP/1.1 100"):
                rhead = _read_head(up, buf)
            if rhead is None:
                raise ConnectionError("upstream closed")
            headers = _headers(rhead)
            status = int(rhead.split(b" ", 2)[1])
            if method == b"HEAD" or status in (204, 304) or 100 <= status < 200:
                rbody = b""
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                rbody = _read_chunked(up, buf)
            elif "content-length" in headers:
                rbody = _read_exact(up, buf, int(headers["content-length"]))
            else:  # read to close
                while chunk := up.recv(65536):
                    buf += chunk
                rbody, buf = bytes(buf), bytearray()
                rhead = rhead.replace(b"\r\n\r\n", f"\r\nContent-Length: {len(rbody)}\r\n\r\n".encode(), 1)
            return rhead + rbody


class CountingProxy:
    """A pass-through HTTP/1.1 proxy for measurements: counts requests by method and adds ``latency``
    seconds to each one (before it is forwarded), settable between runs.

    One asyncio loop in a background thread, on bare protocols (no streams: the proxy should cost as little
    as it can); each client connection gets its own upstream connection, kept for as long as the client
    keeps its own. Only requests are parsed, to see where each one begins (Content-Length or chunked
    bodies; ``Expect: 100-continue`` passes through); responses are copied as they arrive. ``cpu_seconds()``
    is the CPU time the proxy's thread has used, so a caller can show what the proxy cost a measurement.
    Loopback only; stop it with ``close()``.
    """

    def __init__(self, upstream: str, *, latency: float = 0.0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.latency = latency
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._open: set[_Downstream] = set()
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _Downstream(self), "127.0.0.1", 0, reuse_address=True)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._loop.run_forever, name="counting-proxy", daemon=True)
        self._thread.start()

    def counts(self) -> Counter[str]:
        """Requests so far, by method."""
        with self._lock:
            return Counter(self._counts)

    def take_counts(self) -> Counter[str]:
        """Requests since the last call (or the start), by method; the count starts again from zero."""
        with self._lock:
            taken, self._counts = self._counts, Counter()
        return taken

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the proxy's thread has used so far."""
        assert self._thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self._thread.ident))

    def close(self) -> None:
        if not self._loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        for connection in list(self._open):
            connection.close()
        await asyncio.sleep(0.05)  # let the transports finish closing

    def _count(self, method: str) -> None:
        with self._lock:
            self._counts[method] += 1


class _Downstream(asyncio.Protocol):
    """A client's connection to the ``CountingProxy``: finds where each request begins, holds it for the
    latency, and forwards every byte to the upstream connection that belongs to it."""

    def __init__(self, proxy: CountingProxy) -> None:
        self.proxy = proxy
        self.buf = bytearray()
        self.body = 0  # bytes of a body (or of one chunk with its CRLF) still to forward
        self.chunks: str | None = None  # in a chunked body: "size" or "trailer" line next
        self.held = self.up_full = False
        self.transport: asyncio.Transport | None = None
        self.up: _Upstream | None = None
        self.connecting: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.proxy._open.add(self)
        transport.pause_reading()  # until the upstream connection is there
        self.connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: _Upstream(self), *self.proxy.upstream)
        except OSError:
            self.close()
            return
        for transport in (self.transport, self.up and self.up.transport):
            sock = transport.get_extra_info("socket") if transport else None
            if sock is not None:  # small requests and answers go out at once
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reading()

    def close(self) -> None:
        self.proxy._open.discard(self)
        if self.transport:
            self.transport.close()
        if self.up and self.up.transport:
            self.up.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._pump()
        except ValueError:  # not HTTP as we know it
            self.close()

    def pause_writing(self) -> None:  # answers pile up on the client side: stop reading them
        if self.up and self.up.transport:
            self.up.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.up and self.up.transport:
            self.up.transport.resume_reading()

    def _reading(self) -> None:
        if self.transport is None or self.up is None:
            return
        if self.held or self.up_full:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _send(self, n: int) -> None:
        assert self.up is not None and self.up.transport is not None
        self.up.transport.write(bytes(self.buf[:n]))
        del self.buf[:n]

    def _pump(self) -> None:
        while self.buf and not self.held:
            if self.body:
                n = min(self.body, len(self.buf))
                self._send(n)
                self.body -= n
                continue
            if self.chunks:
                i = self.buf.find(b"\r\n")
                if i < 0:
                    return
                if self.chunks == "size":
                    size = int(bytes(self.buf[:i]).split(b";")[0].strip(), 16)
                    self.body, self.chunks = (size + 2, "size") if size else (0, "trailer")
                elif i == 0:  # the empty line after the trailers ends the body
                    self.chunks = None
                self._send(i + 2)
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD:
                    raise ValueError("request head too long")
                return
            head = bytes(self.buf[: end + 4])
            del self.buf[: end + 4]
            headers = _headers(head)
            self.proxy._count(head.split(b" ", 1)[0].decode("latin-1"))
            if headers.get("transfer-encoding", "").lower() == "chunked":
                self.chunks = "size"
            else:
                self.body = int(headers.get("content-length", "0"))
            if self.proxy.latency:
                self.held = True
                self._reading()
                asyncio.get_running_loop().call_later(self.proxy.latency, self._release, head)
                return
            assert self.up is not None and self.up.transport is not None
            self.up.transport.write(head)

    def _release(self, head: bytes) -> None:
        self.held = False
        if self.up is None or self.up.transport is None or self.up.transport.is_closing():
            return
        self.up.transport.write(head)
        self._reading()
        try:
            self._pump()
        except ValueError:
            self.close()


class _Upstream(asyncio.Protocol):
    """The ``CountingProxy``'s connection to the store for one client connection: answers go back as they come."""

    def __init__(self, down: _Downstream) -> None:
        self.down = down
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.down.up = self

    def data_received(self, data: bytes) -> None:
        if self.down.transport is not None:
            self.down.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.down.close()

    def pause_writing(self) -> None:  # requests pile up on the store side: stop reading the client
        self.down.up_full = True
        self.down._reading()

    def resume_writing(self) -> None:
        self.down.up_full = False
        self.down._reading()


def proxied_client(proxy: FaultProxy, connect_timeout: float = 2, read_timeout: float = 5) -> S3Client:
    """A boto3 S3 client that talks to the store through ``proxy``, with botocore's retries off."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", endpoint_url=proxy.url, config=config)
