"""CouponStore contract (``commerce.coupons``) and coupons on the order path
(``commerce.sale_store``: locked with the stock, used, released, restored), on every engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from commerce.coupons import (
    Batch,
    CouponKind,
    CouponStatus,
    CouponTerms,
    CouponUse,
    IssueOutcome,
    discount_fen,
    new_batch_id,
    new_coupon_id,
)
from commerce.ids import new_sale_id
from commerce.keys import CommerceKeys
from commerce.ledger import Ledger
from commerce.ledger_memory import MemoryLedger
from commerce.ledger_redis import RedisLedger
from commerce.sale_models import OrderStatus, ReleaseReason, ReserveOutcome, Sale
from commerce.sale_store import SaleStore
from commerce.sale_store_memory import MemorySaleStore
from commerce.sale_store_redis import RedisSaleStore
from interact.floor.errors import Conflict
from tests.contract.conftest import NewClient

T0 = 1_700_000_000_000
HOUR = 3_600_000
ROOM = "cproom"
PRICE = 5_000


@dataclass(frozen=True, slots=True)
class Stores:
    ledger: Ledger
    sales: SaleStore
    cluster: bool


MakeStores = Callable[[], Stores]


@pytest.fixture
async def make_stores(
    kind: str, request: pytest.FixtureRequest, new_redis_client: NewClient
) -> AsyncIterator[MakeStores]:
    clients: list[aioredis.Redis] = []
    shared_memory: list[Stores] = []

    def make() -> Stores:
        if kind == "memory":
            if not shared_memory:  # one process: every "client" sees the same store
                ledger = MemoryLedger()
                shared_memory.append(Stores(ledger, MemorySaleStore(ledger), False))
            return shared_memory[0]
        keys = CommerceKeys(request.getfixturevalue("redis_prefix"))
        client = new_redis_client()
        clients.append(client)
        return Stores(
            RedisLedger(client, keys), RedisSaleStore(client, keys), kind == "redis-cluster"
        )

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def stores(make_stores: MakeStores) -> Stores:
    return make_stores()


def terms(
    room: str | None = ROOM,
    *,
    kind: CouponKind = CouponKind.FIXED,
    value: int = 500,
    cap: int = 0,
    min_spend: int = 0,
    starts: int = T0 - HOUR,
    ends: int = T0 + 24 * HOUR,
) -> CouponTerms:
    return CouponTerms(kind, value, cap, min_spend, starts, ends, room)


def batch(t: CouponTerms, total: int = 10, per_user: int = 2) -> Batch:
    return Batch(new_batch_id(t.room_id), "立减", t, total, per_user, T0 - HOUR)


async def new_batch(s: Stores, t: CouponTerms | None = None, **kw: int) -> Batch:
    b = batch(t or terms(), **kw)
    assert await s.sales.coupons.create_batch(b, 200)
    return b


async def issue(s: Stores, b: Batch, uid: str) -> IssueOutcome:
    result = await s.sales.coupons.issue(b.id, uid, new_coupon_id(b.id), T0, ledger_room=ROOM)
    return result.outcome


async def new_sale(s: Stores, stock: int = 100, limit: int = 5) -> Sale:
    sale = Sale(
        new_sale_id(ROOM), ROOM, "T-shirt", "sku", PRICE, stock, limit,
        T0 - HOUR, T0 + HOUR, 60_000, T0 - HOUR,
    )  # fmt: skip
    await s.sales.create(sale)
    return sale


async def coupon_of(s: Stores, b: Batch, uid: str) -> str:
    result = await s.sales.coupons.issue(b.id, uid, new_coupon_id(b.id), T0)
    assert result.coupon is not None
    return result.coupon.id


def use(coupon: str, t: CouponTerms, qty: int = 1) -> CouponUse:
    return CouponUse(coupon, qty * PRICE, discount_fen(t, qty * PRICE))


async def events(s: Stores, kind: str) -> list[dict[str, str]]:
    return [e for _, e in await s.ledger.read(ROOM, None, 1000) if e["type"] == kind]


# --- issuing


async def test_issue_limits_in_order(stores: Stores) -> None:
    b = await new_batch(stores, total=3, per_user=2)
    assert await issue(stores, b, "ann") is IssueOutcome.OK
    assert await issue(stores, b, "ann") is IssueOutcome.OK
    assert await issue(stores, b, "ann") is IssueOutcome.LIMIT_REACHED
    assert await issue(stores, b, "bob") is IssueOutcome.OK
    assert await issue(stores, b, "cat") is IssueOutcome.SOLD_OUT
    view = await stores.sales.coupons.get_batch(b.id)
    assert view is not None and view.issued == 3
    missing = new_batch_id(ROOM)
    result = await stores.sales.coupons.issue(missing, "ann", new_coupon_id(missing), T0)
    assert result.outcome is IssueOutcome.NOT_FOUND
    late = await new_batch(stores, terms(ends=T0))
    assert await issue(stores, late, "ann") is IssueOutcome.ENDED
    wallet = await stores.sales.coupons.wallet("ann", 10)
    assert [c.batch_id for c in wallet] == [b.id, b.id]
    assert all(c.status is CouponStatus.AVAILABLE and c.uid == "ann" for c in wallet)
    assert await stores.sales.coupons.wallet("cat", 10) == []
    # Issues with a ledger room are in its ledger (refusals are not).
    assert len(await events(stores, "coupon_issued")) == 3


async def test_issue_key_gives_once_and_replays(stores: Stores) -> None:
    b = await new_batch(stores, total=5, per_user=5)
    first = await stores.sales.coupons.issue(
        b.id, "ann", new_coupon_id(b.id), T0, idem="r1:ann", ledger_room=ROOM, reason="invite"
    )
    again = await stores.sales.coupons.issue(
        b.id, "ann", new_coupon_id(b.id), T0, idem="r1:ann", ledger_room=ROOM, reason="invite"
    )
    assert first.outcome is IssueOutcome.OK and again.outcome is IssueOutcome.REPLAY
    assert first.coupon is not None and again.coupon is not None
    assert again.coupon.id == first.coupon.id
    assert len(await stores.sales.coupons.wallet("ann", 10)) == 1
    issued = await events(stores, "coupon_issued")
    assert [(e["uid"], e["reason"], e["coupon"]) for e in issued] == [
        ("ann", "invite", first.coupon.id)
    ]


async def test_batches_per_scope_are_capped(stores: Stores) -> None:
    for _ in range(3):
        assert await stores.sales.coupons.create_batch(batch(terms()), 3)
    assert not await stores.sales.coupons.create_batch(batch(terms()), 3)
    other = batch(terms("otherroom"))
    assert await stores.sales.coupons.create_batch(other, 3)
    with pytest.raises(Conflict):
        await stores.sales.coupons.create_batch(other, 3)
    assert len(await stores.sales.coupons.batches(ROOM)) == 3
    assert [v.batch.id for v in await stores.sales.coupons.batches("otherroom")] == [other.id]


# --- on the order path


async def test_reserve_locks_pay_uses_refund_restores(stores: Stores) -> None:
    t = terms(kind=CouponKind.PERCENT, value=1_250, cap=900)
    b = await new_batch(stores, t)
    sale = await new_sale(stores)
    coupon = await coupon_of(stores, b, "ann")
    got = await stores.sales.reserve(sale.id, "ann", 2, "k1", T0, use(coupon, t, 2))
    assert got.outcome is ReserveOutcome.OK and got.order is not None
    order = got.order
    # 12.5 % of 10,000 = 1,250, capped at 900.
    assert (order.amount_fen, order.discount_fen, order.original_amount_fen) == (9_100, 900, 10_000)
    assert (await stores.sales.get_order(order.id)) == order
    c = await stores.sales.coupons.get(coupon)
    assert c is not None and (c.status, c.order_id) == (CouponStatus.LOCKED, order.id)
    again = await stores.sales.reserve(sale.id, "ann", 1, "k2", T0, use(coupon, t))
    assert again.outcome is ReserveOutcome.COUPON_UNAVAILABLE
    # A replay of the first key is the first order, coupon and all.
    replay = await stores.sales.reserve(sale.id, "ann", 2, "k1", T0, use(coupon, t, 2))
    assert replay.replayed and replay.order == order
    paid = await stores.sales.confirm_paid(order.id, 9_100, "tx1", T0 + 1)
    assert paid.order is not None and paid.order.status is OrderStatus.PAID
    c = await stores.sales.coupons.get(coupon)
    assert c is not None and c.status is CouponStatus.USED
    refunded = await stores.sales.mark_refunded(order.id, 9_100, "rf1", T0 + 2, restock=True)
    assert refunded is not None
    c = await stores.sales.coupons.get(coupon)
    assert c is not None and (c.status, c.order_id) == (CouponStatus.AVAILABLE, None)
    (res,) = await events(stores, "order_reserved")
    assert (res["coupon"], res["original_amount_fen"], res["discount_fen"], res["amount_fen"]) == (
        coupon,
        "10000",
        "900",
        "9100",
    )
    (pay,) = await events(stores, "order_paid")
    assert (pay["coupon"], pay["amount_fen"], pay["discount_fen"]) == (coupon, "9100", "900")
    (ref,) = await events(stores, "order_refunded")
    assert (ref["coupon"], ref["coupon_restored"], ref["amount_fen"]) == (coupon, "1", "9100")
    # Restored, it buys again.
    back = await stores.sales.reserve(sale.id, "ann", 1, "k3", T0 + 3, use(coupon, t))
    assert back.outcome is ReserveOutcome.OK and back.order is not None
    assert back.order.amount_fen == PRICE - 625


@pytest.mark.parametrize("why", [ReleaseReason.CANCELLED, ReleaseReason.EXPIRED])
async def test_release_gives_the_coupon_back(stores: Stores, why: ReleaseReason) -> None:
    t = terms()
    b = await new_batch(stores, t)
    sale = await new_sale(stores)
    coupon = await coupon_of(stores, b, "ann")
    got = await stores.sales.reserve(sale.id, "ann", 1, "k1", T0, use(coupon, t))
    assert got.order is not None and got.order.amount_fen == PRICE - 500
    released = await stores.sales.release(got.order.id, got.order.deadline, why)
    assert released is not None and released.coupon == coupon
    c = await stores.sales.coupons.get(coupon)
    assert c is not None and c.status is CouponStatus.AVAILABLE
    (ev,) = await events(stores, f"order_{why.value}")
    assert (ev["coupon"], ev["discount_fen"]) == (coupon, "500")
    # A payment arriving after the release does not use the coupon, and its refund
    # does not touch it (it may be another order's by now).
    other = await stores.sales.reserve(sale.id, "ann", 1, "k2", T0 + 1, use(coupon, t))
    assert other.order is not None
    late = await stores.sales.confirm_paid(got.order.id, PRICE - 500, "txl", T0 + 2)
    assert late.order is not None and late.order.status is OrderStatus.PAID_LATE
    await stores.sales.mark_refunded(got.order.id, PRICE - 500, "rfl", T0 + 3, restock=False)
    c = await stores.sales.coupons.get(coupon)
    assert c is not None and (c.status, c.order_id) == (CouponStatus.LOCKED, other.order.id)


async def test_coupon_checks(stores: Stores) -> None:
    t = terms(starts=T0 + HOUR // 2)
    b = await new_batch(stores, t)
    sale = await new_sale(stores)
    coupon = await coupon_of(stores, b, "ann")
    early = await stores.sales.reserve(sale.id, "ann", 1, "k1", T0, use(coupon, t))
    assert early.outcome is ReserveOutcome.COUPON_EXPIRED
    theirs = await stores.sales.reserve(sale.id, "bob", 1, "k1", T0 + HOUR // 2, use(coupon, t))
    assert theirs.outcome is ReserveOutcome.COUPON_UNAVAILABLE
    # Refused attempts leave the stock, the coupon and the key alone.
    view = await stores.sales.get(sale.id)
    assert view is not None and view.left == 100
    ok = await stores.sales.reserve(sale.id, "ann", 1, "k1", T0 + HOUR // 2, use(coupon, t))
    assert ok.outcome is ReserveOutcome.OK
    fresh = await coupon_of(stores, b, "ann")
    with pytest.raises(ValueError):  # a discount computed for another order: a caller bug
        await stores.sales.reserve(sale.id, "ann", 1, "k9", T0 + HOUR // 2, CouponUse(fresh, 1, 1))


async def test_merchant_wide_coupons(stores: Stores) -> None:
    if stores.cluster:
        # Its slot is not the room's: refused where one script cannot reach both.
        assert stores.sales.coupons.merchant_wide is False
        return
    assert stores.sales.coupons.merchant_wide is True
    t = terms(None, value=PRICE * 3)
    b = await new_batch(stores, t)
    sale = await new_sale(stores)
    coupon = (await stores.sales.coupons.issue(
        b.id, "ann", new_coupon_id(b.id), T0, ledger_room=ROOM
    )).coupon  # fmt: skip
    assert coupon is not None
    got = await stores.sales.reserve(sale.id, "ann", 1, "k1", T0, use(coupon.id, t))
    # More off than the price: 1 fen is still paid.
    assert got.order is not None and (got.order.amount_fen, got.order.discount_fen) == (1, 4_999)
    assert [v.batch.id for v in await stores.sales.coupons.batches(None)] == [b.id]


async def test_one_coupon_many_concurrent_reservations(make_stores: MakeStores) -> None:
    """Two clients (processes), 400 reservations of one user with one coupon: one wins."""
    a, b_ = make_stores(), make_stores()
    t = terms()
    b = await new_batch(a, t)
    sale = await new_sale(a, stock=1_000, limit=1_000)
    coupon = await coupon_of(a, b, "ann")
    results = await asyncio.gather(
        *(
            (a if i % 2 else b_).sales.reserve(sale.id, "ann", 1, f"k{i}", T0, use(coupon, t))
            for i in range(400)
        )
    )
    won = [r for r in results if r.outcome is ReserveOutcome.OK]
    assert len(won) == 1
    assert {r.outcome for r in results} - {ReserveOutcome.OK} == {ReserveOutcome.COUPON_UNAVAILABLE}
    view = await a.sales.get(sale.id)
    assert view is not None and (view.left, view.reserved) == (999, 1)
    c = await a.sales.coupons.get(coupon)
    assert c is not None and won[0].order is not None and c.order_id == won[0].order.id
