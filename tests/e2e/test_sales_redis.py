"""Flash sales on Redis with two server processes: never oversell; survive a crash."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.e2e.harness import Api, ServerProcess
from tests.e2e.test_sales import make_sale, order
from tests.redis_server import start_redis_server, stop_redis_server

StartServer = Callable[..., ServerProcess]


def env_for(url: str, prefix: str) -> dict[str, str]:
    return {
        "INTERACT_REDIS_URL": url,
        "INTERACT_REDIS_PREFIX": prefix,
        "INTERACT_SWEEP_INTERVAL": "0.2",
        "INTERACT_PAY_PROVIDER": "dev",  # on Redis it must be asked for explicitly
    }


async def test_5000_buyers_200_units_limit_2_across_two_processes(
    servers: StartServer, redis_url: str, redis_prefix: str
) -> None:
    env = env_for(redis_url, redis_prefix)
    one, two = servers(env=env), servers(env=env)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
        op = Api(session, one.base, one.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        sale = await make_sale(op, rid, stock=200, limit=2, reserve_seconds=3)
        sid = sale["id"]
        running = True
        snapshots: list[dict[str, int]] = []

        async def watch() -> None:
            while running:
                _, view = await op.call("GET", f"/api/v1/sales/{sid}")
                snapshots.append(view)
                await asyncio.sleep(0.02)

        async def buy(i: int) -> tuple[str, int, dict[str, object]]:
            server = one if i % 2 else two
            uid = f"u{i % 2500}"  # 2,500 users, each trying twice
            api = Api(session, server.base, server.token(uid))
            status, body = await order(api, sid, f"k{i}", 1 + i % 2)
            return uid, status, body

        watcher = asyncio.create_task(watch())
        results = await asyncio.gather(*(buy(i) for i in range(5000)))
        running = False
        await watcher
        held: Counter[str] = Counter()
        for uid, status, body in results:
            if status == 201:
                held[uid] += int(body["qty"])  # type: ignore[call-overload]
        assert sum(held.values()) == 200
        assert max(held.values()) <= 2
        codes = Counter(b["error"]["code"] for _, s, b in results if s != 201)  # type: ignore[index]
        assert set(codes) <= {"sold_out", "limit_reached"}
        for view in snapshots:  # at every instant: never more than the stock
            assert view["reserved"] + view["paid"] <= 200
            assert view["left"] + view["reserved"] + view["paid"] + view["refunded"] == 200
        # Pay some, let the rest expire: their units come back and sell again.
        paid = 0
        for uid, status, body in results:
            if status == 201 and paid < 50:
                api = Api(session, one.base, one.token(uid))
                s, _ = await api.call("POST", f"/api/v1/pay/dev/{body['id']}/confirm")
                assert s == 200
                paid += int(body["qty"])  # type: ignore[call-overload]
        await asyncio.sleep(4.0)
        _, view = await op.call("GET", f"/api/v1/sales/{sid}")
        assert view["paid"] == paid and view["reserved"] == 0 and view["left"] == 200 - paid
        late = Api(session, two.base, two.token("latecomer"))
        status, again = await order(late, sid, "again", 2)
        assert status == 201 and again["status"] == "reserved"


async def test_an_acknowledged_payment_survives_a_redis_crash(
    servers: StartServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proc, port = start_redis_server(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    try:
        server = servers(env=env_for(f"redis://127.0.0.1:{port}/0", "aof:"))
        op = Api(session, server.base, server.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        sale = await make_sale(op, rid, stock=20, limit=20)
        buyer = Api(session, server.base, server.token("b"))
        paid_ids, reserved_ids = [], []
        for i in range(10):
            _, placed = await order(buyer, sale["id"], f"k{i}")
            if i % 2 == 0:
                status, done = await buyer.call("POST", f"/api/v1/pay/dev/{placed['id']}/confirm")
                assert status == 200 and done["status"] == "paid"
                paid_ids.append(placed["id"])
            else:
                reserved_ids.append(placed["id"])
        proc.send_signal(signal.SIGKILL)
        stop_redis_server(proc)
        proc, _ = start_redis_server(
            tmp_path, "--appendonly", "yes", "--appendfsync", "always", port=port
        )
        for _ in range(100):
            status, view = await op.call("GET", f"/api/v1/sales/{sale['id']}")
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert (view["paid"], view["reserved"], view["left"]) == (5, 5, 10)
        for oid in paid_ids:
            _, got = await buyer.call("GET", f"/api/v1/orders/{oid}")
            assert got["status"] == "paid"
        for oid in reserved_ids:
            _, got = await buyer.call("GET", f"/api/v1/orders/{oid}")
            assert got["status"] == "reserved"
        # The idempotency keys survived too.
        status, replay = await order(buyer, sale["id"], "k0")
        assert status == 201 and replay["id"] == paid_ids[0] and replay["status"] == "paid"
    finally:
        stop_redis_server(proc)


async def test_without_a_payment_provider_orders_reserve_but_pay_is_503(
    servers: StartServer, session: aiohttp.ClientSession, redis_url: str, redis_prefix: str
) -> None:
    server = servers(env={"INTERACT_REDIS_URL": redis_url, "INTERACT_REDIS_PREFIX": redis_prefix})
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    sale = await make_sale(op, rid)
    buyer = Api(session, server.base, server.token("b"))
    status, placed = await order(buyer, sale["id"], "k")
    assert status == 201
    status, body = await buyer.call("POST", f"/api/v1/orders/{placed['id']}/pay")
    assert status == 503 and body["error"]["code"] == "overloaded"
    status, _ = await buyer.call("POST", f"/api/v1/pay/dev/{placed['id']}/confirm")
    assert status == 404  # no free payments on a real deployment
    _, still = await buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert still["status"] == "reserved"
