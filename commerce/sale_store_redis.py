"""Redis SaleStore (see ``commerce.sale_store`` for the contract).

A sale is a hash (record and counters), a holds hash and an idempotency hash; an order is
a hash. All sit under the room's hash tag beside the room's sale set, order set, deadline
index and ledger stream, so create, reserve, release, confirm and refund are each one Lua
script (``lua/sale_*.lua``, ``lua/order_*.lua``) on one slot.

The deadline index is per room and written inside those scripts, so a reserved order is
never missing from it, even if a process dies mid-call. To find the rooms, ``create``
first adds the room to the global ``sale_rooms`` set, scored by the last deadline any of
its orders can have (``ends_at + reserve_ms``, raised, never lowered), *before* the sale
exists: a room with a sale is always listed. ``due`` reads every listed room's index in
one pipeline, and drops a room whose index is empty and whose score is more than
``_ROOM_GRACE_MS`` behind the caller's clock (no order can appear there unless a caller's
clock is a day behind; the drop is a one-key script that re-checks the score, so a sale
created meanwhile keeps the room listed).

Release, confirm and refund read the order's (immutable) sale id first, to name the
sale's keys in the script.
"""

from __future__ import annotations

from redis.asyncio import Redis

from commerce.coupon_store_redis import RedisCouponStore
from commerce.coupons import CouponUse
from commerce.ids import new_order_id, room_of
from commerce.keys import CommerceKeys
from commerce.ledger import LEDGER_MAXLEN
from commerce.ledger_redis import RedisLedger
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
from commerce.scripts import register
from interact.floor.errors import Conflict
from interact.floor.scripts import text as _text

# A room leaves the global room list this long after the last deadline it can have.
_ROOM_GRACE_MS = 24 * 3600 * 1000

# Rooms whose deadline index is read per pipeline in ``due``.
_ROOMS_PER_PIPE = 500

# Fresh order ids tried when one is taken (16 hex digits: never, in practice).
_ID_TRIES = 5


def _rec(raw: dict[bytes, bytes] | list[bytes]) -> dict[str, str]:
    """A hash read by HGETALL (a dict), or returned flat by a script (a list)."""
    if isinstance(raw, dict):
        return {_text(k): _text(v) for k, v in raw.items()}
    items = [_text(x) for x in raw]
    return dict(zip(items[::2], items[1::2], strict=True))


def _sale_record(sale: Sale) -> list[str]:
    return [
        "id", sale.id,
        "room_id", sale.room_id,
        "title", sale.title,
        "sku", sale.sku,
        "price_fen", str(sale.price_fen),
        "stock", str(sale.stock),
        "limit", str(sale.limit),
        "starts_at", str(sale.starts_at),
        "ends_at", str(sale.ends_at),
        "reserve_ms", str(sale.reserve_ms),
        "created_at", str(sale.created_at),
    ]  # fmt: skip


def _view(rec: dict[str, str]) -> SaleView:
    sale = Sale(
        id=rec["id"],
        room_id=rec["room_id"],
        title=rec["title"],
        sku=rec["sku"],
        price_fen=int(rec["price_fen"]),
        stock=int(rec["stock"]),
        limit=int(rec["limit"]),
        starts_at=int(rec["starts_at"]),
        ends_at=int(rec["ends_at"]),
        reserve_ms=int(rec["reserve_ms"]),
        created_at=int(rec["created_at"]),
    )
    return SaleView(
        sale, int(rec["left"]), int(rec["reserved"]), int(rec["paid"]), int(rec["refunded"])
    )


def _opt_int(value: str | None) -> int | None:
    return None if value is None else int(value)


