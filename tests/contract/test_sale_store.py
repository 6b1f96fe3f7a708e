"""SaleStore contract (``commerce.sale_store``), on every engine."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from commerce.ids import new_order_id, new_sale_id, room_of
from commerce.keys import CommerceKeys
from commerce.ledger import Ledger
from commerce.ledger_memory import MemoryLedger
from commerce.ledger_redis import RedisLedger
from commerce.sale_models import (
    MAX_IDEM_KEY,
    ConfirmOutcome,
    Order,
    OrderStatus,
    RefundState,
    ReleaseReason,
    ReserveOutcome,
    ReserveResult,
    Sale,
    SaleView,
)
from commerce.sale_store import SaleStore
from commerce.sale_store_memory import MemorySaleStore
from commerce.sale_store_redis import RedisSaleStore
from interact.floor.errors import Code, Conflict
from tests.contract.conftest import NewClient

T0 = 1_700_000_000_000
HOUR = 3_600_000
RES = 60_000  # reserve time of the test sales
PRICE = 990
OK = ReserveOutcome.OK
EXPIRED, CANCELLED = ReleaseReason.EXPIRED, ReleaseReason.CANCELLED


@dataclass(frozen=True, slots=True)
class Stores:
    ledger: Ledger
    sales: SaleStore


MakeStores = Callable[[], Stores]


@pytest.fixture
async def make_stores(
    kind: str, request: pytest.FixtureRequest, new_redis_client: NewClient
) -> AsyncIterator[MakeStores]:
    """Build stores of ``kind``; on redis each call is a new client (a second process)."""
    clients: list[aioredis.Redis] = []

    def make() -> Stores:
        if kind == "memory":
            ledger = MemoryLedger()
            return Stores(ledger, MemorySaleStore(ledger))
        keys = CommerceKeys(request.getfixturevalue("redis_prefix"))
        client = new_redis_client()
        clients.append(client)
        return Stores(RedisLedger(client, keys), RedisSaleStore(client, keys))

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def stores(make_stores: MakeStores) -> Stores:
    return make_stores()


def two(make: MakeStores) -> tuple[Stores, Stores]:
    """Two processes sharing state: two clients on redis, the one store in memory."""
    a = make()
    return (a, a) if isinstance(a.sales, MemorySaleStore) else (a, make())


def sale(
    room: str = "r1",
    *,
    stock: int = 10,
    limit: int = 2,
    price: int = PRICE,
    starts_at: int = T0,
    ends_at: int = T0 + HOUR,
    reserve_ms: int = RES,
    created_at: int = T0 - 1_000,
) -> Sale:
    return Sale(
        id=new_sale_id(room),
        room_id=room,
        title="限时秒杀 口红",
        sku="sku-42",
        price_fen=price,
        stock=stock,
        limit=limit,
        starts_at=starts_at,
        ends_at=ends_at,
        reserve_ms=reserve_ms,
        created_at=created_at,
    )


async def created(s: Stores, **kw: object) -> Sale:
    sl = sale(**kw)  # type: ignore[arg-type]
    await s.sales.create(sl)
    return sl


async def view(s: Stores, sale_id: str) -> SaleView:
    got = await s.sales.get(sale_id)
    assert got is not None
    return got


async def order(s: Stores, order_id: str) -> Order:
    got = await s.sales.get_order(order_id)
    assert got is not None
    return got


async def reserved(
    s: Stores, sl: Sale, uid: str = "u1", qty: int = 1, key: str | None = None, now: int = T0
) -> Order:
    got = await s.sales.reserve(sl.id, uid, qty, key or f"k-{uid}-{random.random()}", now)
    assert got.outcome is OK and got.order is not None, got
    return got.order


async def events(s: Stores, room: str = "r1") -> list[dict[str, str]]:
    return [fields for _, fields in await s.sales.events(room, None, 100_000)]


async def types(s: Stores, room: str = "r1") -> list[str]:
    return [e["type"] for e in await events(s, room)]


def check_counters(v: SaleView) -> None:
    """The invariant: every unit is left, reserved, paid or refunded; none below zero."""
    assert min(v.left, v.reserved, v.paid, v.refunded) >= 0, v
    assert v.left + v.reserved + v.paid + v.refunded == v.sale.stock, v


async def check_stock(s: Stores, sale_id: str) -> SaleView:
    """The counters agree with the orders, and nobody holds more than the limit."""
    v = await view(s, sale_id)
    check_counters(v)
    orders = [
        o for o in await s.sales.orders_in_room(v.sale.room_id, 100_000) if o.sale_id == sale_id
    ]
    units: Counter[OrderStatus] = Counter()
    holds: Counter[str] = Counter()
    for o in orders:
        units[o.status] += o.qty
        if o.status in (OrderStatus.RESERVED, OrderStatus.PAID) or (
            o.status is OrderStatus.REFUNDED and not o.restocked and o.release_reason is None
        ):
            holds[o.uid] += o.qty
    assert units[OrderStatus.RESERVED] == v.reserved
    assert units[OrderStatus.PAID] == v.paid
    assert all(h <= v.sale.limit for h in holds.values())
    return v


# --- ids ---------------------------------------------------------------------------------


def test_sale_and_order_ids_embed_their_room() -> None:
    sid, oid = new_sale_id("room-1_A"), new_order_id("room-1_A")
    assert sid.startswith("room-1_A.sl") and len(sid) == len("room-1_A.sl") + 10
    assert oid.startswith("room-1_A.od") and len(oid) == len("room-1_A.od") + 16
    assert room_of(sid) == room_of(oid) == "room-1_A"
    assert new_sale_id("r") != new_sale_id("r") and new_order_id("r") != new_order_id("r")
    assert room_of(new_order_id("x" * 64)) == "x" * 64


# --- create and get ------------------------------------------------------------------------


async def test_create_then_get(stores: Stores) -> None:
    sl = await created(stores, stock=200, limit=2)
    assert await view(stores, sl.id) == SaleView(sl, left=200, reserved=0, paid=0, refunded=0)
    assert await stores.sales.left(sl.id) == 200
    assert await events(stores) == [
        {
            "type": "sale_created",
            "sale": sl.id,
            "sku": "sku-42",
            "price_fen": str(PRICE),
            "stock": "200",
            "limit": "2",
            "starts_at": str(T0),
            "ends_at": str(T0 + HOUR),
            "reserve_ms": str(RES),
            "ts": str(T0 - 1_000),
        }
    ]
    assert [v.sale for v in await stores.sales.in_room("r1", T0)] == [sl]


async def test_get_unknown_is_none(stores: Stores) -> None:
    for sid in (new_sale_id("r1"), "garbage", "", "r1."):
        assert await stores.sales.get(sid) is None
        assert await stores.sales.left(sid) is None
    assert await stores.sales.get_order(new_order_id("r1")) is None
    assert await stores.sales.get_order("garbage") is None


async def test_duplicate_id_is_conflict_and_keeps_the_first(stores: Stores) -> None:
    sl = await created(stores, stock=5)
    with pytest.raises(Conflict) as info:
        await stores.sales.create(dataclasses.replace(sl, stock=99, title="other"))
    assert info.value.code is Code.CONFLICT
    assert (await view(stores, sl.id)).sale == sl
    assert await types(stores) == ["sale_created"]


@pytest.mark.parametrize(
    "change",
    [
        {"room_id": "r2"},
        {"stock": 0},
        {"limit": 0},
        {"price_fen": 0},
        {"price_fen": -5},
        {"reserve_ms": 0},
        {"stock": True},
        {"ends_at": T0},
        {"price_fen": 2**52, "limit": 4},
    ],
    ids=["room", "stock", "limit", "price", "negative", "reserve", "bool", "window", "huge"],
)
async def test_create_refuses_inconsistent_input(stores: Stores, change: dict[str, object]) -> None:
    sl = dataclasses.replace(sale(), **change)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await stores.sales.create(sl)
    assert await stores.sales.get(sl.id) is None
    assert await events(stores) == []


async def test_in_room_lists_sales_not_ended_oldest_first(stores: Stores) -> None:
    later = await created(stores, starts_at=T0 + HOUR, ends_at=T0 + 2 * HOUR)
    first = await created(stores, created_at=T0 - 9_000)
    short = await created(stores, ends_at=T0 + 10)
    other = await created(stores, room="r2")
    ids = [v.sale.id for v in await stores.sales.in_room("r1", T0)]
    assert ids == [first.id, *sorted([later.id, short.id])]  # same created_at: by id
    assert [v.sale.id for v in await stores.sales.in_room("r1", T0 + 10)] == [first.id, later.id]
    assert [v.sale.id for v in await stores.sales.in_room("r1", T0 + HOUR)] == [later.id]
    assert [v.sale.id for v in await stores.sales.in_room("r2", T0)] == [other.id]
    assert await stores.sales.in_room("r3", T0) == []
    await reserved(stores, first)
    (v,) = [v for v in await stores.sales.in_room("r1", T0) if v.sale.id == first.id]
    assert (v.left, v.reserved) == (9, 1)


# --- reserve -------------------------------------------------------------------------------


async def test_reserve_takes_stock_and_records_the_order(stores: Stores) -> None:
    sl = await created(stores, stock=10, limit=3)
    got = await stores.sales.reserve(sl.id, "u1", 2, "key-1", T0 + 5)
    assert (got.outcome, got.left, got.replayed) == (OK, 8, False)
    o = got.order
    assert o is not None and room_of(o.id) == "r1" and o.id.startswith("r1.od")
    assert o == Order(
        id=o.id,
        sale_id=sl.id,
        room_id="r1",
        uid="u1",
        qty=2,
        amount_fen=2 * PRICE,
        status=OrderStatus.RESERVED,
        created_at=T0 + 5,
        deadline=T0 + 5 + RES,
        idem_key="key-1",
    )
    assert o.expires_at == o.deadline
    assert await order(stores, o.id) == o
    assert await view(stores, sl.id) == SaleView(sl, 8, 2, 0, 0)
    assert (await events(stores))[-1] == {
        "type": "order_reserved",
        "order": o.id,
        "sale": sl.id,
        "uid": "u1",
        "qty": "2",
        "amount_fen": str(2 * PRICE),
        "deadline": str(T0 + 5 + RES),
        "left": "8",
        "ts": str(T0 + 5),
    }
    assert await stores.sales.due(T0 + 5 + RES, 10) == [o.id]
    assert await stores.sales.orders_in_room("r1") == [o]


@pytest.mark.parametrize("sid", ["r1.sl0000000000", "garbage", "", "r1.", "no room.sl1"])
async def test_unknown_sale_is_not_found(stores: Stores, sid: str) -> None:
    got = await stores.sales.reserve(sid, "u1", 1, "k", T0)
    assert (got.outcome, got.order, got.left) == (ReserveOutcome.NOT_FOUND, None, 0)
    assert got.outcome.code is Code.NOT_FOUND


async def test_reserve_only_inside_the_window(stores: Stores) -> None:
    sl = await created(stores, starts_at=T0 + 1_000, ends_at=T0 + 2_000)
    early = await stores.sales.reserve(sl.id, "u1", 1, "a", T0 + 999)
    assert (early.outcome, early.left) == (ReserveOutcome.NOT_STARTED, 10)
    late = await stores.sales.reserve(sl.id, "u1", 1, "b", T0 + 2_000)
    assert late.outcome is ReserveOutcome.ENDED
    assert early.outcome.code is late.outcome.code is Code.CONFLICT
    assert (await stores.sales.reserve(sl.id, "u1", 1, "c", T0 + 1_000)).outcome is OK
    assert (await stores.sales.reserve(sl.id, "u2", 1, "d", T0 + 1_999)).outcome is OK
    assert await types(stores) == ["sale_created", "order_reserved", "order_reserved"]


@pytest.mark.parametrize("qty", [0, -1, 3, 10**30, True, 1.5, "1", None])
async def test_bad_qty_changes_nothing(stores: Stores, qty: object) -> None:
    sl = await created(stores, limit=2)
    got = await stores.sales.reserve(sl.id, "u1", qty, "k", T0)  # type: ignore[arg-type]
    assert (got.outcome, got.order, got.left) == (ReserveOutcome.BAD_QTY, None, 10)
    assert got.outcome.code is Code.BAD_REQUEST
    assert await view(stores, sl.id) == SaleView(sl, 10, 0, 0, 0)
    # Not recorded: the same key with a good qty reserves.
    assert (await stores.sales.reserve(sl.id, "u1", 2, "k", T0)).outcome is OK


async def test_limit_counts_reserved_and_paid_but_not_released(stores: Stores) -> None:
    sl = await created(stores, limit=3)
    a = await reserved(stores, sl, "u1", 2)
    over = await stores.sales.reserve(sl.id, "u1", 2, "x", T0)
    assert (over.outcome, over.left) == (ReserveOutcome.LIMIT_REACHED, 8)
    assert over.outcome.code is Code.LIMIT_REACHED
    await stores.sales.confirm_paid(a.id, a.amount_fen, "tx-a", T0)
    assert (await stores.sales.reserve(sl.id, "u1", 2, "y", T0)).outcome is (
        ReserveOutcome.LIMIT_REACHED
    )
    b = await reserved(stores, sl, "u1", 1)
    assert (await stores.sales.reserve(sl.id, "u1", 1, "z", T0)).outcome is (
        ReserveOutcome.LIMIT_REACHED
    )
    assert await stores.sales.release(b.id, T0, CANCELLED) is not None
    c = await reserved(stores, sl, "u1", 1)
    assert await stores.sales.release(c.id, T0 + RES, EXPIRED) is not None
    assert (await stores.sales.reserve(sl.id, "u1", 1, "w", T0 + RES)).outcome is OK
    # Limits are per uid.
    assert (await stores.sales.reserve(sl.id, "u2", 3, "v", T0)).outcome is OK
    await check_stock(stores, sl.id)


async def test_limit_reached_comes_before_sold_out(stores: Stores) -> None:
    sl = await created(stores, stock=2, limit=2)
    await reserved(stores, sl, "u1", 2)
    assert (await stores.sales.reserve(sl.id, "u1", 1, "a", T0)).outcome is (
        ReserveOutcome.LIMIT_REACHED
    )
    got = await stores.sales.reserve(sl.id, "u2", 1, "b", T0)
    assert (got.outcome, got.left) == (ReserveOutcome.SOLD_OUT, 0)
    assert got.outcome.code is Code.SOLD_OUT


async def test_sold_out_for_more_than_is_left(stores: Stores) -> None:
    sl = await created(stores, stock=3, limit=2)
    await reserved(stores, sl, "u1", 2)
    assert (await stores.sales.reserve(sl.id, "u2", 2, "a", T0)).outcome is ReserveOutcome.SOLD_OUT
    last = await stores.sales.reserve(sl.id, "u2", 1, "b", T0)
    assert (last.outcome, last.left) == (OK, 0)
    assert (await stores.sales.reserve(sl.id, "u3", 1, "c", T0)).outcome is ReserveOutcome.SOLD_OUT
    assert await check_stock(stores, sl.id) == SaleView(sl, 0, 3, 0, 0)


# --- idempotency ---------------------------------------------------------------------------


async def test_same_key_returns_the_same_order_whatever_happened(stores: Stores) -> None:
    sl = await created(stores, stock=3, limit=2)
    first = await reserved(stores, sl, "u1", 1, key="idem-1")

    async def again(now: int = T0, qty: int = 1) -> ReserveResult:
        return await stores.sales.reserve(sl.id, "u1", qty, "idem-1", now)

    got = await again(qty=2)  # another qty: still the first order
    assert (got.outcome, got.order, got.replayed, got.left) == (OK, first, True, 2)
    await stores.sales.release(first.id, T0 + RES, EXPIRED)
    got = await again(T0 + RES)
    assert got.replayed and got.order is not None and got.order.id == first.id
    assert got.order.status is OrderStatus.EXPIRED and got.left == 3
    await stores.sales.confirm_paid(first.id, first.amount_fen, "tx-late", T0 + RES)
    assert (await again()).order == await order(stores, first.id)
    # Even once the sale is sold out or over.
    await reserved(stores, sl, "u2", 2)
    await reserved(stores, sl, "u3", 1)
    for now in (T0, T0 + HOUR, T0 - HOUR):
        got = await again(now)
        assert got.replayed and got.order is not None and got.order.id == first.id
    assert (await types(stores)).count("order_reserved") == 3
    await check_stock(stores, sl.id)


async def test_keys_are_per_uid_and_per_sale(stores: Stores) -> None:
    sl, other = await created(stores, limit=2), await created(stores, limit=2)
    a = await reserved(stores, sl, "u1", 1, key="k")
    b = await reserved(stores, sl, "u2", 1, key="k")
    c = await reserved(stores, other, "u1", 1, key="k")
    d = await reserved(stores, sl, "u1", 1, key="k2")
    assert len({a.id, b.id, c.id, d.id}) == 4
    assert (await view(stores, sl.id)).reserved == 3


async def test_a_refused_attempt_records_no_key(stores: Stores) -> None:
    sl = await created(stores, stock=1)
    held = await reserved(stores, sl, "u1")
    refused = await stores.sales.reserve(sl.id, "u2", 1, "retry", T0)
    assert refused.outcome is ReserveOutcome.SOLD_OUT
    await stores.sales.release(held.id, T0, CANCELLED)
    got = await stores.sales.reserve(sl.id, "u2", 1, "retry", T0)
    assert (got.outcome, got.replayed) == (OK, False)


@pytest.mark.parametrize(
    ("uid", "key"),
    [("u1", ""), ("u1", "k" * (MAX_IDEM_KEY + 1)), ("u1", "x" * 1_000_000), ("", "k")],
    ids=["empty-key", "129", "huge", "no-uid"],
)
async def test_bad_key_or_uid_is_a_caller_bug(stores: Stores, uid: str, key: str) -> None:
    sl = await created(stores)
    with pytest.raises(ValueError):
        await stores.sales.reserve(sl.id, uid, 1, key, T0)
    assert await view(stores, sl.id) == SaleView(sl, 10, 0, 0, 0)


async def test_longest_key_and_odd_uids_are_fine(stores: Stores) -> None:
    sl = await created(stores, limit=2)
    key = "键" * MAX_IDEM_KEY
    a = await reserved(stores, sl, "u:1", key=key)
    assert (await stores.sales.reserve(sl.id, "u:1", 1, key, T0)).order == a
    # The digest keeps (uid, key) pairs apart even when their concatenations agree.
    b = await reserved(stores, sl, "u:1", key="k")
    c = await reserved(stores, sl, "u", key=":1k")
    assert len({a.id, b.id, c.id}) == 3


async def test_50_replays_of_one_key_reserve_once(stores: Stores) -> None:
    sl = await created(stores, limit=2)
    results = await asyncio.gather(
        *(stores.sales.reserve(sl.id, "u1", 1, "same", T0) for _ in range(50))
    )
    assert {r.outcome for r in results} == {OK}
    assert len({r.order.id for r in results if r.order}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await view(stores, sl.id) == SaleView(sl, 9, 1, 0, 0)


# --- release -------------------------------------------------------------------------------


async def test_expire_only_at_the_deadline_and_exactly_once(stores: Stores) -> None:
    sl = await created(stores)
    o = await reserved(stores, sl, "u1", 2, now=T0 + 7)
    assert await stores.sales.release(o.id, o.deadline - 1, EXPIRED) is None
    out = await stores.sales.release(o.id, o.deadline, EXPIRED)
    assert out == dataclasses.replace(
        o, status=OrderStatus.EXPIRED, release_reason=EXPIRED, released_at=o.deadline
    )
    assert await order(stores, o.id) == out
    for reason in (EXPIRED, CANCELLED):
        assert await stores.sales.release(o.id, o.deadline + 1, reason) is None
    assert await check_stock(stores, sl.id) == SaleView(sl, 10, 0, 0, 0)
    assert (await events(stores))[-1] == {
        "type": "order_expired",
        "order": o.id,
        "sale": sl.id,
        "uid": "u1",
        "qty": "2",
        "amount_fen": str(2 * PRICE),
        "ts": str(o.deadline),
    }
    assert await stores.sales.due(o.deadline + HOUR, 10) == []


async def test_cancel_by_its_owner_or_an_operator_once(stores: Stores) -> None:
    sl = await created(stores)
    a, b = await reserved(stores, sl, "u1"), await reserved(stores, sl, "u2")
    assert await stores.sales.release(a.id, T0, CANCELLED, owner="u2") is None
    got = await stores.sales.release(a.id, T0 + 1, CANCELLED, owner="u1")
    assert got is not None and got.status is OrderStatus.CANCELLED and got.released_at == T0 + 1
    assert await stores.sales.release(a.id, T0 + 1, CANCELLED, owner="u1") is None
    assert await stores.sales.release(b.id, T0, CANCELLED) is not None  # operator: no owner
    assert await types(stores) == [
        "sale_created",
        *["order_reserved"] * 2,
        *["order_cancelled"] * 2,
    ]
    assert await check_stock(stores, sl.id) == SaleView(sl, 10, 0, 0, 0)
    assert await stores.sales.due(T0 + HOUR, 10) == []


async def test_a_paid_order_is_never_released(stores: Stores) -> None:
    sl = await created(stores)
    o = await reserved(stores, sl)
    await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0)
    for reason, owner in ((EXPIRED, None), (CANCELLED, None), (CANCELLED, "u1")):
        assert await stores.sales.release(o.id, T0 + HOUR, reason, owner=owner) is None
    assert (await order(stores, o.id)).status is OrderStatus.PAID
    assert await check_stock(stores, sl.id) == SaleView(sl, 9, 0, 1, 0)


async def test_release_of_unknown_is_none(stores: Stores) -> None:
    for oid in (new_order_id("r1"), "garbage", ""):
        assert await stores.sales.release(oid, T0, EXPIRED) is None
        assert await stores.sales.release(oid, T0, CANCELLED, owner="u1") is None


async def test_release_reason_is_checked(stores: Stores) -> None:
    o = await reserved(stores, await created(stores))
    with pytest.raises(ValueError):
        await stores.sales.release(o.id, T0, "refunded")  # type: ignore[arg-type]
    assert (await stores.sales.release(o.id, T0, "cancelled")) is not None  # type: ignore[arg-type]


# --- confirm -------------------------------------------------------------------------------


async def test_confirm_exactly_once(stores: Stores) -> None:
    sl = await created(stores)
    o = await reserved(stores, sl, "u1", 2)
    wrong = await stores.sales.confirm_paid(o.id, o.amount_fen - 1, "tx-1", T0 + 1)
    assert (wrong.outcome, wrong.order) == (ConfirmOutcome.MISMATCH, o)
    got = await stores.sales.confirm_paid(o.id, o.amount_fen, "tx-1", T0 + 2)
    paid = dataclasses.replace(o, status=OrderStatus.PAID, transaction_id="tx-1", paid_at=T0 + 2)
    assert (got.outcome, got.order) == (ConfirmOutcome.CONFIRMED, paid)
    log = await events(stores)
    assert log[-1] == {
        "type": "order_paid",
        "order": o.id,
        "sale": sl.id,
        "uid": "u1",
        "qty": "2",
        "amount_fen": str(2 * PRICE),
        "transaction_id": "tx-1",
        "ts": str(T0 + 2),
    }
    dup = await stores.sales.confirm_paid(o.id, o.amount_fen, "tx-1", T0 + 9)
    assert (dup.outcome, dup.order) == (ConfirmOutcome.DUPLICATE, paid)
    other = await stores.sales.confirm_paid(o.id, o.amount_fen, "tx-2", T0 + 9)
    assert (other.outcome, other.order) == (ConfirmOutcome.MISMATCH, paid)
    assert await events(stores) == log
    assert await check_stock(stores, sl.id) == SaleView(sl, 8, 0, 2, 0)
    assert await stores.sales.due(T0 + HOUR, 10) == []


async def test_payment_after_the_deadline_before_the_sweep_wins(stores: Stores) -> None:
    sl = await created(stores)
    o = await reserved(stores, sl)
    got = await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", o.deadline + 5)
    assert got.outcome is ConfirmOutcome.CONFIRMED
    assert await stores.sales.release(o.id, o.deadline + 6, EXPIRED) is None
    assert await check_stock(stores, sl.id) == SaleView(sl, 9, 0, 1, 0)


async def test_a_late_payment_is_kept_for_a_refund_and_takes_no_stock(stores: Stores) -> None:
    sl = await created(stores, stock=2, limit=2)
    o = await reserved(stores, sl, "u1", 2)
    await stores.sales.release(o.id, o.deadline, EXPIRED)
    again = await reserved(stores, sl, "u2", 2, now=o.deadline)  # resold
    got = await stores.sales.confirm_paid(o.id, o.amount_fen, "tx-late", o.deadline + 1)
    assert got.outcome is ConfirmOutcome.LATE and got.order is not None
    assert got.order.status is OrderStatus.PAID_LATE and got.order.transaction_id == "tx-late"
    assert got.order.release_reason is EXPIRED
    assert (await events(stores))[-1] == {
        "type": "payment_late",
        "order": o.id,
        "sale": sl.id,
        "uid": "u1",
        "qty": "2",
        "amount_fen": str(2 * PRICE),
        "transaction_id": "tx-late",
        "status": "expired",
        "ts": str(o.deadline + 1),
    }
    assert await check_stock(stores, sl.id) == SaleView(sl, 0, 2, 0, 0)
    dup = await stores.sales.confirm_paid(o.id, o.amount_fen, "tx-late", o.deadline + 2)
    assert (dup.outcome, dup.order) == (ConfirmOutcome.DUPLICATE, got.order)
    # Refunded without touching stock, even when a restock is asked for.
    refunded = await stores.sales.mark_refunded(o.id, o.amount_fen, "rf-1", T0, restock=True)
    assert refunded is not None and refunded.status is OrderStatus.REFUNDED
    assert not refunded.restocked and refunded.transaction_id == "tx-late"
    assert await stores.sales.mark_refunded(o.id, o.amount_fen, "rf-2", T0, restock=True) is None
    assert (await events(stores))[-1]["late"] == "1"
    assert await check_stock(stores, sl.id) == SaleView(sl, 0, 2, 0, 0)
    # The buyer of the resold units pays normally.
    paid = await stores.sales.confirm_paid(again.id, again.amount_fen, "tx-2", T0)
    assert paid.outcome is ConfirmOutcome.CONFIRMED


async def test_a_payment_for_a_cancelled_order_is_late(stores: Stores) -> None:
    sl = await created(stores)
    o = await reserved(stores, sl)
    await stores.sales.release(o.id, T0, CANCELLED, owner="u1")
    got = await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0 + 1)
    assert got.outcome is ConfirmOutcome.LATE
    assert (await events(stores))[-1]["status"] == "cancelled"
    assert await check_stock(stores, sl.id) == SaleView(sl, 10, 0, 0, 0)


async def test_confirm_of_unknown_is_not_found(stores: Stores) -> None:
    for oid in (new_order_id("r1"), "garbage"):
        got = await stores.sales.confirm_paid(oid, 100, "tx", T0)
        assert (got.outcome, got.order) == (ConfirmOutcome.NOT_FOUND, None)


@pytest.mark.parametrize(("amount", "tx"), [(0, "tx"), (-1, "tx"), (True, "tx"), (990, "")])
async def test_confirm_arguments_are_checked(stores: Stores, amount: int, tx: str) -> None:
    o = await reserved(stores, await created(stores))
    with pytest.raises(ValueError):
        await stores.sales.confirm_paid(o.id, amount, tx, T0)
    assert (await order(stores, o.id)).status is OrderStatus.RESERVED


# --- refund --------------------------------------------------------------------------------


async def test_refund_without_restock_keeps_the_units_out(stores: Stores) -> None:
    sl = await created(stores, stock=4, limit=2)
    o = await reserved(stores, sl, "u1", 2)
    await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0)
    got = await stores.sales.mark_refunded(o.id, 500, "rf-1", T0 + 3, restock=False)
    assert got == dataclasses.replace(
        o,
        status=OrderStatus.REFUNDED,
        transaction_id="tx",
        paid_at=T0,
        refund_fen=500,
        out_refund_no="rf-1",
        refunded_at=T0 + 3,
        restocked=False,
        refund_status=RefundState.PROCESSING,
    )
    assert await stores.sales.mark_refunded(o.id, 500, "rf-1", T0 + 4, restock=True) is None
    assert await check_stock(stores, sl.id) == SaleView(sl, 2, 0, 0, 2)
    # The units stay the buyer's, for the limit.
    assert (await stores.sales.reserve(sl.id, "u1", 1, "more", T0)).outcome is (
        ReserveOutcome.LIMIT_REACHED
    )
    assert (await events(stores))[-1] == {
        "type": "order_refunded",
        "order": o.id,
        "sale": sl.id,
        "uid": "u1",
        "qty": "2",
        "amount_fen": "500",
        "out_refund_no": "rf-1",
        "restock": "0",
        "late": "0",
        "ts": str(T0 + 3),
    }
    # A notification of the original payment is still a duplicate.
    dup = await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0 + 5)
    assert dup.outcome is ConfirmOutcome.DUPLICATE


async def test_refund_with_restock_returns_units_and_quota(stores: Stores) -> None:
    sl = await created(stores, stock=2, limit=2)
    o = await reserved(stores, sl, "u1", 2)
    await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0)
    got = await stores.sales.mark_refunded(o.id, o.amount_fen, "rf", T0, restock=True)
    assert got is not None and got.restocked
    assert await check_stock(stores, sl.id) == SaleView(sl, 2, 0, 0, 0)
    assert (await events(stores))[-1]["restock"] == "1"
    assert (await stores.sales.reserve(sl.id, "u1", 2, "again", T0)).outcome is OK


async def test_refund_of_an_unpaid_order_changes_nothing(stores: Stores) -> None:
    sl = await created(stores)
    live = await reserved(stores, sl, "u1")
    gone = await reserved(stores, sl, "u2")
    await stores.sales.release(gone.id, T0, CANCELLED)
    paid = await reserved(stores, sl, "u3")
    await stores.sales.confirm_paid(paid.id, paid.amount_fen, "tx", T0)
    before, log = await view(stores, sl.id), await events(stores)
    for oid in (live.id, gone.id, new_order_id("r1"), "garbage"):
        for restock in (True, False):
            assert await stores.sales.mark_refunded(oid, 1, "rf", T0, restock=restock) is None
    too_much = paid.amount_fen + 1
    assert await stores.sales.mark_refunded(paid.id, too_much, "rf", T0, restock=True) is None
    assert await view(stores, sl.id) == before and await events(stores) == log
    for bad in (0, -5):
        with pytest.raises(ValueError):
            await stores.sales.mark_refunded(paid.id, bad, "rf", T0, restock=False)
    with pytest.raises(ValueError):
        await stores.sales.mark_refunded(paid.id, 1, "", T0, restock=False)


async def test_a_processing_refund_is_settled_exactly_once(stores: Stores) -> None:
    sl = await created(stores)
    o = await reserved(stores, sl, "u1")
    await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0)
    await stores.sales.mark_refunded(o.id, o.amount_fen, "rf-1", T0 + 1, restock=False)
    before, log = await view(stores, sl.id), await events(stores)
    # Another refund's notification, or one for an order never refunded, changes nothing.
    assert await stores.sales.settle_refund(o.id, "rf-2", RefundState.SUCCESS, T0 + 2) is None
    for oid in (new_order_id("r1"), "garbage"):
        assert await stores.sales.settle_refund(oid, "rf-1", RefundState.SUCCESS, T0) is None
    got = await stores.sales.settle_refund(o.id, "rf-1", RefundState.ABNORMAL, T0 + 3)
    assert got is not None and got.status is OrderStatus.REFUNDED
    assert (got.refund_status, got.refund_settled_at) == (RefundState.ABNORMAL, T0 + 3)
    assert await order(stores, o.id) == got
    # A redelivery (or a contradicting one) changes nothing: settled once.
    assert await stores.sales.settle_refund(o.id, "rf-1", RefundState.SUCCESS, T0 + 4) is None
    assert (await order(stores, o.id)).refund_status is RefundState.ABNORMAL
    assert await view(stores, sl.id) == before  # stock is the refund's business, not this
    assert (await events(stores))[len(log) :] == [
        {
            "type": "refund_settled",
            "order": o.id,
            "sale": sl.id,
            "uid": "u1",
            "qty": "1",
            "amount_fen": str(o.amount_fen),
            "out_refund_no": "rf-1",
            "state": "abnormal",
            "ts": str(T0 + 3),
        }
    ]


async def test_a_refund_finished_at_once_is_settled_and_not_again(stores: Stores) -> None:
    o = await reserved(stores, await created(stores), "u1")
    await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0)
    got = await stores.sales.mark_refunded(
        o.id, o.amount_fen, "rf", T0 + 1, restock=True, settled=True
    )
    assert got is not None and got.refund_status is RefundState.SUCCESS
    assert got.refund_settled_at == T0 + 1
    assert await stores.sales.settle_refund(o.id, "rf", RefundState.CLOSED, T0 + 2) is None


async def test_settle_arguments_are_checked(stores: Stores) -> None:
    o = await reserved(stores, await created(stores), "u1")
    await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0)
    await stores.sales.mark_refunded(o.id, o.amount_fen, "rf", T0, restock=False)
    with pytest.raises(ValueError):
        await stores.sales.settle_refund(o.id, "rf", RefundState.PROCESSING, T0)
    with pytest.raises(ValueError):
        await stores.sales.settle_refund(o.id, "", RefundState.SUCCESS, T0)
    assert (await order(stores, o.id)).refund_status is RefundState.PROCESSING


# --- closing a sale (its room ended) -------------------------------------------------------


async def test_close_ends_an_open_sale_now_and_keeps_its_orders(stores: Stores) -> None:
    sl = await created(stores)
    held = await reserved(stores, sl, "u1", now=T0 + 5)
    assert await stores.sales.close(sl.id, T0 + 10) is True
    got = await view(stores, sl.id)
    assert got.sale == dataclasses.replace(sl, ends_at=T0 + 10)
    assert (got.left, got.reserved) == (sl.stock - 1, 1)
    after = await stores.sales.reserve(sl.id, "u2", 1, "late", T0 + 11)
    assert after.outcome is ReserveOutcome.ENDED and after.order is None
    assert await stores.sales.in_room("r1", T0 + 11) == []
    # The order already reserved keeps its deadline and can still be paid.
    assert (await order(stores, held.id)).deadline == held.deadline
    paid = await stores.sales.confirm_paid(held.id, held.amount_fen, "tx", T0 + 12)
    assert paid.outcome is ConfirmOutcome.CONFIRMED
    assert (await events(stores))[-2] == {
        "type": "sale_closed", "sale": sl.id, "ends_at": str(T0 + 10), "ts": str(T0 + 10),
    }  # fmt: skip


async def test_close_of_an_ended_or_unknown_sale_changes_nothing(stores: Stores) -> None:
    sl = await created(stores, ends_at=T0 + 100)
    before, log = await view(stores, sl.id), await events(stores)
    assert await stores.sales.close(sl.id, T0 + 100) is False  # over at that very moment
    assert await stores.sales.close(sl.id, T0 + 500) is False
    for sid in (new_sale_id("r1"), "garbage"):
        assert await stores.sales.close(sid, T0) is False
    assert await view(stores, sl.id) == before and await events(stores) == log


# --- due and reconciliation ----------------------------------------------------------------


async def test_due_and_near_deadline_list_reserved_orders_earliest_first(stores: Stores) -> None:
    sl = await created(stores, stock=20, limit=5)
    late = await reserved(stores, sl, "u1", now=T0 + 3_000)
    early = await reserved(stores, sl, "u2", now=T0 + 1_000)
    mid = await reserved(stores, sl, "u3", now=T0 + 2_000)
    other = await reserved(stores, await created(stores, room="r2"), "u4", now=T0 + 2_500)
    assert await stores.sales.due(T0 + RES, 10) == []
    assert await stores.sales.due(T0 + 1_000 + RES, 10) == [early.id]
    assert await stores.sales.due(T0 + 3_000 + RES, 10) == [early.id, mid.id, other.id, late.id]
    assert await stores.sales.due(T0 + 3_000 + RES, 2) == [early.id, mid.id]
    assert await stores.sales.due(T0 + 3_000 + RES, 0) == []
    soon = await stores.sales.near_deadline(T0 + 1_000 + RES, 1_000, 10)
    assert soon == [early.id, mid.id]  # overdue ones included
    assert await stores.sales.near_deadline(T0, 0, 10) == []
    # Paid and released orders leave the index.
    await stores.sales.confirm_paid(early.id, early.amount_fen, "tx", T0)
    await stores.sales.release(mid.id, T0, CANCELLED)
    assert await stores.sales.due(T0 + HOUR, 10) == [other.id, late.id]


async def test_sweeping_releases_every_due_order_once(make_stores: MakeStores) -> None:
    a, b = two(make_stores)
    sl = await created(a, stock=300, limit=1)
    orders = [await reserved(a, sl, f"u{i}", now=T0 + i) for i in range(300)]
    now = T0 + 300 + RES
    released: list[Order] = []

    async def sweep(s: Stores) -> None:
        while batch := await s.sales.due(now, 50):
            for o in await asyncio.gather(*(s.sales.release(x, now, EXPIRED) for x in batch)):
                if o is not None:
                    released.append(o)

    await asyncio.gather(sweep(a), sweep(b), sweep(a), sweep(b))
    assert sorted(o.id for o in released) == sorted(o.id for o in orders)
    assert await check_stock(a, sl.id) == SaleView(sl, 300, 0, 0, 0)
    assert (await types(b)).count("order_expired") == 300


# --- listing and events ---------------------------------------------------------------------


async def test_orders_in_room_in_reservation_order_with_paging(stores: Stores) -> None:
    s1, s2 = await created(stores, limit=5), await created(stores, limit=5)
    made = [await reserved(stores, (s1, s2)[i % 2], f"u{i}", now=T0 + 10 - i) for i in range(7)]
    other = await reserved(stores, await created(stores, room="r2"), "u1")
    await stores.sales.confirm_paid(made[2].id, made[2].amount_fen, "tx", T0)
    listed = await stores.sales.orders_in_room("r1", 100)
    assert [o.id for o in listed] == [o.id for o in made]
    assert listed[2].status is OrderStatus.PAID
    page = await stores.sales.orders_in_room("r1", 3, after=made[1].id)
    assert [o.id for o in page] == [o.id for o in made[2:5]]
    assert await stores.sales.orders_in_room("r1", 3, after=made[-1].id) == []
    assert await stores.sales.orders_in_room("r1", 3, after=other.id) == []
    assert await stores.sales.orders_in_room("r1", 3, after="garbage") == []
    assert await stores.sales.orders_in_room("r1", 0) == []
    assert [o.id for o in await stores.sales.orders_in_room("r2")] == [other.id]


async def test_events_are_the_sale_and_order_events_of_the_ledger(stores: Stores) -> None:
    sl = await created(stores)
    await stores.ledger.append("r1", {"type": "rp_claim", "packet": "p", "ts": 1})
    o = await reserved(stores, sl)
    await stores.ledger.append("r1", {"type": "lot_created", "ts": 2})
    await stores.sales.release(o.id, T0, CANCELLED)
    got = await stores.sales.events("r1")
    assert [f["type"] for _, f in got] == ["sale_created", "order_reserved", "order_cancelled"]
    everything = await stores.ledger.read("r1", None, 100)
    assert [i for i, _ in got] == [
        i for i, f in everything if f["type"] not in ("rp_claim", "lot_created")
    ]
    after = await stores.sales.events("r1", got[0][0], 1)
    assert after == got[1:2]
    assert await stores.sales.events("r1", got[-1][0]) == []
    assert await stores.sales.events("r9") == []
    with pytest.raises(ValueError):
        await stores.sales.events("r1", "not-an-id")


# --- concurrency ---------------------------------------------------------------------------


async def test_pay_and_cancel_of_one_order_at_once_one_wins(make_stores: MakeStores) -> None:
    a, b = two(make_stores)
    sl = await created(a, stock=40, limit=1)
    for i in range(40):
        o = await reserved(a, sl, f"u{i}")
        pay = b.sales.confirm_paid(o.id, o.amount_fen, f"tx{i}", T0 + 1)
        cancel = a.sales.release(o.id, T0 + 1, CANCELLED, owner=f"u{i}")
        if i % 2:
            paid, cancelled = await asyncio.gather(pay, cancel)
        else:
            cancelled, paid = await asyncio.gather(cancel, pay)
        now = await order(a, o.id)
        if cancelled is None:  # the payment won
            assert paid.outcome is ConfirmOutcome.CONFIRMED and now.status is OrderStatus.PAID
        else:  # the cancel won: the payment is kept to be refunded
            assert paid.outcome is ConfirmOutcome.LATE and now.status is OrderStatus.PAID_LATE
            assert now.release_reason is CANCELLED
        assert now.transaction_id == f"tx{i}"
    v = await check_stock(a, sl.id)
    paid_orders = [o for o in await a.sales.orders_in_room("r1", 100) if o.status == "paid"]
    assert v.paid == len(paid_orders) and v.left == 40 - v.paid and v.reserved == 0


async def rush(
    stores: Sequence[Stores], sl: Sale, uids: list[str], keys: tuple[str, str], now: int
) -> list[tuple[str, int, ReserveResult]]:
    """Every uid tries twice (qty 1 or 2), all at once, spread over ``stores``."""
    rng = random.Random(f"{sl.id}{keys}")
    calls = [(uid, rng.choice((1, 2)), key) for uid in uids for key in keys]
    rng.shuffle(calls)
    done = asyncio.Event()

    async def watch() -> int:
        # The stock as anyone could read it mid-rush: never negative, never more than stock.
        seen = 0
        while not done.is_set():
            check_counters(await view(stores[0], sl.id))
            seen += 1
            await asyncio.sleep(0)
        return seen

    watcher = asyncio.create_task(watch())
    try:
        results = await asyncio.gather(
            *(
                stores[i % len(stores)].sales.reserve(sl.id, uid, qty, key, now)
                for i, (uid, qty, key) in enumerate(calls)
            )
        )
    finally:
        done.set()
    assert await watcher > 0
    return [(uid, qty, r) for (uid, qty, _), r in zip(calls, results, strict=True)]


def check_rush(sl: Sale, tried: list[tuple[str, int, ReserveResult]]) -> list[Order]:
    outcomes = Counter(r.outcome for _, _, r in tried)
    assert set(outcomes) <= {OK, ReserveOutcome.SOLD_OUT, ReserveOutcome.LIMIT_REACHED}
    won = [r.order for _, _, r in tried if r.outcome is OK and r.order is not None]
    assert sum(o.qty for o in won) == sl.stock  # exactly the stock: never more, never less
    assert all(not r.replayed for _, _, r in tried)
    per_uid: defaultdict[str, int] = defaultdict(int)
    for o in won:
        per_uid[o.uid] += o.qty
    assert max(per_uid.values()) <= sl.limit
    assert all(r.left >= 0 for _, _, r in tried)
    return won


async def sweep_all(s: Stores, now: int) -> int:
    released = 0
    while batch := await s.sales.due(now, 200):
        got = await asyncio.gather(*(s.sales.release(oid, now, EXPIRED) for oid in batch))
        released += sum(o is not None for o in got)
    return released


async def run_flash_sale(stores: Sequence[Stores]) -> None:
    s = stores[0]
    sl = await created(s, stock=200, limit=2, ends_at=T0 + HOUR)
    uids = [f"u{i}" for i in range(2_500)]
    # Phase 1: 5,000 attempts over 200 units.
    won = check_rush(sl, await rush(stores, sl, uids, ("a", "b"), T0))
    assert await check_stock(s, sl.id) == SaleView(sl, 0, 200, 0, 0)
    # The ledger tells the units left after each reservation, in the order they were
    # taken: strictly down, and "0" (sold out, webhooks' sale.sold_out) exactly once.
    reserved_ = [e for e in await events(s) if e["type"] == "order_reserved"]
    lefts = [int(e["left"]) for e in reserved_]
    assert lefts[-1] == 0 and lefts.count(0) == 1
    before = [200, *lefts[:-1]]
    assert all(a - int(e["qty"]) == b for a, b, e in zip(before, lefts, reserved_, strict=True))
    # Phase 2: nobody pays; every reservation comes back at its deadline, once.
    assert await sweep_all(s, T0 + RES - 1) == 0
    assert await sweep_all(s, T0 + RES) == len(won)
    assert await check_stock(s, sl.id) == SaleView(sl, 200, 0, 0, 0)
    # Phase 3: sold again, to the same crowd with new keys; the old keys replay.
    later = T0 + RES + 1
    won2 = check_rush(sl, await rush(stores, sl, uids, ("c", "d"), later))
    replay = await s.sales.reserve(sl.id, won[0].uid, 1, won[0].idem_key, later)
    assert replay.replayed and replay.order is not None
    assert replay.order.status is OrderStatus.EXPIRED
    # Phase 4: half pay (from every connection at once), the rest expire.
    payers = won2[::2]
    paid = await asyncio.gather(
        *(
            stores[i % len(stores)].sales.confirm_paid(o.id, o.amount_fen, f"tx-{o.id}", later)
            for i, o in enumerate(payers)
        )
    )
    assert {p.outcome for p in paid} == {ConfirmOutcome.CONFIRMED}
    paid_units = sum(o.qty for o in payers)
    assert await check_stock(s, sl.id) == SaleView(sl, 0, 200 - paid_units, paid_units, 0)
    assert await sweep_all(s, later + RES) == len(won2) - len(payers)
    assert await check_stock(s, sl.id) == SaleView(sl, 200 - paid_units, 0, paid_units, 0)
    kinds = Counter(await types(s))
    assert kinds["order_reserved"] == len(won) + len(won2)
    assert kinds["order_expired"] == len(won) + len(won2) - len(payers)
    assert kinds["order_paid"] == len(payers)


async def test_5000_buyers_over_200_units(stores: Stores) -> None:
    await run_flash_sale([stores])


@pytest.mark.parametrize("kind", ["redis"])
async def test_5000_buyers_over_200_units_from_two_connections(make_stores: MakeStores) -> None:
    await run_flash_sale([make_stores(), make_stores()])


# --- redis layout --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_keys_carry_the_room_hash_tag(
    stores: Stores, redis_url: str, redis_prefix: str
) -> None:
    sl = await created(stores)
    o = await reserved(stores, sl)
    await stores.sales.confirm_paid(o.id, o.amount_fen, "tx", T0)
    await reserved(stores, sl, "u2")
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = sorted([k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")])
    finally:
        await client.aclose()
    per_room = [k for k in keys if k != f"{redis_prefix}sale-rooms"]
    # sale, holds, idem, two orders, the room's sales, orders, deadline index and ledger
    assert len(per_room) == 9, keys
    assert all(k.count("{") == 1 and "{r1}" in k for k in per_room), keys
    assert f"{redis_prefix}sale-rooms" in keys


@pytest.mark.parametrize("kind", ["redis"])
async def test_rooms_leave_the_sweep_only_when_stale_and_empty(
    stores: Stores, redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)

    async def listed() -> list[str]:
        return [r.decode() for r in await client.zrange(f"{redis_prefix}sale-rooms", 0, -1)]

    try:
        busy = await created(stores, room="busy")
        o = await reserved(stores, busy)
        await created(stores, room="quiet")
        await created(stores, room="soon", ends_at=T0 + 30 * HOUR)
        day = 24 * HOUR
        assert await listed() == ["busy", "quiet", "soon"]
        assert await stores.sales.due(T0 + HOUR + RES + day, 10) == [o.id]  # not stale yet
        assert await listed() == ["busy", "quiet", "soon"]
        # A day past the last possible deadline: empty rooms go, a room with an order stays.
        assert await stores.sales.due(T0 + 2 * day, 10) == [o.id]
        assert await listed() == ["busy", "soon"]
        await stores.sales.release(o.id, T0 + 2 * day, EXPIRED)
        await stores.sales.due(T0 + 3 * day, 10)
        assert await listed() == []
        # A new sale lists its room again, and its orders are swept.
        again = await created(stores, room="quiet", starts_at=T0, ends_at=T0 + 4 * day)
        o2 = await reserved(stores, again, now=T0 + 3 * day)
        assert await stores.sales.due(T0 + 3 * day + RES, 10) == [o2.id]
    finally:
        await client.aclose()
