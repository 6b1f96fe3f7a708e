"""The server's own WebSocket upgrade (interact.upgrade) on raw sockets, and its hand-over
of everything else to aiohttp, against a real server process."""

from __future__ import annotations

import asyncio
import os

import aiohttp

from bench.client import mask_frame
from interact.client_frames import OP_CLOSE, OP_TEXT, unmask
from tests.e2e.harness import Api, ServerProcess, connect
from tests.e2e.raw_client import RawClient


async def test_a_fresh_connection_is_upgraded_below_aiohttp_and_frames_sent_early_wait(
    memory_server: ServerProcess, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    token = memory_server.token("raw")
    early = mask_frame(OP_TEXT, b'{"t":"dm","text":"first!","ref":7}')
    client, head = await RawClient.open(memory_server, {"room": rid, "token": token}, early)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"Server:" not in head  # not aiohttp's answer
    assert (await client.messages())[0]["t"] == "welcome"
    got: list[dict[str, object]] = []
    while not any(m.get("t") == "ack" for m in got):
        got += await client.messages()
    ack = next(m for m in got if m.get("t") == "ack")
    assert ack["ok"] is True and ack["ref"] == 7  # the comment sent with the upgrade
    client.close()


async def test_protocol_errors_on_the_raw_path_close_with_their_codes(
    memory_server: ServerProcess, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    query = {"room": rid, "token": memory_server.token("bad")}
    cases = [
        (bytes((0x81, 0x02)) + b"hi", 1002),  # not masked
        (mask_frame(OP_TEXT, b"\xff\xfe"), 1007),  # not UTF-8
        (mask_frame(OP_TEXT, b"x" * 5000), 1009),  # past max_frame_bytes (4096)
        (mask_frame(0x3, b""), 1002),  # unknown opcode
    ]
    for wire, code in cases:
        client, _ = await RawClient.open(memory_server, query)
        assert (await client.messages())[0]["t"] == "welcome"
        client.writer.write(wire)
        while True:
            op, payload = await client.frame()
            if op == OP_CLOSE:
                break
        assert int.from_bytes(payload[:2], "big") == code, (wire[:8], payload)
        assert await asyncio.wait_for(client.reader.read(), 5) == b""  # and it is gone
        client.close()
    # The server is still there, and a well-behaved viewer gets in.
    v, welcome = await connect(operator.session, memory_server.base, rid, query["token"])
    assert welcome["room"]["id"] == rid
    await v.close()


async def test_a_close_from_the_client_is_answered_and_a_bad_token_is_refused(
    memory_server: ServerProcess, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    client, _ = await RawClient.open(memory_server, {"room": rid, "token": "forged"})
    op, payload = await client.frame()
    assert (op, int.from_bytes(payload[:2], "big")) == (OP_CLOSE, 4001)
    client.close()
    query = {"room": rid, "token": memory_server.token("c")}
    client, _ = await RawClient.open(memory_server, query)
    await client.messages()
    key = os.urandom(4)
    client.writer.write(bytes((0x88, 0x82)) + key + unmask((1000).to_bytes(2, "big"), key))
    op, payload = await client.frame()
    assert (op, int.from_bytes(payload[:2], "big")) == (OP_CLOSE, 1000)
    client.close()


async def test_an_upgrade_on_a_keep_alive_connection_goes_through_aiohttp(
    memory_server: ServerProcess,
) -> None:
    # A REST call first, then the upgrade on the same pooled connection: aiohttp has it.
    async with aiohttp.ClientSession() as session:
        op = Api(session, memory_server.base, memory_server.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        v, _ = await connect(session, memory_server.base, rid, memory_server.token("ka"))
        assert "Server" in v.ws._response.headers  # aiohttp answered this upgrade
        await v.send({"t": "dm", "text": "over aiohttp", "ref": 1})
        assert (await v.ack(1))["ok"] is True
        await v.close()


async def test_requests_that_are_not_a_plain_upgrade_get_aiohttp_answers(
    memory_server: ServerProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", memory_server.port)
    writer.write(
        b"GET /ws?room=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 99\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.split(b" ")[1] == b"426" and b"Server:" in head  # aiohttp's refusal
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in head  # RFC 6455 §4.4
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", memory_server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()
