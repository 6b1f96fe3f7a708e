"""Retention end to end (docs/archive.md section 11): a room with comments, a retraction,
a red packet and a paid order ends on Redis with archiving on; its archive verifies; then
time is driven past the hot retention (every key of the room whose TTL is at most
``retention_days`` is expired now) and its order is still refunded over REST."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from rooms.keys import RoomKeys
from rooms.retention import DAY_MS
from tests.e2e.harness import Api, ServerProcess
from tests.e2e.test_archive import archived_on_redis

RETENTION_DAYS = 2
REFUND_DAYS = 30


async def test_hot_keys_expire_after_the_archive_and_the_order_stays_refundable(
    servers: Callable[..., ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
) -> None:
    server, made = await archived_on_redis(
        servers,
        session,
        tmp_path,
        redis_url,
        redis_prefix,
        INTERACT_RETENTION_DAYS=str(RETENTION_DAYS),
        INTERACT_REFUND_WINDOW_DAYS=str(REFUND_DAYS),
    )
    rid, op = made["rid"], made["op"]
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}*{{{rid}}}*")]
        ttls = {k: int(await client.pttl(k)) for k in keys}
        hot = [k for k, t in ttls.items() if 0 < t <= RETENTION_DAYS * DAY_MS]
        money = [k for k, t in ttls.items() if t > RETENTION_DAYS * DAY_MS]
        assert not [k for k, t in ttls.items() if t < 0], ttls  # everything has a TTL
        names = {k.decode() for k in hot}
        assert any(":journal" in n for n in names) and any(":hist" in n for n in names)
        assert any(":order:" in n or n.startswith(f"{redis_prefix}order:") for n in
                   (k.decode() for k in money))  # fmt: skip
        assert all(t <= REFUND_DAYS * DAY_MS for t in ttls.values())
        # Time passes: the hot keys' moment comes.
        for key in hot:
            await client.pexpire(key, 1)
        while await client.exists(*hot):
            pass  # EXISTS drops expired keys; they all are within a millisecond
    finally:
        await client.aclose()
    # The record is kept with the money (a refund checks the anchor); the comments are gone.
    status, room = await op.call("GET", f"/api/v1/rooms/{rid}")
    assert status == 200 and room["status"] == "ended", room
    status, stats = await op.call("GET", f"/api/v1/rooms/{rid}/stats")
    assert status == 200 and stats["comments"] == 0, stats
    refunder = Api(session, server.base, server.token("ops", "operator"))
    status, refunded = await refunder.call("POST", f"/api/v1/orders/{made['order']}/refund")
    assert status == 200 and refunded["status"] == "refunded", refunded
    status, ledger = await op.call("GET", f"/api/v1/rooms/{rid}/ledger?count=500")
    assert status == 200, ledger
    types = [e["type"] for e in ledger["events"]]
    assert "archive_sealed" in types and "order_refunded" in types


async def test_the_server_sweeps_never_started_rooms_on_its_own(
    servers: Callable[..., ServerProcess],
    session: aiohttp.ClientSession,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """The retention loop (``retention_sweep``) drops a room whose deadline to start has
    passed from the global index, with no create or call of ours to prompt it."""
    server = servers(
        env={
            "INTERACT_REDIS_URL": redis_url,
            "INTERACT_REDIS_PREFIX": redis_prefix,
            "INTERACT_UNSTARTED_ROOM_TTL": "0.3",
            "INTERACT_RETENTION_SWEEP": "0.2",
        }
    )
    op = Api(session, server.base, server.token("ops", "operator"))
    status, room = await op.call("POST", "/api/v1/rooms", {"title": "未开播"})
    assert status == 201, room
    rid = room["id"]
    client = aioredis.Redis.from_url(redis_url)
    keys = RoomKeys(redis_prefix)
    try:
        assert await client.zscore(keys.index(), rid) is not None
        deadline = time.monotonic() + 15
        while await client.zscore(keys.index(), rid) is not None:
            assert time.monotonic() < deadline, "the retention loop did not sweep the room"
            await asyncio.sleep(0.05)
        assert await client.zscore(keys.unstarted(), rid) is None
        assert not await client.exists(keys.room(rid))
    finally:
        await client.aclose()
