"""How a WebSocket connection ends, on both paths, in process (the test looks inside the
hub): freed when it closes, without the cyclic collector; closed when stuck past the hard
limit even in a quiet room."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from interact.config import Config
from interact.context import Context
from interact.viewer import Viewer
from tests.e2e.peer import PATHS, Peer, close_frame, established, text, wait_until
from tests.functional.conftest import (
    OPERATOR,
    SECRET,
    counter,
    live_room,
    serve_dispatched,
    token,
)


@dataclass
class Served:
    port: int
    ctx: Context
    path: str


Start = Callable[..., Awaitable[Served]]


@pytest.fixture(params=PATHS)
async def start(request: pytest.FixtureRequest) -> AsyncIterator[Start]:
    """The app behind interact.upgrade's dispatcher, as ``interact serve`` runs it."""
    started: list[tuple[web.AppRunner, asyncio.Server]] = []

    async def start(**overrides: Any) -> Served:
        settings = {"rate_per_s": 0.0, "repeat_window": 0.0, **overrides}
        config = Config(host="127.0.0.1", port=0, secret=SECRET, **settings)
        runner, server, ctx = await serve_dispatched(config)
        started.append((runner, server))
        return Served(server.sockets[0].getsockname()[1], ctx, request.param)

    yield start
    for runner, server in started:
        server.close()
        await runner.cleanup()


async def promoted(ctx: Context, room: str, uid: str) -> Viewer:
    """The viewer of ``uid`` once it is in its room's fan-out."""
    found: list[Viewer] = []

    def look() -> bool:
        local = ctx.hub.rooms.get(room)
        found[:] = [v for v in (local.viewers() if local else []) if v.user.uid == uid]
        return bool(found)

    await wait_until(look, 10, f"{uid} never joined the fan-out")
    return found[0]


async def test_a_closed_connection_is_freed_at_once_without_the_cyclic_collector(
    start: Start,
) -> None:
    served = await start()
    ctx = served.ctx
    room = await live_room(ctx)
    gc.collect()
    gc.disable()  # as good as the server's rare full collections (interact.server.tune_gc)
    try:
        peer = await Peer.open(served.port, {"room": room, "token": token("gone")}, served.path)
        await peer.welcome()
        await peer.send(text({"t": "dm", "text": "hello", "ref": 1}))
        while not any(m.get("t") == "ack" for m in await peer.messages()):
            pass
        viewer = await promoted(ctx, room, "gone")
        # Slotted without __weakref__ (8 bytes a viewer): look for them among all objects.
        kinds = (Viewer, type(viewer.ws))
        del viewer

        def alive() -> list[object]:
            return [o for o in gc.get_objects() if type(o) in kinds]

        assert len(alive()) == 2
        await peer.send(close_frame((1000).to_bytes(2, "big")))
        _, code, _ = await peer.until_close()
        assert code == 1000
        peer.close()
        await wait_until(
            lambda: not alive(),
            10,
            "the closed connection is still alive, waiting for a full collection",
        )
    finally:
        gc.enable()


async def test_a_viewer_stuck_past_the_hard_limit_in_a_quiet_room_is_closed_4029(
    start: Start,
) -> None:
    served = await start(
        tick_ms=20,
        soft_buffer_bytes=16 * 1024,
        hard_buffer_bytes=64 * 1024,
        slow_grace=1.0,
        compression=False,
    )
    ctx = served.ctx
    room = await live_room(ctx)
    peer = await Peer.open(
        served.port, {"room": room, "token": token("stuck")}, served.path, rcvbuf=2048
    )
    await peer.welcome()
    viewer = await promoted(ctx, room, "stuck")
    viewer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    # Notices ride the priority lane: a burst fills the buffer past the hard limit, and
    # then the room is quiet: no batch comes to find the viewer still stuck.
    for i in range(120):
        await ctx.service.notice(room, f"{i:03d}" + "告" * 400, "info")
    await wait_until(
        lambda: viewer.transport.get_write_buffer_size() > 64 * 1024,
        10,
        "the burst did not fill the buffer past the hard limit",
    )
    await wait_until(lambda: counter(ctx, "slow_closed") == 1, 15, "never closed as too slow")
    await wait_until(lambda: ctx.hub.local_count(room) == 0, 10, "still in the room")
    # And the server does not wait on a peer that reads nothing: the socket is gone.
    await wait_until(lambda: not established(served.port, peer.port), 10, "still held")
    peer.close()


async def test_a_reading_viewer_in_a_busy_room_is_not_closed_by_the_sweep(
    start: Start,
) -> None:
    served = await start(
        tick_ms=20, soft_buffer_bytes=16 * 1024, hard_buffer_bytes=64 * 1024, slow_grace=0.3
    )
    ctx = served.ctx
    room = await live_room(ctx)
    peer = await Peer.open(served.port, {"room": room, "token": token("ok")}, served.path)
    await peer.welcome()
    await promoted(ctx, room, "ok")
    for i in range(200):
        await ctx.service.server_message(room, OPERATOR, f"{i:03d}" + "x" * 150)
        if i % 20 == 0:
            await asyncio.sleep(0.02)
    seen = 0
    while seen < 200:
        seen += sum(1 for m in await peer.messages() if m.get("t") == "dm")
    assert counter(ctx, "slow_closed") == 0
    assert ctx.hub.local_count(room) == 1
    peer.close()
