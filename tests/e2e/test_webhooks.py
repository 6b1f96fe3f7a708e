"""Webhooks from real ``interact serve`` processes on Redis to a real receiver that
verifies every delivery with ``standardwebhooks``: the REST surface and its bounds, and a
SIGKILL of the delivering process in the middle of a storm."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.e2e.harness import Api, ServerProcess
from tests.fakes.webhook_receiver import Receiver
from tests.redis_server import start_redis_server, stop_redis_server

ORDERS = 100


def env(redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "INTERACT_REDIS_URL": redis_url,
        "INTERACT_REDIS_PREFIX": prefix,
        "INTERACT_WEBHOOK_ALLOW_HTTP": "1",
        "INTERACT_WEBHOOK_ALLOW_PRIVATE": "1",
        "INTERACT_WEBHOOK_LEASE": "2",
        "INTERACT_WEBHOOK_TIMEOUT": "1",  # the lease must be at least twice it
        "INTERACT_WEBHOOK_MAX_ENDPOINTS": "2",
    }


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver(secrets=[]).start()
    yield r
    await r.stop()


async def wait_for(predicate: Callable[[], bool], within: float) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the receiver is another process's target
            await asyncio.sleep(0.02)


async def test_rest_bounds_and_refusals(
    servers: Callable[..., ServerProcess],
    session: aiohttp.ClientSession,
    redis_url: str,
    redis_prefix: str,
    receiver: Receiver,
) -> None:
    server = servers(env=env(redis_url, redis_prefix) | {"INTERACT_WEBHOOK_ALLOW_PRIVATE": "0"})
    op = Api(session, server.base, server.token("ops", "operator"))
    anchor = Api(session, server.base, server.token("a1", "anchor"))
    ok = {"url": "https://93.184.216.34/hooks", "events": ["order.paid"]}
    status, body = await anchor.call("POST", "/api/v1/webhooks", ok)
    assert status == 403, body
    cases = [
        ({"url": "http://93.184.216.34/h", "events": ["order.paid"]}, "https"),
        ({"url": receiver.url.replace("127.0.0.1", "localhost"), "events": ["order.paid"]},
         "loopback"),
        ({"url": "https://x.example/" + "a" * 2100, "events": ["order.paid"]}, "2048"),
        ({"url": ok["url"], "events": []}, "non-empty"),
        ({"url": ok["url"], "events": ["order.shipped"]}, "unknown event type"),
        ({"url": ok["url"], "events": ["order.paid"], "room": "rnosuchroom01"}, "not found"),
    ]  # fmt: skip
    for data, message in cases:
        status, body = await op.call("POST", "/api/v1/webhooks", data)
        assert status in (400, 404), (data, body)
        assert message in body["error"]["message"], (data, body)
    status, body = await op.call("POST", "/api/v1/webhooks", data=b"{" + b" " * 5000 + b"}")
    assert status == 400 and "too large" in body["error"]["message"]
    for _ in range(2):
        status, body = await op.call("POST", "/api/v1/webhooks", ok)
        assert status == 201 and body["secret"].startswith("whsec_")
    status, body = await op.call("POST", "/api/v1/webhooks", ok)
    assert status == 409 and "at most 2" in body["error"]["message"]
    status, listed = await op.call("GET", "/api/v1/webhooks")
    assert status == 200 and len(listed["webhooks"]) == 2
    assert "secret" not in str(listed).replace("previous_secret", "")
    wid = listed["webhooks"][0]["id"]
    status, rotated = await op.call("POST", f"/api/v1/webhooks/{wid}/rotate")
    assert status == 200 and rotated["previous_secret_expires_at"] is not None
    status, body = await op.call("POST", f"/api/v1/webhooks/{wid}/replay", {"since": "x"})
    assert status == 400
    assert (await op.call("DELETE", f"/api/v1/webhooks/{wid}"))[0] == 204
    assert (await op.call("DELETE", f"/api/v1/webhooks/{wid}"))[0] == 404
    assert server.log().count("whsec_") == 0  # secrets are never logged


async def test_sigkill_mid_storm_loses_nothing(
    servers: Callable[..., ServerProcess],
    session: aiohttp.ClientSession,
    redis_url: str,
    redis_prefix: str,
    receiver: Receiver,
) -> None:
    first = servers(env=env(redis_url, redis_prefix))
    op = Api(session, first.base, first.token("ops", "operator"))
    status, endpoint = await op.call(
        "POST", "/api/v1/webhooks", {"url": receiver.url, "events": ["order.reserved",
                                     "order.paid", "order.refund_requested", "room.started"]}
    )  # fmt: skip
    assert status == 201, endpoint
    receiver.secrets.append(endpoint["secret"])
    room = (await op.live_room("storm"))["id"]

    receiver.delay = 0.005  # a receiver doing some work: the kill finds deliveries in flight
    client = aioredis.Redis.from_url(redis_url)
    stream = f"{redis_prefix}ledger:{{{room}}}"
    try:
        # The outbox is the ledger stream: the commerce scripts XADD exactly this.
        for kind in ("order_reserved", "order_paid", "order_refunded"):
            for i in range(ORDERS):
                fields = {"type": kind, "order": f"{room}.od{i}", "sale": f"{room}.sl1",
                          "uid": f"u{i}", "qty": "1", "amount_fen": "990",
                          "ts": str(time.time_ns() // 1_000_000),
                          "out_refund_no": f"rf{i}", "restock": "0", "late": "0"}  # fmt: skip
                await client.xadd(stream, fields)
        await wait_for(lambda: len(receiver.unique) >= 40, 30)
        first.stop(signal.SIGKILL)
        delivered_before = len(receiver.unique)
        assert delivered_before < 3 * ORDERS + 1, "the storm ended before the kill"
        servers(env=env(redis_url, redis_prefix))
        await wait_for(lambda: len(receiver.unique) == 3 * ORDERS + 1, 60)
    finally:
        await client.aclose()
    assert receiver.rejected == []
    per_order: dict[str, list[int]] = defaultdict(list)
    for got in receiver.all:
        data = got.payload["data"]
        if "order" in data and receiver.unique[got.id] is got:
            per_order[data["order"]].append(data["sequence"])
    assert len(per_order) == ORDERS
    assert all(seqs == [1, 2, 4] for seqs in per_order.values()), per_order
    # At least once: duplicates only from the attempts the kill cut short.
    assert len(receiver.all) - len(receiver.unique) <= 64


def check_orders(receiver: Receiver, orders: int) -> None:
    """Every order's events once after dedupe, in their order, all signed."""
    assert receiver.rejected == []
    per_order: dict[str, list[int]] = defaultdict(list)
    for got in receiver.all:
        data = got.payload["data"]
        if "order" in data and receiver.unique[got.id] is got:
            per_order[data["order"]].append(data["sequence"])
    assert len(per_order) == orders
    assert all(seqs == [1, 2, 4] for seqs in per_order.values()), per_order


