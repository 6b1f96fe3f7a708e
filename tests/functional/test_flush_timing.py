"""When a room is flushed: at once after a quiet spell (the leading edge), then once per
window while busy, the window below the tick for a room whose fan-out pass is cheap; the
danmaku cap stays a budget per tick. The hub's ticker is stopped in these tests and the
test drives the tick (``hub.flush()``), so whatever reaches a viewer without it was sent
by the new scheduling; times are read on the hub's clock (``time.monotonic``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable

import aiohttp

from interact.hub import Hub, LocalRoom
from tests.e2e.harness import Viewer, connect
from tests.functional.conftest import OPERATOR, ServeApp, Served, counter, live_room, token


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def stop_ticker(hub: Hub) -> None:
    # These tests are of the leading edge (on by default; set here so they stay about it).
    hub.config = dataclasses.replace(hub.config, leading_edge=True)
    ticker = next(t for t in hub._loops if t.get_name() == "hub-ticker")
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker


async def promoted_viewer(
    served: Served, session: aiohttp.ClientSession, room_id: str
) -> tuple[Viewer, LocalRoom]:
    """A viewer in the room's fan-out, let in by a flush the test drives."""
    hub = served.ctx.hub
    viewer, _ = await connect(session, served.base, room_id, token("v"))
    room = hub.rooms[room_id]

    def in_fanout() -> bool:
        hub.flush(force=True)
        return not room.joining and any(room.groups.values())

    await until(in_fanout)
    return viewer, room


async def dms(viewer: Viewer, n: int) -> list[str]:
    return [str((await viewer.next("dm"))["text"]) for _ in range(n)]


async def test_a_lone_comment_in_a_quiet_room_goes_out_without_waiting_for_the_tick(
    serve_app: ServeApp,
) -> None:
    served = await serve_app(tick_ms=300)
    hub = served.ctx.hub
    await stop_ticker(hub)
    # A window of a whole tick: only the leading edge can send before the ticker would.
    hub.config = dataclasses.replace(hub.config, min_window_ms=300)
    room_id = await live_room(served.ctx)
    async with aiohttp.ClientSession() as session:
        viewer, room = await promoted_viewer(served, session, room_id)
        tick = hub.config.tick_ms / 1000
        await until(lambda: time.monotonic() > room.flushed_at + tick)  # quiet for a tick
        frames = viewer.frames
        await served.ctx.service.server_message(room_id, OPERATOR, "c0")
        published = time.monotonic()
        assert await dms(viewer, 1) == ["c0"]
        assert viewer.frames == frames + 1
        # Flushed on the loop's next turn, not at the end of a tick.
        assert published <= room.flushed_at < published + tick / 2
        # Busy now: the next comment waits for the window, left to the ticker.
        await served.ctx.service.server_message(room_id, OPERATOR, "c1")
        assert [o.obj["text"] for o in room.queue] == ["c1"] and room.due is None
        await until(lambda: time.monotonic() >= room.next_at)
        hub.flush()
        assert await dms(viewer, 1) == ["c1"]
        await viewer.close()


async def test_a_burst_is_coalesced_into_one_frame_per_window(serve_app: ServeApp) -> None:
    served = await serve_app(tick_ms=1000)
    hub = served.ctx.hub
    await stop_ticker(hub)
    hub.config = dataclasses.replace(hub.config, min_window_ms=900)
    room_id = await live_room(served.ctx)
    service = served.ctx.service
    async with aiohttp.ClientSession() as session:
        viewer, room = await promoted_viewer(served, session, room_id)
        await until(lambda: time.monotonic() > room.flushed_at + 1.0)
        frames = viewer.frames
        for i in range(3):  # one loop turn: the leading flush takes all three
            await service.server_message(room_id, OPERATOR, f"a{i}")
        assert await dms(viewer, 3) == ["a0", "a1", "a2"]
        assert viewer.frames == frames + 1
        first = room.flushed_at
        for i in range(5):  # one per loop turn, inside the window
            await service.server_message(room_id, OPERATOR, f"b{i}")
            await asyncio.sleep(0)
        assert await dms(viewer, 5) == [f"b{i}" for i in range(5)]
        assert viewer.frames == frames + 2
        assert room.flushed_at >= first + 0.9  # not before the window was over
        await viewer.close()


async def test_a_small_rooms_window_is_below_the_tick(serve_app: ServeApp) -> None:
    served = await serve_app(tick_ms=5000)
    hub = served.ctx.hub
    await stop_ticker(hub)
    room_id = await live_room(served.ctx)
    async with aiohttp.ClientSession() as session:
        viewer, room = await promoted_viewer(served, session, room_id)
        await served.ctx.service.server_message(room_id, OPERATOR, "c0")
        assert await dms(viewer, 1) == ["c0"]
        assert room.window < 0.05  # one viewer: a pass of microseconds
        sent = time.monotonic()
        await served.ctx.service.server_message(room_id, OPERATOR, "c1")
        assert await dms(viewer, 1) == ["c1"]
        assert sent < room.flushed_at < sent + 2.5  # at the window's end, well inside the tick
        await viewer.close()


async def test_the_danmaku_cap_is_a_budget_per_tick_across_short_windows(
    serve_app: ServeApp,
) -> None:
    served = await serve_app(tick_ms=5000, danmaku_cap=10)
    hub = served.ctx.hub
    await stop_ticker(hub)
    room_id = await live_room(served.ctx)
    service = served.ctx.service
    async with aiohttp.ClientSession() as session:
        viewer, room = await promoted_viewer(served, session, room_id)
        for i in range(10):  # the whole cap: all of it goes out
            await service.server_message(room_id, OPERATOR, f"a{i}")
        assert await dms(viewer, 10) == [f"a{i}" for i in range(10)]
        second = room.flushed_at
        await until(lambda: time.monotonic() >= room.next_at)  # a short window, not a tick
        for i in range(10):  # the same tick: its budget is spent
            await service.server_message(room_id, OPERATOR, f"b{i}")
        await service.notice(room_id, "end")
        notice = await viewer.next("notice")
        assert notice["text"] == "end" and room.flushed_at < second + 2.5
        assert not viewer.backlog and viewer.inbox.empty()  # no dm came with it
        assert counter(served.ctx, "danmaku_dropped") == 10
        await viewer.close()


async def test_a_busy_room_keeps_the_tick_window(serve_app: ServeApp) -> None:
    # A cap above the burst: the q0 flush spends a token the next few ms do not refill.
    served = await serve_app(tick_ms=1000, danmaku_cap=1000)
    hub = served.ctx.hub
    await stop_ticker(hub)
    # A pass of microseconds is under its share; 100 comments a second, one frame each,
    # would not be: the room batches per tick instead of splitting them into frames.
    hub.config = dataclasses.replace(hub.config, fanout_share=0.001)
    room_id = await live_room(served.ctx)
    service = served.ctx.service
    async with aiohttp.ClientSession() as session:
        viewer, room = await promoted_viewer(served, session, room_id)
        await service.server_message(room_id, OPERATOR, "q0")
        assert await dms(viewer, 1) == ["q0"]
        assert room.window < 1.0  # quiet: below the tick
        for i in range(100):
            await service.server_message(room_id, OPERATOR, f"b{i}")
            await asyncio.sleep(0)
        await until(lambda: time.monotonic() >= room.next_at)
        hub.flush()
        assert await dms(viewer, 100) == [f"b{i}" for i in range(100)]
        assert room.window == 1.0 and room.due is None
        await viewer.close()
