"""OrderService: flash sales, orders and their payment, exactly once.

Reserve is one atomic store step; payment confirmation arrives from outside (the dev
confirm URL or WeChat's signed notification) and is applied exactly once; unpaid orders
are released at their deadline by a sweeper any number of processes may run; a payment
that arrives for an order already released is recorded and refunded, never kept and
never sold twice. Stock changes are coalesced per process and published once per tick.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from commerce.coupons import CouponUse, discount_fen, is_coupon_id, refusal
from commerce.ids import new_sale_id, room_of
from commerce.nonce_store import NonceStore
from commerce.payment import PaymentProvider, order_of
from commerce.sale_models import (
    DEFAULT_RESERVE_MS,
    MAX_IDEM_KEY,
    ConfirmOutcome,
    Order,
    OrderStatus,
    RefundState,
    ReleaseReason,
    ReserveOutcome,
    Sale,
    SaleView,
)
from commerce.sale_store import SaleStore, check_new_sale
from commerce.wechatpay import (
    MAX_SKEW,
    EventType,
    MerchantConfig,
    MismatchError,
    RefundResult,
    Transaction,
    UntrustedMessage,
    check_refund,
    check_transaction,
    parse_notification,
)
from interact.floor.errors import BadRequest, Code, Conflict, Forbidden, NotFound, Unavailable
from rooms.audience import AudienceRecorder
from rooms.broker import Broker

log = logging.getLogger("interact.orders")

MAX_STOCK = 10_000_000
MAX_PRICE_FEN = 100_000_000
RECONCILE_WITHIN_MS = 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class NotifyAnswer:
    """What to answer WeChat: 204 with no body, or 4xx with ``{"code":"FAIL",...}``."""

    status: int
    message: str = ""


def sale_message(view: SaleView) -> dict[str, Any]:
    s = view.sale
    return {
        "t": "sale", "id": s.id, "title": s.title, "sku": s.sku, "price_fen": s.price_fen,
        "stock": view.left, "limit": s.limit, "starts_at": s.starts_at, "ends_at": s.ends_at,
    }  # fmt: skip


def sale_body(view: SaleView) -> dict[str, Any]:
    s = view.sale
    return {
        "id": s.id, "room": s.room_id, "title": s.title, "sku": s.sku,
        "price_fen": s.price_fen, "stock": s.stock, "left": view.left,
        "reserved": view.reserved, "paid": view.paid, "refunded": view.refunded,
        "limit": s.limit, "starts_at": s.starts_at, "ends_at": s.ends_at,
        "reserve_seconds": s.reserve_ms // 1000, "created_at": s.created_at,
    }  # fmt: skip


def order_body(order: Order) -> dict[str, Any]:
    return {
        "id": order.id, "sale": order.sale_id, "room": order.room_id, "uid": order.uid,
        "qty": order.qty, "amount_fen": order.amount_fen, "status": order.status.value,
        "created_at": order.created_at, "expires_at": order.deadline,
        "paid_at": order.paid_at, "transaction_id": order.transaction_id,
        "released_at": order.released_at,
        "release_reason": order.release_reason.value if order.release_reason else None,
        "refund_fen": order.refund_fen, "refunded_at": order.refunded_at,
        "out_refund_no": order.out_refund_no,
        "restocked": order.restocked,
        "refund_status": order.refund_status, "refund_settled_at": order.refund_settled_at,
        "coupon": order.coupon, "original_amount_fen": order.original_amount_fen,
        "discount_fen": order.discount_fen,
    }  # fmt: skip


class OrderService:
    def __init__(
        self,
        *,
        store: SaleStore,
        broker: Broker,
        provider: PaymentProvider,
        nonces: NonceStore,
        merchant: MerchantConfig | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.broker = broker
        self.provider = provider
        self.nonces = nonces
        self.merchant = merchant
        self.clock = clock
        self._dirty: set[str] = set()  # sales whose stock changed since the last flush
        # Exact audience counting (rooms.audience): orders, buyers, GMV, if kept.
        self.recorder: AudienceRecorder | None = None
        # Called once per confirmed payment, in the process that confirmed it (invite
        # rewards, wired by the application); a failure is logged, never the payment's.
        self.on_paid: list[Callable[[Order], Awaitable[None]]] = []

    # -- sales ------------------------------------------------------------------------

    async def create_sale(self, room_id: str, data: Mapping[str, Any]) -> SaleView:
        now = self.clock()
        title = data.get("title")
        if not isinstance(title, str) or not 0 < len(title.strip()) <= 100:
            raise BadRequest("title must be 1 to 100 characters")
        sku = data.get("sku", "")
        if not isinstance(sku, str) or len(sku) > 64:
            raise BadRequest("sku must be a string of at most 64 characters")
        price = _int(data, "price_fen", 1, MAX_PRICE_FEN)
        stock = _int(data, "stock", 1, MAX_STOCK)
        limit = _int(data, "limit", 1, 10_000, default=1)
        starts_at = _int(data, "starts_at", 0, 2**53, default=now)
        ends_at = _int(data, "ends_at", 0, 2**53, default=starts_at + 24 * 3600 * 1000)
        reserve_s = _int(data, "reserve_seconds", 1, 24 * 3600, default=DEFAULT_RESERVE_MS // 1000)
        if ends_at <= max(starts_at, now):
            raise BadRequest("ends_at must be after starts_at and in the future")
        sale = Sale(
            id=new_sale_id(room_id), room_id=room_id, title=title.strip(), sku=sku,
            price_fen=price, stock=stock, limit=limit, starts_at=starts_at, ends_at=ends_at,
            reserve_ms=reserve_s * 1000, created_at=now,
        )  # fmt: skip
        try:
            check_new_sale(sale)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        await self.store.create(sale)
        view = SaleView(sale=sale, left=stock, reserved=0, paid=0)
        await self._publish(room_id, sale_message(view))
        return view

    async def get_sale(self, sale_id: str) -> SaleView:
        view = await self.store.get(sale_id)
        if view is None:
            raise NotFound(f"no sale {sale_id[:80]}")
        return view

    async def close_room(self, room_id: str) -> int:
        """The room ended: its sales still on the shelf end now (orders already reserved
        keep their deadlines); each closed sale is announced with its new end."""
        now = self.clock()
        closed = 0
        for view in await self.store.in_room(room_id, now):
            if await self.store.close(view.sale.id, now):
                closed += 1
                ended = dataclasses.replace(view.sale, ends_at=now)
                await self._publish(room_id, sale_message(dataclasses.replace(view, sale=ended)))
        return closed

    async def snapshot(self, room_id: str) -> dict[str, list[dict[str, Any]]]:
        """Sales on the shelf, for a late joiner's welcome."""
        return {"sale": [sale_message(v) for v in await self.store.in_room(room_id, self.clock())]}

    # -- orders -----------------------------------------------------------------------

    async def reserve(
        self, sale_id: str, uid: str, qty: object, idem_key: str, coupon: object = None
    ) -> tuple[Order, bool]:
        """Reserve ``qty`` (with a coupon of the caller's); returns the order and whether
        it was an idempotent replay."""
        if not idem_key or len(idem_key) > MAX_IDEM_KEY:
            raise BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEM_KEY} characters")
        if room_of(sale_id) is None:
            raise NotFound(f"no sale {sale_id[:80]}")
        if not isinstance(qty, int) or isinstance(qty, bool):
            raise BadRequest("qty must be a positive integer")
        now = self.clock()
        use = None if coupon is None else await self._coupon_use(sale_id, uid, qty, coupon, now)
        result = await self.store.reserve(sale_id, uid, qty, idem_key, now, use)
        if result.order is not None and result.outcome is ReserveOutcome.OK:
            if not result.replayed:
                self._dirty.add(sale_id)
                self._count(result.order, "order", "orders", "order_fen")
            return result.order, result.replayed
        code = result.outcome.code or Code.CONFLICT
        message = _RESERVE_MESSAGES.get(result.outcome, "cannot reserve")
        if code is Code.NOT_FOUND:
            raise NotFound(message)
        if code is Code.BAD_REQUEST:
            raise BadRequest(message)
        if result.outcome in (ReserveOutcome.COUPON_UNAVAILABLE, ReserveOutcome.COUPON_EXPIRED):
            raise Conflict(message, code, reason=result.outcome.value)
        raise Conflict(message, code, left=result.left)

    async def _coupon_use(
        self, sale_id: str, uid: str, qty: int, coupon: object, now: int
    ) -> CouponUse | None:
        """The discount of ``coupon`` on this order, from its and the sale's terms (both
        immutable); its state is checked, and it is locked, in the reserve's own step."""
        if not is_coupon_id(coupon):
            raise BadRequest("'coupon' must be a coupon id")
        assert isinstance(coupon, str)
        found = await self.store.coupons.get(coupon)
        if found is None or found.uid != uid:
            raise NotFound("no such coupon of yours")
        view = await self.store.get(sale_id)
        if view is None:
            raise NotFound(f"no sale {sale_id[:80]}")
        if not 1 <= qty <= view.sale.limit:
            return None  # refused as bad_qty by the store (after a replay, as without)
        original = qty * view.sale.price_fen
        why = refusal(found.terms, room_id=view.sale.room_id, original_fen=original, now_ms=now)
        if why in ("wrong_room", "min_spend", "no_discount"):
            raise Conflict(_COUPON_MESSAGES[why], reason=why)
        # Outside its window: the store says so, after a replay of the same key.
        return CouponUse(coupon, original, discount_fen(found.terms, original))

    async def get_order(self, order_id: str) -> Order:
        order = await self.store.get_order(order_id) if room_of(order_id) else None
        if order is None:
            raise NotFound(f"no order {order_id[:80]}")
        return order

    async def pay(self, order_id: str, uid: str) -> dict[str, Any]:
        order = await self.get_order(order_id)
        if order.uid != uid:
            raise Forbidden("this is someone else's order")
        if order.status is not OrderStatus.RESERVED:
            raise Conflict(f"the order is {order.status.value}")
        if order.deadline <= self.clock():
            raise Conflict("the reservation has expired", Code.EXPIRED)
        view = await self.get_sale(order.sale_id)
        if self.recorder is not None:
            self.recorder.add(order.room_id, "pay_attempts")
        try:
            return await self.provider.pay_params(order, view.sale.title[:127])
        except (Conflict, Unavailable) as exc:
            # For the room's alerts (rooms.alerts): failures, and WeChat Pay unreachable.
            if self.recorder is not None:
                self.recorder.add(order.room_id, "pay_failures")
                if isinstance(exc, Unavailable):
                    self.recorder.add(order.room_id, "pay_unavailable")
            raise

    async def confirm_dev(self, order_id: str, uid: str) -> Order:
        """The dev provider's stand-in for a payment notification (the buyer confirms)."""
        if self.provider.name != "dev":
            raise NotFound("the dev payment provider is not in use")
        order = await self.get_order(order_id)
        if order.uid != uid:
            raise Forbidden("this is someone else's order")
        return await self._apply_payment(order, order.amount_fen, f"dev-{order.id}")

    async def cancel(self, order_id: str, uid: str | None) -> Order:
        """Release a reserved order now (``uid`` None: an operator, any order)."""
        order = await self.get_order(order_id)
        if uid is not None and order.uid != uid:
            raise Forbidden("this is someone else's order")
        released = await self.store.release(order_id, self.clock(), ReleaseReason.CANCELLED,
                                            owner=uid)  # fmt: skip
        if released is None:
            current = await self.get_order(order_id)
            raise Conflict(f"the order is {current.status.value}")
        self._dirty.add(released.sale_id)
        paid = await self.provider.close(released)
        if paid is not None:  # paid at the last moment: it comes back as a late payment
            await self._apply_payment(released, paid.amount_fen, paid.transaction_id)
        return released

    async def refund(self, order_id: str, *, restock: bool, reason: str) -> Order:
        order = await self.get_order(order_id)
        if order.status not in (OrderStatus.PAID, OrderStatus.PAID_LATE):
            raise Conflict(f"only a paid order can be refunded; it is {order.status.value}")
        return await self._refund(order, restock=restock, reason=reason)

    async def _refund(self, order: Order, *, restock: bool, reason: str) -> Order:
        # Derived from the order, so a retried refund is the same refund at WeChat.
        out_refund_no = f"rf{order.id.rpartition('.od')[2]}"
        state = await self.provider.refund(order, out_refund_no, order.amount_fen, reason)
        done = await self.store.mark_refunded(
            order.id, order.amount_fen, out_refund_no, self.clock(), restock=restock,
            settled=state is RefundState.SUCCESS,
        )  # fmt: skip
        if done is not None and order.status is OrderStatus.PAID:
            # A late payment was never in GMV, so its refund is not counted against it.
            self._count(done, None, "refunds", "refund_fen")
        if done is not None and state in (RefundState.CLOSED, RefundState.ABNORMAL):
            done = await self._settle_refund(done, state)
        if done is None:
            current = await self.get_order(order.id)
            if current.status is OrderStatus.REFUNDED:
                return current
            raise Conflict(f"the order is {current.status.value}")
        if done.restocked:
            self._dirty.add(done.sale_id)
        return done

    async def _apply_payment(self, order: Order, amount_fen: int, transaction_id: str) -> Order:
        result = await self.store.confirm_paid(order.id, amount_fen, transaction_id, self.clock())
        if result.outcome is ConfirmOutcome.NOT_FOUND or result.order is None:
            raise NotFound("no such order")
        if result.outcome is ConfirmOutcome.MISMATCH:
            log.error("payment does not match order %s", order.id)
            raise Conflict("the payment does not match the order")
        if result.outcome is ConfirmOutcome.CONFIRMED:
            self._dirty.add(order.sale_id)
            self._count(result.order, "buyer", "paid_orders", "gmv_fen")
            for hook in self.on_paid:
                try:
                    await hook(result.order)
                except Exception:
                    log.exception("a paid-order hook failed for order %s", order.id)
        late_again = (
            result.outcome is ConfirmOutcome.DUPLICATE
            and result.order.status is OrderStatus.PAID_LATE
        )
        if result.outcome is ConfirmOutcome.LATE or late_again:
            # (late_again: WeChat redelivered because the first refund attempt failed.)
            # The money arrived after the order was released: refund it, never keep it,
            # never take the stock again.
            log.warning("late payment for order %s: refunding", order.id)
            return await self._refund(result.order, restock=False, reason="order expired")
        return result.order

    # -- WeChat Pay notifications ---------------------------------------------------------

    async def notify(self, headers: Mapping[str, str], body: bytes) -> NotifyAnswer:
        """Verify, decrypt and apply a WeChat Pay notification, exactly once."""
        if self.merchant is None:
            return NotifyAnswer(404, "WeChat Pay is not configured")
        try:
            note = parse_notification(headers, body, self.merchant, now=time.time())
        except UntrustedMessage as exc:
            log.warning("refused a payment notification: %s", exc.code)
            return NotifyAnswer(401, exc.code)
        nonce = _header(headers, "Wechatpay-Nonce")
        if not await self.nonces.claim(nonce, int(MAX_SKEW) * 2):
            log.warning("refused a replayed payment notification")
            return NotifyAnswer(401, "replayed nonce")
        if note.event_type in _REFUND_EVENTS:
            return await self._refund_notified(note.resource)
        if note.event_type != EventType.TRANSACTION_SUCCESS:
            return NotifyAnswer(204)  # an event we do not subscribe to: nothing to apply
        try:
            tx = Transaction.from_dict(note.resource)
            order = await self.store.get_order(order_of(tx.out_trade_no))
            if order is None:
                return NotifyAnswer(404, "unknown order")
            check_transaction(tx, self.merchant, out_trade_no=tx.out_trade_no,
                              amount_fen=order.amount_fen)  # fmt: skip
        except MismatchError as exc:
            log.error("payment notification does not match its order: %s", exc.code)
            return NotifyAnswer(400, exc.code)
        except UntrustedMessage as exc:
            return NotifyAnswer(400, exc.code)
        if not tx.paid or tx.transaction_id is None or tx.total_fen is None:
            return NotifyAnswer(204)
        await self._apply_payment(order, tx.total_fen, tx.transaction_id)
        return NotifyAnswer(204)

    async def _refund_notified(self, resource: Mapping[str, Any]) -> NotifyAnswer:
        """Settle the refund a REFUND.* notification reports, once; redeliveries are 204."""
        assert self.merchant is not None
        try:
            refund = RefundResult.from_dict(resource)
            order = await self.store.get_order(order_of(refund.out_trade_no))
            if order is None:
                return NotifyAnswer(404, "unknown order")
            if order.status is not OrderStatus.REFUNDED:
                # WeChat can notify before our own record of the refund is written: a
                # refusal makes it redeliver later, when the record is there.
                return NotifyAnswer(409, "refund not recorded yet")
            check_refund(refund, self.merchant, out_trade_no=refund.out_trade_no,
                         out_refund_no=order.out_refund_no or "",
                         refund_fen=order.refund_fen or 0)  # fmt: skip
            state = RefundState(refund.status.lower())
        except MismatchError as exc:
            log.error("refund notification does not match its order: %s", exc.code)
            return NotifyAnswer(400, exc.code)
        except (UntrustedMessage, ValueError):
            return NotifyAnswer(400, "malformed refund")
        if state is not RefundState.PROCESSING:
            await self._settle_refund(order, state)
        return NotifyAnswer(204)

    async def _settle_refund(self, order: Order, state: RefundState) -> Order:
        settled = await self.store.settle_refund(
            order.id, order.out_refund_no or "", state, self.clock()
        )
        if settled is None:  # a redelivery, or settled by the refund answer already
            return await self.get_order(order.id)
        if state is not RefundState.SUCCESS:
            # The money did not go back (closed, or the buyer's account refused it): an
            # operator must act; the ledger's refund_settled event says so too.
            log.error("refund %s of order %s ended %s", order.out_refund_no, order.id, state)
        return settled

    # -- sweeping, reconciliation and stock broadcasts --------------------------------------

    async def sweep(self, limit: int = 200) -> int:
        """Release orders past their deadline (any process; each exactly once)."""
        now = self.clock()
        released = 0
        for order_id in await self.store.due(now, limit):
            order = await self.store.get_order(order_id)
            if order is None or order.status is not OrderStatus.RESERVED:
                continue
            paid = await self.provider.close(order)
            if paid is not None:
                await self._apply_payment(order, paid.amount_fen, paid.transaction_id)
                continue
            done = await self.store.release(order_id, now, ReleaseReason.EXPIRED)
            if done is not None:
                released += 1
                self._dirty.add(done.sale_id)
        return released

    async def reconcile(self, limit: int = 100) -> int:
        """Ask WeChat about orders close to their deadline, so a lost notification is
        not a lost sale; returns how many it confirmed."""
        if self.provider.name == "dev":
            return 0
        confirmed = 0
        now = self.clock()
        for order_id in await self.store.near_deadline(now, RECONCILE_WITHIN_MS, limit):
            order = await self.store.get_order(order_id)
            if order is None or order.status is not OrderStatus.RESERVED:
                continue
            paid = await self.provider.query(order)
            if paid is not None:
                await self._apply_payment(order, paid.amount_fen, paid.transaction_id)
                confirmed += 1
        return confirmed

    async def flush_stock(self) -> None:
        """Publish the stock left of every sale that changed: once per sale per tick."""
        dirty, self._dirty = self._dirty, set()
        for sale_id in dirty:
            left = await self.store.left(sale_id)
            room_id = room_of(sale_id)
            if left is not None and room_id is not None:
                await self._publish(room_id, {"t": "stock", "id": sale_id, "left": left})

    async def _publish(self, room_id: str, message: dict[str, Any]) -> None:
        await self.broker.publish(room_id, orjson.dumps(message))

    def _count(self, order: Order, set_name: str | None, counter: str, fen: str) -> None:
        """One step of an order, for the room's live numbers (exactly once: callers count
        only the step the store just made, never a replay or a duplicate)."""
        if self.recorder is None:
            return
        if set_name is not None:
            self.recorder.mark(order.room_id, set_name, order.uid)
            # Per product (the sale): "order" and "buyer" are its steps order and paid.
            step = "paid" if set_name == "buyer" else set_name
            self.recorder.item(order.room_id, order.sale_id, step, order.uid, order.amount_fen)
        self.recorder.add(order.room_id, counter)
        self.recorder.add(order.room_id, fen, order.amount_fen)


_REFUND_EVENTS = frozenset(
    {EventType.REFUND_SUCCESS, EventType.REFUND_CLOSED, EventType.REFUND_ABNORMAL}
)

_RESERVE_MESSAGES = {
    ReserveOutcome.SOLD_OUT: "sold out",
    ReserveOutcome.LIMIT_REACHED: "you have reached the per-person limit",
    ReserveOutcome.NOT_STARTED: "the sale has not started",
    ReserveOutcome.ENDED: "the sale has ended",
    ReserveOutcome.NOT_FOUND: "no such sale",
    ReserveOutcome.BAD_QTY: "qty must be from 1 to the per-person limit",
    ReserveOutcome.COUPON_UNAVAILABLE: "the coupon is in use or used",
    ReserveOutcome.COUPON_EXPIRED: "the coupon is not valid now",
}

_COUPON_MESSAGES = {
    "wrong_room": "the coupon is for another room",
    "min_spend": "the order does not reach the coupon's minimum spend",
    "no_discount": "the coupon takes nothing off this order",
}


def _int(
    data: Mapping[str, Any], name: str, lo: int, hi: int, *, default: int | None = None
) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadRequest(f"{name} must be an integer from {lo} to {hi}")
    return value


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""
