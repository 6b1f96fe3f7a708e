"""Coupons: batches, issued coupons, the discount rule and the CouponStore contract.

A batch is a room's or merchant-wide (``room_id`` None) set of coupons with one set of
terms: a fixed amount (fen) or a percentage (basis points, capped in fen), a minimum
spend, a validity window, a total and a per-user limit. Issuing copies the terms into
the coupon, so a reservation reads one record; terms never change after.

The discount (``discount_fen``) is a pure function of the terms and the order's original
amount, in integer fen: a percentage is ``floor(original × bps / 10000)``, then capped;
either kind is then cut to ``original − 1``, because WeChat Pay takes at least 1 fen
(``amount.total`` ≥ 1): an order is never free. A coupon that would take nothing off
(``no_discount``) is refused rather than spent.

A coupon is ``available`` → ``locked`` (by one reserved order, in the reserve's own
atomic step: ``commerce.sale_store``) → ``used`` (the payment's step); ``locked`` →
``available`` when the reservation expires or is cancelled; ``used`` → ``available``
when the order is refunded in full (not a late payment: its coupon was released with
the order). Restored, it keeps its own window: a coupon past ``ends_at`` comes back
unusable. Expiry is not a state: a coupon is usable while ``starts_at ≤ now < ends_at``.

CouponStore contract (both engines, tests/contract/test_coupon_store.py):

- ``create_batch(batch, max_per_scope)``: stores it, unless its scope (the room, or the
  merchant) holds ``max_per_scope`` batches already (False). An existing id is
  ``Conflict``.
- ``issue(batch_id, uid, coupon_id, now_ms, *, idem, ledger_room, reason)``, atomic:
  unknown batch → ``not_found``; ``idem`` (when given) issued before → ``replay`` with
  that coupon; ``now ≥ ends_at`` → ``ended``; issued = total → ``sold_out``; the uid holds
  ``per_user`` of the batch → ``limit_reached``; else the coupon is stored
  ``available`` for the uid, the batch's counters move, the key is recorded, and when
  ``ledger_room`` is set ``coupon_issued`` goes to that room's ledger in the same step.
- ``get(coupon_id)``, ``get_batch``, ``batches(room_id)`` (None: merchant-wide, oldest
  first), ``wallet(uid, limit)`` (newest first).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from rooms.models import valid_room_id

# The hash tag of merchant-wide batches and coupons: not a valid room id, so it never
# reads as one.
MERCHANT_TAG = "~m"

MAX_VALUE_FEN = 100_000_000
MAX_MIN_SPEND_FEN = 1_000_000_000
MAX_BPS = 10_000
MAX_WINDOW_MS = 366 * 24 * 3600 * 1000
MAX_TOTAL = 1_000_000
MAX_PER_USER = 100
MAX_TITLE = 40
MAX_BATCHES_PER_SCOPE = 200
MAX_WALLET = 500

_ID_RE = re.compile(r"(~m|[A-Za-z0-9_-]{1,64})\.c([bp])[0-9a-f]{10,16}\Z")


class CouponKind(StrEnum):
    FIXED = "fixed"  # ``value`` fen off
    PERCENT = "percent"  # ``value`` basis points off, at most ``cap_fen``


class CouponStatus(StrEnum):
    AVAILABLE = "available"
    LOCKED = "locked"  # held by a reserved order
    USED = "used"  # its order is paid


@dataclass(frozen=True, slots=True)
class CouponTerms:
    kind: CouponKind
    value: int
    cap_fen: int  # percent only; 0 for fixed
    min_spend_fen: int
    starts_at: int
    ends_at: int
    room_id: str | None  # None: any room of the merchant


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    title: str
    terms: CouponTerms
    total: int
    per_user: int
    created_at: int


@dataclass(frozen=True, slots=True)
class BatchView:
    batch: Batch
    issued: int


@dataclass(frozen=True, slots=True)
class Coupon:
    id: str
    batch_id: str
    uid: str
    title: str
    terms: CouponTerms
    status: CouponStatus
    issued_at: int
    reason: str
    order_id: str | None = None  # the order holding or having used it


@dataclass(frozen=True, slots=True)
class CouponUse:
    """A coupon applied to a reservation: what it takes off, computed before the step."""

    coupon_id: str
    original_fen: int
    discount_fen: int


class IssueOutcome(StrEnum):
    OK = "ok"
    REPLAY = "replay"
    NOT_FOUND = "not_found"
    ENDED = "ended"
    SOLD_OUT = "sold_out"
    LIMIT_REACHED = "limit_reached"


@dataclass(frozen=True, slots=True)
class IssueResult:
    outcome: IssueOutcome
    coupon: Coupon | None = None


# --- ids


def tag_of(entity_id: str) -> str | None:
    """The hash tag (room id or ``MERCHANT_TAG``) of a batch or coupon id, or None."""
    if not isinstance(entity_id, str):
        return None
    m = _ID_RE.match(entity_id)
    return m.group(1) if m else None


def is_batch_id(value: object) -> bool:
    m = _ID_RE.match(value) if isinstance(value, str) else None
    return m is not None and m.group(2) == "b"


def is_coupon_id(value: object) -> bool:
    m = _ID_RE.match(value) if isinstance(value, str) else None
    return m is not None and m.group(2) == "p"


def scope_tag(room_id: str | None) -> str:
    return MERCHANT_TAG if room_id is None else room_id


def new_batch_id(room_id: str | None) -> str:
    return f"{scope_tag(room_id)}.cb{secrets.token_hex(5)}"


def new_coupon_id(batch_id: str) -> str:
    """A coupon lives under its batch's tag, so issuing it is one step on one slot."""
    tag = tag_of(batch_id)
    if tag is None:
        raise ValueError(f"not a batch id: {batch_id!r}")
    return f"{tag}.cp{secrets.token_hex(8)}"


