"""Redis CouponStore (contract: ``commerce.coupons``).

A batch, its counters and its coupons sit under the batch's hash tag (its room, or
``~m``), so an issue is one script on one slot (``lua/coupon_issue.lua``) and a room
coupon is locked by the room's reserve script on the room's slot. A merchant-wide coupon
lives on the ``~m`` slot, which a room's script cannot reach on Redis Cluster: there
merchant-wide batches are refused (``merchant_wide`` False); one Redis node (or
Sentinel) takes them.

The wallet (uid -> coupon ids) is written before the issue script and taken back when it
refuses, so an issued coupon is never missing from it; readers skip ids with no coupon.
"""

from __future__ import annotations

from typing import Any

from commerce.coupons import (
    Batch,
    BatchView,
    Coupon,
    CouponStatus,
    IssueOutcome,
    IssueResult,
    check_batch,
    scope_tag,
    tag_of,
    terms_fields,
    terms_of,
)
from commerce.keys import CommerceKeys
from commerce.ledger import LEDGER_MAXLEN
from commerce.scripts import register
from interact.floor.errors import Conflict
from interact.floor.scripts import text


def _rec(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {text(k): text(v) for k, v in raw.items()}
    items = [text(x) for x in raw]
    return dict(zip(items[::2], items[1::2], strict=True))


def batch_of(rec: dict[str, str]) -> BatchView:
    batch = Batch(
        id=rec["id"],
        title=rec["title"],
        terms=terms_of(rec),
        total=int(rec["total"]),
        per_user=int(rec["per_user"]),
        created_at=int(rec["created_at"]),
    )
    return BatchView(batch, int(rec.get("issued", "0")))


def coupon_of(rec: dict[str, str]) -> Coupon:
    return Coupon(
        id=rec["id"],
        batch_id=rec["batch"],
        uid=rec["uid"],
        title=rec["title"],
        terms=terms_of(rec),
        status=CouponStatus(rec["status"]),
        issued_at=int(rec["issued_at"]),
        reason=rec.get("reason", ""),
        order_id=rec.get("order") or None,
    )


class RedisCouponStore:
    def __init__(
        self, client: Any, keys: CommerceKeys, *, ledger_maxlen: int = LEDGER_MAXLEN
    ) -> None:
        self._client = client
        self._keys = keys
        self._maxlen = ledger_maxlen
        # A cluster client routes by slot; a merchant-wide coupon's slot is not a room's.
        self.merchant_wide = not hasattr(client, "get_nodes")
        self._create = register(client, "coupon_batch")
        self._issue = register(client, "coupon_issue")

    async def create_batch(self, batch: Batch, max_per_scope: int) -> bool:
        check_batch(batch)
        b, k = batch, self._keys
        record = {
            "id": b.id,
            "title": b.title,
            "total": str(b.total),
            "per_user": str(b.per_user),
            "created_at": str(b.created_at),
            **terms_fields(b.terms),
        }
        flat = [x for pair in record.items() for x in pair]
        done = int(
            await self._create(
                keys=[k.coupon_batch(b.id), k.coupon_batches(scope_tag(b.terms.room_id))],
                args=[int(max_per_scope), *flat],
            )
        )
        if done < 0:
            raise Conflict(f"batch {b.id} exists")
        return done == 1

    async def get_batch(self, batch_id: str) -> BatchView | None:
        if tag_of(batch_id) is None:
            return None
        raw = await self._client.hgetall(self._keys.coupon_batch(batch_id))
        return batch_of(_rec(raw)) if raw else None

    async def batches(self, room_id: str | None) -> list[BatchView]:
        ids = await self._client.lrange(self._keys.coupon_batches(scope_tag(room_id)), 0, -1)
        out = []
        for batch_id in ids:
            view = await self.get_batch(text(batch_id))
            if view is not None:
                out.append(view)
        return out

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
        if tag_of(batch_id) is None:
            return IssueResult(IssueOutcome.NOT_FOUND)
        k = self._keys
        wallet = k.coupon_wallet(uid)
        await self._client.zadd(wallet, {coupon_id: int(now_ms)})
        reply = await self._issue(
            keys=[
                k.coupon_batch(batch_id),
                k.coupon_batch_users(batch_id),
                k.coupon_batch_idem(batch_id),
                k.coupon(coupon_id),
                k.ledger(ledger_room) if ledger_room is not None else k.coupon(coupon_id),
                k.coupons_in_room(tag_of(batch_id) or ""),
            ],
            args=[
                uid, coupon_id, int(now_ms), idem or "", "1" if ledger_room else "0",
                self._maxlen, reason,
            ],
        )  # fmt: skip
        outcome = text(reply[0])
        if outcome != "ok":
            await self._client.zrem(wallet, coupon_id)
        if outcome == "taken":
            raise ValueError("coupon id collision")
        if outcome in ("ok", "replay"):
            coupon = await self.get(text(reply[1]))
            return IssueResult(IssueOutcome(outcome), coupon)
        return IssueResult(IssueOutcome(outcome))

    async def get(self, coupon_id: str) -> Coupon | None:
        if tag_of(coupon_id) is None:
            return None
        raw = await self._client.hgetall(self._keys.coupon(coupon_id))
        return coupon_of(_rec(raw)) if raw else None

    async def wallet(self, uid: str, limit: int) -> list[Coupon]:
        if limit <= 0:
            return []
        ids = await self._client.zrevrange(self._keys.coupon_wallet(uid), 0, limit - 1)
        out = []
        for coupon_id in ids:
            coupon = await self.get(text(coupon_id))
            if coupon is not None:
                out.append(coupon)
        return out
