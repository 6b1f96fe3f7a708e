"""In-process CouponStore (contract: ``commerce.coupons``).

The memory SaleStore holds one of these and locks, consumes, releases and restores its
coupons inside its own steps (no await in between), as ``order_reserve.lua`` does.
"""

from __future__ import annotations

import dataclasses

from commerce.coupons import (
    Batch,
    BatchView,
    Coupon,
    CouponStatus,
    IssueOutcome,
    IssueResult,
    check_batch,
    tag_of,
)
from commerce.ledger_memory import MemoryLedger
from interact.floor.errors import Conflict


class MemoryCouponStore:
    merchant_wide = True

    def __init__(self, ledger: MemoryLedger | None = None) -> None:
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self._batches: dict[str, Batch] = {}
        self._issued: dict[str, int] = {}
        self._held: dict[str, dict[str, int]] = {}  # batch -> uid -> coupons issued
        self._idem: dict[str, dict[str, str]] = {}  # batch -> key -> coupon id
        self._scopes: dict[str, list[str]] = {}  # tag -> batch ids, oldest first
        self.coupons: dict[str, Coupon] = {}
        self._wallets: dict[str, list[str]] = {}  # uid -> coupon ids, oldest first

    def forget_room(self, room_id: str, now_ms: int) -> int:
        """Drop the room's batches and coupons whose validity has ended by ``now_ms`` (the
        room has ended and its hot retention passed: rooms.retention); one valid longer
        stays for a later call. Wallets skip the ids they no longer find. Returns how many
        coupons were dropped."""
        dropped = 0
        for cid in [c for c, cp in self.coupons.items() if cp.terms.room_id == room_id]:
            if self.coupons[cid].terms.ends_at <= now_ms:
                del self.coupons[cid]
                dropped += 1
        scope = self._scopes.get(room_id, [])
        for bid in [b for b in scope if self._batches[b].terms.ends_at <= now_ms]:
            scope.remove(bid)
            for table in (self._batches, self._issued, self._held, self._idem):
                table.pop(bid, None)
        if not scope:
            self._scopes.pop(room_id, None)
        return dropped

    async def create_batch(self, batch: Batch, max_per_scope: int) -> bool:
        check_batch(batch)
        if batch.id in self._batches:
            raise Conflict(f"batch {batch.id} exists")
        scope = self._scopes.setdefault(tag_of(batch.id) or "", [])
        if len(scope) >= max_per_scope:
            return False
        self._batches[batch.id] = batch
        self._issued[batch.id] = 0
        scope.append(batch.id)
        return True

    async def get_batch(self, batch_id: str) -> BatchView | None:
        b = self._batches.get(batch_id)
        return None if b is None else BatchView(b, self._issued[b.id])

    async def batches(self, room_id: str | None) -> list[BatchView]:
        tag = "~m" if room_id is None else room_id
        return [BatchView(self._batches[i], self._issued[i]) for i in self._scopes.get(tag, [])]

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
    ) -> IssueResult:
        b = self._batches.get(batch_id)
        if b is None:
            return IssueResult(IssueOutcome.NOT_FOUND)
        keys = self._idem.setdefault(batch_id, {})
        if idem is not None and idem in keys:
            return IssueResult(IssueOutcome.REPLAY, self.coupons[keys[idem]])
        if now_ms >= b.terms.ends_at:
            return IssueResult(IssueOutcome.ENDED)
        if self._issued[batch_id] >= b.total:
            return IssueResult(IssueOutcome.SOLD_OUT)
        held = self._held.setdefault(batch_id, {})
        if held.get(uid, 0) >= b.per_user:
            return IssueResult(IssueOutcome.LIMIT_REACHED)
        if coupon_id in self.coupons:
            raise ValueError("coupon id collision")
        coupon = Coupon(
            coupon_id, b.id, uid, b.title, b.terms, CouponStatus.AVAILABLE, now_ms, reason
        )
        self.coupons[coupon_id] = coupon
        self._issued[batch_id] += 1
        held[uid] = held.get(uid, 0) + 1
        if idem is not None:
            keys[idem] = coupon_id
        self._wallets.setdefault(uid, []).append(coupon_id)
        if ledger_room is not None:
            self.ledger.append_now(
                ledger_room,
                {
                    "type": "coupon_issued",
                    "coupon": coupon_id,
                    "batch": b.id,
                    "uid": uid,
                    "reason": reason,
                    "ts": now_ms,
                },
            )
        return IssueResult(IssueOutcome.OK, coupon)

    async def get(self, coupon_id: str) -> Coupon | None:
        return self.coupons.get(coupon_id)

    async def wallet(self, uid: str, limit: int) -> list[Coupon]:
        ids = self._wallets.get(uid, [])
        if limit <= 0:
            return []
        # As on Redis: a coupon forgotten with its room (rooms.retention) is skipped.
        return [self.coupons[i] for i in reversed(ids[-limit:]) if i in self.coupons]

    # --- the sale store's side (called inside its atomic steps; no awaits)

    def refusal_now(self, coupon_id: str, uid: str, now_ms: int) -> str | None:
        """Why ``uid`` cannot lock the coupon now (``coupon_unavailable``,
        ``coupon_expired``), or None."""
        c = self.coupons.get(coupon_id)
        if c is None or c.uid != uid or c.status is not CouponStatus.AVAILABLE:
            return "coupon_unavailable"
        if not c.terms.starts_at <= now_ms < c.terms.ends_at:
            return "coupon_expired"
        return None

    def move_now(self, coupon_id: str, order_id: str, old: CouponStatus, new: CouponStatus) -> bool:
        """``old`` → ``new`` when ``order_id`` holds the coupon (or, from available, takes it)."""
        c = self.coupons.get(coupon_id)
        if c is None or c.status is not old:
            return False
        if old is not CouponStatus.AVAILABLE and c.order_id != order_id:
            return False
        holder = None if new is CouponStatus.AVAILABLE else order_id
        self.coupons[coupon_id] = dataclasses.replace(c, status=new, order_id=holder)
        return True
