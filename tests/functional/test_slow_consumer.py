"""Slow consumers against the real hub over real sockets: skip danmaku, then close 4029.

The app runs in this process (so the test can shrink one connection's kernel send buffer
and read the hub's counters); the stuck viewer is a raw socket that never reads.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

import aiohttp
import pytest

from interact.context import Context
from tests.e2e.harness import Viewer, connect
from tests.functional.conftest import OPERATOR, ServeApp, Served, counter, live_room, token


@pytest.fixture
async def served(serve_app: ServeApp) -> Served:
    return await serve_app(
        tick_ms=20,
        danmaku_cap=50,
        soft_buffer_bytes=16 * 1024,
        hard_buffer_bytes=64 * 1024,
        slow_grace=0.3,
        compression=False,
    )


async def stuck_viewer(port: int, room: str) -> socket.socket:
    """A viewer that completes the handshake and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws?room={room}&token={token('stuck')} HTTP/1.1\r\nHost: x\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def read_close_code(sock: socket.socket, timeout: float = 10) -> int:
    """Drain the frames the server buffered and return the close frame's code."""
    loop = asyncio.get_running_loop()
    buf = b""

    async def need(n: int) -> None:
        nonlocal buf
        while len(buf) < n:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), timeout)
            assert chunk, "connection ended without a close frame"
            buf += chunk

    while True:
        await need(2)
        opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
        offset = 2
        if length == 126:
            await need(4)
            length, offset = struct.unpack("!H", buf[2:4])[0], 4
        elif length == 127:
            await need(10)
            length, offset = struct.unpack("!Q", buf[2:10])[0], 10
        await need(offset + length)
        payload, buf = buf[offset : offset + length], buf[offset + length :]
        if opcode == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])


def shrink_send_buffer(ctx: Context, room: str, uid: str) -> None:
    for group in ctx.hub.rooms[room].groups.values():
        for v in group:
            if v.user.uid == uid:
                sock = v.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                return
    raise AssertionError(f"{uid} is not in the room")


async def test_slow_viewer_skips_danmaku_while_others_get_everything(served: Served) -> None:
    ctx = served.ctx
    room = await live_room(ctx)
    async with aiohttp.ClientSession() as session:
        reader, _ = await connect(session, served.base, room, token("reader"))
        sock = await stuck_viewer(served.port, room)
        await asyncio.sleep(0.05)
        shrink_send_buffer(ctx, room, "stuck")
        sent = []
        for _ in range(60):  # 40 per 20 ms tick stays under the cap of 50
            for _ in range(40):
                sent.append((await ctx.service.server_message(room, OPERATOR, "弹" * 150)).seq)
            await asyncio.sleep(0.02)
        got = [(await reader.next("dm"))["seq"] for _ in sent]
        assert got == sent
        skipped = counter(ctx, "slow_skipped")
        assert skipped > 0
        # Between the soft and hard limits a viewer is kept, not closed.
        assert counter(ctx, "slow_closed") == 0
        assert ctx.hub.local_count(room) == 2
        await reader.close()
        sock.close()


async def test_viewer_stuck_past_the_hard_limit_is_closed_with_4029(served: Served) -> None:
    ctx = served.ctx
    room = await live_room(ctx)
    async with aiohttp.ClientSession() as session:
        reader, _ = await connect(session, served.base, room, token("reader"))
        sock = await stuck_viewer(served.port, room)
        await asyncio.sleep(0.05)
        shrink_send_buffer(ctx, room, "stuck")
        # Notices ride the priority lane, so even a slow viewer is sent them: they fill
        # its buffer past the hard limit.
        for i in range(150):
            await ctx.service.notice(room, f"{i:03d}" + "告" * 400, "info")
            await asyncio.sleep(0.005)
        for i in range(150):
            assert (await reader.next("notice"))["text"].startswith(f"{i:03d}")
        for _ in range(100):
            if counter(ctx, "slow_closed") == 1:
                break
            await asyncio.sleep(0.05)
        assert counter(ctx, "slow_closed") == 1
        assert await read_close_code(sock) == 4029
        sock.close()
        await asyncio.sleep(0.1)
        assert ctx.hub.local_count(room) == 1
        await reader.send({"t": "ping", "ref": 1})
        assert (await reader.next("pong"))["ref"] == 1
        await reader.close()


async def test_a_reading_viewer_is_never_closed_under_load(served: Served) -> None:
    ctx = served.ctx
    room = await live_room(ctx)
    async with aiohttp.ClientSession() as session:
        viewers: list[Viewer] = [
            (await connect(session, served.base, room, token(f"v{i}")))[0] for i in range(20)
        ]
        for _ in range(50):
            for _ in range(30):
                await ctx.service.server_message(room, OPERATOR, "x" * 180)
            await asyncio.sleep(0.02)
        for v in viewers:
            assert len([await v.next("dm") for _ in range(1500)]) == 1500
            assert v.close_code is None
        assert counter(ctx, "slow_closed") == 0
        for v in viewers:
            await v.close()
