"""A lean WebSocket client for load generation: one raw asyncio Protocol per connection.

No client library sits between the socket and the counters, so thousands of viewers
fit in one load process without the receiving side becoming the bottleneck:

- the handshake is written by hand (no permessage-deflate is offered, so the server
  sends plain frames), the 101 answer and its ``Sec-WebSocket-Accept`` are checked;
- server frames are parsed in place: 2-byte header, 16/64-bit extended lengths, no mask
  (a masked, compressed or fragmented server frame is a protocol failure);
- the first data frame must be the ``welcome``; it is always decoded;
- after that a *counting* client only counts frames, bytes and ``dm`` messages: for
  JSON frames the count of ``b'"t":"dm"'`` in the payload is exact, because the
  server's orjson output has no spaces and every message starts with its ``t``;
- a *decoding* client (the latency sample and the senders) decodes every frame with
  orjson and hands the messages to a callback with the receive time.

A client answers nothing: it sends only what its owner asks (comments, pings).
A server ping would be answered with a pong, as RFC 6455 requires, and counted.

``proto="socketio"`` speaks Engine.IO v4 / Socket.IO v5 over the same raw WebSocket
(``/socket.io/?EIO=4&transport=websocket``), for the python-socketio peer of
``bench.peers``: the open packet ``0{...}`` is answered ``40`` (connect to the default
namespace), the connect answer ``40{...}`` stands for the welcome, Engine.IO pings ``2``
are answered ``3`` (and counted), an event ``42["dm",{...}]`` is counted as above or,
decoded, handed over as the one-message batch ``[{...}]``, and ``send_json`` sends
``42[t, message]``. So the scenarios run unchanged against either protocol.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from array import array
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlencode

import orjson

DM_MARK = b'"t":"dm"'
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HANDSHAKE = 16 * 1024

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

INTERACT, SOCKETIO = "interact", "socketio"
# Engine.IO packet types (first byte of a text frame) and Socket.IO's, after a "4".
_EIO_MESSAGE, _SIO_EVENT = ord("4"), ord("2")
SIO_PATH = "/socket.io/"

# Messages handler of a decoding client: (client, messages of one frame, receive time ns).
Handler = Callable[["WsClient", list[dict[str, Any]], int], None]


# Reads further apart than this start a new burst (one tick's frames reaching the clients).
BURST_GAP_NS = 10_000_000


class Counters:
    """What every client of one group adds to, read by the progress and the report.

    It also times *bursts*: the server writes one frame per tick to every viewer, and the
    load process reads them one socket after another; a burst runs from the first read
    of a tick to the last (reads less than ``BURST_GAP_NS`` apart). Its length is how far
    apart the same batch reaches the first and the last viewer, server write loop and
    this process's read loop together: part of every latency sample.
    """

    __slots__ = ("burst_first", "burst_last", "bursts", "bytes", "dms", "frames", "pings")

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.dms = 0
        self.pings = 0
        self.burst_first = 0
        self.burst_last = 0
        self.bursts = array("q")  # pairs: start, length (monotonic ns)

    def read_at(self, now: int) -> None:
        if now - self.burst_last > BURST_GAP_NS:
            if self.burst_last:
                self.bursts.append(self.burst_first)
                self.bursts.append(self.burst_last - self.burst_first)
            self.burst_first = now
        self.burst_last = now

    def burst_lengths(self, start: int, end: int) -> list[int]:
        """Lengths (ns) of the bursts that began in [start, end) of monotonic ns."""
        b = self.bursts
        return [b[i + 1] for i in range(0, len(b), 2) if start <= b[i] < end]

    def snapshot(self) -> dict[str, int]:
        return {"frames": self.frames, "bytes": self.bytes, "dms": self.dms, "pings": self.pings}


def mask_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame, masked as RFC 6455 requires of clients."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    if n:
        stream = int.from_bytes((key * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ stream).to_bytes(n, "big")
    return head + key + payload


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


class WsClient(asyncio.Protocol):
    """One WebSocket connection. ``welcomed`` resolves with the welcome message.

    ``failure`` is None while all is well, else why the connection failed or ended
    without its owner closing it (``close 4029``, ``lost``, ``http 403``, ...).
    """

    def __init__(
        self,
        host: str,
        port: int,
        query: dict[str, str],
        counters: Counters,
        *,
        handler: Handler | None = None,
        path: str = "/ws",
        proto: str = INTERACT,
    ) -> None:
        self.counters = counters
        self.handler = handler
        self.sio = proto == SOCKETIO
        if self.sio:
            path = SIO_PATH
            query = {**query, "EIO": "4", "transport": "websocket"}
        self.dms = 0
        self.failure: str | None = None
        self.close_code: int | None = None
        self.last_sent = time.monotonic()
        self.welcomed: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._open = False
        self._closing = False  # closed by its owner: no failure
        self._key = base64.b64encode(os.urandom(16))
        self._request = (
            f"GET {path}?{urlencode(query)} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        ).encode()

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closing and self.failure is None:
            self._fail("lost" if exc is None else f"lost: {exc!r}")
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(self.failure or "closed"))

    def data_received(self, data: bytes) -> None:
        c = self.counters
        c.bytes += len(data)
        c.read_at(time.monotonic_ns())
        buf = self._buf
        buf += data
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HANDSHAKE:
                    self._fail("handshake too long")
                return
            if not self._handshake(bytes(buf[:end])):
                return
            del buf[: end + 4]
            self._open = True
        handler = self.handler
        now = time.time_ns() if handler is not None or not self.welcomed.done() else 0
        n = len(buf)
        pos = 0
        while n - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            ln = b1 & 0x7F
            h = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                h = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                h = 10
            if b1 & 0x80 or b0 & 0x70 or not b0 & 0x80:
                self._fail(f"bad server frame header {b0:#04x} {b1:#04x}")
                return
            start = pos + h
            end = start + ln
            if end > n:
                break
            op = b0 & 0x0F
            if (
                self.sio
                and op == OP_TEXT
                and not (ln >= 2 and buf[start] == _EIO_MESSAGE and buf[start + 1] == _SIO_EVENT
                         and self.welcomed.done())
            ):  # fmt: skip
                if not self._engineio(bytes(buf[start:end])):
                    return
            elif op == OP_TEXT or op == OP_BINARY:
                c.frames += 1
                if handler is None and self.welcomed.done():
                    k = buf.count(DM_MARK, start, end)
                    self.dms += k
                    c.dms += k
                else:
                    self._decoded(bytes(buf[start:end]), op, now)
            elif op == OP_CLOSE:
                code = int.from_bytes(buf[start : start + 2], "big") if ln >= 2 else 1005
                self.close_code = code
                self._fail(f"close {code}")
                return
            elif op == OP_PING:
                c.pings += 1
                self.send_frame(OP_PONG, bytes(buf[start:end]))
            elif op != OP_PONG:
                self._fail(f"unexpected opcode {op}")
                return
            pos = end
        if pos:
            del buf[:pos]

    # -- sending and closing -----------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(mask_frame(opcode, payload))
            self.last_sent = time.monotonic()

    def send_json(self, obj: dict[str, Any]) -> None:
        """Send one client message (a Socket.IO event named after its ``t``)."""
        if self.sio:
            self.send_frame(OP_TEXT, b"42" + orjson.dumps([obj.get("t"), obj]))
        else:
            self.send_frame(OP_TEXT, orjson.dumps(obj))

    def close(self) -> None:
        """Drop the connection (no close handshake: the load is over)."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    @property
    def ok(self) -> bool:
        return self.failure is None and self._open

    # -- internals ---------------------------------------------------------------

    def _handshake(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"101":
            self._fail("http " + (status[1].decode(errors="replace") if len(status) > 1 else "?"))
            return False
        accept = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"sec-websocket-accept":
                accept = value.strip()
            elif name == b"sec-websocket-extensions" and value.strip():
                self._fail("server negotiated an extension that was not offered")
                return False
        if accept != accept_key(self._key):
            self._fail("bad Sec-WebSocket-Accept")
            return False
        return True

    def _engineio(self, payload: bytes) -> bool:
        """An Engine.IO control packet, or a Socket.IO one before the namespace is
        joined; False when the connection failed on it."""
        kind = payload[:1]
        if kind == b"2":  # ping: answer pong
            self.counters.pings += 1
            self.send_frame(OP_TEXT, b"3" + payload[1:])
        elif kind == b"0":  # open: join the default namespace
            self.send_frame(OP_TEXT, b"40")
        elif payload.startswith(b"40"):  # namespace joined: the welcome
            self.counters.frames += 1
            if not self.welcomed.done():
                info = orjson.loads(payload[2:]) if len(payload) > 2 else {}
                self.welcomed.set_result({"t": "welcome", "socketio": info})
        elif payload.startswith(b"44"):
            self._fail("socket.io connect error " + payload[2:200].decode(errors="replace"))
            return False
        elif payload.startswith(b"41") or kind == b"1":
            self._fail("socket.io disconnect")
            return False
        elif kind not in (b"3", b"6"):  # pong, noop
            self._fail(f"unexpected engine.io packet {payload[:20]!r}")
            return False
        return True

    def _decoded(self, payload: bytes, op: int, now: int) -> None:
        if op != OP_TEXT:
            self._fail("binary frame on a JSON connection")
            return
        try:
            if self.sio:  # 42["event",{message}]: the one-message batch
                event = orjson.loads(payload[2:])
                data = event[1] if isinstance(event, list) and len(event) > 1 else None
                batch = data if isinstance(data, list) else [data]
            else:
                batch = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._fail("undecodable frame")
            return
        if not isinstance(batch, list):
            self._fail("server frame is not an array")
            return
        if not self.welcomed.done():
            first = batch[0] if batch else None
            if not isinstance(first, dict) or first.get("t") != "welcome":
                self._fail(f"first message is not a welcome: {str(first)[:80]}")
                return
            self.welcomed.set_result(first)
            batch = batch[1:]
        dms = 0
        for msg in batch:
            if msg.get("t") == "dm":
                dms += 1
        self.dms += dms
        self.counters.dms += dms
        if self.handler is not None and batch:
            self.handler(self, batch, now)

    def _fail(self, why: str) -> None:
        if self.failure is None and not self._closing:
            self.failure = why
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(why))
        self._closing = True
        if self.transport is not None:
            self.transport.close()


async def connect(
    host: str,
    port: int,
    query: dict[str, str],
    counters: Counters,
    *,
    handler: Handler | None = None,
    deadline_s: float = 15.0,
    proto: str = INTERACT,
    local_addr: str | None = None,
) -> WsClient:
    """Open one connection (from ``local_addr``, a loopback source address, when given)
    and wait for its welcome; raises on any failure."""
    loop = asyncio.get_running_loop()
    client = WsClient(host, port, query, counters, handler=handler, proto=proto)
    source = (local_addr, 0) if local_addr else None
    try:
        async with asyncio.timeout(deadline_s):
            await loop.create_connection(lambda: client, host, port, local_addr=source)
            await client.welcomed
    except BaseException:
        client.close()
        raise
    return client
