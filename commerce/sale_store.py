"""SaleStore: flash sale stock, per-user limits, orders, their deadlines and their payments.

One store for sales and orders, because every atomic step changes both: a reserve takes
stock and creates an order, a release or a restocking refund gives stock back from one.

Contract:
- ``create(sale)`` stores a sale with ``left = stock`` (``check_new_sale``: the id must be
  of ``room_id``, positive stock, limit, price and reserve time, ``starts_at < ends_at``;
  ``ValueError`` otherwise, a caller bug). An id that exists is ``Conflict``. The sale
  joins its room and ``sale_created`` goes to the room's ledger in one atomic step.
- ``reserve(sale_id, uid, qty, idem_key, now_ms)`` is one atomic step, checks in this
  order: unknown or malformed sale id → ``not_found``; ``(uid, idem_key)`` reserved an
  order of this sale before → ``ok`` with ``replayed=True`` and that order *as it is now*
  (paid, expired, cancelled, refunded: whatever happened since), nothing changes;
  ``now < starts_at`` → ``not_started``; ``now ≥ ends_at`` → ``ended``; ``qty`` not an int
  in ``1..limit`` → ``bad_qty``; the uid's held units (reserved + paid, not released) +
  qty > limit → ``limit_reached``; ``left < qty`` → ``sold_out``. Else: left -= qty, the
  uid holds qty more, a ``reserved`` order (amount = qty × price, deadline = now +
  reserve_ms) is created and joins the deadline index, ``order_reserved`` goes to the
  ledger, and the key is recorded. Only an order records its key: a refused attempt
  leaves nothing, so a retry with the same key may succeed later.
  With a ``coupon`` (``CouponUse``: its discount computed by ``commerce.coupons.
  discount_fen`` from immutable terms), after ``sold_out``: a coupon not the uid's or not
  ``available`` → ``coupon_unavailable``; outside its window → ``coupon_expired``; else
  the order is for ``original − discount`` and the coupon is ``locked`` by it, in the
  same step. ``release`` gives a locked coupon back (``available``), ``confirm_paid``
  makes it ``used``, and a full ``mark_refunded`` of a ``paid`` order makes it
  ``available`` again; each in its own step. Every order event of such an order carries
  ``coupon``, ``original_amount_fen`` and ``discount_fen`` (``order_refunded`` also
  ``coupon_restored``, "1" or "0"). Keys are scoped to
  (sale, uid), are 1..``MAX_IDEM_KEY`` characters (``ValueError`` otherwise) and are stored
  hashed (``idem_digest``), so their length never reaches a key or field name.
- ``release(order_id, now_ms, reason, owner=None)`` returns a ``reserved`` order's units
  exactly once, across processes: for ``expired`` only when ``deadline ≤ now``; for
  ``cancelled`` only when ``owner`` is None (an operator) or the order's uid. The order
  becomes ``expired`` / ``cancelled``, left += qty, the uid's hold -= qty, it leaves the
  deadline index and ``order_expired`` / ``order_cancelled`` goes to the ledger; the
  order is returned. Every other case (unknown, not reserved — paid above all —, not due,
  another owner) returns None and changes nothing.
- ``confirm_paid(order_id, amount_fen, transaction_id, now_ms)``, atomic: unknown →
  ``not_found``; ``amount_fen`` ≠ the order's amount → ``mismatch``; ``reserved`` →
  ``paid`` (also past its deadline, if the sweeper has not released it yet: the payment
  decides), out of the deadline index, ``order_paid`` → ``confirmed``; ``paid``,
  ``paid_late`` or ``refunded`` with the same transaction → ``duplicate``, with another →
  ``mismatch``; ``expired`` or ``cancelled`` → ``paid_late`` with the transaction recorded
  and ``payment_late`` in the ledger, stock untouched (it was returned; it is never taken
  twice) → ``late``: the caller must refund it. Only ``confirmed`` and ``late`` change
  anything.
- ``mark_refunded(order_id, refund_fen, out_refund_no, now_ms, restock=False)``: a
  ``paid`` or ``paid_late`` order becomes ``refunded`` exactly once (``order_refunded``).
  With ``restock`` a paid order's units go back to the sale (left += qty) and to the
  uid's quota; without, they count as ``refunded`` in the sale and the uid keeps holding
  them. A ``paid_late`` order's units were returned at its release: never restocked.
  Any other status, or ``refund_fen`` above the amount, returns None and changes nothing;
  a ``refund_fen`` that is not a positive int is ``ValueError``.
  The order's ``refund_status`` becomes ``success`` when ``settled`` (the payment side
  finished it at once: the dev provider), else ``processing``.
- ``settle_refund(order_id, out_refund_no, state, now_ms)``: a ``refunded`` order whose
  refund (that ``out_refund_no``) is ``processing`` takes ``state`` (``success``,
  ``closed`` or ``abnormal``: the refund notification) exactly once, with
  ``refund_settled`` in the ledger; anything else (unknown order, another refund, settled
  already, not refunded) returns None and changes nothing. ``state`` ``processing`` or an
  empty ``out_refund_no`` is ``ValueError``.
- Stock invariant, at every moment: ``left + reserved + paid + refunded == stock``, every
  counter ≥ 0, and every uid holds at most ``limit`` units.
- ``close(sale_id, now_ms)``: a sale still open (``ends_at > now``) ends now: ``ends_at``
  becomes ``now`` (so reserving answers ``ended`` from now on and the sale leaves
  ``in_room``), with ``sale_closed`` in the ledger; True. Orders already reserved keep
  their deadlines. A sale that ended already, or an unknown id, is False and unchanged.
- ``due(now_ms, limit)``: up to ``limit`` ids of reserved orders with ``deadline ≤ now``,
  earliest deadline first (ties by id); ``near_deadline(now_ms, within_ms, limit)`` the
  same up to ``now + within_ms`` (so it includes the overdue ones). The index sits in the
  same atomic step as the order, so a reserved order is never missing from it.
- ``get`` is the sale and its counters in one read; ``left`` its stock left (None when
  unknown); ``in_room(room_id, now_ms)`` the room's sales on the shelf (``ends_at > now``,
  including those not started yet), oldest first.
- ``get_order``; ``orders_in_room(room_id, limit, after)``: the room's orders in
  reservation order, after the order id ``after`` (from the first when None; an id that
  is not one of the room's orders reads as empty).
- ``events(room_id, after, count)``: the sale and order events of the room's ledger, as
  ``Ledger.read`` returns them (ids, ``after`` and ``ValueError`` alike), leaving out the
  other types (red packets, lotteries).
- Keys, records and the ledger are kept without expiry: orders are money.

Ledger events (``commerce.ledger``; all values strings, money in fen, ``ts`` the step):
- ``sale_created``: sale, sku, price_fen, stock, limit, starts_at, ends_at, reserve_ms, ts
- ``sale_closed``: sale, ends_at (the new end: the time it was closed), ts — its room
  ended before the sale did
- ``order_reserved``: order, sale, uid, qty, amount_fen, deadline, left (the sale's units
  left after this reservation; "0": it sold out), ts
- ``order_expired`` / ``order_cancelled``: order, sale, uid, qty, amount_fen, ts
- ``order_paid``: order, sale, uid, qty, amount_fen, transaction_id, ts
- ``payment_late``: order, sale, uid, qty, amount_fen, transaction_id, status (what the
  order was: expired or cancelled), ts — money received that is owed back
- ``order_refunded``: order, sale, uid, qty, amount_fen (the refund), out_refund_no,
  restock ("1" or "0"), late ("1" for a late payment), ts
- ``refund_settled``: order, sale, uid, qty, amount_fen (the refund), out_refund_no, state
  (success, closed or abnormal), ts
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from commerce.coupons import CouponStore, CouponUse
from commerce.ids import room_of
from commerce.ledger import parse_id
from commerce.sale_models import (
    MAX_IDEM_KEY,
    ConfirmResult,
    Order,
    RefundState,
    ReleaseReason,
    ReserveResult,
    Sale,
    SaleView,
)

# Ledger event types this store writes; ``events`` reads only these.
EVENT_TYPES = frozenset(
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

# Ledger events examined per round trip in ``events``.
_PAGE = 500

# amount = qty × price is computed in Lua, whose numbers are doubles: keep it exact.
_MAX_EXACT = 2**53 - 1


class SaleStore(Protocol):
    async def create(self, sale: Sale) -> None: ...

    async def get(self, sale_id: str) -> SaleView | None: ...

    async def left(self, sale_id: str) -> int | None: ...

    async def in_room(self, room_id: str, now_ms: int) -> list[SaleView]: ...

    # The coupon store whose coupons ``reserve`` locks (commerce.coupons).
    coupons: CouponStore

    async def reserve(
        self,
        sale_id: str,
        uid: str,
        qty: int,
        idem_key: str,
        now_ms: int,
        coupon: CouponUse | None = None,
    ) -> ReserveResult: ...

    async def release(
        self, order_id: str, now_ms: int, reason: ReleaseReason, *, owner: str | None = None
    ) -> Order | None: ...

    async def confirm_paid(
        self, order_id: str, amount_fen: int, transaction_id: str, now_ms: int
    ) -> ConfirmResult: ...

    async def mark_refunded(
        self,
        order_id: str,
        refund_fen: int,
        out_refund_no: str,
        now_ms: int,
        *,
        restock: bool,
        settled: bool = False,
    ) -> Order | None: ...

    async def settle_refund(
        self, order_id: str, out_refund_no: str, state: RefundState, now_ms: int
    ) -> Order | None: ...

    async def close(self, sale_id: str, now_ms: int) -> bool: ...

    async def due(self, now_ms: int, limit: int) -> list[str]: ...

    async def near_deadline(self, now_ms: int, within_ms: int, limit: int) -> list[str]: ...

    async def get_order(self, order_id: str) -> Order | None: ...

    async def orders_in_room(
        self, room_id: str, limit: int = 100, after: str | None = None
    ) -> list[Order]: ...

    async def events(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]: ...


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_new_sale(sale: Sale) -> None:
    """Raise ``ValueError`` unless ``sale`` is a sale its room can take."""
    if room_of(sale.id) != sale.room_id:
        raise ValueError(f"sale id {sale.id!r} is not of room {sale.room_id!r}")
    for name in ("price_fen", "stock", "limit", "reserve_ms"):
        value = getattr(sale, name)
        if not _int(value) or value < 1:
            raise ValueError(f"a sale's {name} must be a positive integer, not {value!r}")
    if not all(_int(getattr(sale, n)) for n in ("starts_at", "ends_at", "created_at")):
        raise ValueError("a sale's times are integer Unix ms")
    if sale.starts_at >= sale.ends_at:
        raise ValueError("a sale must start before it ends")
    if sale.price_fen * sale.limit > _MAX_EXACT:
        raise ValueError("price_fen × limit is too large")
    if not isinstance(sale.title, str) or not isinstance(sale.sku, str):
        raise ValueError("a sale's title and sku are strings")


def check_reserve_args(uid: str, idem_key: str) -> None:
    """Raise ``ValueError`` for a missing uid or an idempotency key of the wrong size."""
    if not isinstance(uid, str) or not uid:
        raise ValueError("a reserve needs a uid")
    if not isinstance(idem_key, str) or not 1 <= len(idem_key) <= MAX_IDEM_KEY:
        raise ValueError(f"an idempotency key has 1 to {MAX_IDEM_KEY} characters")


def check_payment_args(amount_fen: int, reference: str, what: str) -> None:
    """Raise ``ValueError`` unless ``amount_fen`` is a positive int and ``reference`` is set."""
    if not _int(amount_fen) or amount_fen < 1:
        raise ValueError(f"amount_fen must be a positive integer, not {amount_fen!r}")
    if not isinstance(reference, str) or not reference:
        raise ValueError(f"{what} must be a non-empty string")


def check_settle_args(out_refund_no: str, state: RefundState) -> None:
    """Raise ``ValueError`` unless ``state`` settles a refund named by ``out_refund_no``."""
    if not isinstance(out_refund_no, str) or not out_refund_no:
        raise ValueError("out_refund_no must be a non-empty string")
    if RefundState(state) is RefundState.PROCESSING:
        raise ValueError("a refund is settled as success, closed or abnormal")


def qty_arg(qty: object) -> int:
    """``qty`` when it is an int, else 0 (so it is refused as ``bad_qty``, after replays)."""
    return qty if _int(qty) else 0  # type: ignore[return-value]


def idem_digest(uid: str, idem_key: str) -> str:
    """Hex sha256 naming the record of ``(uid, idem_key)``; the length prefix keeps it 1:1."""
    return hashlib.sha256(f"{len(uid)}:{uid}:{idem_key}".encode()).hexdigest()


LedgerRead = Callable[[str, str | None, int], Awaitable[list[tuple[str, dict[str, str]]]]]


async def read_events(
    read: LedgerRead, room_id: str, after: str | None, count: int
) -> list[tuple[str, dict[str, str]]]:
    """Page through a room's ledger with ``read`` and keep the sale and order events."""
    if after is not None:
        parse_id(after)
    out: list[tuple[str, dict[str, str]]] = []
    cursor = after
    while len(out) < count:
        page = await read(room_id, cursor, _PAGE)
        out += [(eid, f) for eid, f in page if f.get("type") in EVENT_TYPES]
        if len(page) < _PAGE:
            break
        cursor = page[-1][0]
    return out[: max(count, 0)]
