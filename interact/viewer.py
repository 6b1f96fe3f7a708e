"""One WebSocket connection: one viewer in one room, written to directly by the hub."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Protocol

from interact.frames import OP_BINARY, OP_TEXT, deflate, frame
from interact.outbound import Out, encode_outs
from interact.protocol import Codec
from interact.tokens import User

if TYPE_CHECKING:
    from collections.abc import Awaitable


class Socket(Protocol):
    """What a viewer's WebSocket must do for the hub: aiohttp's WebSocketResponse, or
    ``interact.raw_socket.RawSocket``."""

    def close(self, *, code: int = ..., message: bytes = ...) -> Awaitable[bool]: ...


# Below this size deflate costs more than it saves.
COMPRESS_MIN_BYTES = 256
# How long a close handshake may take before the socket is dropped, buffer and all.
CLOSE_TIMEOUT_S = 2.0
# Close handshakes run in the background; keep them referenced until they finish.
_closing: set[asyncio.Task[None]] = set()


class Viewer:
    __slots__ = (
        "closing",
        "codec",
        "joined_at",
        "last_seen",
        "pending",
        "room_id",
        "seen_seq",
        "slow_since",
        "transport",
        "user",
        "waited",
        "wbits",
        "ws",
    )

    def __init__(
        self,
        ws: Socket,
        transport: asyncio.Transport,
        user: User,
        room_id: str,
        codec: Codec,
        wbits: int,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.user = user
        self.room_id = room_id
        self.codec = codec
        # window bits of permessage-deflate, 0 when the viewer did not negotiate it
        self.wbits = wbits
        self.slow_since: float | None = None
        # Batches that arrive while the viewer is joining wait here until its welcome is out.
        self.pending: list[Out] | None = None
        # The last seq its welcome carried; None until the welcome is out.
        self.seen_seq: int | None = None
        self.waited = 0  # flushes spent welcomed but not yet promoted
        self.closing = False
        # For "watch N minutes" lotteries: the server counts, the client cannot claim.
        self.joined_at = time.monotonic()
        # Monotonic time of its last frame: the hub closes viewers silent for too long.
        self.last_seen = self.joined_at

    @property
    def variant(self) -> tuple[Codec, int]:
        return (self.codec, self.wbits)

    def send(self, outs: list[Out]) -> int:
        """Write one batch to this viewer alone (acks, welcome); returns bytes written."""
        if self.closing or self.transport.is_closing():
            return 0
        data = build_frame(encode_outs(outs, self.codec), self.codec, self.wbits)
        self.transport.write(data)
        return len(data)

    def close(self, code: int, message: bytes = b"") -> None:
        """Close in the background; the hub never waits on one viewer."""
        if self.closing:
            return
        self.closing = True
        task = asyncio.ensure_future(close_socket(self.ws, self.transport, code, message))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


async def close_socket(
    ws: Socket, transport: asyncio.Transport, code: int, message: bytes = b""
) -> None:
    """Close ``ws`` with ``code``; after CLOSE_TIMEOUT_S the socket is aborted, whatever the
    peer does.

    A peer that does not read would otherwise hold the connection and its write buffer
    for ever: aiohttp's close waits for the buffer to drain, and so does
    ``transport.close()``; ``abort()`` releases both at once.
    """
    asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.abort)
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(ws.close(code=code, message=message), CLOSE_TIMEOUT_S)


class _Lingering(asyncio.Protocol):
    """A transport's protocol after the server's close frame (``linger``): what the peer
    sends is dropped as it comes, its EOF closes the connection. The protocol it took
    over from still hears of the writes (its drain) and of the end of the connection."""

    __slots__ = ("_lost", "_was")

    def __init__(self, was: asyncio.BaseProtocol, lost: asyncio.Future[None]) -> None:
        self._was = was
        self._lost = lost

    def data_received(self, data: bytes) -> None:
        pass  # read so that no byte is left unread, and held nowhere

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def pause_writing(self) -> None:
        self._was.pause_writing()

    def resume_writing(self) -> None:
        self._was.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        self._was.connection_lost(exc)


def linger(transport: asyncio.Transport) -> asyncio.Future[None]:
    """The lingering close (RFC 6455 §7.1.1) of a connection whose close frame is out:
    its transport is taken over, half-closed, and read (every byte dropped) until the
    peer's EOF, or aborted CLOSE_TIMEOUT_S later. Resolves when the connection is gone.

    Closing at once would leave what the peer still sends (the rest of a big message)
    unread, and the kernel answers unread bytes with a reset, which makes the peer's
    kernel drop the close frame before the peer reads it.
    """
    lost = asyncio.get_running_loop().create_future()
    if transport.is_closing():
        lost.set_result(None)
        return lost
    transport.set_protocol(_Lingering(transport.get_protocol(), lost))
    if transport.can_write_eof():
        transport.write_eof()  # after what is buffered: the close frame first
    transport.resume_reading()
    asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.abort)
    return lost


def build_frame(payload: bytes, codec: Codec, wbits: int) -> bytes:
    opcode = OP_TEXT if codec is Codec.JSON else OP_BINARY
    if wbits and len(payload) >= COMPRESS_MIN_BYTES:
        return frame(deflate(payload, wbits), opcode, compressed=True)
    return frame(payload, opcode)
