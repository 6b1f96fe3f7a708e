"""Payment providers behind one interface: ``dev`` (embedded) and ``wechat`` (Pay v3 JSAPI).

A provider turns a reserved order into what the mini-program needs to pay, closes,
queries and refunds at the payment side. Confirmation itself always arrives from
outside (the dev confirm URL, or WeChat's signed notification) and is applied by the
order service exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from commerce.pay_client import PayError, PayUnavailable, WeChatPayClient
from commerce.sale_models import Order, RefundState
from commerce.wechatpay import MAX_DESCRIPTION_BYTES, Transaction, cut_utf8
from interact.floor.errors import Conflict, Unavailable


def out_trade_no(order_id: str) -> str:
    """WeChat's order number for an order: ``<room>_<od…>`` (32 characters at most)."""
    room, _, local = order_id.rpartition(".")
    return f"{room}_{local}"


def order_of(trade_no: str) -> str:
    """The order id behind an ``out_trade_no`` (the last ``_`` separates the room)."""
    room, _, local = trade_no.rpartition("_")
    return f"{room}.{local}"


@dataclass(frozen=True, slots=True)
class PaidInfo:
    transaction_id: str
    amount_fen: int


class PaymentProvider(Protocol):
    name: str

    async def pay_params(self, order: Order, description: str) -> dict[str, Any]: ...

    async def close(self, order: Order) -> PaidInfo | None: ...

    async def query(self, order: Order) -> PaidInfo | None: ...

    async def refund(
        self, order: Order, out_refund_no: str, refund_fen: int, reason: str
    ) -> RefundState:
        """Ask for the refund; its state as the payment side answers (usually processing)."""
        ...


class DevProvider:
    """The embedded default: ``POST confirm_url`` (by the buyer) stands in for the payment."""

    name = "dev"

    async def pay_params(self, order: Order, description: str) -> dict[str, Any]:
        return {"provider": "dev", "confirm_url": f"/api/v1/pay/dev/{order.id}/confirm"}

    async def close(self, order: Order) -> PaidInfo | None:
        return None

    async def query(self, order: Order) -> PaidInfo | None:
        return None

    async def refund(
        self, order: Order, out_refund_no: str, refund_fen: int, reason: str
    ) -> RefundState:
        return RefundState.SUCCESS  # nothing was taken, so nothing is on its way back


class NoProvider(DevProvider):
    """No payment configured: orders reserve, paying answers 503 until one is set up."""

    name = "none"

    async def pay_params(self, order: Order, description: str) -> dict[str, Any]:
        raise Unavailable("no payment provider is configured")


class WeChatProvider:
    """WeChat Pay v3 JSAPI for mini-programs; the payer is the buyer's openid (their uid)."""

    name = "wechat"

    def __init__(self, client: WeChatPayClient) -> None:
        self.client = client

    async def pay_params(self, order: Order, description: str) -> dict[str, Any]:
        trade_no = out_trade_no(order.id)
        if len(trade_no) > 32:
            raise Conflict("this order cannot be paid with WeChat Pay (id too long)")
        # The description is the product's name, which nobody typed for WeChat: cut it to
        # the spec's 127 bytes (between characters) rather than refuse the buyer's payment.
        description = cut_utf8(description.strip(), MAX_DESCRIPTION_BYTES) or "order"
        try:
            prepay_id = await self.client.prepay(
                trade_no, description, order.amount_fen, order.uid, order.deadline,
                attach=order.id,
            )  # fmt: skip
        except PayUnavailable:
            raise Unavailable(
                "payment is temporarily unavailable; the order stays reserved"
            ) from None
        except PayError as exc:
            raise Conflict(f"WeChat Pay refused the order: {exc.code}") from None
        return {"provider": "wechat", "params": self.client.payment_params(prepay_id)}

    async def close(self, order: Order) -> PaidInfo | None:
        """Close at WeChat; a paid order cannot be closed and comes back as paid."""
        try:
            await self.client.close(out_trade_no(order.id))
        except PayError as exc:
            if exc.code == "ORDERPAID":
                return await self.query(order)
        except PayUnavailable:
            pass  # it closes itself at time_expire; a late payment is refunded
        return None

    async def query(self, order: Order) -> PaidInfo | None:
        try:
            data = await self.client.query(out_trade_no(order.id))
        except (PayUnavailable, PayError):
            return None
        if data is None:
            return None
        tx = Transaction.from_dict(data)
        if not tx.paid or tx.transaction_id is None or tx.total_fen is None:
            return None
        return PaidInfo(tx.transaction_id, tx.total_fen)

    async def refund(
        self, order: Order, out_refund_no: str, refund_fen: int, reason: str
    ) -> RefundState:
        try:
            answer = await self.client.refund(
                out_trade_no(order.id), out_refund_no, order.amount_fen, refund_fen, reason
            )
        except PayUnavailable:
            raise Unavailable("refunds are temporarily unavailable; try again") from None
        except PayError as exc:
            raise Conflict(f"WeChat Pay refused the refund: {exc.code}") from None
        try:
            return RefundState(str(answer.get("status", "")).lower())
        except ValueError:
            return RefundState.PROCESSING  # the notification or a query settles it
