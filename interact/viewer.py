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


def build_frame(payload: bytes, codec: Codec, wbits: int) -> bytes:
    opcode = OP_TEXT if codec is Codec.JSON else OP_BINARY
    if wbits and len(payload) >= COMPRESS_MIN_BYTES:
        return frame(deflate(payload, wbits), opcode, compressed=True)
    return frame(payload, opcode)
