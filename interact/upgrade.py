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
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp.http_websocket import ws_ext_gen, ws_ext_parse

from interact.client_frames import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ClientFrames,
    WsClose,
    close_frame,
    close_payload,
    control_frame,
)
from interact.context import Context
from interact.errors import Close
from interact.protocol import Codec
from interact.viewer import Viewer
from interact.ws import Refused, admit, handle, join, parse_query

log = logging.getLogger("interact.upgrade")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD_BYTES = 8 * 1024
# A connection that has not finished its request head by then is dropped (slowloris).
HEAD_TIMEOUT_S = 10.0
# Messages waiting for their turn before the connection stops reading (flow control).
INBOX_PAUSE = 64
# How long a close handshake may take before the socket is dropped.
CLOSE_TIMEOUT_S = 2.0


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


class RawSocket(asyncio.Protocol):
    """One viewer's WebSocket after the upgrade: frames in, the hub writes frames out.

    It is what ``Viewer.ws`` holds on this path: ``close(code=, message=)`` and
    ``compress``. Messages wait in an inbox and are handled one at a time, in order, by
    a task that exists only while some wait.
    """

    __slots__ = (
        "_admission",
        "_close_sent",
        "_ctx",
        "_frames",
        "_inbox",
        "_lost",
        "_paused",
        "_transport",
        "_worker",
        "codec",
        "compress",
        "viewer",
    )

    def __init__(
        self, ctx: Context, transport: asyncio.Transport, codec: Codec, wbits: int
    ) -> None:
        self._ctx = ctx
        self._transport = transport
        self.codec = codec
        self.compress = wbits
        self._frames = ClientFrames(ctx.config.max_frame_bytes, deflate=bool(wbits))
        self._inbox: deque[str | bytes] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._admission: asyncio.Task[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._close_sent = False
        self._paused = False
        self.viewer: Viewer | None = None

    # -- what the hub and Viewer use ------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._close_sent or self._transport.is_closing()

    async def close(self, *, code: int = Close.NORMAL, message: bytes = b"") -> bool:
        """Send a close frame, wait (a little) for the client's, then drop the socket."""
        transport = self._transport
        if not self._close_sent and not transport.is_closing():
            self._close_sent = True
            transport.write(close_frame(int(code), message))
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.close)
        lost = self._lost_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(lost), CLOSE_TIMEOUT_S + 1)
        return True

    # -- asyncio.Protocol ---------------------------------------------------------------

    def start(self, query: dict[str, str]) -> None:
        self._admission = asyncio.ensure_future(self._admit(query))

    def data_received(self, data: bytes) -> None:
        if self._transport.is_closing():
            return
        try:
            messages = self._frames.feed(data)
        except WsClose as exc:
            self._refuse(exc)
            return
        viewer = self.viewer
        if viewer is not None:
            viewer.last_seen = time.monotonic()
        for op, payload in messages:
            if op == OP_PING:
                if not self._close_sent:
                    self._transport.write(control_frame(OP_PONG, payload))
            elif op == OP_CLOSE:
                self._closed_by_client(payload)
                return
            elif op != OP_PONG:
                self._inbox.append(payload.decode() if op == OP_TEXT else payload)
        if self._inbox and self._worker is None and viewer is not None:
            self._worker = asyncio.ensure_future(self._drain())
        if len(self._inbox) >= INBOX_PAUSE and not self._paused:
            self._paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        for task in (self._admission, self._worker):
            if task is not None and not task.done():
                task.cancel()
        if self.viewer is not None:
            self._ctx.hub.leave(self.viewer)
        lost = self._lost_future()
        if not lost.done():
            lost.set_result(None)

    # -- internals --------------------------------------------------------------------

    async def _admit(self, query: dict[str, str]) -> None:
        ctx = self._ctx
        try:
            user, room = await admit(ctx, query)
        except Refused as refused:
            ctx.metrics.handshakes.labels(refused.outcome).inc()
            await self.close(code=refused.code, message=refused.message)
            return
        viewer = Viewer(self, self._transport, user, room.id, self.codec, self.compress)
        if not await join(ctx, viewer, room, query):
            return
        self.viewer = viewer
        if self._lost is not None and self._lost.done():  # lost while joining
            ctx.hub.leave(viewer)
        elif self._inbox and self._worker is None:
            self._worker = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        ctx, viewer, inbox = self._ctx, self.viewer, self._inbox
        assert viewer is not None
        try:
            while inbox and not self._close_sent:
                await handle(ctx, viewer, inbox.popleft())
                if self._paused and len(inbox) < INBOX_PAUSE // 4:
                    self._paused = False
                    self._transport.resume_reading()
        finally:
            self._worker = None

    def _refuse(self, exc: WsClose) -> None:
        """The client broke the protocol: say why with the close code, and drop it."""
        if not self._close_sent:
            self._close_sent = True
            self._transport.write(close_frame(exc.code, exc.reason.encode()))
        self._transport.close()

    def _closed_by_client(self, payload: bytes) -> None:
        try:
            code = close_payload(payload)
        except WsClose as exc:
            self._refuse(exc)
            return
        if not self._close_sent:
            self._close_sent = True
            self._transport.write(close_frame(code or Close.NORMAL))
        self._transport.close()

    def _lost_future(self) -> asyncio.Future[None]:
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        return self._lost


def dispatch_factory(
    ctx: Context, aiohttp_protocol: Callable[[], Any], head_timeout: float = HEAD_TIMEOUT_S
) -> Callable[[], Dispatch]:
    """The protocol factory ``interact serve`` listens with."""
    return lambda: Dispatch(ctx, aiohttp_protocol, head_timeout)
