"""CouponService: batches from a request body, issuing, a user's coupons.

The rules and the store contract are in ``commerce.coupons``; applying a coupon to an
order is ``commerce.orders.OrderService.reserve``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from commerce.coupons import (
    MAX_BATCHES_PER_SCOPE,
    MAX_WALLET,
    Batch,
    BatchView,
    Coupon,
    CouponKind,
    CouponStore,
    CouponTerms,
    IssueOutcome,
    IssueResult,
    check_batch,
    is_batch_id,
    new_batch_id,
    new_coupon_id,
    tag_of,
)
from interact.floor.errors import BadRequest, Code, Conflict, NotFound, Unavailable

_FIELDS = frozenset(
    {"title", "room", "kind", "amount_fen", "percent_bps", "cap_fen", "min_spend_fen",
     "starts_at", "ends_at", "total", "per_user"}
)  # fmt: skip

_ISSUE_MESSAGES = {
    IssueOutcome.NOT_FOUND: "no such coupon batch",
    IssueOutcome.ENDED: "the batch's validity has ended",
    IssueOutcome.SOLD_OUT: "every coupon of the batch has been issued",
    IssueOutcome.LIMIT_REACHED: "the user holds the batch's per-user limit",
}


def now_ms() -> int:
    return int(time.time() * 1000)


def _int(data: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"'{name}' must be an integer")
    return value


def parse_batch(data: Mapping[str, Any], now: int) -> Batch:
    """A batch from ``POST /coupons/batches``'s body, or ``BadRequest`` naming the field."""
    extra = set(data) - _FIELDS
    if extra:
        raise BadRequest(f"unknown field '{sorted(extra)[0][:40]}'")
    room = data.get("room")
    if room is not None and not isinstance(room, str):
        raise BadRequest("'room' must be a room id or null (merchant-wide)")
    kind_raw = data.get("kind")
    if kind_raw not in ("fixed", "percent"):
        raise BadRequest("'kind' must be fixed or percent")
    kind = CouponKind(kind_raw)
    if kind is CouponKind.FIXED:
        if "percent_bps" in data or "cap_fen" in data:
            raise BadRequest("a fixed coupon has amount_fen, not percent_bps or cap_fen")
        value, cap = _int(data, "amount_fen"), 0
    else:
        if "amount_fen" in data:
            raise BadRequest("a percent coupon has percent_bps and cap_fen, not amount_fen")
        value, cap = _int(data, "percent_bps"), _int(data, "cap_fen")
    title = data.get("title")
    if not isinstance(title, str):
        raise BadRequest("'title' must be a string")
    starts = _int(data, "starts_at", now)
    terms = CouponTerms(
        kind=kind,
        value=value,
        cap_fen=cap,
        min_spend_fen=_int(data, "min_spend_fen", 0),
        starts_at=starts,
        ends_at=_int(data, "ends_at"),
        room_id=room,
    )
    batch = Batch(
        id=new_batch_id(room),
        title=title.strip(),
        terms=terms,
        total=_int(data, "total"),
        per_user=_int(data, "per_user", 1),
        created_at=now,
    )
    if terms.ends_at <= now:
        raise BadRequest("'ends_at' must be in the future")
    try:
        check_batch(batch)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return batch


class CouponService:
    def __init__(self, store: CouponStore, *, clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.clock = clock

    async def create_batch(self, data: Mapping[str, Any]) -> BatchView:
        batch = parse_batch(data, self.clock())
        if batch.terms.room_id is None and not getattr(self.store, "merchant_wide", True):
            # A merchant-wide coupon's slot is not a room's: a room's reserve script could
            # not lock it in its own step on Redis Cluster (commerce.coupon_store_redis).
            raise Unavailable("merchant-wide coupons need a single Redis node; use room batches")
        if not await self.store.create_batch(batch, MAX_BATCHES_PER_SCOPE):
            raise Conflict(f"at most {MAX_BATCHES_PER_SCOPE} coupon batches per room or merchant")
        return BatchView(batch, 0)

    async def batch(self, batch_id: str) -> BatchView:
        view = await self.store.get_batch(batch_id) if is_batch_id(batch_id) else None
        if view is None:
            raise NotFound("no such coupon batch")
        return view

    async def issue(
        self,
        batch_id: str,
        uid: str,
        *,
        reason: str = "operator",
        idem: str | None = None,
        ledger_room: str | None = None,
    ) -> IssueResult:
        """Issue one coupon; a room batch's issue goes to its room's ledger (a merchant
        batch's to ``ledger_room``, when given: the room of an invite reward)."""
        if not is_batch_id(batch_id):
            return IssueResult(IssueOutcome.NOT_FOUND)
        tag = tag_of(batch_id)
        room = ledger_room if tag == "~m" else tag
        if len(await self.store.wallet(uid, MAX_WALLET)) >= MAX_WALLET and idem is None:
            raise Conflict(f"the user holds {MAX_WALLET} coupons already", Code.LIMIT_REACHED)
        for _ in range(3):
            try:
                return await self.store.issue(
                    batch_id, uid, new_coupon_id(batch_id), self.clock(),
                    idem=idem, ledger_room=room, reason=reason,
                )  # fmt: skip
            except ValueError:
                continue  # 64 random bits collided: try another id
        raise RuntimeError("coupon ids keep colliding")

    async def issue_or_raise(self, batch_id: str, uid: str) -> Coupon:
        result = await self.issue(batch_id, uid)
        if result.coupon is None:
            message = _ISSUE_MESSAGES.get(result.outcome, "cannot issue")
            if result.outcome is IssueOutcome.NOT_FOUND:
                raise NotFound(message)
            code = Code.SOLD_OUT if result.outcome is IssueOutcome.SOLD_OUT else Code.CONFLICT
            if result.outcome is IssueOutcome.LIMIT_REACHED:
                code = Code.LIMIT_REACHED
            raise Conflict(message, code)
        return result.coupon

    async def wallet(self, uid: str, limit: int = 100) -> list[Coupon]:
        return await self.store.wallet(uid, min(limit, MAX_WALLET))
