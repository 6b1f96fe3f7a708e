"""One viewer's WebSocket on ``interact serve``'s own upgrade path, after the 101.

``interact.upgrade.Dispatch`` answers the handshake and hands the transport to a
``RawSocket``: client frames are read by ``interact.client_frames``, messages are handled
one at a time by ``interact.ws.handle``, and the hub writes fan-out frames straight to
the transport.

Memory per connection is bounded whatever the peer does: reading stops while the write
buffer is past the soft limit (``pause_writing``) or the inbox is full, so what one peer
can make the server hold is the soft limit, the replies to one read, the inbox and one
message being assembled (docs/protocol.md §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from interact.floor.errors import Close
from interact.protocol import Codec
from interact.viewer import CLOSE_TIMEOUT_S, Viewer
from interact.ws import Refused, admit, handle, join

log = logging.getLogger("interact.raw_socket")

# Messages waiting for their turn before the connection stops reading (flow control).
INBOX_PAUSE = 64

# Why reading is paused, as bits of ``RawSocket._paused``: reading resumes when none is left.
_INBOX = 1  # INBOX_PAUSE messages wait
_WRITES = 2  # the write buffer is past the soft limit: the peer does not read
_ENDED = 4  # a close waits behind the inbox: nothing after it is read, ever


class RawSocket(asyncio.Protocol):
    """One viewer's WebSocket after the upgrade: frames in, the hub writes frames out.

    It is what ``Viewer.ws`` holds on this path: ``close(code=, message=)`` and
    ``compress``. Messages wait in an inbox and are handled one at a time, in order, by
    a task that exists only while some wait. A close the connection must answer (the
    client's close, a protocol violation) waits in the inbox behind the messages that
    came before it, as a ``WsClose``.
    """

    __slots__ = (
        "_admission",
        "_close_sent",
        "_ctx",
        "_frames",
        "_inbox",
        "_loop",
        "_lost",
        "_paused",
        "_peer_closed",
        "_transport",
        "_worker",
        "codec",
        "compress",
        "viewer",
    )

    def __init__(
        self,
        ctx: Context,
        transport: asyncio.Transport,
        codec: Codec,
        wbits: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._ctx = ctx
        self._loop = loop  # see interact.upgrade.Dispatch
        self._transport: asyncio.Transport | None = transport
        self.codec = codec
        self.compress = wbits
        self._frames: ClientFrames | None = ClientFrames(
            ctx.config.max_frame_bytes, deflate=bool(wbits)
        )
        self._inbox: deque[str | bytes | WsClose] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._admission: asyncio.Task[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._close_sent = False
        self._peer_closed = False  # the client's close frame was read
        self._paused = 0
        # Set once the welcome is out: from then on messages are handled.
        self.viewer: Viewer | None = None
        # pause_writing past the soft limit: a peer that does not read is not read either.
        transport.set_write_buffer_limits(high=ctx.config.soft_buffer_bytes)

    # -- what the hub and Viewer use ------------------------------------------------

    async def close(self, *, code: int = Close.NORMAL, message: bytes = b"") -> bool:
        """Send a close frame, wait (a little) for the client's, then drop the socket."""
        if self._transport is None:
            return True
        self._send_close(code, message)
        lost = self._lost_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(lost), CLOSE_TIMEOUT_S + 1)
        return True

    # -- asyncio.Protocol ---------------------------------------------------------------

    def start(self, query: dict[str, str]) -> None:
        self._admission = self._loop.create_task(self._admit(query))

    def data_received(self, data: bytes) -> None:
        transport, frames = self._transport, self._frames
        if transport is None or transport.is_closing():
            return
        if self._close_sent:
            self._linger(data)
            return
        if frames is None:
            return
        messages = frames.feed(data)
        viewer = self.viewer
        if viewer is not None:
            viewer.last_seen = time.monotonic()
        inbox = self._inbox
        for op, payload in messages:
            if op == OP_PING:
                if not self._close_sent:
                    transport.write(control_frame(OP_PONG, payload))
            elif op == OP_CLOSE:
                self._peer_closed = True
                try:
                    code = close_payload(payload)
                except WsClose as exc:
                    self._end_after_inbox(exc)
                else:  # echoed, as RFC 6455 §5.5.1 suggests
                    if code == Close.SUSPENDED and viewer is not None:
                        self._ctx.hub.suspend(viewer)  # its place is kept, not dropped
                    self._end_after_inbox(WsClose(code or Close.NORMAL, ""))
                return
            elif op != OP_PONG:
                inbox.append(payload.decode() if op == OP_TEXT else payload)
        if frames.error is not None:
            # The frames before the violation are handled first, then it is answered.
            self._end_after_inbox(frames.error)
            return
        if inbox and self._worker is None and viewer is not None:
            self._worker = self._loop.create_task(self._drain())
        if len(inbox) >= INBOX_PAUSE:
            self._pause(_INBOX)

    def eof_received(self) -> bool | None:
        # The transport closes itself, and waits for its buffer to drain: bound the wait.
        transport = self._transport
        if transport is not None:
            self._loop.call_later(CLOSE_TIMEOUT_S, transport.abort)
        return None

    def pause_writing(self) -> None:
        if self._close_sent:
            return  # lingering: what the peer sends is read and dropped, whatever it reads
        self._pause(_WRITES)
        self._ctx.metrics.reads_paused.inc()

    def resume_writing(self) -> None:
        self._resume(_WRITES)

    def connection_lost(self, exc: Exception | None) -> None:
        # Drop every link at once: a closed connection and what it had not handled must
        # go with its last reference, not wait for a full garbage collection (the server
        # runs those rarely, see interact.server.tune_gc).
        for task in (self._admission, self._worker):
            if task is not None and not task.done():
                task.cancel()
        self._admission = self._worker = None
        viewer, self.viewer = self.viewer, None
        if viewer is not None:
            self._ctx.hub.leave(viewer)
        self._inbox.clear()
        self._frames = None
        transport, self._transport = self._transport, None
        if transport is not None:
            self._ctx.edge.closed(transport)
        lost = self._lost_future()
        if not lost.done():
            lost.set_result(None)

    # -- internals --------------------------------------------------------------------

    async def _admit(self, query: dict[str, str]) -> None:
        ctx = self._ctx
        transport = self._transport
        assert transport is not None
        # Admission and join wait on the engine: a connection is not held longer than
        # this unwelcomed (docs/protocol.md, close 1011). A bare timer that cancels this
        # task, not asyncio.timeout: that cost ~6 us of a ~120 us handshake.
        expiry = self._loop.call_later(ctx.config.welcome_timeout, self._welcome_expired)
        try:
            user, room = await admit(ctx, query)
            viewer = Viewer(self, transport, user, room.id, self.codec, self.compress)
            if not await join(ctx, viewer, room, query):
                return
        except Refused as refused:
            ctx.metrics.handshakes.labels(refused.outcome).inc()
            await self.close(code=refused.code, message=refused.message)
            return
        except asyncio.CancelledError:
            if self._transport is None or self._admission is not None:
                raise  # the connection was lost or closed, not the deadline
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            ctx.metrics.handshakes.labels("timeout").inc()
            await self.close(code=Close.INTERNAL, message=b"welcome timed out, try again")
            return
        except Exception:  # the engine failed (Redis away): close, never leave it hanging
            log.warning("admission failed", exc_info=True)
            ctx.metrics.handshakes.labels("error").inc()
            await self.close(code=Close.INTERNAL, message=b"temporarily unavailable")
            return
        finally:
            expiry.cancel()
        self.viewer = viewer
        if self._inbox and self._worker is None:
            self._worker = self._loop.create_task(self._drain())

    def _welcome_expired(self) -> None:
        """The welcome deadline: cancel the admission, marked as ours by letting go of it
        (a lost connection lets go of its transport, a close keeps both)."""
        admission, self._admission = self._admission, None
        if admission is not None:
            admission.cancel()

    async def _drain(self) -> None:
        ctx, viewer, inbox = self._ctx, self.viewer, self._inbox
        assert viewer is not None
        try:
            while inbox and not self._close_sent:
                item = inbox.popleft()
                if isinstance(item, WsClose):
                    self._end(item)
                    return
                await handle(ctx, viewer, item)
                if self._paused & _INBOX and len(inbox) < INBOX_PAUSE // 4:
                    self._resume(_INBOX)
        finally:
            self._worker = None

    def _pause(self, why: int) -> None:
        transport = self._transport
        if not self._paused and transport is not None and not transport.is_closing():
            transport.pause_reading()
        self._paused |= why

    def _resume(self, why: int) -> None:
        self._paused &= ~why
        transport = self._transport
        if not self._paused and transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _end_after_inbox(self, close: WsClose) -> None:
        """Answer ``close`` once the messages read before it are handled."""
        if not self._inbox or self._close_sent:
            self._end(close)
            return
        self._inbox.append(close)
        self._pause(_ENDED)
        if self._worker is None and self.viewer is not None:
            self._worker = self._loop.create_task(self._drain())

    def _end(self, close: WsClose) -> None:
        """Answer with ``close`` (unless a close already went out); drop the socket at
        once if it answers the client's close, else linger (``_send_close``)."""
        transport = self._transport
        if transport is None:
            return
        admission = self._admission
        if admission is not None and not admission.done():
            admission.cancel()  # a connection closed before its welcome gets none
        self._send_close(close.code, close.reason.encode())
        if self._peer_closed:
            transport.close()  # the client said its last word: nothing is left unread
        else:
            self._drop_rest()

    def _send_close(self, code: int, reason: bytes) -> None:
        transport = self._transport
        if self._close_sent or transport is None or transport.is_closing():
            return
        self._close_sent = True
        transport.write(close_frame(int(code), reason))
        viewer = self.viewer
        if viewer is not None:
            viewer.closing = True  # the hub writes nothing after the close frame
        # The lingering close (RFC 6455 §7.1.1): closing the socket while the client still
        # sends (the rest of a big message) would leave bytes unread, and the kernel
        # answers those with a reset that makes the client's kernel drop the close frame
        # unread. So what comes is read and dropped (``_linger``) until the client's close
        # frame or its EOF, and only then is the socket closed.
        self._inbox.clear()
        if self._paused:
            self._paused = 0
            transport.resume_reading()
        # A peer that never stops sending, or does not read, would hold the socket (and
        # its buffer) forever: transport.close() waits for the buffer to drain, abort()
        # does not.
        self._loop.call_later(CLOSE_TIMEOUT_S, transport.abort)

    def _linger(self, data: bytes) -> None:
        """What the client sends after the server's close frame: dropped as it comes; its
        close frame ends the connection (its EOF does too: ``eof_received``)."""
        frames = self._frames
        if frames is None:
            return  # after a violation: not even parsed
        # Bounded like any read: the reader holds at most one message being assembled.
        for op, _ in frames.feed(data):
            if op == OP_CLOSE:
                transport = self._transport
                assert transport is not None
                transport.close()
                return
        if frames.error is not None:
            self._drop_rest()

    def _drop_rest(self) -> None:
        """After a violation, with the close frame out: nothing the client sends is parsed
        any more (RFC 6455 §7.1.7), so its close frame cannot be told apart; the write
        side is half-closed instead, and the client, told the server is done, ends with
        its EOF (or the deadline does)."""
        self._frames = None
        transport = self._transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    def _lost_future(self) -> asyncio.Future[None]:
        if self._lost is None:
            self._lost = self._loop.create_future()
        return self._lost
