"""Flash sales and orders with the dev payment provider, against a real server process."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess, connect


async def make_sale(operator: Api, rid: str, **fields: Any) -> dict[str, Any]:
    body = {"title": "口红", "sku": "LIP-01", "price_fen": 9900, "stock": 10, "limit": 2, **fields}
    status, sale = await operator.call("POST", f"/api/v1/rooms/{rid}/sales", body)
    assert status == 201, sale
    return sale


async def order(api: Api, sale_id: str, key: str, qty: Any = 1) -> tuple[int, Any]:
    async with api.session.post(
        f"{api.base}/api/v1/sales/{sale_id}/orders",
        json={"qty": qty},
        headers={"Authorization": f"Bearer {api.token}", "Idempotency-Key": key},
    ) as r:
        return r.status, await r.json()


async def test_reserve_pay_cancel_and_stock_broadcasts(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    watcher, _ = await connect(session, memory_server.base, rid, memory_server.token("w"))
    sale = await make_sale(operator, rid, stock=5)
    announced = await watcher.next("sale")
    assert (announced["id"], announced["stock"], announced["price_fen"]) == (sale["id"], 5, 9900)
    buyer = Api(session, memory_server.base, memory_server.token("buyer"))
    status, first = await order(buyer, sale["id"], "k1", 2)
    assert status == 201 and first["status"] == "reserved" and first["amount_fen"] == 19800
    status, again = await order(buyer, sale["id"], "k1", 2)
    assert status == 201 and again["id"] == first["id"]  # the same key, the same order
    status, over = await order(buyer, sale["id"], "k2", 1)
    assert status == 409 and over["error"]["code"] == "limit_reached"
    left = 5
    while left != 3:
        left = (await watcher.next("stock"))["left"]
    status, paid = await buyer.call("POST", f"/api/v1/orders/{first['id']}/pay")
    assert status == 200 and paid["provider"] == "dev"
    status, done = await buyer.call("POST", paid["confirm_url"])
    assert status == 200 and done["status"] == "paid"
    status, dup = await buyer.call("POST", paid["confirm_url"])
    assert status == 200 and dup["status"] == "paid"  # a duplicate changes nothing
    # Someone else's order, and a cancelled one, cannot be paid.
    other = Api(session, memory_server.base, memory_server.token("other"))
    status, theirs = await order(other, sale["id"], "o1", 1)
    assert status == 201
    status, _ = await buyer.call("POST", f"/api/v1/orders/{theirs['id']}/pay")
    assert status == 403
    status, cancelled = await other.call("POST", f"/api/v1/orders/{theirs['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    status, _ = await other.call("POST", f"/api/v1/orders/{theirs['id']}/pay")
    assert status == 409
    status, _ = await other.call("POST", f"/api/v1/orders/{theirs['id']}/cancel")
    assert status == 409
    _, view = await operator.call("GET", f"/api/v1/sales/{sale['id']}")
    assert (view["left"], view["reserved"], view["paid"]) == (3, 0, 2)
    # A refund of an unpaid order is refused; of a paid one it is done, stock on request.
    status, _ = await operator.call("POST", f"/api/v1/orders/{theirs['id']}/refund")
    assert status == 409
    status, refunded = await operator.call(
        "POST", f"/api/v1/orders/{first['id']}/refund", {"restock": True}
    )
    assert status == 200 and refunded["status"] == "refunded" and refunded["restocked"]
    _, view = await operator.call("GET", f"/api/v1/sales/{sale['id']}")
    assert (view["left"], view["paid"]) == (5, 0)
    _, ledger = await operator.call("GET", f"/api/v1/rooms/{rid}/ledger?count=100")
    kinds = [e["type"] for e in ledger["events"]]
    assert kinds.count("order_paid") == 1 and "order_refunded" in kinds
    await watcher.close()


async def test_unpaid_orders_expire_and_the_stock_sells_again(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    sale = await make_sale(operator, rid, stock=1, limit=1, reserve_seconds=1)
    first = Api(session, memory_server.base, memory_server.token("slow"))
    status, held = await order(first, sale["id"], "a")
    assert status == 201
    second = Api(session, memory_server.base, memory_server.token("fast"))
    status, body = await order(second, sale["id"], "b")
    assert status == 409 and body["error"]["code"] == "sold_out"
    await asyncio.sleep(2.0)
    _, expired = await first.call("GET", f"/api/v1/orders/{held['id']}")
    assert expired["status"] == "expired"
    status, _ = await first.call("POST", f"/api/v1/orders/{held['id']}/pay")
    assert status == 409
    status, body = await order(second, sale["id"], "c")
    assert status == 201 and body["status"] == "reserved"
    # The first buyer's key still answers with the first order, whatever happened since.
    status, replay = await order(first, sale["id"], "a")
    assert status == 201 and replay["id"] == held["id"] and replay["status"] == "expired"


@pytest.mark.parametrize(
    ("qty", "key", "code"),
    [
        (0, "k", "bad_request"),
        (-1, "k", "bad_request"),
        (3, "k", "bad_request"),
        (1.5, "k", "bad_request"),
        ("1", "k", "bad_request"),
        (1, "x" * 129, "bad_request"),
        (1, "", "bad_request"),
    ],
)
async def test_bad_orders_change_nothing(
    memory_server: ServerProcess,
    session: aiohttp.ClientSession,
    operator: Api,
    qty: Any,
    key: str,
    code: str,
) -> None:
    rid = (await operator.live_room())["id"]
    sale = await make_sale(operator, rid)
    buyer = Api(session, memory_server.base, memory_server.token("b"))
    status, body = await order(buyer, sale["id"], key, qty)
    assert status == 400 and body["error"]["code"] == code
    _, view = await operator.call("GET", f"/api/v1/sales/{sale['id']}")
    assert view["left"] == 10 and view["reserved"] == 0


async def test_sale_windows_and_rights(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    later = await make_sale(operator, rid, starts_at=4_000_000_000_000, ends_at=4_000_000_100_000)
    buyer = Api(session, memory_server.base, memory_server.token("b"))
    status, body = await order(buyer, later["id"], "k")
    assert status == 409 and body["error"]["code"] == "conflict"
    viewer = Api(session, memory_server.base, memory_server.token("v"))
    status, _ = await viewer.call(
        "POST", f"/api/v1/rooms/{rid}/sales", {"title": "x", "price_fen": 1, "stock": 1}
    )
    assert status == 403
    for bad in [
        {"title": "x", "price_fen": 0, "stock": 1},
        {"title": "x", "price_fen": 10, "stock": -1},
        {"title": "", "price_fen": 10, "stock": 1},
        {"title": "x", "price_fen": 10, "stock": 1, "ends_at": 1},
    ]:
        status, _ = await operator.call("POST", f"/api/v1/rooms/{rid}/sales", bad)
        assert status == 400, bad
    status, body = await order(buyer, "nope", "k")
    assert status == 404


async def test_concurrent_pay_and_cancel_resolve_once(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    sale = await make_sale(operator, rid, stock=100, limit=100)
    buyer = Api(session, memory_server.base, memory_server.token("racer"))
    for i in range(10):
        _, o = await order(buyer, sale["id"], f"r{i}")
        confirm, cancel = await asyncio.gather(
            buyer.call("POST", f"/api/v1/pay/dev/{o['id']}/confirm"),
            buyer.call("POST", f"/api/v1/orders/{o['id']}/cancel"),
        )
        _, final = await buyer.call("GET", f"/api/v1/orders/{o['id']}")
        assert final["status"] in ("paid", "cancelled", "refunded")
        if final["status"] == "paid":  # the payment won: the cancel was refused
            assert confirm[0] == 200 and cancel[0] == 409
        else:  # the cancel won: a payment after it is refunded, never kept
            assert cancel[0] == 200
    _, view = await operator.call("GET", f"/api/v1/sales/{sale['id']}")
    assert view["left"] + view["reserved"] + view["paid"] + view["refunded"] == 100


async def test_ending_the_room_ends_its_sales(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    rid = (await operator.live_room())["id"]
    watcher, _ = await connect(session, memory_server.base, rid, memory_server.token("w"))
    sale = await make_sale(operator, rid, stock=5)
    await watcher.next("sale")
    buyer = Api(session, memory_server.base, memory_server.token("buyer"))
    status, held = await order(buyer, sale["id"], "before-end")
    assert status == 201
    status, room = await operator.call("POST", f"/api/v1/rooms/{rid}/end")
    assert status == 200 and room["status"] == "ended"
    closed = await watcher.next("sale")  # announced with its new end
    assert closed["id"] == sale["id"] and closed["ends_at"] <= room["ended_at"] + 1000
    status, late = await order(buyer, sale["id"], "after-end")
    assert status == 409 and late["error"]["code"] == "conflict", late
    status, view = await operator.call("GET", f"/api/v1/sales/{sale['id']}")
    assert status == 200 and view["ends_at"] == closed["ends_at"] and view["reserved"] == 1
    # The order reserved before the end is still the buyer's to pay.
    status, paid = await buyer.call("POST", f"/api/v1/orders/{held['id']}/pay")
    assert status == 200
    status, done = await buyer.call("POST", paid["confirm_url"])
    assert status == 200 and done["status"] == "paid"
    _, ledger = await operator.call("GET", f"/api/v1/rooms/{rid}/ledger?count=100")
    assert [e["type"] for e in ledger["events"]].count("sale_closed") == 1
