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
"""

from __future__ import annotations

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
