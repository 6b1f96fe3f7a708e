"""Growth against real server processes: invite attribution through ``/ws?inv=`` on both
upgrade paths with exact counts and money, and pre-live reminders sent once across a
SIGKILL of the sending process (two processes on one Redis, the fake WeChat)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess
from tests.e2e.test_sales import make_sale, order
from tests.fakes.wechat import FakeWeChat

StartServer = Callable[..., ServerProcess]
TPL = "tpl-live-start"
PAGE = "pages/room/room"
SEND = "/cgi-bin/message/subscribe/send"


async def eventually(check: Callable[[], Any], within: float = 15.0) -> Any:
    """Poll an async ``check`` until it answers something truthy, else fail."""
    deadline = time.monotonic() + within
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within}s")
        await asyncio.sleep(0.05)


async def buy(server: ServerProcess, session: aiohttp.ClientSession, uid: str, sale: str,
              qty: int) -> dict[str, Any]:  # fmt: skip
    buyer = Api(session, server.base, server.token(uid))
    status, reserved = await order(buyer, sale, f"{uid}-{qty}", qty)
    assert status == 201, reserved
    status, paid = await buyer.call("POST", f"/api/v1/orders/{reserved['id']}/pay")
    assert status == 200, paid
    status, done = await buyer.call("POST", paid["confirm_url"])
    assert status == 200 and done["status"] == "paid", done
    return reserved


@pytest.mark.parametrize(
    ("engine", "raw"), [("memory", "true"), ("memory", "false"), ("redis", "true")]
)
async def test_invitees_entering_through_tokens_are_counted_exactly(
    servers: StartServer, session: aiohttp.ClientSession, engine: str, raw: str,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    env = {"INTERACT_RAW_UPGRADE": raw, "INTERACT_PAY_PROVIDER": "dev"}
    if engine == "redis":
        env["INTERACT_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["INTERACT_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    server = servers(env=env)
    operator = Api(session, server.base, server.token("ops", "operator"))
    rid = (await operator.live_room())["id"]
    sale = (await make_sale(operator, rid, stock=20))["id"]

    async def share(uid: str) -> str:
        status, got = await Api(session, server.base, server.token(uid)).call(
            "POST", f"/api/v1/rooms/{rid}/share-tokens"
        )
        assert status == 201 and got["new"], got
        assert len(got["token"]) == 16 and uid not in got["token"]
        return str(got["token"])

    async def enter(uid: str, inv: str) -> None:
        params = {"room": rid, "token": server.token(uid), "inv": inv}
        async with session.ws_connect(server.base + "/ws", params=params) as ws:
            welcome = (await ws.receive_json())[0]
            assert welcome["t"] == "welcome", welcome

    async def figures() -> dict[str, Any]:
        status, got = await operator.call("GET", f"/api/v1/rooms/{rid}/invites")
        assert status == 200, got
        return dict(got)

    a = await share("alice")
    # dave paid before anyone invited him: not a purchase the invite brought.
    await buy(server, session, "dave", sale, 1)
    await enter("bob", a)
    await enter("carol", a)
    await eventually(lambda: _uv(figures, 2))
    b = await share("bob")
    await enter("dave", b)  # depth 2
    await enter("alice", b)  # alice is the root of bob's chain: a loop, ignored
    await enter("alice", a)  # her own token: ignored
    c = await share("carol")
    await enter("bob", c)  # bob came through alice first: first touch wins
    await enter("erin", "Q" * 16)  # a token nobody holds: nothing
    await eventually(lambda: _uv(figures, 3))
    await buy(server, session, "bob", sale, 2)
    refunded = await buy(server, session, "carol", sale, 1)
    status, _ = await operator.call("POST", f"/api/v1/orders/{refunded['id']}/refund")
    assert status == 200
    await buy(server, session, "erin", sale, 1)  # not invited

    got = await figures()
    assert got == {
        "room": rid,
        "opens": 5,  # alice→bob, alice→carol, bob→dave, bob→alice, carol→bob
        "invited_uv": 3,
        "inviters": 2,
        "invited_buyers": 2,  # bob, carol (refunded, still a buyer)
        "invited_gmv_fen": 2 * 9900,  # bob's 2; carol's 1 refunded; dave's before his invite
        "k_factor": 1.5,
        "depths": {"1": 2, "2": 1},
    }
    for uid, n in (("alice", 2), ("bob", 1), ("carol", 0), ("zed", 0)):
        status, mine = await Api(session, server.base, server.token(uid)).call(
            "GET", f"/api/v1/me/invites?room={rid}"
        )
        assert status == 200 and mine == {"room": rid, "invited": n}, (uid, mine)

    # A malformed inv is refused before the upgrade, as a bad codec is, on either path.
    for bad in ("short", "x" * 17, "bad token!!!!!!!", "a" * 600):
        params = {"room": rid, "token": server.token("frank"), "inv": bad}
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(server.base + "/ws", params=params)
        assert info.value.status == 400
    # Only staff see the room's figures; viewers their own.
    status, _ = await Api(session, server.base, server.token("bob")).call(
        "GET", f"/api/v1/rooms/{rid}/invites"
    )
    assert status == 403
    status, _ = await operator.call("GET", "/api/v1/me/invites?room=bad%20id")
    assert status == 400


async def test_a_share_open_event_attributes_once(
    servers: StartServer, session: aiohttp.ClientSession
) -> None:
    server = servers()
    operator = Api(session, server.base, server.token("ops", "operator"))
    rid = (await operator.live_room())["id"]
    alice = Api(session, server.base, server.token("alice"))
    _, got = await alice.call("POST", f"/api/v1/rooms/{rid}/share-tokens")
    bob = Api(session, server.base, server.token("bob"))
    event = {"id": "e1", "type": "share_open", "share_token": got["token"]}
    for _ in range(2):  # a retried batch: the event id is counted once
        status, answer = await bob.call("POST", f"/api/v1/rooms/{rid}/events", {"events": [event]})
        assert status == 202, answer
    second = {"id": "e2", "type": "share_open", "share_token": got["token"]}
    status, _ = await bob.call("POST", f"/api/v1/rooms/{rid}/events", {"events": [second]})
    assert status == 202
    status, figures = await operator.call("GET", f"/api/v1/rooms/{rid}/invites")
    assert status == 200
    assert (figures["opens"], figures["invited_uv"], figures["inviters"]) == (1, 1, 1)
    assert figures["depths"] == {"1": 1} and figures["k_factor"] == 1.0
    _, mine = await alice.call("GET", f"/api/v1/me/invites?room={rid}")
    assert mine == {"room": rid, "invited": 1}


async def _uv(figures: Callable[[], Any], n: int) -> bool:
    return bool((await figures())["invited_uv"] == n)


async def test_share_tokens_are_capped_and_rate_limited(
    servers: StartServer, session: aiohttp.ClientSession
) -> None:
    server = servers(env={"INTERACT_SHARE_TOKENS_PER_ROOM": "2"})
    operator = Api(session, server.base, server.token("ops", "operator"))
    rid = (await operator.live_room())["id"]
    viewer = Api(session, server.base, server.token("v1"))
    answers = [await viewer.call("POST", f"/api/v1/rooms/{rid}/share-tokens") for _ in range(12)]
    statuses = [s for s, _ in answers]
    assert statuses[:2] == [201, 201]
    assert statuses[2:10] == [200] * 8  # past the cap: the newest again
    assert {b["token"] for _, b in answers[2:10]} == {answers[1][1]["token"]}
    assert statuses[10:] == [429, 429]  # past the burst of 10
    assert answers[11][1]["error"]["code"] == "rate_limited"
    status, _ = await viewer.call("POST", "/api/v1/rooms/nope/share-tokens")
    assert status == 404
    status, _ = await Api(session, server.base, None).call(
        "POST", f"/api/v1/rooms/{rid}/share-tokens"
    )
    assert status == 401


async def test_schedule_and_subscription_bounds(
    servers: StartServer, session: aiohttp.ClientSession
) -> None:
    server = servers(env={"INTERACT_REMINDER_TEMPLATES": TPL})
    operator = Api(session, server.base, server.token("ops", "operator"))
    now = int(time.time() * 1000)
    for bad in (now - 1, now + 1000, now + 91 * 24 * 3600 * 1000, "soon", True, 1.5e12):
        status, err = await operator.call(
            "POST", "/api/v1/rooms", {"title": "t", "scheduled_at": bad}
        )
        assert status == 400 and "scheduled_at" in err["error"]["message"], bad
    status, room = await operator.call("POST", "/api/v1/rooms", {"title": "t"})
    assert status == 201 and room["scheduled_at"] is None
    rid = room["id"]
    viewer = Api(session, server.base, server.token("v1"))
    status, err = await viewer.call(
        "POST", f"/api/v1/rooms/{rid}/subscriptions", {"templates": [TPL]}
    )
    assert status == 409, err  # nothing scheduled to be reminded of
    at = now + 3_600_000
    status, put = await operator.call("PUT", f"/api/v1/rooms/{rid}/schedule", {"scheduled_at": at})
    assert status == 200 and put["scheduled_at"] == at
    status, err = await viewer.call("PUT", f"/api/v1/rooms/{rid}/schedule", {"scheduled_at": at})
    assert status == 403
    for body in ({"templates": ["other"]}, {"templates": []}, {"templates": [TPL] * 11},
                 {"templates": TPL}, {"templates": [TPL], "x": 1}):  # fmt: skip
        status, err = await viewer.call("POST", f"/api/v1/rooms/{rid}/subscriptions", body)
        assert status == 400, body
    status, sub = await viewer.call(
        "POST", f"/api/v1/rooms/{rid}/subscriptions", {"templates": [TPL] * 3}
    )
    assert status == 201 and sub == {"room": rid, "added": 3, "credits": {TPL: 3}}
    status, sub = await viewer.call(
        "POST", f"/api/v1/rooms/{rid}/subscriptions", {"templates": [TPL] * 3}
    )
    assert status == 201 and sub["added"] == 1 and sub["credits"] == {TPL: 4}  # the cap
    status, sub = await viewer.call(
        "POST", f"/api/v1/rooms/{rid}/subscriptions", {"templates": [TPL]}
    )
    assert status == 200 and sub["added"] == 0
    status, _ = await operator.call("POST", f"/api/v1/rooms/{rid}/start")
    assert status == 200
    status, err = await operator.call("PUT", f"/api/v1/rooms/{rid}/schedule", {"scheduled_at": at})
    assert status == 409
    status, err = await viewer.call(
        "POST", f"/api/v1/rooms/{rid}/subscriptions", {"templates": [TPL]}
    )
    assert status == 409


async def test_reminders_are_sent_once_across_a_sigkill_of_the_sender(
    servers: StartServer, session: aiohttp.ClientSession, redis_url: str, redis_prefix: str
) -> None:
    async with FakeWeChat() as fake:
        fake.subscribe_templates[TPL] = {"thing1": "thing", "time2": "time"}
        fake.subscribe_pages.add(PAGE)
        # Every send is slow: the sender is caught mid-round with a request in flight.
        fake.fail_next(SEND, delay=0.3, times=10_000)
        env = {
            "INTERACT_REDIS_URL": redis_url,
            "INTERACT_REDIS_PREFIX": redis_prefix,
            "INTERACT_WECHAT_APPID": fake.appid,
            "INTERACT_WECHAT_SECRET": fake.secret,
            "INTERACT_WECHAT_API_BASE": fake.base_url or "",
            "INTERACT_REMINDER_TEMPLATES": TPL,
            "INTERACT_REMINDER_PAGE": PAGE,
            "INTERACT_REMINDER_LEAD": "54",
            "INTERACT_REMINDER_LEASE": "2",
            "INTERACT_REMINDER_POLL": "0.1",
            "INTERACT_REMINDER_PER_S": "100",
        }
        one, two = servers(env=env), servers(env=env)
        operator = Api(session, one.base, one.token("ops", "operator"))
        start = int(time.time() * 1000) + 62_000  # the LEAD reminder is due in ~8 s
        status, room = await operator.call(
            "POST", "/api/v1/rooms", {"title": "新品首发", "scheduled_at": start}
        )
        assert status == 201 and room["scheduled_at"] == start
        rid = room["id"]
        uids = [f"o_viewer_{i:02d}" for i in range(16)]
        for i, uid in enumerate(uids):
            fake.grant_subscribe(uid, TPL, 2)
            server = one if i % 2 else two
            status, sub = await Api(session, server.base, server.token(uid)).call(
                "POST", f"/api/v1/rooms/{rid}/subscriptions", {"templates": [TPL, TPL]}
            )
            assert status == 201 and sub["credits"] == {TPL: 2}, sub

        async def sending() -> ServerProcess | None:
            # A few sent, and the next one in flight (inside the fake's delay).
            if not 3 <= len(fake.subscribe_sent) < fake.calls[SEND]:
                return None
            holders = [s for s in (one, two) if "reminder job claimed" in s.log()]
            return holders[0] if len(holders) == 1 else None

        sender = await eventually(sending, within=30)
        sender.stop(signal.SIGKILL)
        # The request in flight still completes at the fake (aiohttp does not cancel a
        # handler when its client goes away): WeChat got it, and the pending marker
        # written before it keeps the survivor from sending it again.
        in_flight = fake.calls[SEND]
        survivor = two if sender is one else one
        await eventually(lambda: _count(fake, len(uids)), within=30)
        assert in_flight < len(uids)  # killed mid-round, not after it
        assert "reminder job claimed" in survivor.log()
        sent = Counter(m["touser"] for m in fake.subscribe_sent)
        assert sent == Counter({uid: 1 for uid in uids})
        assert fake.calls[SEND] == len(uids)  # nothing sent twice, nothing retried
        assert {m["page"] for m in fake.subscribe_sent} == {f"{PAGE}?room={rid}"}
        # The claimed job is gone once the survivor finished it: nothing left to resend.
        assert await eventually(lambda: _no_lead_job(redis_url, redis_prefix, rid))


async def _count(fake: FakeWeChat, n: int) -> bool:
    return len(fake.subscribe_sent) >= n


async def _no_lead_job(redis_url: str, prefix: str, rid: str) -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        members = await client.zrange(f"{prefix}g:reminders:due", 0, -1)
    finally:
        await client.aclose()
    return not any(m.decode().startswith(f"{rid}\tlead") for m in members)