# --- the rules (pure)


def discount_fen(terms: CouponTerms, original_fen: int) -> int:
    """Fen taken off ``original_fen`` by a coupon with ``terms`` (minimum spend aside).

    Percent: ``floor(original × bps / 10000)`` capped at ``cap_fen``; either kind is cut
    to ``original − 1`` so that at least 1 fen is paid (WeChat Pay's minimum)."""
    if original_fen < 2:
        return 0
    if terms.kind is CouponKind.FIXED:
        raw = terms.value
    else:
        raw = min(original_fen * terms.value // MAX_BPS, terms.cap_fen)
    return max(0, min(raw, original_fen - 1))


def refusal(terms: CouponTerms, *, room_id: str, original_fen: int, now_ms: int) -> str | None:
    """Why a coupon cannot apply to an order of ``original_fen`` in ``room_id`` now, or None.

    ``wrong_room``, ``min_spend``, ``not_started``, ``expired`` or ``no_discount``."""
    if terms.room_id is not None and terms.room_id != room_id:
        return "wrong_room"
    if original_fen < terms.min_spend_fen:
        return "min_spend"
    if now_ms < terms.starts_at:
        return "not_started"
    if now_ms >= terms.ends_at:
        return "expired"
    if discount_fen(terms, original_fen) < 1:
        return "no_discount"
    return None


def usable(coupon: Coupon, now_ms: int) -> bool:
    t = coupon.terms
    return coupon.status is CouponStatus.AVAILABLE and t.starts_at <= now_ms < t.ends_at


def check_terms(terms: CouponTerms) -> None:
    """``ValueError`` unless the terms are within bounds (the API says which)."""
    ints = (terms.value, terms.cap_fen, terms.min_spend_fen, terms.starts_at, terms.ends_at)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
        raise ValueError("coupon terms are integers")
    if terms.kind is CouponKind.FIXED:
        if not 1 <= terms.value <= MAX_VALUE_FEN or terms.cap_fen != 0:
            raise ValueError(f"a fixed coupon takes 1 to {MAX_VALUE_FEN} fen off, no cap")
    elif not 1 <= terms.value <= MAX_BPS or not 1 <= terms.cap_fen <= MAX_VALUE_FEN:
        raise ValueError(
            f"a percent coupon takes 1 to {MAX_BPS} basis points off, capped at 1 to "
            f"{MAX_VALUE_FEN} fen"
        )
    if not 0 <= terms.min_spend_fen <= MAX_MIN_SPEND_FEN:
        raise ValueError(f"min_spend_fen is 0 to {MAX_MIN_SPEND_FEN}")
    if not 0 <= terms.starts_at < terms.ends_at <= terms.starts_at + MAX_WINDOW_MS:
        raise ValueError("a coupon's window starts before it ends, and lasts at most 366 days")
    if terms.room_id is not None and not valid_room_id(terms.room_id):
        raise ValueError("not a room id")


def check_batch(batch: Batch) -> None:
    check_terms(batch.terms)
    if tag_of(batch.id) != scope_tag(batch.terms.room_id) or not is_batch_id(batch.id):
        raise ValueError(f"batch id {batch.id!r} is not of its scope")
    if not 1 <= batch.total <= MAX_TOTAL or not 1 <= batch.per_user <= min(
        MAX_PER_USER, batch.total
    ):
        raise ValueError(f"total is 1 to {MAX_TOTAL}, per_user 1 to min({MAX_PER_USER}, total)")
    if not isinstance(batch.title, str) or not 1 <= len(batch.title) <= MAX_TITLE:
        raise ValueError(f"a batch's title has 1 to {MAX_TITLE} characters")


# --- records as flat string maps (the Redis hashes; the memory store keeps objects)


def terms_fields(t: CouponTerms) -> dict[str, str]:
    return {
        "kind": t.kind.value,
        "value": str(t.value),
        "cap_fen": str(t.cap_fen),
        "min_spend_fen": str(t.min_spend_fen),
        "starts_at": str(t.starts_at),
        "ends_at": str(t.ends_at),
        "room": t.room_id or "",
    }


def terms_of(rec: dict[str, str]) -> CouponTerms:
    return CouponTerms(
        kind=CouponKind(rec["kind"]),
        value=int(rec["value"]),
        cap_fen=int(rec["cap_fen"]),
        min_spend_fen=int(rec["min_spend_fen"]),
        starts_at=int(rec["starts_at"]),
        ends_at=int(rec["ends_at"]),
        room_id=rec.get("room") or None,
    )


def terms_body(t: CouponTerms) -> dict[str, object]:
    return {
        "kind": t.kind.value,
        "room": t.room_id,
        **({"amount_fen": t.value} if t.kind is CouponKind.FIXED else {}),
        **({"percent_bps": t.value, "cap_fen": t.cap_fen} if t.kind is CouponKind.PERCENT else {}),
        "min_spend_fen": t.min_spend_fen,
        "starts_at": t.starts_at,
        "ends_at": t.ends_at,
    }


def batch_body(view: BatchView) -> dict[str, object]:
    b = view.batch
    return {
        "id": b.id,
        "title": b.title,
        **terms_body(b.terms),
        "total": b.total,
        "per_user": b.per_user,
        "issued": view.issued,
        "created_at": b.created_at,
    }


def coupon_body(c: Coupon, now_ms: int) -> dict[str, object]:
    return {
        "id": c.id,
        "batch": c.batch_id,
        "title": c.title,
        **terms_body(c.terms),
        "status": c.status.value,
        "usable": usable(c, now_ms),
        "order": c.order_id,
        "issued_at": c.issued_at,
        "reason": c.reason,
    }


class CouponStore(Protocol):
    async def create_batch(self, batch: Batch, max_per_scope: int) -> bool: ...

    async def get_batch(self, batch_id: str) -> BatchView | None: ...

    async def batches(self, room_id: str | None) -> list[BatchView]: ...

    async def issue(
        self,
        batch_id: str,
        uid: str,
        coupon_id: str,
        now_ms: int,
        *,
        idem: str | None = None,
        ledger_room: str | None = None,
        reason: str = "operator",
    ) -> IssueResult: ...

    async def get(self, coupon_id: str) -> Coupon | None: ...

    async def wallet(self, uid: str, limit: int) -> list[Coupon]: ...
