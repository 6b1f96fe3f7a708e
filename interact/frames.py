"""WebSocket server frames built once and shared by every viewer (RFC 6455, RFC 7692).

Server frames are never masked, so the same bytes can be written to any number of
transports. A compressed frame is deflated with a fresh context each time, which every
permessage-deflate peer can inflate whether or not it keeps its own context.
"""

from __future__ import annotations

import struct
import zlib

OP_TEXT = 0x1
OP_BINARY = 0x2
_FIN = 0x80
_RSV1 = 0x40
_DEFLATE_TAIL = b"\x00\x00\xff\xff"


def frame(payload: bytes, opcode: int, compressed: bool = False) -> bytes:
    """One final, unmasked frame carrying ``payload``."""
    first = _FIN | opcode | (_RSV1 if compressed else 0)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


def deflate(payload: bytes, wbits: int = 15) -> bytes:
    """Deflate one message with no shared context (``server_no_context_takeover``)."""
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -wbits)
    data = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(_DEFLATE_TAIL) else data
