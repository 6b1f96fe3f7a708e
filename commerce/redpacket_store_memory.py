"""In-process RedPacketStore (see ``commerce.redpacket_store`` for the contract).

No method awaits between reading and writing, so each is atomic on the event loop, and
the ledger append is part of the same step.
"""

from __future__ import annotations

from collections import deque

from commerce.ids import room_of
from commerce.ledger_memory import MemoryLedger
from commerce.models import (
    GrabOutcome,
    GrabResult,
    Luckiest,
    PacketClaim,
    PacketStatus,
    PacketView,
    RedPacket,
    Refund,
)
from commerce.redpacket_store import check_new_packet
from interact.floor.errors import Conflict


class _Packet:
    __slots__ = ("claims", "eligible", "luckiest", "meta", "refund", "shares", "status")

    def __init__(self, meta: RedPacket, shares: list[int]) -> None:
        self.meta = meta
        self.status = PacketStatus.OPEN
        self.shares = deque(shares)
        self.claims: dict[str, int] = {}  # insertion order is claim order
        self.eligible: set[str] = set()
        self.luckiest: Luckiest | None = None
        self.refund: Refund | None = None


class MemoryRedPacketStore:
    def __init__(self, ledger: MemoryLedger | None = None) -> None:
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self._packets: dict[str, _Packet] = {}
        self._open: dict[str, set[str]] = {}  # room -> open packet ids
        self._due: dict[str, int] = {}  # packet id -> expires_at, while indexed
        self._all: dict[str, list[str]] = {}  # room -> every packet id (for forget_room)

    async def create(self, packet: RedPacket, shares: list[int]) -> None:
        check_new_packet(packet, shares)
        if packet.id in self._packets:
            raise Conflict(f"red packet {packet.id} exists")
        self._packets[packet.id] = _Packet(packet, list(shares))
        self._open.setdefault(packet.room_id, set()).add(packet.id)
        self._due[packet.id] = packet.expires_at
        self._all.setdefault(packet.room_id, []).append(packet.id)
        self.ledger.append_now(
            packet.room_id,
            {
                "type": "rp_created",
                "packet": packet.id,
                "sender": packet.sender,
                "total_fen": packet.total_fen,
                "count": packet.count,
                "split": packet.split.value,
                "ts": packet.created_at,
            },
        )

    def forget_room(self, room_id: str) -> int:
        """Drop the room's packets (its refund window has passed: rooms.retention)."""
        ids = self._all.pop(room_id, [])
        for pid in ids:
            self._packets.pop(pid, None)
            self._due.pop(pid, None)
        self._open.pop(room_id, None)
        return len(ids)

    def _find(self, packet_id: str) -> _Packet | None:
        return self._packets.get(packet_id) if room_of(packet_id) is not None else None

    async def grab(self, packet_id: str, uid: str, now_ms: int) -> GrabResult:
        p = self._find(packet_id)
        if p is None:
            return GrabResult(GrabOutcome.NOT_FOUND)
        left = len(p.shares)
        first = p.claims.get(uid)
        if first is not None:
            return GrabResult(GrabOutcome.ALREADY_GRABBED, first, left)
        meta = p.meta
        if now_ms < meta.opens_at:
            return GrabResult(GrabOutcome.NOT_OPEN, None, left)
        if now_ms >= meta.expires_at or p.status is PacketStatus.EXPIRED:
            return GrabResult(GrabOutcome.EXPIRED, None, left)
        if meta.condition is not None and uid not in p.eligible:
            return GrabResult(GrabOutcome.FORBIDDEN, None, left)
        if not p.shares:
            return GrabResult(GrabOutcome.EMPTY)
        amount = p.shares.popleft()
        left -= 1
        p.claims[uid] = amount
        if p.luckiest is None or amount > p.luckiest.amount_fen:
            p.luckiest = Luckiest(uid, amount)
        room = meta.room_id
        self.ledger.append_now(
            room,
            {"type": "rp_claim", "packet": meta.id, "uid": uid, "amount_fen": amount, "ts": now_ms},
        )
        if left:
            return GrabResult(GrabOutcome.OK, amount, left)
        p.status = PacketStatus.DONE
        self._close(p)
        lucky = p.luckiest
        self.ledger.append_now(
            room,
            {
                "type": "rp_done",
                "packet": meta.id,
                "luckiest": lucky.uid,
                "amount_fen": lucky.amount_fen,
                "ts": now_ms,
            },
        )
        return GrabResult(GrabOutcome.OK, amount, 0, done=True, luckiest=lucky)

    def _close(self, p: _Packet) -> None:
        self._open.get(p.meta.room_id, set()).discard(p.meta.id)
        self._due.pop(p.meta.id, None)

    async def add_eligible(self, packet_id: str, uid: str) -> bool:
        p = self._find(packet_id)
        if p is None:
            return False
        p.eligible.add(uid)
        return True

    async def expire(self, packet_id: str, now_ms: int) -> Refund | None:
        p = self._find(packet_id)
        if p is None or p.status is not PacketStatus.OPEN or now_ms < p.meta.expires_at:
            return None
        meta = p.meta
        refund = Refund(meta.id, meta.room_id, meta.sender, sum(p.shares), len(p.shares))
        p.shares.clear()
        p.status = PacketStatus.EXPIRED
        p.refund = refund
        self._close(p)
        self.ledger.append_now(
            meta.room_id,
            {
                "type": "rp_refund",
                "packet": meta.id,
                "sender": meta.sender,
                "amount_fen": refund.amount_fen,
                "shares": refund.shares,
                "ts": now_ms,
            },
        )
        return refund

    async def due(self, now_ms: int, limit: int) -> list[str]:
        ready = sorted((at, pid) for pid, at in self._due.items() if at <= now_ms)
        return [pid for _, pid in ready[: max(limit, 0)]]

    def _view(self, p: _Packet) -> PacketView:
        return PacketView(
            packet=p.meta,
            status=p.status,
            left=len(p.shares),
            claims=tuple(PacketClaim(uid, amount) for uid, amount in p.claims.items()),
            refund=p.refund,
            luckiest=p.luckiest if p.status is PacketStatus.DONE else None,
        )

    async def get(self, packet_id: str) -> PacketView | None:
        p = self._find(packet_id)
        return None if p is None else self._view(p)

    async def open_in_room(self, room_id: str) -> list[PacketView]:
        packets = [self._packets[pid] for pid in self._open.get(room_id, ())]
        packets.sort(key=lambda p: (p.meta.created_at, p.meta.id))
        return [self._view(p) for p in packets]
