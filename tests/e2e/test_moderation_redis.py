"""Moderation across two server processes on one Redis, and WeChat content security."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import aiohttp

from tests.e2e.harness import Api, ServerProcess, connect
from tests.fakes.wechat import FakeWeChat

StartServer = Callable[..., ServerProcess]


def env_for(url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {"INTERACT_REDIS_URL": url, "INTERACT_REDIS_PREFIX": prefix, **extra}


async def until_words_version(op: Api, version: int, within: float = 10.0) -> None:
    """Wait until the process behind ``op`` applied word list ``version`` (its GET answers
    the list in force there, not the stored one)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        status, words = await op.call("GET", "/api/v1/moderation/words")
        assert status == 200, words
        if words["version"] >= version:
            return
        assert loop.time() < deadline, f"word list {version} not applied; at {words['version']}"
        await asyncio.sleep(0.05)  # the processes poll the version twice a second


async def test_mutes_bans_words_and_retractions_cross_processes(
    servers: StartServer, session: aiohttp.ClientSession, redis_url: str, redis_prefix: str
) -> None:
    env = env_for(redis_url, redis_prefix)
    one, two = servers(env=env), servers(env=env)
    op1 = Api(session, one.base, one.token("ops", "operator"))
    op2 = Api(session, two.base, two.token("ops", "operator"))
    rid = (await op1.live_room())["id"]
    a, _ = await connect(session, one.base, rid, one.token("a"))
    b, _ = await connect(session, two.base, rid, two.token("b"))
    # A comment refused on one process never reaches the other.
    await b.send({"t": "dm", "text": "加微信abc123", "ref": 1})
    assert (await b.ack(1))["code"] == "rejected"
    # A mute set through process one applies to a viewer on process two.
    status, _ = await op1.call("POST", f"/api/v1/rooms/{rid}/mutes", {"uid": "b", "seconds": 60})
    assert status == 201
    await b.send({"t": "dm", "text": "hi", "ref": 2})
    assert (await b.ack(2))["code"] == "muted"
    status, _ = await op2.call("DELETE", f"/api/v1/rooms/{rid}/mutes/b")
    assert status == 204
    await b.send({"t": "dm", "text": "hi again", "ref": 3})
    seq = (await b.ack(3))["seq"]
    assert (await a.next("dm"))["seq"] == seq
    # A retraction through process one reaches viewers on both.
    status, _ = await op1.call("DELETE", f"/api/v1/rooms/{rid}/messages/{seq}")
    assert status == 204
    assert (await a.next("retract"))["seq"] == seq
    assert (await b.next("retract"))["seq"] == seq
    _, w = await connect(session, two.base, rid, two.token("late"))
    assert seq not in [m["seq"] for m in w["history"]]
    # A word list set through process one is in force on process two: before it, the
    # viewer on process two may say the word; once process two reports the new version,
    # the same comment is refused there.
    await b.send({"t": "dm", "text": "新 禁 词", "ref": 4})
    assert (await b.ack(4))["ok"] is True
    status, put = await op1.call(
        "PUT",
        "/api/v1/moderation/words",
        {"words": [{"word": "新禁词", "action": "reject"}], "allow": []},
    )
    assert status == 200
    await until_words_version(op2, put["version"])
    _, words = await op2.call("GET", "/api/v1/moderation/words")
    assert [x["word"] for x in words["words"]] == ["新禁词"]
    await b.send({"t": "dm", "text": "新 禁 词", "ref": 5})
    assert (await b.ack(5))["code"] == "rejected"
    await a.send({"t": "dm", "text": "新 禁 词", "ref": 6})
    assert (await a.ack(6))["code"] == "rejected"
    # A ban through process two closes the viewer's connection on process one.
    status, _ = await op2.call("POST", "/api/v1/moderation/bans", {"uid": "a", "seconds": 60})
    assert status == 201
    assert await a.closed() == 4003
    back, _ = await connect(session, one.base, rid, one.token("a"), welcome=False)
    assert await back.closed() == 4003
    await b.close()


def gauge(metrics: bytes, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$".encode(), metrics, re.MULTILINE)
    assert match, name
    return float(match.group(1))


async def test_content_security_retracts_risky_and_its_breaker_trips_and_recovers(
    servers: StartServer, session: aiohttp.ClientSession, redis_url: str, redis_prefix: str
) -> None:
    async with FakeWeChat() as fake:
        env = env_for(
            redis_url,
            redis_prefix,
            INTERACT_WECHAT_APPID=fake.appid,
            INTERACT_WECHAT_SECRET=fake.secret,
            INTERACT_WECHAT_API_BASE=fake.base_url,
            INTERACT_CONTENT_SECURITY="on",
            INTERACT_CONTENT_SECURITY_FAILURES="3",
            INTERACT_CONTENT_SECURITY_COOLDOWN="1",
            INTERACT_CONTENT_SECURITY_TIMEOUT="0.5",
        )
        one, two = servers(env=env), servers(env=env)
        op = Api(session, one.base, one.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        sender, _ = await connect(session, one.base, rid, one.token("openid-1"))
        watcher, _ = await connect(session, two.base, rid, two.token("w"))
        fake.sec_rules["违规内容"] = "risky"
        await sender.send({"t": "dm", "text": "这是违规内容", "ref": 1})
        seq = (await sender.ack(1))["seq"]
        assert (await watcher.next("dm"))["seq"] == seq
        assert (await watcher.next("retract", timeout=5))["seq"] == seq
        _, log = await op.call("GET", f"/api/v1/rooms/{rid}/moderation/events")
        assert any(e["by"] == "wechat" and e["action"] == "retract" for e in log["events"])
        # WeChat fails: after 3 failures the breaker opens and comments flow on the
        # local filter alone, without calling WeChat.
        fake.fail_next("/wxa/msg_sec_check", errcode=-1, times=3)
        for i in range(3):
            await sender.send({"t": "dm", "text": f"普通 {i}", "ref": f"f{i}"})
            assert (await sender.ack(f"f{i}"))["ok"] is True
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        _, metrics = await op.call("GET", "/metrics")
        assert gauge(metrics, "interact_content_security_breaker_open") == 1
        calls = fake.calls["/wxa/msg_sec_check"]
        await sender.send({"t": "dm", "text": "while open", "ref": "open"})
        assert (await sender.ack("open"))["ok"] is True
        await asyncio.sleep(0.2)
        assert fake.calls["/wxa/msg_sec_check"] == calls
        # After the cool-down one probe goes through, succeeds, and closes it.
        await asyncio.sleep(1.1)
        await sender.send({"t": "dm", "text": "probe", "ref": "probe"})
        assert (await sender.ack("probe"))["ok"] is True
        for _ in range(50):
            _, metrics = await op.call("GET", "/metrics")
            if gauge(metrics, "interact_content_security_breaker_open") == 0:
                break
            await asyncio.sleep(0.1)
        assert gauge(metrics, "interact_content_security_breaker_open") == 0
        assert fake.calls["/wxa/msg_sec_check"] == calls + 1
        await sender.close()
        await watcher.close()
