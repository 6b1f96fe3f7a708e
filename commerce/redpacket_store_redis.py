"""Redis RedPacketStore (see ``commerce.redpacket_store`` for the contract).

A packet is a hash, a list of unclaimed shares, a claims hash, a claim-order list and an
eligible set, all under its room's hash tag with the room's ledger stream, so create,
grab and expire are each one Lua script (``lua/rp_*.lua``) on one slot. The global
deadline index (``keys.packets_due``) is cross-slot and written beside the scripts: after
create, and after the step that closes a packet; ``due`` also drops closed ids it meets.
"""

from __future__ import annotations

from redis.asyncio import Redis

from commerce.ids import room_of
from commerce.keys import CommerceKeys
from commerce.ledger import LEDGER_MAXLEN
from commerce.models import (
    GrabOutcome,
    GrabResult,
    Luckiest,
    PacketClaim,
    PacketStatus,
    PacketView,
    RedPacket,
    Refund,
    Split,
)
from commerce.redpacket_store import check_new_packet
from commerce.scripts import register
from interact.floor.errors import Conflict
from interact.floor.scripts import text as _text

# Index entries examined per round trip in ``due``.
_PAGE = 200


def _record(packet: RedPacket) -> list[str]:
    out = [
        "id", packet.id,
        "room_id", packet.room_id,
        "sender", packet.sender,
        "total_fen", str(packet.total_fen),
        "count", str(packet.count),
        "split", packet.split.value,
        "created_at", str(packet.created_at),
        "opens_at", str(packet.opens_at),
        "expires_at", str(packet.expires_at),
    ]  # fmt: skip
    if packet.condition is not None:
        out += ["condition", packet.condition]
    return out


def _packet(rec: dict[str, str]) -> RedPacket:
    return RedPacket(
        id=rec["id"],
        room_id=rec["room_id"],
        sender=rec["sender"],
        total_fen=int(rec["total_fen"]),
        count=int(rec["count"]),
        split=Split(rec["split"]),
        created_at=int(rec["created_at"]),
        opens_at=int(rec["opens_at"]),
        expires_at=int(rec["expires_at"]),
        condition=rec.get("condition"),
    )


