"""The connection dispatcher of interact.upgrade on a real loopback socket, in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from interact.app import build_app
from interact.config import Config
from interact.context import Context
from interact.upgrade import dispatch_factory
from tests.functional.conftest import SECRET


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = build_app(Config(host="127.0.0.1", port=0, secret=SECRET))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    factory = dispatch_factory(app[Context.KEY], runner.server, head_timeout=1.0)
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await runner.cleanup()


async def test_a_connection_that_never_finishes_its_head_is_dropped(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /ws?room=r1 HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert await asyncio.wait_for(reader.read(), 3) == b""  # closed by the server
    finally:
        writer.close()


async def response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )  # fmt: skip
    await asyncio.wait_for(reader.readexactly(length), 3)
    return head


async def test_a_slow_but_complete_request_is_served(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        await asyncio.sleep(0.1)
        writer.write(b"Host: x\r\n\r\n")
        assert (await response(reader)).startswith(b"HTTP/1.1 200")
        # Handed to aiohttp, the connection is aiohttp's: no head timer fires any more.
        await asyncio.sleep(1.2)  # past the head timeout
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await response(reader)).startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


async def test_an_oversized_head_goes_to_aiohttp_which_refuses_it(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.split(b" ")[1] in (b"400", b"431")
    finally:
        writer.close()
