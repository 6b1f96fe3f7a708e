"""Redis LotteryStore (see ``commerce.lottery_store`` for the contract).

A lottery is a hash (record, secret, status, lease, result) and a set of entrants under its
room's hash tag, beside the room's prior-winner set, undrawn set and ledger stream, so
create, enter, claim and finish are each one Lua script (``lua/lot_*.lua``) on one slot.
The global deadline index (``keys.lotteries_due``) is cross-slot and written beside them:
after create, after a claim (re-scored to the lease end) and after a finish.
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from commerce.draw import DrawResult
from commerce.ids import room_of
from commerce.keys import CommerceKeys
from commerce.ledger import LEDGER_MAXLEN
from commerce.lottery_store import check_new_lottery
from commerce.models import (
    Condition,
    ConditionKind,
    DrawClaim,
    EnterOutcome,
    EnterResult,
    Lottery,
    LotteryStatus,
    LotteryView,
    Prize,
    PrizeKind,
)
from commerce.scripts import register
from interact.floor.errors import Conflict
from interact.floor.scripts import text as _text

# Index entries examined per round trip in ``due``.
_PAGE = 200

# What ``get`` reads: everything but the secret, which stays in Redis until the draw.
_VIEW_FIELDS = (
    "id", "room_id", "prize_title", "prize_kind", "prize_fen", "winners", "cond_kind",
    "cond_password", "cond_minutes", "cond_n", "draw_at", "created_at", "commit", "new_first",
    "status", "result_winners", "proof", "unused", "drawn_at", "prize_batch",
)  # fmt: skip


def _record(lottery: Lottery, secret: bytes) -> list[str]:
    prize, cond = lottery.prize, lottery.condition
    out = ["id", lottery.id, "room_id", lottery.room_id]
    out += ["prize_title", prize.title, "prize_kind", prize.kind.value]
    if prize.amount_fen is not None:
        out += ["prize_fen", str(prize.amount_fen)]
    if prize.coupon_batch is not None:
        out += ["prize_batch", prize.coupon_batch]
    out += ["winners", str(lottery.winners), "cond_kind", cond.kind.value]
    if cond.password is not None:
        out += ["cond_password", cond.password]
    if cond.minutes is not None:
        out += ["cond_minutes", str(cond.minutes)]
    if cond.n is not None:
        out += ["cond_n", str(cond.n)]
    out += ["draw_at", str(lottery.draw_at), "created_at", str(lottery.created_at)]
    out += ["commit", lottery.commit, "new_first", "1" if lottery.new_first else "0"]
    out += ["secret", secret.hex()]
    return out


def _opt_int(value: str | None) -> int | None:
    return None if value is None else int(value)


def _lottery(rec: dict[str, str]) -> Lottery:
    return Lottery(
        id=rec["id"],
        room_id=rec["room_id"],
        prize=Prize(
            rec["prize_title"],
            PrizeKind(rec["prize_kind"]),
            _opt_int(rec.get("prize_fen")),
            rec.get("prize_batch"),
        ),
        winners=int(rec["winners"]),
        condition=Condition(
            ConditionKind(rec["cond_kind"]),
            password=rec.get("cond_password"),
            minutes=_opt_int(rec.get("cond_minutes")),
            n=_opt_int(rec.get("cond_n")),
        ),
        draw_at=int(rec["draw_at"]),
        created_at=int(rec["created_at"]),
        commit=rec["commit"],
        new_first=rec["new_first"] == "1",
    )


class RedisLotteryStore:
    def __init__(
        self, client: Redis, keys: CommerceKeys, *, ledger_maxlen: int = LEDGER_MAXLEN
    ) -> None:
        self._client = client
        self._keys = keys
        self._maxlen = ledger_maxlen
        self._create = register(client, "lot_create")
        self._enter = register(client, "lot_enter")
        self._claim = register(client, "lot_claim")
        self._finish = register(client, "lot_finish")

    async def create(self, lottery: Lottery, secret: bytes) -> None:
        check_new_lottery(lottery, secret)
        k, lid, room = self._keys, lottery.id, lottery.room_id
        created = await self._create(
            keys=[k.lottery(lid), k.lotteries_open(room), k.ledger(room), k.lotteries_all(room)],
            args=[self._maxlen, *_record(lottery, secret)],
        )
        if not created:
            raise Conflict(f"lottery {lid} exists")
        # Cross-slot, hence outside the script: a crash in between leaves a lottery that
        # ``due`` never offers, which a manual draw (``force``) still draws.
        await self._client.zadd(k.lotteries_due(), {lid: lottery.draw_at})

    async def get(self, lottery_id: str) -> LotteryView | None:
        if room_of(lottery_id) is None:
            return None
        k = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hmget(k.lottery(lottery_id), _VIEW_FIELDS)
            pipe.scard(k.lottery_entries(lottery_id))
            values, entries = await pipe.execute()
        if values[0] is None:
            return None
        rec = {f: _text(v) for f, v in zip(_VIEW_FIELDS, values, strict=True) if v is not None}
        return _view(rec, int(entries))

    async def entrants(self, lottery_id: str) -> list[str]:
        """The entrant uids, sorted (empty for an unknown lottery)."""
        if room_of(lottery_id) is None:
            return []
        raw = await self._client.smembers(self._keys.lottery_entries(lottery_id))
        return sorted(_text(r) for r in raw)

    async def open_in_room(self, room_id: str) -> list[LotteryView]:
        raw = await self._client.smembers(self._keys.lotteries_open(room_id))
        views = [v for v in [await self.get(_text(r)) for r in sorted(raw)] if v is not None]
        views = [v for v in views if v.status is not LotteryStatus.DRAWN]
        views.sort(key=lambda v: (v.lottery.created_at, v.lottery.id))
        return views

    async def enter(self, lottery_id: str, uid: str, now_ms: int) -> EnterResult:
        if room_of(lottery_id) is None:
            return EnterResult(EnterOutcome.NOT_FOUND, 0)
        k = self._keys
        outcome, entries = await self._enter(
            keys=[k.lottery(lottery_id), k.lottery_entries(lottery_id)],
            args=[uid, int(now_ms)],
        )
        return EnterResult(EnterOutcome(_text(outcome)), int(entries))

    async def claim_draw(
        self, lottery_id: str, now_ms: int, lease_ms: int, *, force: bool = False
    ) -> DrawClaim | None:
        room = room_of(lottery_id)
        if room is None:
            return None
        k = self._keys
        reply = await self._claim(
            keys=[k.lottery(lottery_id), k.lottery_entries(lottery_id), k.lottery_winners(room)],
            args=[int(now_ms), int(lease_ms), "1" if force else "0"],
        )
        if _text(reply[0]) != "ok":
            return None
        lease_until = int(reply[1])
        flat = [_text(v) for v in reply[2]]
        rec = dict(zip(flat[::2], flat[1::2], strict=True))
        # Re-scored to the lease end, so ``due`` offers the lottery again if this holder dies.
        await self._client.zadd(k.lotteries_due(), {lottery_id: lease_until})
        return DrawClaim(
            lottery=_lottery(rec),
            secret=bytes.fromhex(rec["secret"]),
            entrants=tuple(sorted(_text(u) for u in reply[3])),
            prior_winners=frozenset(_text(u) for u in reply[4]),
            lease_until=lease_until,
        )

    async def finish_draw(self, lottery_id: str, result: DrawResult, now_ms: int) -> bool:
        room = room_of(lottery_id)
        if room is None:
            return False
        k = self._keys
        winners = list(result.winners)
        stored = await self._finish(
            keys=[
                k.lottery(lottery_id),
                k.lottery_entries(lottery_id),
                k.lottery_winners(room),
                k.lotteries_open(room),
                k.ledger(room),
            ],
            args=[
                int(now_ms),
                self._maxlen,
                orjson.dumps(winners),
                orjson.dumps(result.proof),
                int(result.unused),
                *winners,
            ],
        )
        if not stored:
            return False
        await self._client.zrem(k.lotteries_due(), lottery_id)
        return True

    async def due(self, now_ms: int, limit: int) -> list[str]:
        out: list[str] = []
        index = self._keys.lotteries_due()
        kept = 0  # entries at the head of the range that stay in the index
        while len(out) < limit:
            raw = await self._client.zrangebyscore(
                index, "-inf", int(now_ms), start=kept, num=_PAGE
            )
            if not raw:
                break
            ids = [_text(r) for r in raw]
            async with self._client.pipeline(transaction=False) as pipe:
                for lid in ids:
                    pipe.hmget(self._keys.lottery(lid), ["status", "lease_until"])
                rows = await pipe.execute()
            drawn = []
            for lid, (status, lease) in zip(ids, rows, strict=True):
                state = None if status is None else _text(status)
                if state == LotteryStatus.OPEN or (
                    state == LotteryStatus.DRAWING and int(lease or 0) <= now_ms
                ):
                    out.append(lid)
                    kept += 1
                elif state == LotteryStatus.DRAWING:
                    kept += 1  # lease still held; its score is being moved by the holder
                else:
                    drawn.append(lid)
            if drawn:
                await self._client.zrem(index, *drawn)
        return out[:limit]

    async def mark_prizes(self, lottery_id: str, at_ms: int) -> None:
        await self._client.zadd(self._keys.lottery_prizes_due(), {lottery_id: int(at_ms)})

    async def prizes_due(self, now_ms: int, limit: int) -> list[str]:
        raw = await self._client.zrangebyscore(
            self._keys.lottery_prizes_due(), "-inf", int(now_ms), start=0, num=max(limit, 0)
        )
        return [_text(r) for r in raw]

    async def prizes_done(self, lottery_id: str) -> None:
        await self._client.zrem(self._keys.lottery_prizes_due(), lottery_id)


def _view(rec: dict[str, str], entries: int) -> LotteryView:
    lottery = _lottery(rec)
    status = LotteryStatus(rec["status"])
    if status is not LotteryStatus.DRAWN:
        return LotteryView(lottery, status, entries)
    return LotteryView(
        lottery=lottery,
        status=status,
        entries=entries,
        winners=tuple(orjson.loads(rec["result_winners"])),
        proof=orjson.loads(rec["proof"]),
        unused=int(rec["unused"]),
        drawn_at=int(rec["drawn_at"]),
    )
