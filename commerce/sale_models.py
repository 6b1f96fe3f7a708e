"""Flash sale and order records, their states, and the outcomes of their atomic steps."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from interact.floor.errors import Code

# What the issue asks for by default: an unpaid order holds its stock this long.
DEFAULT_RESERVE_MS = 15 * 60 * 1000

# Longest ``Idempotency-Key`` the stores take; the API refuses longer ones with 400.
MAX_IDEM_KEY = 128


class OrderStatus(StrEnum):
    """``reserved → paid → refunded``; ``reserved → cancelled | expired``.

    A payment that arrives for a cancelled or expired order is kept as ``paid_late`` (its
    stock was returned already) and must be refunded: ``paid_late → refunded``.
    """

    RESERVED = "reserved"
    PAID = "paid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    PAID_LATE = "paid_late"


class RefundState(StrEnum):
    """A refund at the payment side; WeChat Pay's ``refund_status`` in lower case."""

    PROCESSING = "processing"  # accepted, the money is on its way back
    SUCCESS = "success"
    CLOSED = "closed"  # WeChat closed it: the money did not go back, an operator acts
    ABNORMAL = "abnormal"  # the buyer's account refused it: an operator acts


class ReleaseReason(StrEnum):
    EXPIRED = "expired"  # its deadline passed unpaid (the sweeper)
    CANCELLED = "cancelled"  # the buyer or an operator cancelled it


class ReserveOutcome(StrEnum):
    OK = "ok"
    SOLD_OUT = "sold_out"
    LIMIT_REACHED = "limit_reached"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    NOT_FOUND = "not_found"
    BAD_QTY = "bad_qty"
    COUPON_UNAVAILABLE = "coupon_unavailable"  # not the caller's, locked or used
    COUPON_EXPIRED = "coupon_expired"  # outside its validity window

    @property
    def code(self) -> Code | None:
        """The wire code of a refused reserve (None for ``ok``); outside the window: conflict."""
        return _RESERVE_CODES[self]


_RESERVE_CODES: dict[ReserveOutcome, Code | None] = {
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


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"  # reserved -> paid, now
    DUPLICATE = "duplicate"  # paid before with this transaction: nothing changed
    LATE = "late"  # cancelled or expired: kept as paid_late, to be refunded
    MISMATCH = "mismatch"  # wrong amount, or another transaction: nothing changed
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class Sale:
    """A flash sale as created; ``stock`` is the initial stock, ``limit`` units per user."""

    id: str
    room_id: str
    title: str
    sku: str
    price_fen: int
    stock: int
    limit: int
    starts_at: int
    ends_at: int
    reserve_ms: int
    created_at: int


@dataclass(frozen=True, slots=True)
class SaleView:
    """A sale and its counters, read in one step: ``left + reserved + paid + refunded == stock``.

    ``refunded`` counts units refunded without restock (they left the sale for good).
    """

    sale: Sale
    left: int
    reserved: int
    paid: int
    refunded: int = 0


@dataclass(frozen=True, slots=True)
class Order:
    """One reservation and what became of it; the optional fields are set along the way."""

    id: str
    sale_id: str
    room_id: str
    uid: str
    qty: int
    amount_fen: int
    status: OrderStatus
    created_at: int
    deadline: int  # unpaid by then, it is released (expired)
    idem_key: str
    release_reason: ReleaseReason | None = None  # kept when a late payment follows
    released_at: int | None = None
    transaction_id: str | None = None  # of the (possibly late) payment
    paid_at: int | None = None
    refund_fen: int | None = None
    out_refund_no: str | None = None
    refunded_at: int | None = None
    restocked: bool = False  # the refund returned its units to the sale
    # The refund at the payment side: ``processing`` until its notification settles it
    # (``success``, ``closed`` or ``abnormal``: the last two need an operator).
    refund_status: RefundState | None = None
    refund_settled_at: int | None = None
    # A coupon it was reserved with (commerce.coupons) and what that took off:
    # ``amount_fen`` is what is paid, ``original_amount_fen`` what it would have been.
    coupon: str | None = None
    discount_fen: int = 0

    @property
    def original_amount_fen(self) -> int:
        return self.amount_fen + self.discount_fen

    @property
    def expires_at(self) -> int:
        """The deadline under the name the REST answer uses."""
        return self.deadline


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """``order`` is set for ``ok``; ``replayed`` when the idempotency key had an order already.

    A replay is ``ok`` with the order as it is now, whatever its status. ``left`` is the
    sale's stock left after this step (0 for ``not_found``).
    """

    outcome: ReserveOutcome
    order: Order | None = None
    left: int = 0
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    """``order`` as it is after the step (None only for ``not_found``)."""

    outcome: ConfirmOutcome
    order: Order | None = None
