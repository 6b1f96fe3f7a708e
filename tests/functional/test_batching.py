"""Per-room batching in the hub: the danmaku cap samples, priority is never dropped."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest

from tests.e2e.harness import connect
from tests.functional.conftest import OPERATOR, ServeApp, counter, live_room, settle, token


async def test_cap_samples_danmaku_but_keeps_priority_and_order(serve_app: ServeApp) -> None:
    served = await serve_app(tick_ms=200, danmaku_cap=10)
    ctx = served.ctx
    room = await live_room(ctx)
    async with aiohttp.ClientSession() as session:
        viewer, _ = await connect(session, served.base, room, token("v"))
        await settle(ctx)
        frames_before = viewer.frames
        seqs = []
        # One burst inside one tick: 100 comments and 5 notices interleaved.
        for i in range(100):
            seqs.append((await ctx.service.server_message(room, OPERATOR, f"c{i}")).seq)
            if i % 20 == 0:
                await ctx.service.notice(room, f"n{i}")
        await settle(ctx)
        got: list[dict[str, object]] = []
        while not viewer.inbox.empty() or viewer.backlog:
            got.append(await viewer.next())
        dms = [m["seq"] for m in got if m["t"] == "dm"]
        notices = [m["text"] for m in got if m["t"] == "notice"]
        assert notices == [f"n{i}" for i in range(0, 100, 20)]
        assert 10 <= len(dms) < 100 and dms == sorted(dms) and set(dms) <= set(seqs)
        assert counter(ctx, "danmaku_dropped") == 100 - len(dms)
        # The whole burst went out in very few frames: batches, not one frame a message.
        assert viewer.frames - frames_before <= 3
        await viewer.close()


async def test_sender_ack_survives_sampling(serve_app: ServeApp) -> None:
    served = await serve_app(tick_ms=100, danmaku_cap=1)
    ctx = served.ctx
    room = await live_room(ctx)
    async with aiohttp.ClientSession() as session:
        senders = [(await connect(session, served.base, room, token(f"s{i}")))[0] for i in range(5)]
        await asyncio.gather(
            *(s.send({"t": "dm", "text": "hi", "ref": i}) for i, s in enumerate(senders))
        )
        acks = [await s.ack(i) for i, s in enumerate(senders)]
        assert all(a["ok"] for a in acks)
        assert sorted(a["seq"] for a in acks) == [1, 2, 3, 4, 5]
        for s in senders:
            await s.close()


async def test_deflate_is_negotiated_with_server_no_context_takeover(
    serve_app: ServeApp,
) -> None:
    served = await serve_app()
    room = await live_room(served.ctx)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            served.base + "/ws", params={"room": room, "token": token("z")}, compress=15
        )
        extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions
        assert "server_no_context_takeover" in extensions
        welcome = await ws.receive_json()
        assert welcome[0]["t"] == "welcome"
        await ws.close()


async def test_a_room_whose_fanout_outgrows_its_tick_flushes_less_often(
    serve_app: ServeApp,
) -> None:
    served = await serve_app(tick_ms=20)
    ctx = served.ctx
    # Any pass counts as too long for its tick: the room's window grows to the most allowed.
    ctx.hub.config = dataclasses.replace(ctx.hub.config, fanout_share=1e-9, max_window_ms=200)
    room = await live_room(ctx)
    async with aiohttp.ClientSession() as session:
        viewer, _ = await connect(session, served.base, room, token("v"))
        await asyncio.sleep(0.3)
        assert ctx.hub.rooms[room].window == pytest.approx(0.2)
        frames_before = viewer.frames
        for i in range(20):  # one notice a tick for 400 ms
            await ctx.service.notice(room, f"n{i}")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        got = []
        while not viewer.inbox.empty() or viewer.backlog:
            got.append(await viewer.next())
        assert [m["text"] for m in got if m["t"] == "notice"] == [f"n{i}" for i in range(20)]
        # Every 200 ms, not every 20 ms: a handful of frames carry the 20 notices.
        assert viewer.frames - frames_before <= 5
        await viewer.close()
