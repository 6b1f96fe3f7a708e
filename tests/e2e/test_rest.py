"""REST against a real server process: room lifecycle, auth, roles and bad bodies."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess


async def test_room_lifecycle_state_machine(operator: Api) -> None:
    status, room = await operator.call("POST", "/api/v1/rooms", {"title": "  新品首发  "})
    assert status == 201
    assert room["status"] == "scheduled" and room["title"] == "新品首发"
    rid = room["id"]
    path = f"/api/v1/rooms/{rid}"
    for action, expected in [("start", "live"), ("pause", "paused"), ("resume", "live")]:
        status, body = await operator.call("POST", f"{path}/{action}")
        assert (status, body["status"]) == (200, expected)
    status, body = await operator.call("POST", f"{path}/start")
    assert status == 409 and body["error"]["code"] == "conflict"
    status, body = await operator.call("POST", f"{path}/resume")
    assert status == 409
    status, body = await operator.call("POST", f"{path}/end")
    assert status == 200 and body["status"] == "ended" and body["ended_at"] >= body["started_at"]
    for action in ("start", "pause", "resume", "end"):
        status, body = await operator.call("POST", f"{path}/{action}")
        assert status == 409, action
    status, body = await operator.call("GET", path)
    assert status == 200 and body["status"] == "ended"


async def test_list_rooms_filters_by_status(operator: Api) -> None:
    a = await operator.live_room("a")
    # created_at has millisecond resolution: rooms made in the same millisecond tie on it.
    await asyncio.sleep(0.005)
    _, b = await operator.call("POST", "/api/v1/rooms", {"title": "b"})
    assert b["created_at"] > a["created_at"]
    status, body = await operator.call("GET", "/api/v1/rooms?status=live&limit=200")
    assert status == 200
    ids = {r["id"] for r in body["rooms"]}
    assert a["id"] in ids and b["id"] not in ids
    status, body = await operator.call("GET", "/api/v1/rooms?limit=1")
    assert status == 200 and len(body["rooms"]) == 1
    assert body["rooms"][0]["id"] == b["id"]  # newest first
    status, body = await operator.call("GET", "/api/v1/rooms?status=bogus")
    assert status == 400 and body["error"]["code"] == "bad_request"


async def test_roles_and_tokens(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    viewer = Api(session, memory_server.base, memory_server.token("v1"))
    status, body = await viewer.call("POST", "/api/v1/rooms", {"title": "x"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    room = await operator.live_room()
    status, body = await viewer.call("POST", f"/api/v1/rooms/{room['id']}/end")
    assert status == 403
    status, body = await viewer.call("POST", f"/api/v1/rooms/{room['id']}/messages", {"text": "hi"})
    assert status == 403
    nobody = Api(session, memory_server.base, None)
    status, body = await nobody.call("GET", "/api/v1/rooms")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    forged = Api(session, memory_server.base, memory_server.token("ops", "operator") + "x")
    status, body = await forged.call("GET", "/api/v1/rooms")
    assert status == 401
    expired = Api(session, memory_server.base, memory_server.token("ops", "operator", ttl=-10))
    status, body = await expired.call("GET", "/api/v1/rooms")
    assert status == 401 and "expired" in body["error"]["message"]


async def test_anchor_owns_their_room(
    memory_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    anchor = Api(session, memory_server.base, memory_server.token("anchor1", "anchor"))
    other = Api(session, memory_server.base, memory_server.token("anchor2", "anchor"))
    status, room = await anchor.call("POST", "/api/v1/rooms", {"title": "mine"})
    assert status == 201 and room["anchor"] == "anchor1"
    status, _ = await other.call("POST", f"/api/v1/rooms/{room['id']}/start")
    assert status == 403
    status, body = await anchor.call("POST", f"/api/v1/rooms/{room['id']}/start")
    assert status == 200 and body["status"] == "live"
    status, _ = await anchor.call("POST", "/api/v1/rooms", {"title": "x", "anchor": "anchor2"})
    assert status == 403


@pytest.mark.parametrize(
    ("body", "raw"),
    [
        (None, b"{not json"),
        (None, b"[1, 2]"),
        ({}, None),
        ({"title": 5}, None),
        ({"title": ""}, None),
        ({"title": "x" * 300}, None),
        ({"title": "ok", "anchor": ["a"]}, None),
    ],
)
async def test_bad_room_bodies_are_400(operator: Api, body: object, raw: bytes | None) -> None:
    status, answer = await operator.call("POST", "/api/v1/rooms", body, data=raw)
    assert status == 400, answer
    assert answer["error"]["code"] == "bad_request" and answer["error"]["message"]


async def test_unknown_things_are_404(operator: Api) -> None:
    for method, path in [
        ("GET", "/api/v1/rooms/nope"),
        ("POST", "/api/v1/rooms/nope/start"),
        ("GET", "/api/v1/rooms/bad%7Bid%7D"),
        ("GET", "/api/v1/nothing-here"),
    ]:
        status, body = await operator.call(method, path)
        assert status == 404, (path, body)
        assert body["error"]["code"] == "not_found"


async def test_dev_login_issues_tokens(
    memory_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    api = Api(session, memory_server.base, None)
    status, body = await api.call(
        "POST", "/api/v1/auth/dev", {"uid": "u-1", "nick": "小红", "role": "anchor"}
    )
    assert status == 200
    assert body["user"] == {"uid": "u-1", "nick": "小红", "role": "anchor"}
    me = Api(session, memory_server.base, body["token"])
    status, room = await me.call("POST", "/api/v1/rooms", {"title": "from dev token"})
    assert status == 201 and room["anchor"] == "u-1"
    for bad in [{"uid": ""}, {"uid": "a b"}, {"uid": "x", "role": "god"}, {"uid": 7}]:
        status, body = await api.call("POST", "/api/v1/auth/dev", bad)
        assert status == 400, bad


async def test_stats_notice_and_ops(operator: Api) -> None:
    room = await operator.live_room()
    status, stats = await operator.call("GET", f"/api/v1/rooms/{room['id']}/stats")
    assert status == 200
    assert {"pv", "uv", "peak_online", "comments", "likes", "participants", "online"} <= set(stats)
    status, body = await operator.call(
        "POST", f"/api/v1/rooms/{room['id']}/notices", {"text": "欢迎", "level": "shout"}
    )
    assert status == 400
    status, body = await operator.call("GET", "/healthz")
    assert status == 200 and body["status"] == "ok"
    status, body = await operator.call("GET", "/readyz")
    assert status == 200 and body["engine"] == "memory"
    status, body = await operator.call("GET", "/metrics")
    assert status == 200 and b"interact_connections" in body
    status, body = await operator.call("GET", "/api/v1/openapi.json")
    assert status == 200 and "/api/v1/rooms" in body["paths"]
