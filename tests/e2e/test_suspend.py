"""Close 4100 (the app goes to the background): the viewer's place is kept for the grace.

Against real server processes, on both upgrade paths: the close code arrives through the
direct path's frame reader (``interact.raw_socket``) or aiohttp's (``interact.ws``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from interact.floor.errors import Close
from tests.e2e.harness import Api, ServerProcess, Viewer, connect, start_server

ONLINE_INTERVAL = "0.2"


@pytest.fixture(scope="module", params=["raw", "aiohttp"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server whose grace outlasts any test here (the expiry has its own server)."""
    raw = "true" if request.param == "raw" else "false"
    proc = start_server(
        tmp_path_factory.mktemp(f"suspend-{request.param}"),
        env={
            "INTERACT_ONLINE_INTERVAL": ONLINE_INTERVAL,
            "INTERACT_SUSPEND_GRACE": "60",
            "INTERACT_RAW_UPGRADE": raw,
        },
    )
    yield proc
    assert proc.stop() == 0, proc.log()


def ops(server: ServerProcess, session: aiohttp.ClientSession) -> Api:
    return Api(session, server.base, server.token("ops", "operator"))


async def online_reaches(watcher: Viewer, count: int, timeout: float = 10) -> list[int]:
    """The watcher's ``online`` counts up to the first that equals ``count``."""
    seen: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not seen or seen[-1] != count:
        try:
            msg = await watcher.next("online", timeout=max(0.01, deadline - loop.time()))
        except TimeoutError:
            raise AssertionError(f"online never reached {count}: {seen}") from None
        seen.append(msg["count"])
    return seen


async def suspend(viewer: Viewer) -> int | None:
    """Close as the SDK does on ``wx.onAppHide``; the server's echoed code."""
    await viewer.ws.close(code=Close.SUSPENDED)
    await viewer.closed()
    return viewer.ws.close_code  # the code of the server's answer


async def test_a_suspended_viewer_stays_online_and_comes_back_without_a_gap(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    rid = (await ops(server, session).live_room())["id"]
    watcher, _ = await connect(session, server.base, rid, server.token("w"))
    viewer, welcome = await connect(session, server.base, rid, server.token("v"))
    await online_reaches(watcher, 2)
    assert await suspend(viewer) == Close.SUSPENDED  # echoed, as any client code
    for i in range(3):
        await watcher.send({"t": "dm", "text": f"while away {i}", "ref": i})
        assert (await watcher.ack(i))["ok"] is True
    # A third viewer joins: the next count the watcher is told is after the suspension,
    # and must still count the suspended place (w, v's place, x).
    late, _ = await connect(session, server.base, rid, server.token("x"))
    assert await online_reaches(watcher, 3) == [3]
    back, again = await connect(
        session, server.base, rid, server.token("v"), since=welcome["seq"], epoch=welcome["epoch"]
    )
    assert again["recovered"] is True
    assert [m["text"] for m in again["history"]] == [f"while away {i}" for i in range(3)]
    # v took its own place back: when x leaves, the count is 2 (w, v), never 3 or 4.
    await late.close()
    assert await online_reaches(watcher, 2) == [2]
    await back.send({"t": "dm", "text": "back", "ref": "b"})
    assert (await back.ack("b"))["ok"] is True
    # Nothing it got in its welcome comes again on the wire: its next comment is its own.
    assert (await back.next("dm"))["text"] == "back"
    await back.close()
    await watcher.close()


async def test_a_plain_close_still_drops_the_count_at_once(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    rid = (await ops(server, session).live_room())["id"]
    watcher, _ = await connect(session, server.base, rid, server.token("w"))
    viewer, _ = await connect(session, server.base, rid, server.token("v"))
    await online_reaches(watcher, 2)
    await viewer.close()
    assert viewer.ws.close_code == Close.NORMAL
    assert await online_reaches(watcher, 1, timeout=3) == [1]
    await watcher.close()


async def test_watch_time_carries_on_from_the_first_join_after_a_suspension(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    api = ops(server, session)
    rid = (await api.live_room())["id"]
    status, lot = await api.call(
        "POST",
        f"/api/v1/rooms/{rid}/lotteries",
        {"prize": "福袋", "winners": 1, "condition": {"kind": "watch", "minutes": 1},
         "duration": 120},
    )  # fmt: skip
    assert status == 201, lot
    viewer, welcome = await connect(session, server.base, rid, server.token("v"))
    first_welcome = time.monotonic()  # the server's watch clock started before this
    # Watch time is what is measured here: let some pass before going to the background.
    await asyncio.sleep(1.5)
    assert await suspend(viewer) == Close.SUSPENDED
    back, _ = await connect(
        session, server.base, rid, server.token("v"), since=welcome["seq"], epoch=welcome["epoch"]
    )
    sent = time.monotonic()
    await back.send({"t": "enter", "id": lot["id"], "ref": "e"})
    ack = await back.ack("e")
    # One minute is not up yet: refused, with the watch time the server counted, which
    # runs from the first join (a fresh count would be the few ms since the return).
    assert ack["ok"] is False and ack["code"] == "forbidden", ack
    assert ack["watched_ms"] >= int((sent - first_welcome) * 1000) >= 1500, ack
    await back.close()


async def test_a_suspended_place_not_taken_back_is_dropped_after_the_grace(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    srv = start_server(
        tmp_path,
        env={"INTERACT_ONLINE_INTERVAL": ONLINE_INTERVAL, "INTERACT_SUSPEND_GRACE": "1"},
    )
    try:
        rid = (await ops(srv, session).live_room())["id"]
        watcher, _ = await connect(session, srv.base, rid, srv.token("w"))
        viewer, _ = await connect(session, srv.base, rid, srv.token("v"))
        await online_reaches(watcher, 2)
        suspended_at = time.monotonic()
        assert await suspend(viewer) == Close.SUSPENDED
        # Kept through the grace (no count of 1 before it), dropped after it.
        assert await online_reaches(watcher, 1) == [1]
        assert time.monotonic() - suspended_at >= 1.0
        await watcher.close()
    finally:
        assert srv.stop() == 0, srv.log()
