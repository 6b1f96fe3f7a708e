"""Reading a client's WebSocket frames (RFC 6455 §5, RFC 7692): pure, no I/O.

Client frames are masked, may be fragmented and, when permessage-deflate was agreed,
compressed per message. ``ClientFrames.feed`` takes bytes as they arrive and returns the
complete messages and control frames; the first thing the RFC forbids is kept in
``error`` as a ``WsClose`` with the close code to answer (1002 protocol error, 1007
invalid UTF-8, 1009 too big). tests/unit/test_client_frames_reference.py holds it to the
same messages and close codes as the ``websockets`` library's reader.
"""

from __future__ import annotations

import codecs
import zlib

from interact.frames import OP_BINARY, OP_TEXT, frame

OP_CONTINUATION = 0x0
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_KNOWN_OPS = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")

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

    What an incomplete message may hold is bounded, so a client cannot make the server
    buffer or parse without end:

    - its payload: at most ``max_size`` bytes, counted after inflating. A frame whose
      announced length does not fit in what is left (a compressed one: in ``max_size``)
      is refused (1009) from its header, before its bytes arrive; an inflated frame is
      refused as soon as it overflows. Exactly ``max_size`` bytes is accepted.
    - its frames: at most ``fragment_cap(max_size)`` (1009 past it). Fragments are
      appended to one buffer, so an empty fragment costs parsing but no memory; the cap
      bounds that parsing too (a stream of empty fragments would never end a message).
    """

    __slots__ = (
        "_buf",
        "_compressed",
        "_data",
        "_frags",
        "_inflater",
        "_max",
        "_max_frags",
        "_op",
        "_utf8",
        "error",
    )

    def __init__(self, max_size: int, *, deflate: bool = False) -> None:
        self._buf = bytearray()
        self._max = max_size
        self._max_frags = fragment_cap(max_size)
        # The client may keep its compression context between messages: so must we
        # (the server never asks for client_no_context_takeover).
        self._inflater = zlib.decompressobj(-15) if deflate else None
        self._op = 0  # opcode of the fragmented message in progress, 0 if none
        self._compressed = False
        self._data = bytearray()  # the fragmented message so far (inflated)
        self._frags = 0
        self._utf8: codecs.IncrementalDecoder | None = None
        # The first violation of the protocol, once seen: nothing is read after it.
        self.error: WsClose | None = None

    @property
    def held(self) -> int:
        """Bytes held between feeds: the unparsed tail and the fragmented message so far."""
        return len(self._buf) + len(self._data)

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
            self._data = bytearray()
            self._utf8 = None
        return out

    def _read(self, data: bytes, out: list[tuple[int, bytes]]) -> None:
        buf = self._buf
        buf += data
        pos, n = 0, len(buf)
        try:
            while n - pos >= 2:
                b0, b1 = buf[pos], buf[pos + 1]
                length, head = b1 & 0x7F, pos + 2
                if length == 126:
                    if n - pos < 4:
                        _check_start(b0, b1)
                        break
                    length, head = int.from_bytes(buf[head : pos + 4], "big"), pos + 4
                elif length == 127:
                    if n - pos < 10:
                        _check_start(b0, b1)
                        break
                    length, head = int.from_bytes(buf[head : pos + 10], "big"), pos + 10
                # The common case, a whole masked text or binary message in one frame,
                # is checked and read here without a call.
                if (b0 == 0x81 or b0 == 0x82) and b1 & 0x80 and not self._op:
                    if length > self._max:
                        self._check_header(b0, b1, b0 & 0x0F, length)  # raises
                    end = head + 4 + length
                    if end > n:
                        break
                    payload = unmask(buf[head + 4 : end], buf[head : head + 4])
                    pos = end
                    if b0 == 0x81:
                        try:
                            payload.decode()
                        except UnicodeDecodeError:
                            raise WsClose(INVALID_DATA, "text is not UTF-8") from None
                    out.append((b0 & 0x0F, payload))
                    continue
                op = b0 & 0x0F
                self._check_header(b0, b1, op, length)
                end = head + 4 + length
                if end > n:
                    break
                payload = unmask(buf[head + 4 : end], buf[head : head + 4])
                pos = end
                if op >= OP_CLOSE:
                    out.append((op, payload))
                else:
                    self._fragment(b0, op, payload, out)
        finally:
            if pos:
                del buf[:pos]

    def _check_header(self, b0: int, b1: int, op: int, length: int) -> None:
        # The checks come in the order the reference implementation (websockets) makes
        # them, so a frame breaking two rules gets the same close code from both.
        _check_start(b0, b1)
        if length >> 63:
            raise WsClose(PROTOCOL_ERROR, "64-bit length with its top bit set")  # §5.2
        rsv = b0 & 0x70
        if op >= OP_CLOSE:
            # Control frames are not part of the message (§5.4, §5.5): their own limit.
            if rsv or not b0 & 0x80 or length > 125:
                raise WsClose(PROTOCOL_ERROR, "bad control frame")
            return
        # A plain frame must fit in what is left of the message. A compressed one only
        # in max_size: what it inflates to is held to the room left as it inflates, and
        # its last frame may carry nothing but deflate's flush bytes once the room is full.
        if length > (self._max if self._compressed else self._max - len(self._data)):
            raise WsClose(TOO_BIG, "message too big")
        if op == OP_CONTINUATION:
            if not self._op:
                raise WsClose(PROTOCOL_ERROR, "continuation without a message")
            if rsv:
                raise WsClose(PROTOCOL_ERROR, "reserved bits on a continuation")
            if self._frags >= self._max_frags:
                raise WsClose(TOO_BIG, "message in too many fragments")
        else:
            if self._op:
                raise WsClose(PROTOCOL_ERROR, "a new message inside a fragmented one")
            if rsv & ~0x40 or (rsv and self._inflater is None):
                raise WsClose(PROTOCOL_ERROR, "reserved bits without an extension")

    def _fragment(self, b0: int, op: int, payload: bytes, out: list[tuple[int, bytes]]) -> None:
        """One data frame of a message, checked; the message once its last frame came."""
        fin = b0 & 0x80
        if op == OP_CONTINUATION:
            self._frags += 1
        else:
            self._op, self._compressed, self._frags = op, bool(b0 & 0x40), 1
            if op == OP_TEXT and not fin:
                self._utf8 = _Utf8Decoder()
        if self._compressed:
            payload = self._inflate(payload, fin)
        if self._utf8 is not None:
            # Checked fragment by fragment, so bad text fails at once (RFC 6455 §8.1).
            try:
                self._utf8.decode(payload, bool(fin))
            except UnicodeDecodeError:
                raise WsClose(INVALID_DATA, "text is not UTF-8") from None
        if not fin:
            self._data += payload
            return
        if self._data:
            self._data += payload
            payload = bytes(self._data)
            self._data = bytearray()
        op, self._op, self._compressed, self._utf8 = self._op, 0, False, None
        if op == OP_TEXT and self._frags == 1:
            try:
                payload.decode()
            except UnicodeDecodeError:
                raise WsClose(INVALID_DATA, "text is not UTF-8") from None
        out.append((op, payload))

    def _inflate(self, payload: bytes, fin: int) -> bytes:
        inflater = self._inflater
        assert inflater is not None
        room = self._max - len(self._data)
        try:
            # One byte more than the room: its presence alone shows the overflow.
            data = inflater.decompress(payload + _DEFLATE_TAIL if fin else payload, room + 1)
        except zlib.error:
            raise WsClose(PROTOCOL_ERROR, "bad deflate data") from None
        if len(data) > room:
            raise WsClose(TOO_BIG, "message too big")
        return data


def _check_start(b0: int, b1: int) -> None:
    """What the first two bytes of a frame alone can break (RFC 6455 §5.2, §5.1)."""
    if b0 & 0x0F not in _KNOWN_OPS:
        raise WsClose(PROTOCOL_ERROR, f"unknown opcode {b0 & 0x0F}")
    if not b1 & 0x80:
        raise WsClose(PROTOCOL_ERROR, "client frames must be masked")


def fragment_cap(max_size: int) -> int:
    """How many frames one message may come in, for messages of up to ``max_size`` bytes.

    An honest client cuts a message into fragments of tens of bytes at least (Autobahn's
    smallest, cases 9.3.1/9.4.1, are 64 bytes: a 4 MiB message in 65,536 frames): one frame
    per 64 bytes of the limit, plus 64 for short messages sent a byte or two at a time.
    That passes 9.3.x with a 20,000,000-byte limit (312,564 frames) and, with the default
    4096, allows 128; a client past it is refused (1009) after at most about
    ``max_size + 14 * cap`` bytes of an unfinished message.
    """
    return 64 + max_size // 64


def close_payload(data: bytes) -> int | None:
    """The status code of a close frame's payload; None when it carries none.

    Raises ``WsClose`` for a payload the RFC forbids (one byte, a reserved code, bad
    UTF-8 in the reason).
    """
    if not data:
        return None
    if len(data) == 1:
        raise WsClose(PROTOCOL_ERROR, "bad close frame")
    # The reason first, as websockets does, so both answer a frame with a bad code and
    # a bad reason alike (1007).
    try:
        data[2:].decode()
    except UnicodeDecodeError:
        raise WsClose(INVALID_DATA, "close reason is not UTF-8") from None
    code = int.from_bytes(data[:2], "big")
    if code < 1000 or code in (1004, 1005, 1006, 1015) or 1016 <= code < 3000 or code > 4999:
        raise WsClose(PROTOCOL_ERROR, "bad close code")
    return code


def close_frame(code: int, reason: bytes = b"") -> bytes:
    """An unmasked close frame (server to client); a control frame carries 125 bytes."""
    return frame(code.to_bytes(2, "big") + reason[:123], OP_CLOSE)


def control_frame(op: int, payload: bytes) -> bytes:
    """An unmasked ping or pong (server to client)."""
    return frame(payload[:125], op)
