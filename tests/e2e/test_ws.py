"""The WebSocket protocol against a real server process on the memory engine."""

from __future__ import annotations

import asyncio

import aiohttp
import msgpack
import pytest

from tests.e2e.harness import Api, ServerProcess, connect


async def test_welcome_dm_ack_and_fanout_in_both_codecs(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    a, welcome = await connect(session, memory_server.base, rid, memory_server.token("a"))
    assert welcome["room"]["id"] == rid and welcome["room"]["status"] == "live"
    assert welcome["user"] == {"uid": "a", "nick": "a", "role": "viewer"}
    assert welcome["seq"] == 0 and welcome["recovered"] is False and welcome["history"] == []
    assert isinstance(welcome["epoch"], str) and welcome["online"] >= 1
    b, _ = await connect(
        session, memory_server.base, rid, memory_server.token("b"), codec="msgpack"
    )
    c, _ = await connect(session, memory_server.base, rid, memory_server.token("c"), compress=15)
    await a.send({"t": "dm", "text": "大家好", "ref": "r1", "color": 0xFE0302, "mode": "top"})
    ack = await a.ack("r1")
    assert ack["ok"] is True and ack["seq"] == 1
    await b.send({"t": "dm", "text": "second", "ref": 7})
    assert (await b.ack(7))["seq"] == 2
    for viewer in (a, b, c):
        first = await viewer.next("dm")
        second = await viewer.next("dm")
        assert (first["seq"], first["text"], first["uid"]) == (1, "大家好", "a")
        assert (first["color"], first["mode"]) == (0xFE0302, "top")
        assert (second["seq"], second["text"], second["uid"]) == (2, "second", "b")
    for viewer in (a, b, c):
        await viewer.close()


async def test_comments_need_a_live_room(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    _, room = await operator.call("POST", "/api/v1/rooms", {"title": "later"})
    v, welcome = await connect(session, memory_server.base, room["id"], memory_server.token("v"))
    assert welcome["room"]["status"] == "scheduled"
    await v.send({"t": "dm", "text": "too early", "ref": 1})
    ack = await v.ack(1)
    assert ack["ok"] is False and ack["code"] == "room_not_live"
    await operator.call("POST", f"/api/v1/rooms/{room['id']}/start")
    state = await v.next("room")
    assert state["status"] == "live" and state["id"] == room["id"]
    await v.send({"t": "dm", "text": "now", "ref": 2})
    assert (await v.ack(2))["ok"] is True
    await operator.call("POST", f"/api/v1/rooms/{room['id']}/pause")
    assert (await v.next("room"))["status"] == "paused"
    await v.send({"t": "dm", "text": "paused", "ref": 3})
    assert (await v.ack(3))["code"] == "room_not_live"
    await v.close()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"t": "dm", "text": "   "}, "bad_request"),
        ({"t": "dm", "text": "长" * 41}, "too_long"),
        ({"t": "dm", "text": "ok", "color": 0x123456}, "bad_request"),
        ({"t": "dm", "text": "ok", "mode": "sideways"}, "bad_request"),
        ({"t": "dm", "text": 5}, "bad_request"),
        ({"t": "dm"}, "bad_request"),
        ({"t": "like", "n": -5}, "bad_request"),
        ({"t": "like", "n": 10**12}, "bad_request"),
        ({"t": "like", "n": "3"}, "bad_request"),
        ({"t": "warp"}, "bad_request"),
        ({"t": "grab", "id": "nope"}, "not_found"),
        ({"t": "grab"}, "bad_request"),
    ],
)
async def test_bad_messages_get_a_refusing_ack(
    memory_server: ServerProcess,
    session: aiohttp.ClientSession,
    operator: Api,
    message: dict[str, object],
    code: str,
) -> None:
    room = await operator.live_room()
    v, _ = await connect(session, memory_server.base, room["id"], memory_server.token("v"))
    await v.send({**message, "ref": "x"})
    ack = await v.ack("x")
    assert ack["ok"] is False and ack["code"] == code, ack
    await v.send({"t": "dm", "text": "still here", "ref": "y"})
    assert (await v.ack("y"))["ok"] is True
    await v.close()


