"""``interact serve``'s own WebSocket upgrade: ``/ws`` handled below aiohttp.

Every accepted connection starts with ``Dispatch``. A plain WebSocket upgrade to ``/ws``
(GET, version 13, a key, a good query) is answered here and the connection becomes a
``RawSocket``; anything else — other paths, odd or refused upgrades, HTTP keep-alive —
is handed, bytes and all, to aiohttp's request handler, which answers it exactly as
before (``interact.ws.ws_handler`` serves ``/ws`` there too).

Why: aiohttp's upgrade path cost 309 µs of CPU per handshake on the benchmark machine
and ~13.5 KB per idle connection (its request, parser, reader, writer and handler task
stay alive for the connection's life). A viewer here is this protocol object, its frame
reader and the hub's ``Viewer``; messages are handled by a task only while some wait.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp.http_websocket import ws_ext_gen, ws_ext_parse

from interact.context import Context
from interact.raw_socket import RawSocket
from interact.ws import parse_query

log = logging.getLogger("interact.upgrade")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD_BYTES = 8 * 1024
# A connection that has not finished its request head by then is dropped (slowloris).
HEAD_TIMEOUT_S = 10.0


class Dispatch(asyncio.Protocol):
    """Reads the request head and decides who serves the connection."""

    __slots__ = ("_aiohttp", "_buf", "_ctx", "_head_timeout", "_timer", "_transport")

    def __init__(
        self,
        ctx: Context,
        aiohttp_protocol: Callable[[], asyncio.Protocol],
        head_timeout: float = HEAD_TIMEOUT_S,
    ) -> None:
        self._ctx = ctx
        self._aiohttp = aiohttp_protocol
        self._head_timeout = head_timeout
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._timer = asyncio.get_running_loop().call_later(
            self._head_timeout, transport.close
        )

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                self._hand_over()  # aiohttp answers 431 or 400
            return
        self._stop_timer()
        upgrade = _plain_upgrade(bytes(buf[:end]))
        if upgrade is None:
            self._hand_over()
            return
        query_string, key, extensions = upgrade
        try:
            query, codec = parse_query(query_string)
        except ValueError:
            self._hand_over()  # aiohttp answers the 400
            return
        rest = bytes(buf[end + 4 :])
        self._buf = bytearray()
        transport = self._transport
        assert transport is not None
        ctx = self._ctx
        wbits, _ = ws_ext_parse(extensions, isserver=True) if ctx.config.compression else (0, 0)
        head = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + base64.b64encode(hashlib.sha1(key + _GUID).digest())
        )
        if wbits:
            # server_no_context_takeover: the hub deflates each batch once, for everyone.
            ext = ws_ext_gen(compress=wbits, isserver=True, server_notakeover=True)
            head += b"\r\nSec-WebSocket-Extensions: " + ext.encode()
        transport.write(head + b"\r\n\r\n")
        sock = RawSocket(ctx, transport, codec, wbits)
        transport.set_protocol(sock)
        sock.start(query)
        if rest:
            sock.data_received(rest)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _hand_over(self) -> None:
        self._stop_timer()  # aiohttp keeps its own time from here
        transport = self._transport
        assert transport is not None
        protocol = self._aiohttp()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(bytes(self._buf))
        self._buf = bytearray()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self._transport = None


def _plain_upgrade(head: bytes) -> tuple[str, bytes, str | None] | None:
    """(query string, Sec-WebSocket-Key, extensions) of a plain upgrade to /ws, else None."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    request_line, _, rest = text.partition("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        return None
    path, _, query_string = parts[1].partition("?")
    if path != "/ws":
        return None
    headers: dict[str, str] = {}
    for line in rest.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None  # let aiohttp judge anything unusual
        name = name.lower()
        if name in headers:  # repeated headers: the rare case, aiohttp's to judge
            return None
        headers[name] = value.strip()
    if (
        "websocket" not in headers.get("upgrade", "").lower()
        or "upgrade" not in headers.get("connection", "").lower()
        or headers.get("sec-websocket-version") != "13"
    ):
        return None
    key = headers.get("sec-websocket-key", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except ValueError:
        return None
    return query_string, key.encode(), headers.get("sec-websocket-extensions")


def dispatch_factory(
    ctx: Context, aiohttp_protocol: Callable[[], Any], head_timeout: float = HEAD_TIMEOUT_S
) -> Callable[[], Dispatch]:
    """The protocol factory ``interact serve`` listens with."""
    return lambda: Dispatch(ctx, aiohttp_protocol, head_timeout)
