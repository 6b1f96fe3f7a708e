"""In-process LotteryStore (see ``commerce.lottery_store`` for the contract).

No method awaits between reading and writing, so each is atomic on the event loop, and
the ledger append is part of the same step.
"""

from __future__ import annotations

from commerce.draw import DrawResult
from commerce.ids import room_of
from commerce.ledger_memory import MemoryLedger
from commerce.lottery_store import check_new_lottery
from commerce.models import (
    DrawClaim,
    EnterOutcome,
    EnterResult,
    Lottery,
    LotteryStatus,
    LotteryView,
    PrizeKind,
)
from interact.floor.errors import Conflict


class _Lottery:
    __slots__ = ("drawn", "drawn_at", "entries", "lease_until", "meta", "secret", "status")

    def __init__(self, meta: Lottery, secret: bytes) -> None:
        self.meta = meta
        self.secret = secret
        self.status = LotteryStatus.OPEN
        self.entries: set[str] = set()
        self.lease_until = 0
        self.drawn: DrawResult | None = None
        self.drawn_at: int | None = None


def _prize_fen(lottery: Lottery) -> str:
    amount = lottery.prize.amount_fen
    return "" if amount is None else str(amount)


class MemoryLotteryStore:
    def __init__(self, ledger: MemoryLedger | None = None) -> None:
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self._lotteries: dict[str, _Lottery] = {}
        self._open: dict[str, set[str]] = {}  # room -> undrawn lottery ids
        self._won: dict[str, set[str]] = {}  # room -> uids that won there
        self._due: dict[str, int] = {}  # lottery id -> draw_at, or lease end while drawing
        self._prizes: dict[str, int] = {}  # lottery id -> when to (re)issue its coupon prizes
        self._all: dict[str, list[str]] = {}  # room -> every lottery id (for forget_room)

    async def create(self, lottery: Lottery, secret: bytes) -> None:
        check_new_lottery(lottery, secret)
        if lottery.id in self._lotteries:
            raise Conflict(f"lottery {lottery.id} exists")
        self._lotteries[lottery.id] = _Lottery(lottery, secret)
        self._open.setdefault(lottery.room_id, set()).add(lottery.id)
        self._due[lottery.id] = lottery.draw_at
        self._all.setdefault(lottery.room_id, []).append(lottery.id)
        self.ledger.append_now(
            lottery.room_id,
            {
                "type": "lot_created",
                "lottery": lottery.id,
                "commit": lottery.commit,
                "winners": lottery.winners,
                "prize_kind": lottery.prize.kind.value,
                "prize_fen": _prize_fen(lottery),
                "draw_at": lottery.draw_at,
                "ts": lottery.created_at,
            },
        )

    def forget_room(self, room_id: str, *, money: bool) -> int:
        """Drop the room's lotteries (rooms.retention): with ``money`` False only those
        whose prize is goods (their hot retention has passed), else every one and the
        room's sets. As the Redis end script's ``prize`` class: a cash or coupon prize is
        kept for the refund window. Returns how many lotteries were dropped."""
        ids = self._all.get(room_id, [])
        kept: list[str] = []
        dropped = 0
        for lid in ids:
            lot = self._lotteries.get(lid)
            if not money and lot is not None and lot.meta.prize.kind is not PrizeKind.GOODS:
                kept.append(lid)
                continue
            if self._lotteries.pop(lid, None) is not None:
                dropped += 1
            self._due.pop(lid, None)
            self._prizes.pop(lid, None)
            self._open.get(room_id, set()).discard(lid)
        if kept:
            self._all[room_id] = kept
        else:
            self._all.pop(room_id, None)
        if money:
            self._open.pop(room_id, None)
            self._won.pop(room_id, None)
        return dropped

    def _find(self, lottery_id: str) -> _Lottery | None:
        return self._lotteries.get(lottery_id) if room_of(lottery_id) is not None else None

    def _view(self, lot: _Lottery) -> LotteryView:
        if lot.drawn is None:
            return LotteryView(lot.meta, lot.status, len(lot.entries))
        return LotteryView(
            lottery=lot.meta,
            status=lot.status,
            entries=len(lot.entries),
            winners=tuple(lot.drawn.winners),
            proof=dict(lot.drawn.proof),
            unused=lot.drawn.unused,
            drawn_at=lot.drawn_at,
        )

    async def get(self, lottery_id: str) -> LotteryView | None:
        lot = self._find(lottery_id)
        return None if lot is None else self._view(lot)

    async def entrants(self, lottery_id: str) -> list[str]:
        """The entrant uids, sorted (empty for an unknown lottery)."""
        lot = self._find(lottery_id)
        return [] if lot is None else sorted(lot.entries)

    async def open_in_room(self, room_id: str) -> list[LotteryView]:
        lots = [self._lotteries[lid] for lid in self._open.get(room_id, ())]
        lots.sort(key=lambda lot: (lot.meta.created_at, lot.meta.id))
        return [self._view(lot) for lot in lots]

    async def enter(self, lottery_id: str, uid: str, now_ms: int) -> EnterResult:
        lot = self._find(lottery_id)
        if lot is None:
            return EnterResult(EnterOutcome.NOT_FOUND, 0)
        if lot.status is not LotteryStatus.OPEN or now_ms >= lot.meta.draw_at:
            return EnterResult(EnterOutcome.CLOSED, len(lot.entries))
        if uid in lot.entries:
            return EnterResult(EnterOutcome.ALREADY, len(lot.entries))
        lot.entries.add(uid)
        return EnterResult(EnterOutcome.OK, len(lot.entries))

    async def claim_draw(
        self, lottery_id: str, now_ms: int, lease_ms: int, *, force: bool = False
    ) -> DrawClaim | None:
        lot = self._find(lottery_id)
        if lot is None:
            return None
        if lot.status is LotteryStatus.OPEN:
            if not force and now_ms < lot.meta.draw_at:
                return None
        elif lot.status is not LotteryStatus.DRAWING or now_ms < lot.lease_until:
            return None
        lot.status = LotteryStatus.DRAWING
        lot.lease_until = now_ms + lease_ms
        self._due[lot.meta.id] = lot.lease_until
        return DrawClaim(
            lottery=lot.meta,
            secret=lot.secret,
            entrants=tuple(sorted(lot.entries)),
            prior_winners=frozenset(self._won.get(lot.meta.room_id, ())),
            lease_until=lot.lease_until,
        )

    async def finish_draw(self, lottery_id: str, result: DrawResult, now_ms: int) -> bool:
        lot = self._find(lottery_id)
        if lot is None or lot.status is not LotteryStatus.DRAWING:
            return False
        meta = lot.meta
        lot.status = LotteryStatus.DRAWN
        lot.drawn = DrawResult(list(result.winners), dict(result.proof), result.unused)
        lot.drawn_at = now_ms
        self._won.setdefault(meta.room_id, set()).update(result.winners)
        self._open.get(meta.room_id, set()).discard(meta.id)
        self._due.pop(meta.id, None)
        self.ledger.append_now(
            meta.room_id,
            {
                "type": "lot_drawn",
                "lottery": meta.id,
                "winners": ",".join(result.winners),
                "entries": len(lot.entries),
                "unused": result.unused,
                "prize_kind": meta.prize.kind.value,
                "prize_fen": _prize_fen(meta),
                "ts": now_ms,
            },
        )
        return True

    async def due(self, now_ms: int, limit: int) -> list[str]:
        ready = sorted((at, lid) for lid, at in self._due.items() if at <= now_ms)
        return [lid for _, lid in ready[: max(limit, 0)]]

    async def mark_prizes(self, lottery_id: str, at_ms: int) -> None:
        self._prizes[lottery_id] = at_ms

    async def prizes_due(self, now_ms: int, limit: int) -> list[str]:
        ready = sorted((at, lid) for lid, at in self._prizes.items() if at <= now_ms)
        return [lid for _, lid in ready[: max(limit, 0)]]

    async def prizes_done(self, lottery_id: str) -> None:
        self._prizes.pop(lottery_id, None)
