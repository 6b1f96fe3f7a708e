"""A WebSocket client written by hand over a plain TCP stream, to send what libraries will not."""

from __future__ import annotations

import asyncio
import base64
import os
from urllib.parse import urlencode

import orjson

from interact.client_frames import OP_TEXT
from tests.e2e.harness import ServerProcess


class RawClient:
    """A WebSocket client written by hand, to send what libraries will not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(
        cls, server: ServerProcess, query: dict[str, str], early: bytes = b""
    ) -> tuple[RawClient, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws?{urlencode(query)} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\n\r\n".encode()
            + early
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return cls(reader, writer), head

    async def frame(self) -> tuple[int, bytes]:
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 10)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def messages(self) -> list[dict[str, object]]:
        op, payload = await self.frame()
        assert op == OP_TEXT, (op, payload)
        return orjson.loads(payload)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.writer.close()
