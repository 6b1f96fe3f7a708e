"""Reading a client's WebSocket frames (RFC 6455 §5, RFC 7692): pure, no I/O.

Client frames are masked, may be fragmented and, when permessage-deflate was agreed,
compressed per message. ``ClientFrames.feed`` takes bytes as they arrive and returns the
complete messages and control frames; anything the RFC forbids raises ``WsClose`` with
the close code to answer (1002 protocol error, 1007 invalid UTF-8, 1009 too big).
"""

from __future__ import annotations

import zlib

from interact.frames import OP_BINARY, OP_TEXT, frame

OP_CONTINUATION = 0x0
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_DATA_OPS = frozenset({OP_TEXT, OP_BINARY})
_CONTROL_OPS = frozenset({OP_CLOSE, OP_PING, OP_PONG})
_DEFLATE_TAIL = b"\x00\x00\xff\xff"

PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
TOO_BIG = 1009


class WsClose(Exception):
    """The connection must be closed with ``code`` (the peer broke the protocol)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


def unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (as one big integer: C speed)."""
    n = len(data)
    if n == 0:
        return b""
    key = (bytes(mask) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class ClientFrames:
    """The frame reader of one connection; ``deflate`` when permessage-deflate was agreed.

    Messages (text or binary) longer than ``max_size`` bytes, before or after inflating,
    are refused with 1009 as soon as their announced length shows it, so a client cannot
    make the server buffer more than that.
    """

    __slots__ = ("_buf", "_compressed", "_inflater", "_max", "_op", "_parts", "_size", "error")

    def __init__(self, max_size: int, *, deflate: bool = False) -> None:
        self._buf = bytearray()
        self._max = max_size
        # The client may keep its compression context between messages: so must we.
        self._inflater = zlib.decompressobj(-15) if deflate else None
        self._parts: list[bytes] = []
        self._op = 0  # opcode of the fragmented message in progress, 0 if none
        self._compressed = False
        self._size = 0
        # The first violation of the protocol, once seen: nothing is read after it.
        self.error: WsClose | None = None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The messages and control frames completed by ``data``, in order.

        Frames complete before a violation are returned; the violation is then in
        ``error`` (the close to answer) and every later call returns nothing.
        """
        if self.error is not None:
            return []
        out: list[tuple[int, bytes]] = []
        try:
            self._read(data, out)
        except WsClose as exc:
            self.error = exc
            self._buf = bytearray()
            self._parts = []
        return out

    def _read(self, data: bytes, out: list[tuple[int, bytes]]) -> None:
        buf = self._buf
        buf += data
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            op, length, head = b0 & 0x0F, b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            self._check_header(b0, b1, op, length)
            end = pos + head + 4 + length
            if end > n:
                break
            mask = buf[pos + head : pos + head + 4]
            payload = unmask(buf[pos + head + 4 : end], mask)
            pos = end
            if op in _CONTROL_OPS:
                out.append((op, payload))
                continue
            if op != OP_CONTINUATION:
                self._op, self._compressed = op, bool(b0 & 0x40)
            self._parts.append(payload)
            self._size += length
            if b0 & 0x80:
                out.append(self._message())
        if pos:
            del buf[:pos]

    def _check_header(self, b0: int, b1: int, op: int, length: int) -> None:
        if not b1 & 0x80:
            raise WsClose(PROTOCOL_ERROR, "client frames must be masked")
        rsv = b0 & 0x70
        if op in _CONTROL_OPS:
            if rsv or not b0 & 0x80 or length > 125:
                raise WsClose(PROTOCOL_ERROR, "bad control frame")
            return
        if op == OP_CONTINUATION:
            if not self._op:
                raise WsClose(PROTOCOL_ERROR, "continuation without a message")
            if rsv:
                raise WsClose(PROTOCOL_ERROR, "reserved bits on a continuation")
        elif op in _DATA_OPS:
            if self._op:
                raise WsClose(PROTOCOL_ERROR, "a new message inside a fragmented one")
            if rsv & ~0x40 or (rsv and self._inflater is None):
                raise WsClose(PROTOCOL_ERROR, "reserved bits without an extension")
        else:
            raise WsClose(PROTOCOL_ERROR, f"unknown opcode {op}")
        if self._size + length > self._max:
            raise WsClose(TOO_BIG, "message too big")

    def _message(self) -> tuple[int, bytes]:
        op, parts, compressed = self._op, self._parts, self._compressed
        self._op, self._parts, self._compressed, self._size = 0, [], False, 0
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        if compressed:
            assert self._inflater is not None
            try:
                payload = self._inflater.decompress(payload + _DEFLATE_TAIL, self._max + 1)
            except zlib.error:
                raise WsClose(PROTOCOL_ERROR, "bad deflate data") from None
            if len(payload) > self._max or self._inflater.unconsumed_tail:
                raise WsClose(TOO_BIG, "message too big")
        if op == OP_TEXT:
            try:
                payload.decode()
            except UnicodeDecodeError:
                raise WsClose(INVALID_DATA, "text is not UTF-8") from None
        return op, payload


def close_payload(data: bytes) -> int | None:
    """The status code of a close frame's payload; None when it carries none.

    Raises ``WsClose`` for a payload the RFC forbids (one byte, a reserved code, bad
    UTF-8 in the reason).
    """
    if not data:
        return None
    if len(data) == 1:
        raise WsClose(PROTOCOL_ERROR, "bad close frame")
    code = int.from_bytes(data[:2], "big")
    if code < 1000 or code in (1004, 1005, 1006, 1015) or 1016 <= code < 3000 or code > 4999:
        raise WsClose(PROTOCOL_ERROR, "bad close code")
    try:
        data[2:].decode()
    except UnicodeDecodeError:
        raise WsClose(INVALID_DATA, "close reason is not UTF-8") from None
    return code


def close_frame(code: int, reason: bytes = b"") -> bytes:
    """An unmasked close frame (server to client); a control frame carries 125 bytes."""
    return frame(code.to_bytes(2, "big") + reason[:123], OP_CLOSE)


def control_frame(op: int, payload: bytes) -> bytes:
    """An unmasked ping or pong (server to client)."""
    return frame(payload[:125], op)
