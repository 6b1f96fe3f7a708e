"""``POST /rooms/{id}/events`` and ``GET /rooms/{id}/analytics`` over HTTP: who may call
them, the bounds, the clear errors, deduplication and the per-user rate."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from rooms.audience import MAX_ITEMS
from tests.e2e.harness import Api, ServerProcess, connect


def _events(n: int, tag: str = "e", kind: str = "exposure") -> dict[str, object]:
    return {"events": [{"id": f"{tag}{i}", "type": kind} for i in range(n)]}


async def _sale(op: Api, rid: str, price_fen: int = 500) -> str:
    body = {"title": "t", "price_fen": price_fen, "stock": 50, "limit": 5}
    status, sale = await op.call("POST", f"/api/v1/rooms/{rid}/sales", body)
    assert status == 201, sale
    return str(sale["id"])


async def _figures(op: Api, rid: str, want: dict[str, Any], within: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        status, f = await op.call("GET", f"/api/v1/rooms/{rid}/analytics")
        assert status == 200, f
        if all(f[k] == v for k, v in want.items()):
            return f
        assert time.monotonic() < deadline, (want, f)
        await asyncio.sleep(0.05)


async def test_events_count_once_and_show_in_the_analytics(
    memory_server: ServerProcess, operator: Api, session: aiohttp.ClientSession
) -> None:
    rid = (await operator.live_room())["id"]
    sku = await _sale(operator, rid)
    alice = Api(session, memory_server.base, memory_server.token("alice"))
    bob = Api(session, memory_server.base, memory_server.token("bob"))
    batch = {"events": [
        {"id": "a1", "type": "exposure"},
        {"id": "a2", "type": "product_view", "item": sku},
        {"id": "a3", "type": "product_click", "item": sku},
        {"id": "a4", "type": "share_open", "share_token": "tok-from-carol"},
        {"id": "a1", "type": "exposure"},  # repeated within the batch
    ]}  # fmt: skip
    assert await alice.call("POST", f"/api/v1/rooms/{rid}/events", batch) == (
        202, {"accepted": 4, "duplicates": 1},
    )  # fmt: skip
    # The client retries the same batch: nothing new.
    assert (await alice.call("POST", f"/api/v1/rooms/{rid}/events", batch))[1] == {
        "accepted": 0, "duplicates": 5,
    }  # fmt: skip
    # The same ids from someone else are their own events.
    assert (await bob.call("POST", f"/api/v1/rooms/{rid}/events", _events(1, "a")))[1] == {
        "accepted": 1, "duplicates": 0,
    }  # fmt: skip
    viewer, _ = await connect(session, memory_server.base, rid, memory_server.token("alice"))
    f = await _figures(operator, rid, {"watch_uv": 1, "exposure_uv": 2})
    assert (f["exposure_pv"], f["exposure_enter_uv"], f["exposure_enter_rate"]) == (2, 1, 0.5)
    assert (f["product_view_uv"], f["product_click_uv"], f["product_click_rate"]) == (1, 1, 1.0)
    assert (f["share_open_uv"], f["share_open_pv"], f["watch_pv"]) == (1, 1, 1)
    assert f["last_10_min"]["current"]["new_exposure_uv"] == 2
    await viewer.close()


async def test_events_are_refused_with_the_field_named(
    memory_server: ServerProcess, operator: Api, session: aiohttp.ClientSession
) -> None:
    rid = (await operator.live_room())["id"]
    user = Api(session, memory_server.base, memory_server.token("mallory"))
    path = f"/api/v1/rooms/{rid}/events"
    cases = [
        ({}, "'events' must be a list of 1 to 100"),
        ({"events": []}, "'events' must be a list of 1 to 100"),
        (_events(101), "'events' must be a list of 1 to 100"),
        ({"events": [1]}, "'events[0]' must be an object"),
        ({"events": [{"type": "exposure"}]}, "'events[0].id' must be"),
        ({"events": [{"id": "x" * 65, "type": "exposure"}]}, "'events[0].id' must be"),
        ({"events": [{"id": "a b", "type": "exposure"}]}, "'events[0].id' must be"),
        ({"events": [{"id": "ok", "type": "exposure"}, {"id": "k", "type": "buy"}]},
         "'events[1].type' must be one of exposure, product_view"),
        ({"events": [{"id": "k", "type": "share_open"}]},
         "'events[0].share_token' is required for share_open"),
        ({"events": [{"id": "k", "type": "share_open", "share_token": "t" * 129}]},
         "'events[0].share_token' is required"),
        ({"events": [{"id": "k", "type": "exposure", "share_token": "t"}]},
         "'events[0].share_token' belongs to share_open events only"),
        ({"events": [{"id": "k", "type": "exposure", "item": ""}]}, "'events[0].item' must"),
        ({"events": [{"id": "k", "type": "exposure", "item": "s"}]},
         "'events[0].item' belongs to product_view and product_click only"),
        ({"events": [{"id": "k", "type": "product_view", "item": "sku-nope"}]},
         "'item' 'sku-nope' is not a sale of this room"),
        ({"events": [{"id": "k", "type": "exposure", "uid": "bob"}]},
         "unknown field 'events[0].uid'"),
        ({"events": [{"id": "k", "type": "exposure"}], "more": 1}, "unknown field 'more'"),
    ]  # fmt: skip
    for data, message in cases:
        status, answer = await user.call("POST", path, data)
        assert status == 400, (data, answer)
        assert answer["error"]["code"] == "bad_request"
        assert answer["error"]["message"].startswith(message), (data, answer)
    status, answer = await user.call("POST", path, data=b"x" * (33 * 1024))
    assert (status, answer["error"]["message"]) == (400, "request body too large")
    # Nobody signed in, or no such room.
    assert (await user.call("POST", path, _events(1), token=""))[0] == 401
    assert (await user.call("POST", "/api/v1/rooms/rnope0000000/events", _events(1)))[0] == 404
    # Nothing refused was counted.
    status, f = await operator.call("GET", f"/api/v1/rooms/{rid}/analytics")
    assert (status, f["exposure_pv"], f["exposure_uv"]) == (200, 0, 0)


async def test_a_user_past_the_event_rate_gets_429(
    memory_server: ServerProcess, operator: Api, session: aiohttp.ClientSession
) -> None:
    rid = (await operator.live_room())["id"]
    flood = Api(session, memory_server.base, memory_server.token("flood"))
    calm = Api(session, memory_server.base, memory_server.token("calm"))
    path = f"/api/v1/rooms/{rid}/events"
    assert (await flood.call("POST", path, _events(100, "a")))[0] == 202
    assert (await flood.call("POST", path, _events(100, "b")))[0] == 202
    status, answer = await flood.call("POST", path, _events(100, "c"))
    assert status == 429, answer
    assert answer["error"]["code"] == "rate_limited"
    assert "per user" in answer["error"]["message"]
    assert answer["error"]["retry_after_ms"] > 0
    # Another user is not held back by it.
    assert (await calm.call("POST", path, _events(100, "a")))[0] == 202
    f = await _figures(operator, rid, {"exposure_pv": 300})
    assert f["exposure_uv"] == 2


async def test_analytics_is_for_operators_and_the_rooms_anchor(
    memory_server: ServerProcess, operator: Api, session: aiohttp.ClientSession
) -> None:
    anchor = Api(session, memory_server.base, memory_server.token("anc", "anchor"))
    rid = (await anchor.live_room())["id"]
    other = Api(session, memory_server.base, memory_server.token("anc2", "anchor"))
    viewer = Api(session, memory_server.base, memory_server.token("v"))
    path = f"/api/v1/rooms/{rid}/analytics"
    assert (await anchor.call("GET", path))[0] == 200
    assert (await operator.call("GET", path))[0] == 200
    assert (await other.call("GET", path))[0] == 403
    assert (await viewer.call("GET", path))[0] == 403
    assert (await viewer.call("GET", path, token=""))[0] == 401
    _, f = await anchor.call("GET", path)
    names = ("watch_pv", "watch_uv", "online", "pcu", "avg_watch_seconds", "comment_uv",
             "like_uv", "buyer_uv", "gmv_fen", "gpm_fen", "uv_value_fen", "funnel")  # fmt: skip
    assert [n for n in names if n not in f] == []
    assert set(f["last_10_min"]) == {"from_minute", "to_minute", "current", "previous", "change"}


async def _engine_server(
    kind: str, servers: Any, request: pytest.FixtureRequest, **extra: str
) -> ServerProcess:
    env = {"INTERACT_PAY_PROVIDER": "dev", **extra}
    if kind == "redis":
        env["INTERACT_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["INTERACT_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    return servers(env=env)


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_products_and_invites_in_the_analytics(
    kind: str, servers: Any, session: aiohttp.ClientSession, request: pytest.FixtureRequest
) -> None:
    """Per product (sale id): view -> click -> order -> paid with exact UV; the invite
    figures of growth beside them; a sale of another room and a product past the room's
    bound are refused with a clear error."""
    server = await _engine_server(kind, servers, request)
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    s1, s2 = await _sale(op, rid, 700), await _sale(op, rid)
    users = {u: Api(session, server.base, server.token(u)) for u in ("alice", "bob", "carol")}
    path = f"/api/v1/rooms/{rid}/events"

    def ev(i: str, kind: str, item: str) -> dict[str, str]:
        return {"id": i, "type": kind, "item": item}

    for uid, events in {
        "alice": [ev("1", "product_view", s1), ev("2", "product_view", s1),
                  ev("3", "product_click", s1), ev("4", "product_view", s2)],
        "bob": [ev("1", "product_view", s1), ev("2", "product_click", s1)],
        "carol": [ev("1", "product_view", s2), {"id": "2", "type": "product_view"}],
    }.items():  # fmt: skip
        status, answer = await users[uid].call("POST", path, {"events": events})
        assert status == 202, answer
    # alice buys s1 twice (one order of two), bob orders and never pays.
    ordered = []
    for uid, qty in (("alice", 2), ("bob", 1)):
        async with session.post(
            f"{server.base}/api/v1/sales/{s1}/orders", json={"qty": qty},
            headers={"Authorization": f"Bearer {users[uid].token}", "Idempotency-Key": uid},
        ) as resp:  # fmt: skip
            assert resp.status == 201, await resp.text()
            ordered.append(await resp.json())
    status, paid = await users["alice"].call("POST", f"/api/v1/orders/{ordered[0]['id']}/pay")
    assert status == 200, paid
    assert (await users["alice"].call("POST", paid["confirm_url"]))[0] == 200
    # An invite: alice's share token opened by carol.
    _, token = await users["alice"].call("POST", f"/api/v1/rooms/{rid}/share-tokens")
    share = {"id": "9", "type": "share_open", "share_token": token["token"]}
    assert (await users["carol"].call("POST", path, {"events": [share]}))[0] == 202
    f = await _figures(op, rid, {"paid_orders": 1, "invited_uv": 1, "product_view_pv": 6})
    assert (f["inviters"], f["k_factor"], f["invited_buyers"], f["invited_gmv_fen"]) == (
        1, 1.0, 0, 0,
    )  # fmt: skip
    by_item = {p["item"]: p for p in f["products"]}
    assert [p["item"] for p in f["products"]] == [s1, s2]  # the larger GMV first
    assert by_item[s1] == {
        "item": s1, "view_pv": 3, "view_uv": 2, "click_pv": 2, "click_uv": 2, "click_rate": 1.0,
        "orders": 2, "order_uv": 2, "order_fen": 2100, "click_order_rate": 1.0,
        "paid_orders": 1, "buyer_uv": 1, "gmv_fen": 1400, "order_pay_rate": 0.5,
    }  # fmt: skip
    assert (by_item[s2]["view_pv"], by_item[s2]["view_uv"], by_item[s2]["gmv_fen"]) == (2, 2, 0)
    # A sale of another room is not this room's product.
    other = (await op.live_room())["id"]
    foreign = await _sale(op, other)
    status, answer = await users["bob"].call(
        "POST", path, {"events": [ev("f", "product_view", foreign)]}
    )
    assert (status, answer["error"]["message"]) == (
        400, f"'item' {foreign!r} is not a sale of this room",
    )  # fmt: skip
    # The bound: a room counts MAX_ITEMS products; one more is refused, known ones are not.
    many = [await _sale(op, other) for _ in range(MAX_ITEMS)]
    for i in range(0, MAX_ITEMS, 100):
        batch = [ev(f"m{j}", "product_view", item) for j, item in enumerate(many[i : i + 100], i)]
        status, answer = await users["bob"].call("POST", f"/api/v1/rooms/{other}/events",
                                                 {"events": batch})  # fmt: skip
        assert status == 202, answer
    deadline = time.monotonic() + 10
    while True:  # the counted products are written once per tick
        status, got = await op.call("GET", f"/api/v1/rooms/{other}/analytics")
        if len(got["products"]) == MAX_ITEMS:
            break
        assert status == 200 and time.monotonic() < deadline, len(got["products"])
        await asyncio.sleep(0.05)
    status, answer = await users["carol"].call(
        "POST", f"/api/v1/rooms/{other}/events", {"events": [ev("x", "product_view", foreign)]}
    )
    assert status == 409, answer
    assert answer["error"]["message"] == f"at most {MAX_ITEMS} products are counted per room"
    status, answer = await users["carol"].call(
        "POST", f"/api/v1/rooms/{other}/events", {"events": [ev("y", "product_view", many[0])]}
    )
    assert status == 202, answer


async def test_stats_uv_is_the_exact_watch_uv(
    servers: Any, session: aiohttp.ClientSession, redis_url: str, redis_prefix: str
) -> None:
    """``/stats`` answers ``uv`` and ``participants`` from the exact audience sets: the
    HyperLogLog the stats store still keeps no longer shows (here it is stuffed with
    5,000 uids that never joined, which the old answer would have reported)."""
    import redis.asyncio as aioredis

    server = servers(env={"INTERACT_REDIS_URL": redis_url, "INTERACT_REDIS_PREFIX": redis_prefix})
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    viewers = [
        (await connect(session, server.base, rid, server.token(f"v{i}")))[0] for i in range(3)
    ]
    await viewers[0].send({"t": "dm", "text": "hi", "ref": "c1"})
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.pfadd(f"{redis_prefix}uv:{{{rid}}}", *(f"ghost{i}" for i in range(5000)))
    finally:
        await client.aclose()
    f = await _figures(op, rid, {"watch_uv": 3, "comment_uv": 1})
    status, stats = await op.call("GET", f"/api/v1/rooms/{rid}/stats")
    assert status == 200, stats
    assert (stats["uv"], stats["participants"], stats["participation"]) == (
        f["watch_uv"], f["comment_uv"], round(1 / 3, 4),
    )  # fmt: skip
    for v in viewers:
        await v.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_the_stay_step_counts_visits_past_stay_seconds(
    kind: str, servers: Any, session: aiohttp.ClientSession, request: pytest.FixtureRequest
) -> None:
    """A viewer whose visit lasts ``stay_seconds`` stays (once, however often it comes
    back); one that leaves at once does not; a place kept after 4100 is the same visit;
    staff watching all along are not audience and never stay."""
    server = await _engine_server(kind, servers, request, INTERACT_STAY_SECONDS="1.5")
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    staff, _ = await connect(session, server.base, rid, server.token("ops", "operator"))
    stayer, _ = await connect(session, server.base, rid, server.token("stayer"))
    background, _ = await connect(session, server.base, rid, server.token("bg"))
    for _ in range(3):  # in and out at once, three times
        quick, _ = await connect(session, server.base, rid, server.token("quick"))
        await quick.close()
    await background.ws.close(code=4100)  # its place keeps its visit going
    f = await _figures(op, rid, {"stay_uv": 2}, within=15)
    assert (f["watch_uv"], f["stay_rate"]) == (3, round(2 / 3, 4))
    assert [s["step"] for s in f["funnel"]][:3] == ["exposure", "enter", "stay"]
    assert f["funnel"][2]["uv"] == 2
    assert f["last_10_min"]["current"]["new_stay_uv"] == 2
    # Coming back and staying again is the same uid: still two.
    again, _ = await connect(session, server.base, rid, server.token("stayer"))
    await stayer.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # longer than stay_seconds plus a check
        status, f = await op.call("GET", f"/api/v1/rooms/{rid}/analytics")
        assert (status, f["stay_uv"], f["watch_uv"]) == (200, 2, 3), f
        await asyncio.sleep(0.2)
    await again.close()
    await staff.close()
