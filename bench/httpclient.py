"""A lean HTTP/1.1 keep-alive client for load generation: one raw asyncio Protocol per
connection, one request in flight on it.

What ``bench/client.py`` is for WebSocket, this is for REST: no client library between
the socket and the owner, so thousands of closed-loop callers fit in one load process.

- the owner writes whole requests (``request`` builds one from parts it keeps ready);
- an answer is parsed in place: the status line, the head up to the blank line, the
  body by ``Content-Length``. An answer without ``Content-Length`` (chunked), a head
  over 64 KB or a status line that is not HTTP/1.x is a protocol failure;
- the answer goes to the owner's callback with its status, its head (lower-cased, for
  header checks), its body and the receive time (``time.time_ns()``);
- an answer carrying ``Connection: close``, or a connection the server drops, ends the
  connection with a failure: the server under test keeps connections alive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

_MAX_HEAD = 64 * 1024

# Answer callback: (connection, status, head lower-cased, body, receive time ns).
Handler = Callable[["HttpConn", int, bytes, bytes, int], None]


def request(method: str, path: str, head: bytes, body: bytes = b"", extra: bytes = b"") -> bytes:
    """One request: ``head`` holds the fixed header lines (Host, Authorization, ...,
    each ending in CRLF), ``extra`` per-request ones (an Idempotency-Key)."""
    return b"%s %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
        method.encode(), path.encode(), head, extra, len(body), body,
    )  # fmt: skip


def fixed_head(host: str, port: int, token: str | None, json_body: bool = True) -> bytes:
    lines = [f"Host: {host}:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if json_body:
        lines.append("Content-Type: application/json")
    return "".join(line + "\r\n" for line in lines).encode()


class HttpConn(asyncio.Protocol):
    """One keep-alive connection. ``failure`` is None while all is well."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.owner: object = None
        self.failure: str | None = None
        self.transport: asyncio.Transport | None = None
        self.bytes_in = 0
        self.answers = 0
        self._buf = bytearray()
        self._head_end = -1  # index of the blank line of the answer being read
        self._length = 0
        self._status = 0
        self._head = b""
        self._closing = False

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closing:
            self._fail("lost" if exc is None else f"lost: {exc!r}")

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        buf = self._buf
        buf += data
        while True:
            if self._head_end < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        self._fail("answer head too long")
                    return
                head = bytes(buf[:end]).lower()
                if not head.startswith(b"http/1."):
                    self._fail(f"not an HTTP/1.x answer: {head[:40]!r}")
                    return
                i = head.find(b"\r\ncontent-length:")
                if i < 0:
                    self._fail("answer without Content-Length")
                    return
                j = head.find(b"\r\n", i + 17)
                try:
                    self._length = int(head[i + 17 : j if j >= 0 else len(head)])
                    self._status = int(head[9:12])
                except ValueError:
                    self._fail(f"bad answer head {head[:80]!r}")
                    return
                self._head = head
                self._head_end = end
            start = self._head_end + 4
            stop = start + self._length
            if len(buf) < stop:
                return
            body = bytes(buf[start:stop])
            del buf[:stop]
            self._head_end = -1
            self.answers += 1
            head = self._head
            self.handler(self, self._status, head, body, time.time_ns())
            if b"\r\nconnection: close" in head:
                self._fail("server closed the connection (Connection: close)")
                return
            if not buf:
                return

    # -- sending and closing -----------------------------------------------------

    def send(self, raw: bytes) -> bool:
        t = self.transport
        if t is None or t.is_closing() or self.failure is not None:
            return False
        t.write(raw)
        return True

    def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, why: str) -> None:
        if self.failure is None and not self._closing:
            self.failure = why
        self._closing = True
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int, handler: Handler, deadline_s: float = 10.0) -> HttpConn:
    loop = asyncio.get_running_loop()
    conn = HttpConn(handler)
    async with asyncio.timeout(deadline_s):
        await loop.create_connection(lambda: conn, host, port)
    return conn
