"""What one user may do, against real server processes on both engines: likes per second,
the anchor's exemption, rooms per anchor, strict identities, and secrets out of the logs."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import jwt
import pytest

from tests.e2e.harness import Api, ServerProcess, connect
from tests.redis_server import start_redis_server, stop_redis_server

StartServer = Callable[..., ServerProcess]


@pytest.fixture(params=["memory", "redis"])
def engine_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that puts a server on the memory engine or on the test Redis."""
    if request.param == "memory":
        return {}
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return {"INTERACT_REDIS_URL": url, "INTERACT_REDIS_PREFIX": prefix, "INTERACT_DEV_LOGIN": "1"}


def metric(text: bytes, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$".encode(), text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


async def eventually_likes(op: Api, rid: str, want: int, timeout: float = 10) -> None:
    """Wait until the room's stored like count is ``want`` (likes are written per tick)."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        _, stats = await op.call("GET", f"/api/v1/rooms/{rid}/stats")
        got = stats["likes"]
        if got == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"likes stayed {got}, wanted {want}")


# -- 8a: likes per viewer per room per second -----------------------------------------


async def test_likes_are_limited_per_user_across_connections_and_counted(
    servers: StartServer, session: aiohttp.ClientSession, engine_env: dict[str, str]
) -> None:
    server = servers(env={**engine_env, "INTERACT_LIKES_PER_S": "20"})
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    # One user on two connections shares one bucket; a second user has their own.
    a1, _ = await connect(session, server.base, rid, server.token("liker"))
    a2, _ = await connect(session, server.base, rid, server.token("liker"))
    b, _ = await connect(session, server.base, rid, server.token("other"))
    started = time.monotonic()
    for _ in range(25):
        await a1.send({"t": "like", "n": 100})
        await a2.send({"t": "like", "n": 100})
    await a1.send({"t": "like", "n": 100, "ref": "last"})
    ack = await a1.ack("last")
    elapsed = time.monotonic() - started
    # The excess is dropped quietly: the ack stays ok.
    assert ack["ok"] is True
    await b.send({"t": "like", "n": 7, "ref": "b"})
    assert (await b.ack("b"))["ok"] is True
    _, text = await op.call("GET", "/metrics")
    dropped = metric(text, "interact_likes_dropped_total")
    sent_by_liker = 51 * 100
    passed = sent_by_liker - int(dropped)
    # A burst of 3 s' worth (60) plus 20 a second for the time the frames took.
    assert 60 <= passed <= 60 + 20 * elapsed + 1, (passed, elapsed)
    await eventually_likes(op, rid, passed + 7)
    for v in (a1, a2, b):
        await v.close()


# -- 8b: the anchor's exemption holds in their own rooms only -------------------------


PACED = {"INTERACT_RATE_PER_S": "1", "INTERACT_RATE_BURST": "3", "INTERACT_REPEAT_WINDOW": "5"}


async def test_an_anchor_is_paced_and_filtered_in_rooms_they_do_not_anchor(
    servers: StartServer, session: aiohttp.ClientSession, engine_env: dict[str, str]
) -> None:
    server = servers(env={**engine_env, **PACED})
    anchor_a = Api(session, server.base, server.token("anchor-a", "anchor"))
    anchor_b = Api(session, server.base, server.token("anchor-b", "anchor"))
    own = (await anchor_a.live_room("A"))["id"]
    other = (await anchor_b.live_room("B"))["id"]
    token = server.token("anchor-a", "anchor")
    in_other, _ = await connect(session, server.base, other, token)
    await in_other.send({"t": "dm", "text": "加微信abc123", "ref": "word"})
    assert (await in_other.ack("word"))["code"] == "rejected"
    codes = []
    for i in range(6):
        await in_other.send({"t": "dm", "text": f"hello {i}", "ref": i})
        codes.append((await in_other.ack(i)).get("code"))
    assert "rate_limited" in codes, codes
    # In their own room the anchor is still exempt: no pacing, no word filter.
    in_own, _ = await connect(session, server.base, own, token)
    for i in range(6):
        await in_own.send({"t": "dm", "text": f"hello {i}", "ref": i})
        assert (await in_own.ack(i))["ok"] is True
    await in_own.send({"t": "dm", "text": "加微信abc123", "ref": "word"})
    assert (await in_own.ack("word"))["ok"] is True
    await in_other.close()
    await in_own.close()


# -- 8c: rooms per anchor, and rooms that never start expire ---------------------------


async def test_rooms_per_anchor_is_capped_operators_exempt_and_ending_frees_a_place(
    servers: StartServer, session: aiohttp.ClientSession, engine_env: dict[str, str]
) -> None:
    server = servers(env={**engine_env, "INTERACT_ROOMS_PER_ANCHOR": "3"})
    anchor = Api(session, server.base, server.token("busy", "anchor"))
    op = Api(session, server.base, server.token("ops", "operator"))
    made = []
    for i in range(3):
        status, room = await anchor.call("POST", "/api/v1/rooms", {"title": f"r{i}"})
        assert status == 201, room
        made.append(room["id"])
    status, err = await anchor.call("POST", "/api/v1/rooms", {"title": "one too many"})
    assert status == 409
    assert err["error"]["code"] == "limit_reached" and err["error"]["limit"] == 3
    # Operators are exempt, for any anchor.
    status, _ = await op.call("POST", "/api/v1/rooms", {"title": "ops", "anchor": "busy"})
    assert status == 201
    status, _ = await op.call("POST", "/api/v1/rooms", {"title": "ops own"})
    assert status == 201
    # Starting and pausing keep a room open; ending frees its place.
    for action in ("start", "pause"):
        assert (await anchor.call("POST", f"/api/v1/rooms/{made[0]}/{action}"))[0] == 200
    status, _ = await anchor.call("POST", "/api/v1/rooms", {"title": "still full"})
    assert status == 409
    for rid in made[:2]:
        assert (await anchor.call("POST", f"/api/v1/rooms/{rid}/end"))[0] == 200
    # The operator's room for "busy" counts too: 1 left of 3 + 1 = two places free... one.
    status, _ = await anchor.call("POST", "/api/v1/rooms", {"title": "again"})
    assert status == 201
    status, _ = await anchor.call("POST", "/api/v1/rooms", {"title": "full again"})
    assert status == 409


async def test_a_room_that_never_starts_expires_and_frees_its_place(
    servers: StartServer, session: aiohttp.ClientSession, engine_env: dict[str, str]
) -> None:
    env = {**engine_env, "INTERACT_ROOMS_PER_ANCHOR": "1", "INTERACT_UNSTARTED_ROOM_TTL": "0.5"}
    server = servers(env=env)
    anchor = Api(session, server.base, server.token("lazy", "anchor"))
    status, idle = await anchor.call("POST", "/api/v1/rooms", {"title": "never started"})
    assert status == 201
    status, _ = await anchor.call("POST", "/api/v1/rooms", {"title": "full"})
    assert status == 409
    deadline = time.monotonic() + 10
    while (await anchor.call("GET", f"/api/v1/rooms/{idle['id']}"))[0] != 404:
        assert time.monotonic() < deadline, "the unstarted room never expired"
        await asyncio.sleep(0.05)
    status, live = await anchor.call("POST", "/api/v1/rooms", {"title": "this one starts"})
    assert status == 201
    assert (await anchor.call("POST", f"/api/v1/rooms/{live['id']}/start"))[0] == 200
    # A started room outlives the TTL: it expires no more.
    await asyncio.sleep(1.0)  # twice the TTL: the absence of an expiry, not a signal
    status, got = await anchor.call("GET", f"/api/v1/rooms/{live['id']}")
    assert status == 200 and got["status"] == "live"


# -- 8d: strict identities ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"uid": "ok\n"},
        {"uid": "ok\r\n"},
        {"uid": "ok\u0000"},
        {"uid": "ok", "nick": "a\u0000b"},
        {"uid": "ok", "nick": "evil\u202egnp.exe"},
        {"uid": "ok", "nick": "ad\u2066min"},
        {"uid": "ok", "nick": "ad\u200dmin"},
        {"uid": "ok", "nick": "line\nbreak"},
        {"uid": "ok", "nick": "\u3164"},
        {"uid": "ok", "nick": "   "},
        {"uid": "ok", "nick": "x" * 33},
    ],
)
async def test_dev_login_refuses_bad_uids_and_nicks(
    memory_server: ServerProcess, session: aiohttp.ClientSession, body: dict[str, str]
) -> None:
    api = Api(session, memory_server.base, None)
    status, err = await api.call("POST", "/api/v1/auth/dev", body)
    assert status == 400, err
    assert err["error"]["code"] == "bad_request"


async def test_dev_login_keeps_real_nicks(
    memory_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    api = Api(session, memory_server.base, None)
    for nick in ["小明", "Zoë 🎉", "👨\u200d👩\u200d👧 family", "a b"]:
        status, got = await api.call("POST", "/api/v1/auth/dev", {"uid": "u1", "nick": nick})
        assert status == 200, (nick, got)
        assert got["user"]["nick"] == nick


async def test_tokens_whose_claims_break_the_rules_are_refused(
    memory_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    api = Api(session, memory_server.base, None)
    bad_claims = [
        {"sub": "ok\n", "nick": "ok", "role": "viewer"},
        {"sub": "ok", "nick": "evil\u202e", "role": "viewer"},
        {"sub": "", "nick": "ok", "role": "viewer"},
        {"sub": "a" * 65, "nick": "ok", "role": "viewer"},
    ]
    for claims in bad_claims:
        token = jwt.encode(
            {**claims, "exp": int(time.time()) + 60}, memory_server.secret, algorithm="HS256"
        )
        status, err = await api.call("GET", "/api/v1/rooms", token=token)
        assert status == 401, (claims, err)
    good = jwt.encode(
        {"sub": "ok", "nick": "好", "role": "viewer", "exp": int(time.time()) + 60},
        memory_server.secret,
        algorithm="HS256",
    )
    assert (await api.call("GET", "/api/v1/rooms", token=good))[0] == 200


# -- 10: secrets out of the logs, and start-up warnings ----------------------------------


async def test_redis_password_never_reaches_the_log_and_start_warnings(
    servers: StartServer, session: aiohttp.ClientSession, tmp_path: Path, redis_prefix: str
) -> None:
    # A user of its own with a password (the default user stays open for the helper's PING).
    acl = ["alice", "on", ">hunter2", "~*", "&*", "+@all"]
    proc, port = start_redis_server(tmp_path / "acl", "--user", *acl)
    try:
        url = f"redis://alice:hunter2@127.0.0.1:{port}/0"
        server = servers(
            "--redis", url,
            env={"INTERACT_HOST": "0.0.0.0", "INTERACT_DEV_LOGIN": "1", "INTERACT_SECRET": "",
                 "INTERACT_REDIS_PREFIX": redis_prefix},
        )  # fmt: skip
        api = Api(session, server.base, None)
        status, got = await api.call("POST", "/api/v1/auth/dev", {"uid": "u", "role": "operator"})
        assert status == 200
        op = Api(session, server.base, got["token"])
        assert (await op.call("POST", "/api/v1/rooms", {"title": "t"}))[0] == 201
        assert server.stop() == 0
        log = server.log()
        assert "hunter2" not in log
        assert "redis://alice:***@127.0.0.1" in log
        lines = log.splitlines()

        def one(needle: str) -> None:
            assert sum(needle in line for line in lines) == 1, (needle, log)

        one("dev login is on and the server listens on 0.0.0.0")
        one("random key for this run")
        one("pay provider: none")
    finally:
        stop_redis_server(proc)
