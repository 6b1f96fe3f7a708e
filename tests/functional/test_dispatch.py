"""Everything before the welcome, on both connection paths: interact.upgrade's dispatcher
in front of the app on a real loopback socket, in process, with the raw upgrade on
("raw") and off ("aiohttp"): deadlines, handshake refusals, compression offers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from interact.config import Config
from interact.context import Context
from tests.functional.conftest import SECRET, live_room, serve_dispatched, token

# Short deadlines; every wait below allows several times as much on a loaded machine.
HEAD_S = 1.0
BODY_S = 1.0
SLACK_S = 6.0


@dataclass
class Dispatched:
    port: int
    ctx: Context
    raw: bool


Start = Callable[..., Awaitable[Dispatched]]


@pytest.fixture(params=["raw", "aiohttp"])
async def start(request: pytest.FixtureRequest) -> AsyncIterator[Start]:
    """Serve the app behind Dispatch (as ``interact serve`` does), on one path."""
    runners: list[tuple[web.AppRunner, asyncio.Server]] = []

    async def start(**overrides: Any) -> Dispatched:
        settings = {"head_timeout": HEAD_S, "body_timeout": BODY_S, **overrides}
        raw = request.param == "raw"
        config = Config(host="127.0.0.1", port=0, secret=SECRET, raw_upgrade=raw, **settings)
        runner, server, ctx = await serve_dispatched(config)
        runners.append((runner, server))
        return Dispatched(server.sockets[0].getsockname()[1], ctx, raw)

    yield start
    for runner, server in runners:
        server.close()
        await runner.cleanup()


def deadline_closed(ctx: Context, stage: str) -> float:
    value = ctx.metrics.registry.get_sample_value(
        "interact_deadline_closed_total", {"stage": stage}
    )
    return value or 0.0


async def closed_by_server(reader: asyncio.StreamReader, within: float = SLACK_S) -> bytes:
    """Everything the server still sends until it closes (EOF or reset)."""
    got = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), within):
            got += chunk
    except ConnectionResetError:
        pass
    return got


async def response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SLACK_S)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )  # fmt: skip
    return head, await asyncio.wait_for(reader.readexactly(length), SLACK_S)


async def next_of(ws: ClientConnection, kind: str) -> str:
    """The next frame that holds a message of type ``kind`` (online counts come too)."""
    async with asyncio.timeout(SLACK_S):
        while f'"t":"{kind}"' not in (frame := str(await ws.recv())):
            pass
    return frame


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """Send ``data`` a byte at a time (the slowloris pattern), until the server hangs up."""
    try:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every)
    except ConnectionError:
        pass


# -- deadlines ---------------------------------------------------------------------


async def test_a_connection_that_never_finishes_its_head_is_dropped(start: Start) -> None:
    served = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /ws?room=r1 HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert await closed_by_server(reader) == b""
        assert deadline_closed(served.ctx, "head") == 1
    finally:
        writer.close()


async def test_a_head_past_8kb_keeps_its_deadline(start: Start) -> None:
    # 90 header lines of 100 bytes: within aiohttp's limits, past the raw path's 8 KB,
    # so handed to aiohttp unfinished, which used to wait for the rest for ever.
    served = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        pad = b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"a" * 88) for i in range(90))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad)
        assert await closed_by_server(reader) == b""
    finally:
        writer.close()


async def test_every_keep_alive_head_has_a_deadline_its_bytes_do_not_extend(
    start: Start,
) -> None:
    served = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = await response(reader)
        assert head.startswith(b"HTTP/1.1 200")
        # The second head, a byte every 0.2 s: 8 s to finish, if it were let.
        second = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        began = time.monotonic()
        sender = asyncio.create_task(trickle(writer, second, 0.2))
        assert await closed_by_server(reader, within=12) == b""  # no 200 for it
        assert time.monotonic() - began < len(second) * 0.2  # before the head was in
        await sender
        assert deadline_closed(served.ctx, "head") == 1
    finally:
        writer.close()


async def test_a_slow_body_read_by_a_handler_gets_408(start: Start) -> None:
    served = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(
            b"POST /api/v1/auth/dev HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 40\r\n\r\n{"uid":'  # and the rest never comes
        )
        head, _ = await response(reader)
        assert head.startswith(b"HTTP/1.1 408")
        assert await closed_by_server(reader) == b""
    finally:
        writer.close()


async def test_a_slow_body_read_anywhere_else_is_cut(start: Start) -> None:
    # The payment notification reads its body itself, not through api.common.body.
    served = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(
            b"POST /api/v1/pay/wechat/notify HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"  # and no last chunk
        )
        assert await closed_by_server(reader) == b""
        assert deadline_closed(served.ctx, "body") == 1
    finally:
        writer.close()


async def test_a_slow_but_complete_request_is_served_and_idle_keep_alive_is_not_cut(
    start: Start,
) -> None:
    served = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        await asyncio.sleep(0.1)
        writer.write(b"Host: x\r\n\r\n")
        assert (await response(reader))[0].startswith(b"HTTP/1.1 200")
        # Idle between requests is aiohttp's keep-alive time: no head deadline runs.
        await asyncio.sleep(HEAD_S * 1.5)
        writer.write(b"POST /api/v1/auth/dev HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n")
        writer.write(b'{"uid":"u1"}\n')
        assert (await response(reader))[0].startswith(b"HTTP/1.1 200")
        await asyncio.sleep(HEAD_S * 1.5)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await response(reader))[0].startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


async def test_a_refused_upgrade_does_not_leave_the_connection_open(start: Start) -> None:
    # After an upgrade request aiohttp's parser reads no further request: a refusal that
    # kept the connection would hold it, unwelcomed, for aiohttp's keep-alive hour.
    served = await start(welcome_timeout=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(  # a bad codec: ws_handler's 400
            b"GET /ws?codec=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"
        )
        assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 400")
        assert served.ctx.edge.open_count == 0
        assert deadline_closed(served.ctx, "upgraded") == 1
    finally:
        writer.close()


async def test_a_welcomed_viewer_outlives_every_deadline_before_the_welcome(
    start: Start,
) -> None:
    served = await start(welcome_timeout=1.0)
    rid = await live_room(served.ctx)
    uri = f"ws://127.0.0.1:{served.port}/ws?room={rid}&token={token('stays')}"
    async with ws_connect(uri, compression=None) as ws:
        await next_of(ws, "welcome")
        assert served.ctx.edge.unwelcomed_count == 0
        # Past the head, welcome and grace deadlines, all of which it met.
        await asyncio.sleep(HEAD_S + 1.0 + 1.5)
        await ws.send('{"t":"ping","ref":1}')
        await next_of(ws, "pong")
        assert served.ctx.edge.open_count == 1 and served.ctx.edge.unwelcomed_count == 0


# -- handshake answers -------------------------------------------------------------

UPGRADE = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
KEY = b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
V13 = b"Sec-WebSocket-Version: 13\r\n"


def handshake(
    line: bytes = b"GET /ws?room=x HTTP/1.1",
    host: bytes = b"Host: x\r\n",
    upgrade: bytes = UPGRADE,
    version: bytes = V13,
    extra: bytes = b"",
) -> bytes:
    return line + b"\r\n" + host + upgrade + version + KEY + extra + b"\r\n"


BAD_HANDSHAKES = {
    "100 KB URL": (handshake(line=b"GET /ws?room=" + b"a" * 100_000 + b" HTTP/1.1"), 400),
    "10,000 header lines": (handshake(extra=b"X-A: b\r\n" * 10_000), 400),
    "200 header lines": (handshake(extra=b"".join(b"X-%d: b\r\n" % i for i in range(200))), 400),
    "Upgrade: xwebsocketx": (handshake(upgrade=b"Upgrade: xwebsocketx\r\nConnection: Upgrade\r\n"), 400),  # noqa: E501
    "Connection: xupgradex": (handshake(upgrade=b"Upgrade: websocket\r\nConnection: xupgradex\r\n"), 400),  # noqa: E501
    "no Host": (handshake(host=b""), 400),
    "a Content-Length body": (handshake(extra=b"Content-Length: 2\r\n") + b"\x81\x80", 400),
    "a chunked body": (handshake(extra=b"Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n", 400),
    "bare LF": (handshake().replace(b"\r\n", b"\n"), 400),
    "HTTP/1.0": (handshake(line=b"GET /ws?room=x HTTP/1.0"), 400),
    "version 8": (handshake(version=b"Sec-WebSocket-Version: 8\r\n"), 426),
    "version 7": (handshake(version=b"Sec-WebSocket-Version: 7\r\n"), 426),
    "version 14": (handshake(version=b"Sec-WebSocket-Version: 14\r\n"), 426),
    "no version": (handshake(version=b""), 426),
}  # fmt: skip


async def test_bad_handshakes_are_refused_alike_on_both_paths_and_closed(start: Start) -> None:
    served = await start()

    async def answer(wire: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        try:
            writer.write(wire)  # in one write: one read on the server, mostly
            return await closed_by_server(reader)
        finally:
            writer.close()

    answers = await asyncio.gather(*(answer(wire) for wire, _ in BAD_HANDSHAKES.values()))
    for (name, (_, status)), got in zip(BAD_HANDSHAKES.items(), answers, strict=True):
        assert got.split(b" ", 2)[1] == str(status).encode(), (name, got[:80])
        if status == 426:
            assert b"\r\nSec-WebSocket-Version: 13\r\n" in got, (name, got)


async def test_a_bare_lf_head_is_answered_at_once(start: Start) -> None:
    served = await start(head_timeout=30.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\nHost: x\n")  # not even finished
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SLACK_S)
        assert head.split(b" ", 2)[1] == b"400"
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        ({"server_max_window_bits": 15}, "permessage-deflate; server_max_window_bits=15"),
        ({"server_max_window_bits": 10}, "permessage-deflate; server_max_window_bits=10"),
        ({"client_max_window_bits": True}, "permessage-deflate"),
        ({"client_no_context_takeover": True}, "permessage-deflate"),
        ({"client_max_window_bits": 12, "server_no_context_takeover": True}, "permessage-deflate"),
        (
            {"server_max_window_bits": 12, "client_no_context_takeover": True},
            "permessage-deflate; server_max_window_bits=12",
        ),
    ],
)
async def test_deflate_offers_are_accepted_as_rfc_7692_asks(
    start: Start, offer: dict[str, Any], answer: str
) -> None:
    served = await start()
    rid = await live_room(served.ctx)
    uri = f"ws://127.0.0.1:{served.port}/ws?room={rid}&token={token('deflate')}"
    factory = ClientPerMessageDeflateFactory(**offer)
    async with ws_connect(uri, extensions=[factory], compression=None) as ws:
        assert ws.response is not None
        got = ws.response.headers["Sec-WebSocket-Extensions"]
        assert got == answer + "; server_no_context_takeover"
        assert ("Server" not in ws.response.headers) is served.raw  # the path it took
        await next_of(ws, "welcome")
        await ws.send('{"t":"ping","ref":1}')
        await next_of(ws, "pong")
