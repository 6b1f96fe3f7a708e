"""One viewer's WebSocket on ``interact serve``'s own upgrade path, after the 101.

``interact.upgrade.Dispatch`` answers the handshake and hands the transport to a
``RawSocket``: client frames are read by ``interact.client_frames``, messages are handled
one at a time by ``interact.ws.handle``, and the hub writes fan-out frames straight to
the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

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
from interact.ws import Refused, admit, handle, join

# Messages waiting for their turn before the connection stops reading (flow control).
INBOX_PAUSE = 64
# How long a close handshake may take before the socket is dropped.
CLOSE_TIMEOUT_S = 2.0


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
        frames = self._frames
        messages = frames.feed(data)
        if frames.error is not None:
            self._refuse(frames.error)
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