def _order(rec: dict[str, str]) -> Order:
    reason = rec.get("release_reason")
    return Order(
        id=rec["id"],
        sale_id=rec["sale_id"],
        room_id=room_of(rec["id"]) or "",
        uid=rec["uid"],
        qty=int(rec["qty"]),
        amount_fen=int(rec["amount_fen"]),
        status=OrderStatus(rec["status"]),
        created_at=int(rec["created_at"]),
        deadline=int(rec["deadline"]),
        idem_key=rec["idem_key"],
        release_reason=None if reason is None else ReleaseReason(reason),
        released_at=_opt_int(rec.get("released_at")),
        transaction_id=rec.get("transaction_id"),
        paid_at=_opt_int(rec.get("paid_at")),
        refund_fen=_opt_int(rec.get("refund_fen")),
        out_refund_no=rec.get("out_refund_no"),
        refunded_at=_opt_int(rec.get("refunded_at")),
        restocked=rec.get("restocked") == "1",
        refund_status=RefundState(rec["refund_status"]) if rec.get("refund_status") else None,
        refund_settled_at=_opt_int(rec.get("refund_settled_at")),
        coupon=rec.get("coupon") or None,
        discount_fen=int(rec.get("discount_fen") or 0),
    )


class RedisSaleStore:
    def __init__(
        self, client: Redis, keys: CommerceKeys, *, ledger_maxlen: int = LEDGER_MAXLEN
    ) -> None:
        self._client = client
        self._keys = keys
        self._maxlen = ledger_maxlen
        self._ledger = RedisLedger(client, keys, maxlen=ledger_maxlen)
        # Coupons are locked, used, released and restored inside the order scripts.
        self.coupons = RedisCouponStore(client, keys, ledger_maxlen=ledger_maxlen)
        self._create = register(client, "sale_create")
        self._reserve = register(client, "order_reserve")
        self._release = register(client, "order_release")
        self._confirm = register(client, "order_confirm")
        self._refund = register(client, "order_refund")
        self._settle = register(client, "order_refund_settle")
        self._close_sale = register(client, "sale_close")
        self._prune = register(client, "sale_rooms_prune")

    # --- sales

    async def create(self, sale: Sale) -> None:
        check_new_sale(sale)
        k, sid = self._keys, sale.id
        # Listed first, so a room with a sale is never missing from the list (see above).
        last_deadline = sale.ends_at + sale.reserve_ms
        await self._client.zadd(k.sale_rooms(), {sale.room_id: last_deadline}, gt=True)
        created = await self._create(
            keys=[k.sale(sid), k.sales_in_room(sale.room_id), k.ledger(sale.room_id)],
            args=[self._maxlen, *_sale_record(sale)],
        )
        if not created:
            raise Conflict(f"sale {sid} exists")

    async def close(self, sale_id: str, now_ms: int) -> bool:
        room = room_of(sale_id)
        if room is None:
            return False
        k = self._keys
        closed = await self._close_sale(
            keys=[k.sale(sale_id), k.sales_in_room(room), k.ledger(room)],
            args=[int(now_ms), self._maxlen],
        )
        return bool(closed)

    async def get(self, sale_id: str) -> SaleView | None:
        if room_of(sale_id) is None:
            return None
        raw = await self._client.hgetall(self._keys.sale(sale_id))
        return _view(_rec(raw)) if raw else None

    async def left(self, sale_id: str) -> int | None:
        if room_of(sale_id) is None:
            return None
        raw = await self._client.hget(self._keys.sale(sale_id), "left")
        return None if raw is None else int(raw)

    async def in_room(self, room_id: str, now_ms: int) -> list[SaleView]:
        raw = await self._client.zrangebyscore(
            self._keys.sales_in_room(room_id), f"({int(now_ms)}", "+inf"
        )
        async with self._client.pipeline(transaction=False) as pipe:
            for sid in raw:
                pipe.hgetall(self._keys.sale(_text(sid)))
            rows = await pipe.execute()
        views = [_view(_rec(r)) for r in rows if r]
        views.sort(key=lambda v: (v.sale.created_at, v.sale.id))
        return views

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
        room = room_of(sale_id)
        if room is None:
            return ReserveResult(ReserveOutcome.NOT_FOUND)
        k, n = self._keys, qty_arg(qty)
        digest = idem_digest(uid, idem_key)
        use = ["", 0, 0] if coupon is None else [
            coupon.coupon_id, coupon.original_fen, coupon.discount_fen
        ]  # fmt: skip
        for _ in range(_ID_TRIES):
            order_id = new_order_id(room)
            coupon_key = k.order(order_id) if coupon is None else k.coupon(coupon.coupon_id)
            reply = await self._reserve(
                keys=[
                    k.sale(sale_id),
                    k.sale_holds(sale_id),
                    k.sale_idem(sale_id),
                    k.order(order_id),
                    k.orders_in_room(room),
                    k.orders_due(room),
                    k.ledger(room),
                    coupon_key,
                ],
                args=[uid, n, digest, idem_key, int(now_ms), order_id, self._maxlen, *use],
            )
            outcome, left = _text(reply[0]), int(reply[1])
            if outcome == "taken":
                continue
            if outcome == "coupon_stale":
                raise ValueError("the coupon's discount was not computed for this order")
            if outcome == "replay":
                first = await self.get_order(_text(reply[2]))
                return ReserveResult(ReserveOutcome.OK, first, left, replayed=True)
            if outcome != "ok":
                return ReserveResult(ReserveOutcome(outcome), None, left)
            order = Order(
                id=order_id,
                sale_id=sale_id,
                room_id=room,
                uid=uid,
                qty=n,
                amount_fen=int(reply[3]),
                status=OrderStatus.RESERVED,
                created_at=int(now_ms),
                deadline=int(reply[4]),
                idem_key=idem_key,
                coupon=None if coupon is None else coupon.coupon_id,
                discount_fen=0 if coupon is None else coupon.discount_fen,
            )
            return ReserveResult(ReserveOutcome.OK, order, left)
        raise RuntimeError(f"no free order id in room {room} after {_ID_TRIES} tries")

    async def _refs(self, order_id: str) -> tuple[str, str] | None:
        """The order's sale id and the key of its coupon (the order's own key when it has
        none: a key of the same slot, which the scripts leave alone); both immutable."""
        if room_of(order_id) is None:
            return None
        sale_id, coupon = await self._client.hmget(
            self._keys.order(order_id), ["sale_id", "coupon"]
        )
        if sale_id is None:
            return None
        key = self._keys.coupon(_text(coupon)) if coupon else self._keys.order(order_id)
        return _text(sale_id), key

    async def release(
        self, order_id: str, now_ms: int, reason: ReleaseReason, *, owner: str | None = None
    ) -> Order | None:
        why = ReleaseReason(reason)
        refs = await self._refs(order_id)
        if refs is None:
            return None
        sale_id, coupon_key = refs
        k, room = self._keys, room_of(order_id) or ""
        reply = await self._release(
            keys=[
                k.order(order_id),
                k.sale(sale_id),
                k.sale_holds(sale_id),
                k.orders_due(room),
                k.ledger(room),
                coupon_key,
            ],
            args=[
                int(now_ms),
                why.value,
                "0" if owner is None else "1",
                owner or "",
                self._maxlen,
            ],
        )
        return _order(_rec(reply)) if reply else None

    async def confirm_paid(
        self, order_id: str, amount_fen: int, transaction_id: str, now_ms: int
    ) -> ConfirmResult:
        check_payment_args(amount_fen, transaction_id, "transaction_id")
        refs = await self._refs(order_id)
        if refs is None:
            return ConfirmResult(ConfirmOutcome.NOT_FOUND)
        sale_id, coupon_key = refs
        k, room = self._keys, room_of(order_id) or ""
        reply = await self._confirm(
            keys=[
                k.order(order_id),
                k.sale(sale_id),
                k.orders_due(room),
                k.ledger(room),
                coupon_key,
            ],
            args=[amount_fen, transaction_id, int(now_ms), self._maxlen],
        )
        outcome = ConfirmOutcome(_text(reply[0]))
        return ConfirmResult(outcome, _order(_rec(reply[1])) if reply[1] else None)

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
        refs = await self._refs(order_id)
        if refs is None:
            return None
        sale_id, coupon_key = refs
        k, room = self._keys, room_of(order_id) or ""
        reply = await self._refund(
            keys=[
                k.order(order_id), k.sale(sale_id), k.sale_holds(sale_id), k.ledger(room),
                coupon_key,
            ],
            args=[
                refund_fen, out_refund_no, int(now_ms), "1" if restock else "0", self._maxlen,
                (RefundState.SUCCESS if settled else RefundState.PROCESSING).value,
            ],
        )  # fmt: skip
        return _order(_rec(reply)) if reply else None

    async def settle_refund(
        self, order_id: str, out_refund_no: str, state: RefundState, now_ms: int
    ) -> Order | None:
        check_settle_args(out_refund_no, state)
        if room_of(order_id) is None:
            return None
        k, room = self._keys, room_of(order_id) or ""
        reply = await self._settle(
            keys=[k.order(order_id), k.ledger(room)],
            args=[out_refund_no, RefundState(state).value, int(now_ms), self._maxlen],
        )
        return _order(_rec(reply)) if reply else None

    async def due(self, now_ms: int, limit: int) -> list[str]:
        return await self._deadlines(int(now_ms), int(now_ms), limit, prune=True)

    async def near_deadline(self, now_ms: int, within_ms: int, limit: int) -> list[str]:
        upto = int(now_ms) + max(int(within_ms), 0)
        return await self._deadlines(int(now_ms), upto, limit, prune=False)

    async def _deadlines(self, now_ms: int, upto: int, limit: int, *, prune: bool) -> list[str]:
        if limit <= 0:
            return []
        k = self._keys
        rooms = [
            (_text(r), int(score))
            for r, score in await self._client.zrange(k.sale_rooms(), 0, -1, withscores=True)
        ]
        found: list[tuple[int, str]] = []
        empty: list[str] = []
        for i in range(0, len(rooms), _ROOMS_PER_PIPE):
            chunk = rooms[i : i + _ROOMS_PER_PIPE]
            async with self._client.pipeline(transaction=False) as pipe:
                for room, _ in chunk:
                    pipe.zrangebyscore(
                        k.orders_due(room), "-inf", upto, start=0, num=limit, withscores=True
                    )
                    pipe.zcard(k.orders_due(room))
                replies = await pipe.execute()
            for j, (room, last) in enumerate(chunk):
                rows, size = replies[2 * j], replies[2 * j + 1]
                found += [(int(score), _text(oid)) for oid, score in rows]
                if size == 0 and last + _ROOM_GRACE_MS < now_ms:
                    empty.append(room)
        if prune:
            for room in empty:
                await self._prune(keys=[k.sale_rooms()], args=[room, now_ms - _ROOM_GRACE_MS])
        found.sort()
        return [oid for _, oid in found[:limit]]

    async def get_order(self, order_id: str) -> Order | None:
        if room_of(order_id) is None:
            return None
        raw = await self._client.hgetall(self._keys.order(order_id))
        return _order(_rec(raw)) if raw else None

    async def orders_in_room(
        self, room_id: str, limit: int = 100, after: str | None = None
    ) -> list[Order]:
        if limit <= 0:
            return []
        index = self._keys.orders_in_room(room_id)
        floor = "-inf"
        if after is not None:
            score = await self._client.zscore(index, after)
            if score is None:
                return []
            floor = f"({int(score)}"
        ids = await self._client.zrangebyscore(index, floor, "+inf", start=0, num=limit)
        async with self._client.pipeline(transaction=False) as pipe:
            for oid in ids:
                pipe.hgetall(self._keys.order(_text(oid)))
            rows = await pipe.execute()
        return [_order(_rec(r)) for r in rows if r]

    async def events(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        return await read_events(self._ledger.read, room_id, after, count)