async def test_a_redis_restart_with_aof_loses_nothing(
    servers: Callable[..., ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    aof = ("--appendonly", "yes", "--appendfsync", "always")
    proc, port = start_redis_server(tmp_path, *aof)
    url = f"redis://127.0.0.1:{port}/0"
    client = aioredis.Redis.from_url(url)
    try:
        server = servers(env=env(url, "aofwh:"))
        op = Api(session, server.base, server.token("ops", "operator"))
        status, endpoint = await op.call(
            "POST", "/api/v1/webhooks", {"url": receiver.url, "events": ["order.reserved",
                                         "order.paid", "order.refund_requested", "room.started"]}
        )  # fmt: skip
        assert status == 201, endpoint
        receiver.secrets.append(endpoint["secret"])
        room = (await op.live_room("aof"))["id"]  # room.started: written by the transition
        receiver.delay = 0.005  # deliveries queued and in flight when Redis goes away
        stream = f"aofwh:ledger:{{{room}}}"
        for kind in ("order_reserved", "order_paid", "order_refunded"):
            for i in range(ORDERS):
                fields = {"type": kind, "order": f"{room}.od{i}", "sale": f"{room}.sl1",
                          "uid": f"u{i}", "qty": "1", "amount_fen": "990",
                          "ts": str(time.time_ns() // 1_000_000),
                          "out_refund_no": f"rf{i}", "restock": "0", "late": "0"}  # fmt: skip
                await client.xadd(stream, fields)
        await wait_for(lambda: len(receiver.unique) >= 40, 30)
        proc.send_signal(signal.SIGKILL)  # a crash: only what the AOF holds comes back
        stop_redis_server(proc)
        before = len(receiver.unique)
        assert before < 3 * ORDERS + 1, "every event was delivered before the crash"
        await asyncio.sleep(0.5)  # Redis is away for a while: rounds fail and are retried
        proc, _ = start_redis_server(tmp_path, *aof, port=port)
        await wait_for(lambda: len(receiver.unique) == 3 * ORDERS + 1, 60)
        check_orders(receiver, ORDERS)
        assert len(receiver.unique) == 3 * ORDERS + 1
        # At least once: duplicates only from the attempts the outage cut short.
        assert len(receiver.all) - len(receiver.unique) <= 64
        # Nothing is left to deliver: the queue is empty once Redis is back.
        await asyncio.sleep(0)
        status, listed = await op.call(
            "GET", f"/api/v1/webhooks/{endpoint['id']}/deliveries?limit=500"
        )
        assert status == 200
        assert {d["status"] for d in listed["deliveries"]} == {"succeeded"}
    finally:
        await client.aclose()
        stop_redis_server(proc)
