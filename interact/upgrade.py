"""``interact serve``'s own WebSocket upgrade: ``/ws`` handled below aiohttp.

Every accepted connection starts with ``Dispatch``. It admits the connection or refuses
it (``interact.edge``: the per-address and not-yet-welcomed caps; 503 and close) and
holds it to ``head_timeout`` until its first request head is in. A plain WebSocket
upgrade to ``/ws`` (``interact.handshake.refusal`` has nothing against it, a good query)
is answered here and the connection becomes a ``RawSocket``; anything else — other
paths, odd, oversized or refused upgrades, HTTP keep-alive, every connection when
``raw_upgrade`` is off — is handed, bytes and all, to aiohttp's request handler behind an
``interact.guard.Guard``, which keeps the head's deadline running and times every later
stage. aiohttp answers it (``interact.ws.ws_handler`` serves ``/ws`` there too, with the
same refusals).

Why: aiohttp's upgrade path cost 309 µs of CPU per handshake on the benchmark machine
and ~13.5 KB per idle connection (its request, parser, reader, writer and handler task
stay alive for the connection's life). A viewer here is this protocol object, its frame
reader and the hub's ``Viewer``; messages are handled by a task only while some wait.
What admission adds per raw connection: a peername lookup, an entry in two dicts and a
set of ``Edge`` (the set's until the welcome), and the head timer it already had.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

from interact.context import Context
from interact.guard import Guard
from interact.handshake import accept_value, deflate_answer, refusal
from interact.raw_socket import RawSocket
from interact.ws import parse_query

log = logging.getLogger("interact.upgrade")

# A head this long is aiohttp's to refuse (its request-line and field limits are 8,190
# bytes); and a head arriving slower than head_timeout is dropped (slowloris).
MAX_HEAD_BYTES = 8 * 1024
# aiohttp answers 400 past 128 header lines.
MAX_HEADERS = 128
# The answer to a connection over a cap (interact.edge), before it is closed.
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)


class Dispatch(asyncio.Protocol):
    """Admits a connection, reads its first request head and decides who serves it."""

    __slots__ = ("_aiohttp", "_buf", "_ctx", "_loop", "_timer", "_transport")

    def __init__(
        self,
        ctx: Context,
        aiohttp_protocol: Callable[[], asyncio.Protocol],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._ctx = ctx
        # Held, not asked for: asyncio.get_running_loop() makes a getpid() system call
        # each time (CPython 3.11 checks for a fork), three times a handshake.
        self._loop = loop
        self._aiohttp = aiohttp_protocol
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        ctx = self._ctx
        peer = transport.get_extra_info("peername")
        # Interned: every connection from one address then shares one string in Edge.
        address = sys.intern(peer[0]) if isinstance(peer, tuple) else ""
        reason = ctx.edge.open(transport, address)
        if reason is not None:
            ctx.metrics.connections_refused.labels(reason).inc()
            transport.write(REFUSED)  # type: ignore[attr-defined]
            transport.close()
            return
        self._timer = self._loop.call_later(ctx.config.head_timeout, self._head_expired)
        if not ctx.config.raw_upgrade:
            self._hand_over()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            # Too long, or a bare LF (which aiohttp refuses at once): aiohttp answers.
            if len(buf) > MAX_HEAD_BYTES or buf.count(b"\n") != buf.count(b"\r\n"):
                self._hand_over()
            return
        upgrade = _plain_upgrade(bytes(buf[:end])) if end <= MAX_HEAD_BYTES else None
        if upgrade is None:
            self._hand_over()
            return
        query_string, key, extensions = upgrade
        try:
            query, codec = parse_query(query_string)
        except ValueError:
            self._hand_over()  # aiohttp answers the 400
            return
        self._stop_timer()
        rest = bytes(buf[end + 4 :])
        self._buf = bytearray()
        transport = self._transport
        assert transport is not None
        ctx = self._ctx
        deflate = deflate_answer(extensions) if ctx.config.compression else None
        head = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_value(key)
        )
        wbits = 0
        if deflate is not None:
            wbits = deflate[0]
            head += b"\r\nSec-WebSocket-Extensions: " + deflate[1].encode()
        transport.write(head + b"\r\n\r\n")
        sock = RawSocket(ctx, transport, codec, wbits, self._loop)
        transport.set_protocol(sock)
        sock.start(query)
        if rest:
            sock.data_received(rest)

    def _head_expired(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._ctx.metrics.deadline_closed.labels("head").inc()
            self._transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _hand_over(self) -> None:
        """aiohttp serves the connection from here, behind a ``Guard`` that keeps the
        head's deadline running and times every later stage."""
        timer = self._timer
        assert timer is not None
        self._timer = None
        timer.cancel()
        transport = self._transport
        assert transport is not None
        guard = Guard(self._ctx, self._aiohttp(), timer.when())
        transport.set_protocol(guard)
        guard.connection_made(transport)
        if self._buf:
            guard.data_received(bytes(self._buf))
        self._buf = bytearray()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self._transport is not None:
            self._ctx.edge.closed(self._transport)
        self._transport = None


def _plain_upgrade(head: bytes) -> tuple[str, bytes, str | None] | None:
    """(query string, Sec-WebSocket-Key, extensions) of a plain upgrade to /ws, else None.

    Plain: what ``interact.handshake.refusal`` lets through, in the usual shape. Anything
    else is aiohttp's to answer — the same refusal, through ``SharedFrameResponse``.
    """
    text = head.decode("latin-1")
    request_line, _, rest = text.partition("\r\n")
    # A bare CR or LF (aiohttp's 400) is left inside a line once the head is split on
    # CRLF: looked for line by line with ``in`` (memchr), not by counting the whole head
    # three times (5,500 instructions of a 700,000-instruction handshake).
    if "\r" in request_line or "\n" in request_line:
        return None
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        return None
    path, _, query_string = parts[1].partition("?")
    if path != "/ws":
        return None
    lines = rest.split("\r\n")
    if len(lines) > MAX_HEADERS:
        return None
    headers: dict[str, str] = {}
    for line in lines:
        if "\r" in line or "\n" in line:
            return None
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None  # let aiohttp judge anything unusual
        name = name.lower()
        if name in headers:  # repeated headers: the rare case, aiohttp's to judge
            return None
        headers[name] = value.strip()
    if refusal(True, headers) is not None:
        return None
    return (
        query_string,
        headers["sec-websocket-key"].encode(),
        headers.get("sec-websocket-extensions"),
    )


def dispatch_factory(ctx: Context, aiohttp_protocol: Callable[[], Any]) -> Callable[[], Dispatch]:
    """The protocol factory ``interact serve`` listens with, whatever ``raw_upgrade``."""
    loop = asyncio.get_running_loop()
    return lambda: Dispatch(ctx, aiohttp_protocol, loop)
