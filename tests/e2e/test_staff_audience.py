"""Staff are not audience: an operator and the room's own anchor connected beside N viewers
leave every audience figure at N (online, PCU, watch PV/UV, entries, exits, watch time),
yet get the room's messages and the staff-only ones. Another anchor watching the room is
one of its viewers. Real server processes, both engines, both upgrade paths."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess, Viewer, connect

STAFF_ONLY = 1.0  # seconds the staff watch alone: time that must not count


async def figures_when(op: Api, rid: str, done: Any, timeout: float = 15) -> dict[str, Any]:
    """The room's analytics once ``done(figures)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        status, f = await op.call("GET", f"/api/v1/rooms/{rid}/analytics")
        assert status == 200, f
        if done(f):
            return f
        assert time.monotonic() < deadline, f
        await asyncio.sleep(0.05)


async def online_counts(watcher: Viewer, count: int, timeout: float = 10) -> list[int]:
    """The ``online`` counts the watcher is told, up to the first equal to ``count``."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1] != count:
        left = deadline - time.monotonic()
        try:
            seen.append((await watcher.next("online", timeout=max(0.01, left)))["count"])
        except TimeoutError:
            raise AssertionError(f"online never reached {count}: {seen}") from None
    return seen


def drained(v: Viewer) -> list[dict[str, Any]]:
    out = list(v.backlog)
    while not v.inbox.empty():
        out.append(v.inbox.get_nowait())
    v.backlog = out
    return out


@pytest.mark.parametrize("path", ["raw", "aiohttp"])
@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_staff_are_not_counted_but_hear_everything(
    servers: Any,
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
    engine: str,
    path: str,
) -> None:
    env = {
        "INTERACT_ONLINE_INTERVAL": "0.2",
        "INTERACT_RAW_UPGRADE": "true" if path == "raw" else "false",
        # The room breaker's staff-only notice: 2 refused of 6 comments.
        "INTERACT_BREAKER_MIN_COMMENTS": "5",
        "INTERACT_ESCALATE_AFTER": "100",
    }
    if engine == "redis":
        env["INTERACT_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["INTERACT_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    server: ServerProcess = servers(env=env)
    op = Api(session, server.base, server.token("ops", "operator"))
    status, room = await op.call("POST", "/api/v1/rooms", {"title": "staff", "anchor": "anc1"})
    assert status == 201, room
    rid = room["id"]
    assert (await op.call("POST", f"/api/v1/rooms/{rid}/start"))[0] == 200

    ops_ws, w_ops = await connect(session, server.base, rid, server.token("ops", "operator"))
    anchor, w_anchor = await connect(session, server.base, rid, server.token("anc1", "anchor"))
    assert (w_ops["online"], w_anchor["online"]) == (0, 0)
    await asyncio.sleep(STAFF_ONLY)  # time passing with only staff on is what is measured

    # N viewers: three plain ones and an anchor of another room, who is a viewer here.
    tokens = [server.token(f"v{i}") for i in range(3)] + [server.token("anc2", "anchor")]
    n = len(tokens)
    lived_at_most = lived_at_least = 0.0
    viewers: list[Viewer] = []
    opened: list[tuple[float, float]] = []
    for token in tokens:
        before = time.monotonic()
        v, _ = await connect(session, server.base, rid, token)
        viewers.append(v)
        opened.append((before, time.monotonic()))
    for watcher in (ops_ws, anchor, viewers[0]):
        assert max(await online_counts(watcher, n)) == n
    f = await figures_when(op, rid, lambda f: f["online"] == n and f["pcu"] == n)
    assert (f["watch_pv"], f["watch_uv"]) == (n, n)

    # Staff get the room's messages, and the staff-only notice that others never get.
    for i in range(4):
        await viewers[0].send({"t": "dm", "text": f"ok {i}", "ref": f"ok{i}"})
        assert (await viewers[0].ack(f"ok{i}"))["ok"]
    for i in range(2):
        await viewers[1].send({"t": "dm", "text": f"加微信abc{i}99", "ref": f"bad{i}"})
        assert (await viewers[1].ack(f"bad{i}"))["code"] == "rejected"
    for staff in (ops_ws, anchor):
        assert (await staff.next("dm"))["text"] == "ok 0"
        notice = await staff.next("notice")
        assert notice["level"] == "alert" and "slow mode" in notice["text"]
    # Staff comment and like: their comments and likes count, they are not commenters
    # or likers (viewers[0] is the one commenter, viewers[2] the one liker).
    for staff, name in ((ops_ws, "ops"), (anchor, "anc")):
        await staff.send({"t": "dm", "text": f"staff {name}", "ref": f"s-{name}"})
        assert (await staff.ack(f"s-{name}"))["ok"]
        await staff.send({"t": "like", "n": 2})
    await viewers[2].send({"t": "like", "n": 1})
    f = await figures_when(op, rid, lambda f: f["likes"] >= 5 and f["comments"] >= 6)
    assert (f["comment_uv"], f["like_uv"], f["comments"], f["likes"]) == (1, 1, 6, 5), f
    # Something for everyone after the notice: when it is in, the notice would be too.
    assert (await op.call("POST", f"/api/v1/rooms/{rid}/messages", {"text": "after"}))[0] == 201
    for v in viewers:
        while (await v.next("dm"))["text"] != "after":
            pass
        notices = [m for m in drained(v) if m.get("t") == "notice"]
        assert notices == [], notices

    # The anchor leaves first, the viewers next; the operator stays on.
    await anchor.close()
    for v, (before, after) in zip(viewers, opened, strict=True):
        closing = time.monotonic()
        await v.close()
        lived_at_least += closing - after
        lived_at_most += time.monotonic() - before
    f = await figures_when(op, rid, lambda f: f["online"] == 0)
    assert (f["watch_pv"], f["watch_uv"], f["pcu"], f["exits"]) == (n, n, n, n)
    window = f["last_10_min"]["current"]
    assert (window["watch_pv"], window["new_watch_uv"], window["exits"]) == (n, n, n)
    # The viewers' time only: the staff's (STAFF_ONLY and more, twice) is not in it.
    assert math.floor(lived_at_least) <= f["total_watch_seconds"] <= lived_at_most
    await ops_ws.close()