async def test_malformed_frames_get_errors_and_the_connection_lives(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    v, _ = await connect(session, memory_server.base, room["id"], memory_server.token("v"))
    for raw in ["{oops", "[1,2]", "42", '"str"', "null", '{"no_type":1}', '{"t":5}']:
        await v.ws.send_str(raw)
        err = await v.next("error")
        assert err["code"] == "bad_request" and err["msg"], raw
    await v.send({"t": "ping", "ref": 9})
    assert (await v.next("pong"))["ref"] == 9
    m, _ = await connect(
        session, memory_server.base, room["id"], memory_server.token("m"), codec="msgpack"
    )
    for raw in [b"\xc1", b"\x93\x01\x02\x03", msgpack.packb({1: 2}), b"\xa3\xff\xfe\xfd"]:
        await m.ws.send_bytes(raw)
        assert (await m.next("error"))["code"] == "bad_request"
    await m.ws.send_str('{"t":"ping"}')  # a text frame on a msgpack connection
    assert (await m.next("error"))["code"] == "bad_request"
    await m.send({"t": "ping"})
    assert (await m.next())["t"] == "pong"
    await v.close()
    await m.close()


async def test_oversized_frame_closes_1009_and_invalid_utf8_1007(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    v, _ = await connect(session, memory_server.base, room["id"], memory_server.token("v"))
    await v.ws.send_str('{"t":"dm","text":"' + "x" * 5000 + '"}')
    assert await v.closed() == 1009
    w, _ = await connect(session, memory_server.base, room["id"], memory_server.token("w"))
    # A text frame whose payload is not UTF-8: build it below aiohttp's str API.
    await w.ws._writer.send_frame(b'{"t":"dm","text":"\xff\xfe"}', aiohttp.WSMsgType.TEXT)
    assert await w.closed() == 1007
    # The server still serves everybody else.
    x, welcome = await connect(session, memory_server.base, room["id"], memory_server.token("x"))
    assert welcome["t"] == "welcome"
    await x.close()


async def test_bad_tokens_and_rooms_close_with_codes(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    cases = [
        (room["id"], memory_server.token("v") + "tampered", 4001),
        (room["id"], memory_server.token("v", ttl=-5), 4001),
        (room["id"], "", 4001),
        ("no-such-room", memory_server.token("v"), 4004),
        ("bad{room}", memory_server.token("v"), 4004),
    ]
    for rid, token, code in cases:
        v, _ = await connect(session, memory_server.base, rid, token, welcome=False)
        assert await v.closed() == code, (rid, code)
    async with session.get(
        memory_server.base + "/ws", params={"room": room["id"], "codec": "xml"}
    ) as r:
        assert r.status == 400
    flood = {f"p{i}": "x" for i in range(40)} | {"room": room["id"]}
    async with session.get(memory_server.base + "/ws", params=flood) as r:
        assert r.status == 400


async def test_likes_are_coalesced_into_totals(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    a, _ = await connect(session, memory_server.base, room["id"], memory_server.token("a"))
    b, _ = await connect(session, memory_server.base, room["id"], memory_server.token("b"))
    # Both viewers tap: 100 likes in all, each within the per-viewer burst (likes_per_s).
    for i in range(50):
        await (a if i % 2 else b).send({"t": "like", "n": 2})
    totals = []
    while not totals or totals[-1] < 100:
        totals.append((await b.next("like"))["total"])
    assert totals[-1] == 100
    assert totals == sorted(totals) and len(totals) < 50
    _, stats = await operator.call("GET", f"/api/v1/rooms/{room['id']}/stats")
    assert stats["likes"] == 100
    await a.close()
    await b.close()


async def test_online_counts_notices_and_server_messages(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    viewers = [
        (await connect(session, memory_server.base, rid, memory_server.token(f"u{i}")))[0]
        for i in range(3)
    ]
    count = 0
    while count != 3:
        count = (await viewers[0].next("online"))["count"]
    status, _ = await operator.call(
        "POST", f"/api/v1/rooms/{rid}/notices", {"text": "抽奖马上开始", "level": "warn"}
    )
    assert status == 202
    notice = await viewers[1].next("notice")
    assert notice == {"t": "notice", "text": "抽奖马上开始", "level": "warn"}
    status, body = await operator.call(
        "POST", f"/api/v1/rooms/{rid}/messages", {"text": "system says hi"}
    )
    assert status == 201
    dm = await viewers[2].next("dm")
    assert dm["seq"] == body["seq"] and dm["uid"] == "ops" and dm["role"] == "operator"
    await viewers[0].close()
    while count != 2:
        count = (await viewers[1].next("online"))["count"]
    _, stats = await operator.call("GET", f"/api/v1/rooms/{rid}/stats")
    assert stats["pv"] == 3 and stats["uv"] == 3 and stats["peak_online"] == 3
    for v in viewers[1:]:
        await v.close()


async def test_retraction_reaches_viewers_and_history(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    a, _ = await connect(session, memory_server.base, rid, memory_server.token("a"))
    for i in range(3):
        await a.send({"t": "dm", "text": f"m{i}", "ref": i})
        await a.ack(i)
    status, _ = await operator.call("DELETE", f"/api/v1/rooms/{rid}/messages/2")
    assert status == 204
    assert (await a.next("retract"))["seq"] == 2
    status, _ = await operator.call("DELETE", f"/api/v1/rooms/{rid}/messages/2")
    assert status == 404
    b, welcome = await connect(session, memory_server.base, rid, memory_server.token("b"))
    assert [m["seq"] for m in welcome["history"]] == [1, 3]
    await a.close()
    await b.close()


async def test_recovery_after_reconnect(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    """The memory server keeps 20 comments per room (INTERACT_HISTORY_SIZE=20)."""
    room = await operator.live_room()
    rid = room["id"]
    sender, _ = await connect(session, memory_server.base, rid, memory_server.token("s"))
    v, welcome = await connect(session, memory_server.base, rid, memory_server.token("v"))
    epoch = welcome["epoch"]

    async def say(n: int) -> list[int]:
        seqs = []
        for _ in range(n):
            await sender.send({"t": "dm", "text": "x", "ref": "s"})
            seqs.append((await sender.ack("s"))["seq"])
        return seqs

    await say(3)
    last = 0
    while last < 3:
        last = (await v.next("dm"))["seq"]
    await v.close()
    missed = await say(5)
    v2, w2 = await connect(
        session, memory_server.base, rid, memory_server.token("v"), since=last, epoch=epoch
    )
    assert w2["recovered"] is True and w2["epoch"] == epoch
    assert [m["seq"] for m in w2["history"]] == missed
    await v2.close()
    _, w3 = await connect(
        session, memory_server.base, rid, memory_server.token("v"), since=last, epoch="other-epoch"
    )
    assert w3["recovered"] is False
    await say(25)
    v4, w4 = await connect(
        session, memory_server.base, rid, memory_server.token("v"), since=last, epoch=epoch
    )
    assert w4["recovered"] is False and w4["seq"] == 33
    assert [m["seq"] for m in w4["history"]][-1] == 33
    await sender.close()
    await v4.close()


async def test_joiner_misses_nothing_during_a_flood(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    """Viewers joining while comments flow see every seq exactly once, history included."""
    room = await operator.live_room()
    rid = room["id"]
    sender, _ = await connect(session, memory_server.base, rid, memory_server.token("s"))
    stop = asyncio.Event()

    async def flood() -> None:
        i = 0
        while not stop.is_set():
            await sender.send({"t": "dm", "text": f"f{i}"})
            i += 1
            await asyncio.sleep(0.002)

    task = asyncio.create_task(flood())
    await asyncio.sleep(0.1)
    v, welcome = await connect(
        session, memory_server.base, rid, memory_server.token("j"), since=0, epoch=None
    )
    seen = [m["seq"] for m in welcome["history"]]
    await asyncio.sleep(0.3)
    stop.set()
    await task
    await sender.send({"t": "dm", "text": "last", "ref": "end"})
    final = (await sender.ack("end"))["seq"]
    while not seen or seen[-1] < final:
        seen.append((await v.next("dm"))["seq"])
    assert seen == list(range(seen[0], final + 1))
    await sender.close()
    await v.close()
