"""In-process SaleStore (see ``commerce.sale_store`` for the contract).

No method awaits between reading and writing, so each is atomic on the event loop, and
the ledger append is part of the same step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from commerce.coupon_store_memory import MemoryCouponStore
from commerce.coupons import CouponStatus, CouponUse
from commerce.ids import new_order_id, room_of
from commerce.ledger_memory import MemoryLedger
from commerce.sale_models import (
    ConfirmOutcome,
    ConfirmResult,
    Order,
    OrderStatus,
    RefundState,
    ReleaseReason,
    ReserveOutcome,
    ReserveResult,
    Sale,
    SaleView,
)
from commerce.sale_store import (
    check_new_sale,
    check_payment_args,
    check_reserve_args,
    check_settle_args,
    idem_digest,
    qty_arg,
    read_events,
)
from interact.floor.errors import Conflict


class _Sale:
    __slots__ = ("holds", "idem", "left", "meta", "paid", "refunded", "reserved")

    def __init__(self, meta: Sale) -> None:
        self.meta = meta
        self.left = meta.stock
        self.reserved = 0
        self.paid = 0
        self.refunded = 0
        self.holds: dict[str, int] = {}  # uid -> units reserved + paid
        self.idem: dict[str, str] = {}  # idem_digest -> order id

    def view(self) -> SaleView:
        return SaleView(self.meta, self.left, self.reserved, self.paid, self.refunded)

    def hold(self, uid: str, delta: int) -> None:
        held = self.holds.get(uid, 0) + delta
        if held:
            self.holds[uid] = held
        else:
            self.holds.pop(uid, None)


class MemorySaleStore:
    def __init__(self, ledger: MemoryLedger | None = None) -> None:
        self.ledger = ledger if ledger is not None else MemoryLedger()
        # Coupons are locked, used, released and restored inside this store's steps.
        self.coupons = MemoryCouponStore(self.ledger)
        self._sales: dict[str, _Sale] = {}
        self._room_sales: dict[str, list[str]] = {}  # room -> sale ids
        self._orders: dict[str, Order] = {}
        self._room_orders: dict[str, list[str]] = {}  # room -> order ids, reservation order
        self._order_pos: dict[str, int] = {}  # order id -> index in its room's list
        self._due: dict[str, int] = {}  # reserved order id -> deadline

    def forget_room(self, room_id: str) -> None:
        """Drop the room's sales and orders (its refund window has passed: rooms.retention)."""
        for sale_id in self._room_sales.pop(room_id, []):
            self._sales.pop(sale_id, None)
        for order_id in self._room_orders.pop(room_id, []):
            self._orders.pop(order_id, None)
            self._order_pos.pop(order_id, None)
            self._due.pop(order_id, None)

    def _log(self, room_id: str, event: Mapping[str, object]) -> None:
        self.ledger.append_now(room_id, event)

    # --- sales

    async def create(self, sale: Sale) -> None:
        check_new_sale(sale)
        if sale.id in self._sales:
            raise Conflict(f"sale {sale.id} exists")
        self._sales[sale.id] = _Sale(sale)
        self._room_sales.setdefault(sale.room_id, []).append(sale.id)
        self._log(
            sale.room_id,
            {
                "type": "sale_created",
                "sale": sale.id,
                "sku": sale.sku,
                "price_fen": sale.price_fen,
                "stock": sale.stock,
                "limit": sale.limit,
                "starts_at": sale.starts_at,
                "ends_at": sale.ends_at,
                "reserve_ms": sale.reserve_ms,
                "ts": sale.created_at,
            },
        )

    async def close(self, sale_id: str, now_ms: int) -> bool:
        s = self._sale(sale_id)
        if s is None or s.meta.ends_at <= now_ms:
            return False
        s.meta = dataclasses.replace(s.meta, ends_at=now_ms)
        self._log(
            s.meta.room_id,
            {"type": "sale_closed", "sale": sale_id, "ends_at": now_ms, "ts": now_ms},
        )
        return True

    def _sale(self, sale_id: str) -> _Sale | None:
        return self._sales.get(sale_id) if room_of(sale_id) is not None else None

    async def get(self, sale_id: str) -> SaleView | None:
        s = self._sale(sale_id)
        return None if s is None else s.view()

    async def left(self, sale_id: str) -> int | None:
        s = self._sale(sale_id)
        return None if s is None else s.left

    async def in_room(self, room_id: str, now_ms: int) -> list[SaleView]:
        sales = [self._sales[sid] for sid in self._room_sales.get(room_id, ())]
        live = [s for s in sales if s.meta.ends_at > now_ms]
        live.sort(key=lambda s: (s.meta.created_at, s.meta.id))
        return [s.view() for s in live]

    # --- orders

    async def reserve(
        self,
        sale_id: str,
        uid: str,
        qty: int,
        idem_key: str,
        now_ms: int,
        coupon: CouponUse | None = None,
    ) -> ReserveResult:
        check_reserve_args(uid, idem_key)
        s = self._sale(sale_id)
        if s is None:
            return ReserveResult(ReserveOutcome.NOT_FOUND)
        digest = idem_digest(uid, idem_key)
        first = s.idem.get(digest)
        if first is not None:
            return ReserveResult(ReserveOutcome.OK, self._orders[first], s.left, replayed=True)
        meta, n = s.meta, qty_arg(qty)
        if now_ms < meta.starts_at:
            return ReserveResult(ReserveOutcome.NOT_STARTED, None, s.left)
        if now_ms >= meta.ends_at:
            return ReserveResult(ReserveOutcome.ENDED, None, s.left)
        if not 1 <= n <= meta.limit:
            return ReserveResult(ReserveOutcome.BAD_QTY, None, s.left)
        if s.holds.get(uid, 0) + n > meta.limit:
            return ReserveResult(ReserveOutcome.LIMIT_REACHED, None, s.left)
        if s.left < n:
            return ReserveResult(ReserveOutcome.SOLD_OUT, None, s.left)
        original, discount = n * meta.price_fen, 0
        if coupon is not None:
            refused = self.coupons.refusal_now(coupon.coupon_id, uid, now_ms)
            if refused is not None:
                return ReserveResult(ReserveOutcome(refused), None, s.left)
            if coupon.original_fen != original or not 0 < coupon.discount_fen < original:
                raise ValueError("the coupon's discount was not computed for this order")
            discount = coupon.discount_fen
        order_id = new_order_id(meta.room_id)
        while order_id in self._orders:
            order_id = new_order_id(meta.room_id)
        order = Order(
            id=order_id,
            sale_id=meta.id,
            room_id=meta.room_id,
            uid=uid,
            qty=n,
            amount_fen=original - discount,
            status=OrderStatus.RESERVED,
            created_at=now_ms,
            deadline=now_ms + meta.reserve_ms,
            idem_key=idem_key,
            coupon=None if coupon is None else coupon.coupon_id,
            discount_fen=discount,
        )
        if coupon is not None:
            self.coupons.move_now(
                coupon.coupon_id, order_id, CouponStatus.AVAILABLE, CouponStatus.LOCKED
            )
        s.left -= n
        s.reserved += n
        s.hold(uid, n)
        s.idem[digest] = order_id
        self._orders[order_id] = order
        room_orders = self._room_orders.setdefault(meta.room_id, [])
        self._order_pos[order_id] = len(room_orders)
        room_orders.append(order_id)
        self._due[order_id] = order.deadline
        self._log(
            meta.room_id,
            {
                **_fields(order, "order_reserved"),
                "deadline": order.deadline,
                "left": s.left,
                "ts": now_ms,
            },
        )
        return ReserveResult(ReserveOutcome.OK, order, s.left)

    def _order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id) if room_of(order_id) is not None else None

    def _put(self, order: Order) -> Order:
        self._orders[order.id] = order
        return order

    async def release(
        self, order_id: str, now_ms: int, reason: ReleaseReason, *, owner: str | None = None
    ) -> Order | None:
        why = ReleaseReason(reason)
        o = self._order(order_id)
        if o is None or o.status is not OrderStatus.RESERVED:
            return None
        if why is ReleaseReason.EXPIRED and now_ms < o.deadline:
            return None
        if why is ReleaseReason.CANCELLED and owner is not None and owner != o.uid:
            return None
        s = self._sales[o.sale_id]
        s.left += o.qty
        s.reserved -= o.qty
        s.hold(o.uid, -o.qty)
        self._due.pop(o.id, None)
        if o.coupon is not None:
            self.coupons.move_now(o.coupon, o.id, CouponStatus.LOCKED, CouponStatus.AVAILABLE)
        out = self._put(
            dataclasses.replace(
                o, status=OrderStatus(why.value), release_reason=why, released_at=now_ms
            )
        )
        self._log(o.room_id, {**_fields(out, f"order_{why.value}"), "ts": now_ms})
        return out

    async def confirm_paid(
        self, order_id: str, amount_fen: int, transaction_id: str, now_ms: int
    ) -> ConfirmResult:
        check_payment_args(amount_fen, transaction_id, "transaction_id")
        o = self._order(order_id)
        if o is None:
            return ConfirmResult(ConfirmOutcome.NOT_FOUND)
        if amount_fen != o.amount_fen:
            return ConfirmResult(ConfirmOutcome.MISMATCH, o)
        if o.status is OrderStatus.RESERVED:
            s = self._sales[o.sale_id]
            s.reserved -= o.qty
            s.paid += o.qty
            self._due.pop(o.id, None)
            if o.coupon is not None:
                self.coupons.move_now(o.coupon, o.id, CouponStatus.LOCKED, CouponStatus.USED)
            out = self._put(
                dataclasses.replace(
                    o, status=OrderStatus.PAID, transaction_id=transaction_id, paid_at=now_ms
                )
            )
            event = {**_fields(out, "order_paid"), "transaction_id": transaction_id}
            self._log(o.room_id, {**event, "ts": now_ms})
            return ConfirmResult(ConfirmOutcome.CONFIRMED, out)
        if o.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED):
            out = self._put(
                dataclasses.replace(
                    o, status=OrderStatus.PAID_LATE, transaction_id=transaction_id, paid_at=now_ms
                )
            )
            event = {**_fields(out, "payment_late"), "transaction_id": transaction_id}
            self._log(o.room_id, {**event, "status": o.status.value, "ts": now_ms})
            return ConfirmResult(ConfirmOutcome.LATE, out)
        if o.transaction_id == transaction_id:
            return ConfirmResult(ConfirmOutcome.DUPLICATE, o)
        return ConfirmResult(ConfirmOutcome.MISMATCH, o)

    async def mark_refunded(
        self,
        order_id: str,
        refund_fen: int,
        out_refund_no: str,
        now_ms: int,
        *,
        restock: bool,
        settled: bool = False,
    ) -> Order | None:
        check_payment_args(refund_fen, out_refund_no, "out_refund_no")
        o = self._order(order_id)
        if o is None or refund_fen > o.amount_fen:
            return None
        late = o.status is OrderStatus.PAID_LATE
        if o.status is not OrderStatus.PAID and not late:
            return None
        back = bool(restock) and not late
        # The coupon comes back with a full refund of a paid order (a late payment's was
        # released with the order, and may be another order's by now).
        restored = (
            not late
            and refund_fen == o.amount_fen
            and o.coupon is not None
            and self.coupons.move_now(o.coupon, o.id, CouponStatus.USED, CouponStatus.AVAILABLE)
        )
        if not late:
            s = self._sales[o.sale_id]
            s.paid -= o.qty
            if back:
                s.left += o.qty
                s.hold(o.uid, -o.qty)
            else:
                s.refunded += o.qty
        out = self._put(
            dataclasses.replace(
                o,
                status=OrderStatus.REFUNDED,
                refund_fen=refund_fen,
                out_refund_no=out_refund_no,
                refunded_at=now_ms,
                restocked=back,
                refund_status=RefundState.SUCCESS if settled else RefundState.PROCESSING,
                refund_settled_at=now_ms if settled else None,
            )
        )
        self._log(
            o.room_id,
            {
                **_fields(out, "order_refunded"),
                "amount_fen": refund_fen,
                "out_refund_no": out_refund_no,
                "restock": int(back),
                "late": int(late),
                **({"coupon_restored": int(restored)} if o.coupon is not None else {}),
                "ts": now_ms,
            },
        )
        return out

    async def settle_refund(
        self, order_id: str, out_refund_no: str, state: RefundState, now_ms: int
    ) -> Order | None:
        check_settle_args(out_refund_no, state)
        o = self._order(order_id)
        if (
            o is None
            or o.status is not OrderStatus.REFUNDED
            or o.out_refund_no != out_refund_no
            or o.refund_status is not RefundState.PROCESSING
        ):
            return None
        out = self._put(dataclasses.replace(o, refund_status=state, refund_settled_at=now_ms))
        self._log(
            o.room_id,
            {
                **_fields(out, "refund_settled"),
                "amount_fen": o.refund_fen,
                "out_refund_no": out_refund_no,
                "state": state.value,
                "ts": now_ms,
            },
        )
        return out

    async def due(self, now_ms: int, limit: int) -> list[str]:
        return await self.near_deadline(now_ms, 0, limit)

    async def near_deadline(self, now_ms: int, within_ms: int, limit: int) -> list[str]:
        upto = now_ms + max(within_ms, 0)
        ready = sorted((at, oid) for oid, at in self._due.items() if at <= upto)
        return [oid for _, oid in ready[: max(limit, 0)]]

    async def get_order(self, order_id: str) -> Order | None:
        return self._order(order_id)

    async def orders_in_room(
        self, room_id: str, limit: int = 100, after: str | None = None
    ) -> list[Order]:
        ids = self._room_orders.get(room_id, [])
        start = 0
        if after is not None:
            pos = self._order_pos.get(after)
            if pos is None or room_of(after) != room_id:
                return []
            start = pos + 1
        return [self._orders[oid] for oid in ids[start : start + max(limit, 0)]]

    async def events(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        return await read_events(self.ledger.read, room_id, after, count)


def _fields(order: Order, kind: str) -> dict[str, object]:
    """The fields every order event has, but ``ts``; an order with a coupon names it."""
    fields: dict[str, object] = {
        "type": kind,
        "order": order.id,
        "sale": order.sale_id,
        "uid": order.uid,
        "qty": order.qty,
        "amount_fen": order.amount_fen,
    }
    if order.coupon is not None:
        fields |= {
            "coupon": order.coupon,
            "original_amount_fen": order.original_amount_fen,
            "discount_fen": order.discount_fen,
        }
    return fields
