"""``POST /rooms/{id}/events`` and ``GET /rooms/{id}/analytics`` over HTTP: who may call
them, the bounds, the clear errors, deduplication and the per-user rate."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.e2e.harness import Api, ServerProcess, connect


def _events(n: int, tag: str = "e", kind: str = "exposure") -> dict[str, object]:
    return {"events": [{"id": f"{tag}{i}", "type": kind} for i in range(n)]}


async def _figures(op: Api, rid: str, want: dict[str, int]) -> dict[str, object]:
    deadline = time.monotonic() + 10
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
    alice = Api(session, memory_server.base, memory_server.token("alice"))
    bob = Api(session, memory_server.base, memory_server.token("bob"))
    batch = {"events": [
        {"id": "a1", "type": "exposure"},
        {"id": "a2", "type": "product_view", "item": "sku-1"},
        {"id": "a3", "type": "product_click", "item": "sku-1"},
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
