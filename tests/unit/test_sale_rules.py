"""The pure rules of flash sales: what a sale, a reserve, a payment and a refund must carry.

``commerce.sale_store``'s checks run in both stores before any atomic step (the contract
tests run those steps on both engines); here each rule is pinned at its edges, so a
weakened bound or a dropped check fails a test of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from commerce import sale_store
from commerce.sale_models import (
    MAX_IDEM_KEY,
    Order,
    OrderStatus,
    RefundState,
    ReserveOutcome,
    Sale,
)
from commerce.sale_store import (
    EVENT_TYPES,
    check_new_sale,
    check_payment_args,
    check_reserve_args,
    check_settle_args,
    idem_digest,
    qty_arg,
    read_events,
)
from interact.floor.errors import Code

ROOM = "room-1"
SALE = Sale(
    id=f"{ROOM}.sl0123456789",
    room_id=ROOM,
    title="新品",
    sku="sku-1",
    price_fen=9900,
    stock=100,
    limit=2,
    starts_at=1_000,
    ends_at=2_000,
    reserve_ms=60_000,
    created_at=900,
)
MAX_EXACT = 2**53 - 1  # the largest integer a Lua number (a double) holds exactly


def sale(**changes: Any) -> Sale:
    return dataclasses.replace(SALE, **changes)


def refused(candidate: Sale) -> str:
    with pytest.raises(ValueError) as info:
        check_new_sale(candidate)
    return str(info.value)


# --- check_new_sale ----------------------------------------------------------------------


def test_a_well_formed_sale_passes() -> None:
    check_new_sale(SALE)
    check_new_sale(sale(price_fen=1, stock=1, limit=1, reserve_ms=1, starts_at=0, ends_at=1))


@pytest.mark.parametrize("name", ["price_fen", "stock", "limit", "reserve_ms"])
@pytest.mark.parametrize("value", [0, -1, True, 1.0, "5", None])
def test_counts_must_be_positive_integers(name: str, value: Any) -> None:
    assert refused(sale(**{name: value})) == (
        f"a sale's {name} must be a positive integer, not {value!r}"
    )


@pytest.mark.parametrize("name", ["starts_at", "ends_at", "created_at"])
@pytest.mark.parametrize("value", [1_500.0, True, "1500", None])
def test_times_must_be_integers(name: str, value: Any) -> None:
    assert refused(sale(**{name: value})) == "a sale's times are integer Unix ms"


@pytest.mark.parametrize(("starts_at", "ends_at"), [(2_000, 2_000), (2_001, 2_000)])
def test_a_sale_starts_before_it_ends(starts_at: int, ends_at: int) -> None:
    assert refused(sale(starts_at=starts_at, ends_at=ends_at)) == "a sale must start before it ends"


def test_price_times_limit_stays_exact() -> None:
    # One user's largest order, in fen, must be exact in Lua's doubles.
    check_new_sale(sale(price_fen=MAX_EXACT, limit=1))
    assert refused(sale(price_fen=MAX_EXACT, limit=2)) == "price_fen × limit is too large"
    check_new_sale(sale(price_fen=(MAX_EXACT - 1) // 2, limit=2))
    too_large = sale(price_fen=(MAX_EXACT + 1) // 2, limit=2)
    assert refused(too_large) == "price_fen × limit is too large"


@pytest.mark.parametrize(("title", "sku"), [(None, "sku"), ("t", 7)])
def test_title_and_sku_are_strings(title: Any, sku: Any) -> None:
    assert refused(sale(title=title, sku=sku)) == "a sale's title and sku are strings"


@pytest.mark.parametrize("sale_id", ["other-room.sl0123456789", "room-1", "room-1.", 7])
def test_the_id_names_the_room(sale_id: Any) -> None:
    assert refused(sale(id=sale_id)) == f"sale id {sale_id!r} is not of room {ROOM!r}"


# --- reserve, payment and refund arguments -----------------------------------------------


def test_reserve_args() -> None:
    check_reserve_args("u1", "k")
    check_reserve_args("u1", "k" * MAX_IDEM_KEY)
    for uid in ("", None, 7):
        with pytest.raises(ValueError, match=r"^a reserve needs a uid$"):
            check_reserve_args(uid, "k")  # type: ignore[arg-type]
    for key in ("", "k" * (MAX_IDEM_KEY + 1), None, b"k"):
        with pytest.raises(ValueError, match=r"^an idempotency key has 1 to 128 characters$"):
            check_reserve_args("u1", key)  # type: ignore[arg-type]


def test_payment_args() -> None:
    check_payment_args(1, "tx", "transaction_id")
    for amount in (0, -5, True, 1.0, "1"):
        with pytest.raises(ValueError) as info:
            check_payment_args(amount, "tx", "transaction_id")  # type: ignore[arg-type]
        assert str(info.value) == f"amount_fen must be a positive integer, not {amount!r}"
    for reference in ("", None, 7):
        with pytest.raises(ValueError, match=r"^out_refund_no must be a non-empty string$"):
            check_payment_args(1, reference, "out_refund_no")  # type: ignore[arg-type]


def test_settle_args() -> None:
    for state in (RefundState.SUCCESS, RefundState.CLOSED, "abnormal"):
        check_settle_args("rf1", state)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^a refund is settled as success, closed or abnormal$"):
        check_settle_args("rf1", RefundState.PROCESSING)
    with pytest.raises(ValueError):
        check_settle_args("rf1", "unknown")  # type: ignore[arg-type]
    for reference in ("", None):
        with pytest.raises(ValueError, match=r"^out_refund_no must be a non-empty string$"):
            check_settle_args(reference, RefundState.SUCCESS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("qty", "expected"), [(3, 3), (0, 0), (-2, -2), (True, 0), (2.0, 0), ("2", 0)]
)
def test_qty_arg_passes_ints_and_zeroes_the_rest(qty: Any, expected: int) -> None:
    assert qty_arg(qty) == expected
    assert type(qty_arg(qty)) is int


def test_idem_digest_is_sha256_of_a_length_prefixed_pair() -> None:
    assert idem_digest("u1", "k") == hashlib.sha256(b"2:u1:k").hexdigest()
    # Without the length, ("a:b", "c") and ("a", "b:c") would share a record.
    assert idem_digest("a:b", "c") != idem_digest("a", "b:c")


# --- models --------------------------------------------------------------------------------


def test_each_refused_reserve_has_its_wire_code() -> None:
    assert {outcome: outcome.code for outcome in ReserveOutcome} == {
        ReserveOutcome.OK: None,
        ReserveOutcome.SOLD_OUT: Code.SOLD_OUT,
        ReserveOutcome.LIMIT_REACHED: Code.LIMIT_REACHED,
        ReserveOutcome.NOT_STARTED: Code.CONFLICT,
        ReserveOutcome.ENDED: Code.CONFLICT,
        ReserveOutcome.NOT_FOUND: Code.NOT_FOUND,
        ReserveOutcome.BAD_QTY: Code.BAD_REQUEST,
        ReserveOutcome.COUPON_UNAVAILABLE: Code.CONFLICT,
        ReserveOutcome.COUPON_EXPIRED: Code.CONFLICT,
    }


def test_an_order_expires_at_its_deadline() -> None:
    order = Order(
        id=f"{ROOM}.od0123456789abcdef",
        sale_id=SALE.id,
        room_id=ROOM,
        uid="u1",
        qty=2,
        amount_fen=2 * SALE.price_fen,
        status=OrderStatus.RESERVED,
        created_at=1_000,
        deadline=61_000,
        idem_key="k",
    )
    assert order.expires_at == 61_000


# --- read_events -----------------------------------------------------------------------------


class PagedLedger:
    """A ledger read over a list, one page per call, recording each call's cursor."""

    def __init__(self, events: list[tuple[str, dict[str, str]]]) -> None:
        self.events = events
        self.cursors: list[str | None] = []

    async def read(
        self, room_id: str, after: str | None, count: int
    ) -> list[tuple[str, dict[str, str]]]:
        assert room_id == ROOM
        self.cursors.append(after)
        start = 0 if after is None else [e for e, _ in self.events].index(after) + 1
        return self.events[start : start + count]


