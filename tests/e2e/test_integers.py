"""Integers in a query, a path or a WebSocket handshake are ASCII digits or refused (issue 10,
finding 3): `since=²` once left a viewer upgraded and never welcomed on the server's own
path and wrote a 500 into the upgraded stream on aiohttp's; `limit=%C2%B2` was a 500."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess, connect

BAD = ["²", "٣", "３", "+5", " 5", "5_0", "-1"]


@pytest.mark.parametrize("bad", BAD)
async def test_rest_integers_are_ascii_digits_or_400(
    memory_server: ServerProcess, operator: Api, bad: str
) -> None:
    rid = (await operator.live_room())["id"]
    q = quote(bad)
    for path in (
        f"/api/v1/rooms?limit={q}",
        f"/api/v1/rooms?offset={q}",
        f"/api/v1/rooms/{rid}/ledger?count={q}",
        f"/api/v1/rooms/{rid}/moderation/events?count={q}",
    ):
        status, body = await operator.call("GET", path)
        assert status == 400, (path, status, body)
        assert body["error"]["code"] == "bad_request", body
    status, body = await operator.call("DELETE", f"/api/v1/rooms/{rid}/messages/{q}")
    assert status == 400 and body["error"]["code"] == "bad_request", (bad, status, body)
    # The same routes with plain digits still answer.
    status, _ = await operator.call("GET", "/api/v1/rooms?limit=5&offset=0")
    assert status == 200


async def _join_with_bad_since(server: ServerProcess, session: aiohttp.ClientSession) -> None:
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    token = server.token("since")
    for bad in BAD:
        # A since that is not plain digits is ignored (docs/protocol.md §1): a welcome
        # with the recent history, not a hang, a close or a 500.
        ws = await session.ws_connect(
            server.base + "/ws", params={"room": rid, "token": token, "since": bad}
        )
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.TEXT, (bad, msg)
        welcome = msg.json()[0]
        assert welcome["t"] == "welcome" and welcome["recovered"] is False, (bad, welcome)
        await ws.close()
    viewer, welcome = await connect(session, server.base, rid, token, since=0, epoch="x")
    assert welcome["t"] == "welcome"
    await viewer.close()


async def test_since_that_is_not_ascii_digits_is_ignored_on_the_direct_path(
    memory_server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    await _join_with_bad_since(memory_server, session)


async def test_since_that_is_not_ascii_digits_is_ignored_on_the_aiohttp_path(
    servers: Callable[..., ServerProcess], session: aiohttp.ClientSession
) -> None:
    server = servers(env={"INTERACT_RAW_UPGRADE": "false"})
    await _join_with_bad_since(server, session)
