"""Moderation against real server processes: filter, pacing, mutes, bans, review, breaker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from tests.e2e.harness import Api, ServerProcess, connect

StartServer = Callable[..., ServerProcess]

PACED = {"INTERACT_RATE_PER_S": "1", "INTERACT_RATE_BURST": "3", "INTERACT_REPEAT_WINDOW": "5"}


async def test_filter_rejects_masks_and_holds_for_review(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    sender, _ = await connect(session, memory_server.base, rid, memory_server.token("s"))
    other, _ = await connect(session, memory_server.base, rid, memory_server.token("o"))
    tricks = ["加微信abc123", "ｈｔｔｐ://spam.cn", "加\u200b微\u200b信 x888", "加 微 信 kk12345"]
    for i, text in enumerate(tricks):
        # One sender each: three refusals would mute a sender (tested below).
        trickster, _ = await connect(session, memory_server.base, rid, memory_server.token(f"t{i}"))
        await trickster.send({"t": "dm", "text": text, "ref": i})
        ack = await trickster.ack(i)
        assert ack["ok"] is False and ack["code"] == "rejected", (text, ack)
        await trickster.close()
    await sender.send({"t": "dm", "text": "电话13800138000", "ref": "mask"})
    assert (await sender.ack("mask"))["ok"] is True
    masked = await other.next("dm")
    assert masked["text"] == "电话" + "*" * 11
    await sender.send({"t": "dm", "text": "私聊我有好货", "ref": "held"})
    held = await sender.ack("held")
    assert held["ok"] is True and held["held"] is True and "seq" not in held
    status, queue = await operator.call("GET", f"/api/v1/rooms/{rid}/moderation/review")
    assert status == 200 and len(queue["items"]) == 1
    item = queue["items"][0]
    assert item["comment"]["text"] == "私聊我有好货"
    status, released = await operator.call(
        "POST", f"/api/v1/rooms/{rid}/moderation/review/{item['id']}/release"
    )
    assert status == 200
    assert (await other.next("dm"))["seq"] == released["seq"]
    status, _ = await operator.call(
        "POST", f"/api/v1/rooms/{rid}/moderation/review/{item['id']}/drop"
    )
    assert status == 409  # handled once only
    _, log = await operator.call("GET", f"/api/v1/rooms/{rid}/moderation/events")
    actions = [e["action"] for e in log["events"]]
    assert actions.count("reject") == 4 and "mask" in actions and "review" in actions
    assert "release" in actions
    _, metrics = await operator.call("GET", "/metrics")
    assert b'interact_moderation_verdicts_total{action="reject",category="contact"}' in metrics
    await sender.close()
    await other.close()


async def test_three_refusals_mute_the_sender(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    v, _ = await connect(session, memory_server.base, rid, memory_server.token("spammer"))
    for i in range(3):
        await v.send({"t": "dm", "text": f"加微信 abc{i}23", "ref": i})
        assert (await v.ack(i))["code"] == "rejected"
    await v.send({"t": "dm", "text": "hello", "ref": "after"})
    ack = await v.ack("after")
    assert ack["code"] == "muted" and 590_000 < ack["remaining_ms"] <= 600_000
    await v.close()
    # Reconnecting does not shake a mute off.
    v2, _ = await connect(session, memory_server.base, rid, memory_server.token("spammer"))
    await v2.send({"t": "dm", "text": "hello again", "ref": 1})
    assert (await v2.ack(1))["code"] == "muted"
    status, mutes = await operator.call("GET", f"/api/v1/rooms/{rid}/mutes")
    assert [m["uid"] for m in mutes["mutes"]] == ["spammer"] and mutes["mutes"][0]["by"] == "system"
    status, _ = await operator.call("DELETE", f"/api/v1/rooms/{rid}/mutes/spammer")
    assert status == 204
    await v2.send({"t": "dm", "text": "free", "ref": 2})
    assert (await v2.ack(2))["ok"] is True
    await v2.close()


async def test_pacing_rate_repeat_and_slow_mode(
    servers: StartServer, session: aiohttp.ClientSession
) -> None:
    server = servers(env=PACED)
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    v, _ = await connect(session, server.base, rid, server.token("fast"))
    codes = []
    for i in range(4):
        await v.send({"t": "dm", "text": f"msg {i}", "ref": i})
        codes.append(await v.ack(i))
    assert [a["ok"] for a in codes] == [True, True, True, False]
    assert codes[3]["code"] == "rate_limited" and 0 < codes[3]["retry_after_ms"] <= 1000
    await asyncio.sleep(codes[3]["retry_after_ms"] / 1000 + 0.05)
    await v.send({"t": "dm", "text": "msg 0", "ref": "repeat"})
    repeat = await v.ack("repeat")
    assert repeat["code"] == "rate_limited" and repeat["rule"] == "repeat"
    status, body = await op.call("POST", f"/api/v1/rooms/{rid}/slow-mode", {"seconds": 30})
    assert status == 200 and body["slow_mode"] == 30
    w, _ = await connect(session, server.base, rid, server.token("calm"))
    await w.send({"t": "dm", "text": "first", "ref": 1})
    assert (await w.ack(1))["ok"] is True
    await w.send({"t": "dm", "text": "second", "ref": 2})
    slow = await w.ack(2)
    assert slow["code"] == "rate_limited" and slow["rule"] == "slow_mode"
    assert 29_000 < slow["retry_after_ms"] <= 30_000
    # The anchor and operators are not paced.
    staff, _ = await connect(session, server.base, rid, server.token("ops2", "operator"))
    for i in range(5):
        await staff.send({"t": "dm", "text": "公告", "ref": i})
        assert (await staff.ack(i))["ok"] is True
    status, _ = await op.call("POST", f"/api/v1/rooms/{rid}/slow-mode", {"seconds": -1})
    assert status == 400
    for viewer in (v, w, staff):
        await viewer.close()


async def test_mute_rights_and_shapes(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    anchor = Api(session, memory_server.base, memory_server.token("anc", "anchor"))
    _, own = await anchor.call("POST", "/api/v1/rooms", {"title": "mine"})
    _, foreign = await operator.call("POST", "/api/v1/rooms", {"title": "not yours"})
    status, body = await anchor.call(
        "POST", f"/api/v1/rooms/{own['id']}/mutes", {"uid": "troll", "seconds": 60}
    )
    assert status == 201 and body["uid"] == "troll" and body["until"] > 0
    status, _ = await anchor.call(
        "POST", f"/api/v1/rooms/{foreign['id']}/mutes", {"uid": "troll", "seconds": 60}
    )
    assert status == 403
    viewer = Api(session, memory_server.base, memory_server.token("v"))
    status, _ = await viewer.call(
        "POST", f"/api/v1/rooms/{own['id']}/mutes", {"uid": "troll", "seconds": 60}
    )
    assert status == 403
    for bad in [
        {"uid": "troll"},
        {"uid": "troll", "seconds": 0},
        {"uid": "a b", "seconds": 5},
        {"uid": "x", "seconds": "5"},
    ]:
        status, _ = await anchor.call("POST", f"/api/v1/rooms/{own['id']}/mutes", bad)
        assert status == 400, bad
    status, _ = await anchor.call("DELETE", f"/api/v1/rooms/{own['id']}/mutes/nobody")
    assert status == 404


async def test_ban_closes_connections_and_refuses_new_ones(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    v, _ = await connect(session, memory_server.base, rid, memory_server.token("bad"))
    status, body = await operator.call(
        "POST", "/api/v1/moderation/bans", {"uid": "bad", "reason": "fraud"}
    )
    assert status == 201 and body["until"] is None
    assert await v.closed() == 4003
    again, _ = await connect(
        session, memory_server.base, rid, memory_server.token("bad"), welcome=False
    )
    assert await again.closed() == 4003
    anchor = Api(session, memory_server.base, memory_server.token("anc", "anchor"))
    status, _ = await anchor.call("POST", "/api/v1/moderation/bans", {"uid": "x"})
    assert status == 403
    status, _ = await operator.call("DELETE", "/api/v1/moderation/bans/bad")
    assert status == 204
    back, welcome = await connect(session, memory_server.base, rid, memory_server.token("bad"))
    assert welcome["t"] == "welcome"
    await back.close()


async def test_word_list_update_validates_and_replaces(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    v, _ = await connect(session, memory_server.base, rid, memory_server.token("w"))
    _, before = await operator.call("GET", "/api/v1/moderation/words")
    for bad in [
        {"words": [{"word": "", "action": "reject"}]},
        {"words": [{"word": "ok", "action": "explode"}]},
        {"words": [{"word": "坏词", "action": "reject"}], "allow": ["坏词"]},
        {"words": "nope"},
        {"words": [{"action": "reject"}]},
    ]:
        status, body = await operator.call("PUT", "/api/v1/moderation/words", bad)
        assert status == 400 and body["error"]["problems"], bad
    _, unchanged = await operator.call("GET", "/api/v1/moderation/words")
    assert unchanged == before
    status, body = await operator.call(
        "PUT",
        "/api/v1/moderation/words",
        {
            "words": [
                {"word": "坏词", "action": "reject", "category": "test"},
                {"word": "小号", "action": "mask"},
            ],
            "allow": ["不坏词"],
        },
    )
    assert status == 200 and body["words"] == 2 and body["allow"] == 1
    await v.send({"t": "dm", "text": "这是 坏 词", "ref": 1})
    assert (await v.ack(1))["code"] == "rejected"
    await v.send({"t": "dm", "text": "说的不坏词", "ref": 2})
    assert (await v.ack(2))["ok"] is True
    await v.send({"t": "dm", "text": "兼职刷单", "ref": 3})  # the default list is replaced
    assert (await v.ack(3))["ok"] is True
    viewer = Api(session, memory_server.base, memory_server.token("w"))
    status, _ = await viewer.call("PUT", "/api/v1/moderation/words", {"words": []})
    assert status == 403
    # Put the default list back for the module's other tests.
    await operator.call("PUT", "/api/v1/moderation/words", before)
    await v.close()


async def test_room_breaker_switches_slow_mode_and_alerts_staff(
    servers: StartServer, session: aiohttp.ClientSession
) -> None:
    server = servers(env={"INTERACT_BREAKER_MIN_COMMENTS": "5", "INTERACT_ESCALATE_AFTER": "100"})
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    staff, _ = await connect(session, server.base, rid, server.token("mod", "operator"))
    viewers = [
        (await connect(session, server.base, rid, server.token(f"v{i}")))[0] for i in range(3)
    ]
    for i in range(4):
        await viewers[0].send({"t": "dm", "text": f"ok {i}", "ref": f"ok{i}"})
        assert (await viewers[0].ack(f"ok{i}"))["ok"]
    for i in range(2):
        await viewers[1].send({"t": "dm", "text": f"加微信abc{i}99", "ref": f"bad{i}"})
        assert (await viewers[1].ack(f"bad{i}"))["code"] == "rejected"
    alert = await staff.next("notice")
    assert alert["level"] == "alert" and "slow mode" in alert["text"]
    await asyncio.sleep(0.3)
    assert not [
        m
        for m in [*viewers[2].backlog, *viewers[2].inbox._queue]  # type: ignore[attr-defined]
        if m.get("t") == "notice"
    ]
    await viewers[2].send({"t": "dm", "text": "one", "ref": 1})
    assert (await viewers[2].ack(1))["ok"] is True
    await viewers[2].send({"t": "dm", "text": "two", "ref": 2})
    assert (await viewers[2].ack(2))["rule"] == "slow_mode"
    _, log = await op.call("GET", f"/api/v1/rooms/{rid}/moderation/events")
    assert any(e["category"] == "breaker" and e["action"] == "slow_mode" for e in log["events"])
    for v in [staff, *viewers]:
        await v.close()


async def test_review_respects_room_state_and_masks(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    v, _ = await connect(session, memory_server.base, rid, memory_server.token("rv"))
    await v.send({"t": "dm", "text": "私聊 13800138000", "ref": 1})
    assert (await v.ack(1))["held"] is True
    _, queue = await operator.call("GET", f"/api/v1/rooms/{rid}/moderation/review")
    assert queue["items"][-1]["comment"]["text"] == "私聊 " + "*" * 11
    await operator.call("POST", f"/api/v1/rooms/{rid}/pause")
    await v.send({"t": "dm", "text": "私聊我", "ref": 2})
    assert (await v.ack(2))["code"] == "room_not_live"
    _, again = await operator.call("GET", f"/api/v1/rooms/{rid}/moderation/review")
    assert len(again["items"]) == len(queue["items"])
    await v.close()


async def test_banned_users_cannot_grab_or_enter_over_rest(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    _, packet = await operator.call(
        "POST", f"/api/v1/rooms/{rid}/red-packets", {"total_fen": 100, "count": 1}
    )
    await operator.call("POST", "/api/v1/moderation/bans", {"uid": "cheat", "seconds": 60})
    cheat = Api(session, memory_server.base, memory_server.token("cheat"))
    status, body = await cheat.call("POST", f"/api/v1/red-packets/{packet['id']}/grab")
    assert status == 403 and body["error"]["code"] == "forbidden"
    _, view = await operator.call("GET", f"/api/v1/red-packets/{packet['id']}")
    assert view["left"] == 1
    await operator.call("DELETE", "/api/v1/moderation/bans/cheat")


async def test_a_large_word_list_fits_in_one_put(operator: Api) -> None:
    _, before = await operator.call("GET", "/api/v1/moderation/words")
    words = [{"word": f"词{i:05d}", "action": "reject"} for i in range(5000)]
    status, body = await operator.call("PUT", "/api/v1/moderation/words", {"words": words})
    assert status == 200 and body["words"] == 5000
    status, _ = await operator.call("PUT", "/api/v1/moderation/words", before)
    assert status == 200