def ledger_of(types: list[str]) -> PagedLedger:
    return PagedLedger([(f"{i + 1}-0", {"type": t}) for i, t in enumerate(types)])


async def test_events_keep_only_the_sale_types_across_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sale_store, "_PAGE", 3)
    ledger = ledger_of(
        ["grab", "sale_created", "draw", "order_reserved", "grab", "grab", "order_paid"]
    )
    events = await read_events(ledger.read, ROOM, None, 10)
    assert [eid for eid, _ in events] == ["2-0", "4-0", "7-0"]
    # Full pages go on from the last id read; the short last page ends the walk.
    assert ledger.cursors == [None, "3-0", "6-0"]


async def test_events_stop_at_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sale_store, "_PAGE", 2)
    ledger = ledger_of(["sale_created", "order_reserved", "order_paid", "order_refunded"])
    assert [e for e, _ in await read_events(ledger.read, ROOM, None, 3)] == ["1-0", "2-0", "3-0"]
    assert ledger.cursors == [None, "2-0"]
    # A full first page that already holds ``count`` events is the last read.
    ledger = ledger_of(["sale_created", "order_reserved", "order_paid", "order_refunded"])
    assert [e for e, _ in await read_events(ledger.read, ROOM, None, 2)] == ["1-0", "2-0"]
    assert ledger.cursors == [None]
    assert await read_events(ledger_of(["sale_created"]).read, ROOM, None, 0) == []
    assert await read_events(ledger_of(["sale_created"]).read, ROOM, None, -1) == []


async def test_events_read_after_a_cursor() -> None:
    ledger = ledger_of(["sale_created", "order_reserved", "order_paid"])
    assert [e for e, _ in await read_events(ledger.read, ROOM, "1-0", 10)] == ["2-0", "3-0"]
    with pytest.raises(ValueError, match="not a stream id"):
        await read_events(ledger.read, ROOM, "1-x", 10)


def test_every_ledger_type_the_store_writes_is_read() -> None:
    assert (
        frozenset(
            {
                "sale_created",
                "sale_closed",
                "order_reserved",
                "order_expired",
                "order_cancelled",
                "order_paid",
                "payment_late",
                "order_refunded",
                "refund_settled",
            }
        )
        == EVENT_TYPES
    )
