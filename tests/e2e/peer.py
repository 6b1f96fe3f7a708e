"""A WebSocket peer on a raw socket that reads only when told to, on either upgrade path,
and what a test reads of the server from outside: its RSS, its end of a TCP connection."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
import zlib
from collections.abc import Callable
from urllib.parse import urlencode

import orjson

from bench.client import mask_frame
from interact.client_frames import OP_CLOSE, OP_TEXT

# "direct": a fresh connection, answered by interact.upgrade and served by a RawSocket;
# "aiohttp": the same upgrade on a connection that served a request first, served by
# interact.ws.ws_handler.
PATHS = ("direct", "aiohttp")
MiB = 1024 * 1024


class Peer:
    """A WebSocket client on a raw socket: it sends what it likes and reads when told."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @classmethod
    async def open(
        cls,
        port: int,
        query: dict[str, str],
        path: str,
        *,
        rcvbuf: int = 0,
        deflate: bool = False,
    ) -> Peer:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        peer = cls(sock)
        if path == "aiohttp":
            # A request first: an upgrade on a kept-alive connection is aiohttp's to serve.
            await peer.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await peer.head()
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )  # fmt: skip
            await peer.need(length)
            peer.buf = peer.buf[length:]
        key = base64.b64encode(os.urandom(16)).decode()
        ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        await peer.send(
            f"GET /ws?{urlencode(query)} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{ext}"
            f"Sec-WebSocket-Key: {key}\r\n\r\n".encode()
        )
        head = await peer.head()
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert (b"Server:" in head) == (path == "aiohttp"), head  # the path asked for
        assert (b"permessage-deflate" in head) == deflate, head
        return peer

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def need(self, n: int, timeout: float = 10) -> None:
        loop = asyncio.get_running_loop()
        while len(self.buf) < n:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 16), timeout)
            assert chunk, f"the connection ended with {self.buf[:40]!r} unread"
            self.buf += chunk

    async def head(self) -> bytes:
        loop = asyncio.get_running_loop()
        while b"\r\n\r\n" not in self.buf:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 16), 10)
            assert chunk, self.buf
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head

    async def frame(self) -> tuple[int, bytes]:
        await self.need(2)
        op, n, at = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        compressed = bool(self.buf[0] & 0x40)
        if n == 126:
            await self.need(4)
            n, at = int.from_bytes(self.buf[2:4], "big"), 4
        elif n == 127:
            await self.need(10)
            n, at = int.from_bytes(self.buf[2:10], "big"), 10
        await self.need(at + n)
        payload, self.buf = self.buf[at : at + n], self.buf[at + n :]
        if compressed:  # the server deflates each message afresh (no context takeover)
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        return op, payload

    async def messages(self) -> list[dict[str, object]]:
        """The messages of the next data frame (a close frame fails the test)."""
        while True:
            op, payload = await self.frame()
            if op == OP_TEXT:
                return orjson.loads(payload)  # type: ignore[no-any-return]
            assert op != OP_CLOSE, ("closed", payload)

    async def welcome(self) -> dict[str, object]:
        first = (await self.messages())[0]
        assert first["t"] == "welcome", first
        return first

    async def until_close(self) -> tuple[list[dict[str, object]], int, bytes]:
        """Every message up to the close frame, then the close's code and reason."""
        got: list[dict[str, object]] = []
        while True:
            op, payload = await self.frame()
            if op == OP_CLOSE:
                return got, int.from_bytes(payload[:2], "big"), payload[2:]
            if op == OP_TEXT:
                got += orjson.loads(payload)

    def close(self) -> None:
        self.sock.close()


def rss_bytes(pid: int) -> int:
    """The resident memory of a process, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def established(server_port: int, peer_port: int) -> bool:
    """Whether the server's end of the peer's connection is still an open TCP connection."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1].split(":"), fields[2].split(":")
            if int(local[1], 16) == server_port and int(remote[1], 16) == peer_port:
                return fields[3] == "01"
    return False


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def text(obj: dict[str, object]) -> bytes:
    return mask_frame(OP_TEXT, orjson.dumps(obj))


def close_frame(payload: bytes) -> bytes:
    return mask_frame(OP_CLOSE, payload)