class RedisRedPacketStore:
    def __init__(
        self, client: Redis, keys: CommerceKeys, *, ledger_maxlen: int = LEDGER_MAXLEN
    ) -> None:
        self._client = client
        self._keys = keys
        self._maxlen = ledger_maxlen
        self._create = register(client, "rp_create")
        self._grab = register(client, "rp_grab")
        self._expire = register(client, "rp_expire")
        self._eligible = register(client, "rp_eligible")

    async def create(self, packet: RedPacket, shares: list[int]) -> None:
        check_new_packet(packet, shares)
        k, pid = self._keys, packet.id
        record = _record(packet)
        created = await self._create(
            keys=[
                k.packet(pid),
                k.packet_shares(pid),
                k.packets_open(packet.room_id),
                k.ledger(packet.room_id),
                k.packets_all(packet.room_id),
            ],
            args=[self._maxlen, len(record), *record, *shares],
        )
        if not created:
            raise Conflict(f"red packet {pid} exists")
        # Cross-slot, hence outside the script (see the contract for a crash in between).
        await self._client.zadd(k.packets_due(), {pid: packet.expires_at})

    async def grab(self, packet_id: str, uid: str, now_ms: int) -> GrabResult:
        room = room_of(packet_id)
        if room is None:
            return GrabResult(GrabOutcome.NOT_FOUND)
        k, pid = self._keys, packet_id
        reply = await self._grab(
            keys=[
                k.packet(pid),
                k.packet_shares(pid),
                k.packet_claims(pid),
                k.packet_order(pid),
                k.packet_eligible(pid),
                k.packets_open(room),
                k.ledger(room),
            ],
            args=[uid, int(now_ms), self._maxlen],
        )
        outcome = GrabOutcome(_text(reply[0]))
        amount = int(reply[1]) if reply[1] not in (b"", "") else None
        done = int(reply[3]) == 1
        if not done:
            return GrabResult(outcome, amount, int(reply[2]))
        await self._client.zrem(k.packets_due(), pid)
        lucky = Luckiest(_text(reply[4]), int(reply[5]))
        return GrabResult(outcome, amount, 0, done=True, luckiest=lucky)

    async def add_eligible(self, packet_id: str, uid: str) -> bool:
        if room_of(packet_id) is None:
            return False
        k = self._keys
        keys = [k.packet(packet_id), k.packet_eligible(packet_id)]
        return bool(await self._eligible(keys=keys, args=[uid]))

    async def expire(self, packet_id: str, now_ms: int) -> Refund | None:
        room = room_of(packet_id)
        if room is None:
            return None
        k, pid = self._keys, packet_id
        reply = await self._expire(
            keys=[k.packet(pid), k.packet_shares(pid), k.packets_open(room), k.ledger(room)],
            args=[int(now_ms), self._maxlen],
        )
        if _text(reply[0]) != "ok":
            return None
        await self._client.zrem(k.packets_due(), pid)
        return Refund(pid, _text(reply[3]), _text(reply[4]), int(reply[1]), int(reply[2]))

    async def due(self, now_ms: int, limit: int) -> list[str]:
        out: list[str] = []
        index = self._keys.packets_due()
        while len(out) < limit:
            # Closed ids are removed below, so the open ones found so far are the offset.
            raw = await self._client.zrangebyscore(
                index, "-inf", int(now_ms), start=len(out), num=_PAGE
            )
            if not raw:
                break
            ids = [_text(r) for r in raw]
            async with self._client.pipeline(transaction=False) as pipe:
                for pid in ids:
                    pipe.hget(self._keys.packet(pid), "status")
                statuses = await pipe.execute()
            closed = []
            for pid, status in zip(ids, statuses, strict=True):
                if status is not None and _text(status) == PacketStatus.OPEN:
                    out.append(pid)
                else:
                    closed.append(pid)
            if closed:
                await self._client.zrem(index, *closed)
        return out[:limit]

    async def get(self, packet_id: str) -> PacketView | None:
        if room_of(packet_id) is None:
            return None
        k, pid = self._keys, packet_id
        # MULTI on keys of one slot: a consistent snapshot, also on Redis Cluster.
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(k.packet(pid))
            pipe.llen(k.packet_shares(pid))
            pipe.lrange(k.packet_order(pid), 0, -1)
            pipe.hgetall(k.packet_claims(pid))
            raw, left, order, claims = await pipe.execute()
        if not raw:
            return None
        rec = {_text(f): _text(v) for f, v in raw.items()}
        amounts = {_text(u): int(a) for u, a in claims.items()}
        packet = _packet(rec)
        status = PacketStatus(rec["status"])
        refund = None
        if "refund_fen" in rec:
            amount, shares = int(rec["refund_fen"]), int(rec["refund_shares"])
            refund = Refund(pid, packet.room_id, packet.sender, amount, shares)
        luckiest = None
        if status is PacketStatus.DONE:
            luckiest = Luckiest(rec["lucky_uid"], int(rec["lucky_fen"]))
        return PacketView(
            packet=packet,
            status=status,
            left=int(left),
            claims=tuple(PacketClaim(u, amounts[u]) for u in map(_text, order)),
            refund=refund,
            luckiest=luckiest,
        )

    async def open_in_room(self, room_id: str) -> list[PacketView]:
        ids = sorted(
            _text(r) for r in await self._client.smembers(self._keys.packets_open(room_id))
        )
        views = [v for v in [await self.get(pid) for pid in ids] if v is not None]
        open_views = [v for v in views if v.status is PacketStatus.OPEN]
        open_views.sort(key=lambda v: (v.packet.created_at, v.packet.id))
        return open_views
