"""RedPacketStore: pre-split shares, the atomic grab, expiry refunds and the deadline index.

Contract:
- ``create(packet, shares)`` stores a packet split at send time (``commerce.split``):
  ``shares`` are popped in the order given. It checks ``len(shares) == count``,
  ``sum(shares) == total_fen``, every share ≥ 1 and ``room_of(packet.id) == room_id``
  (``ValueError`` otherwise, a caller bug). An id that exists is ``Conflict``. The packet
  joins the room's open set, and ``rp_created`` goes to the ledger, in one atomic step;
  adding it to the global deadline index is a second step (a crash in between leaves a
  packet that ``due`` never offers: it still refuses grabs after ``expires_at`` and can be
  expired by id).
- ``grab(packet_id, uid, now_ms)`` is one atomic step, checks in this order:
  unknown or malformed id → ``not_found``; ``uid`` claimed before → ``already_grabbed``
  with the first amount, nothing changes (even after the packet closed);
  ``now < opens_at`` → ``not_open``; ``now ≥ expires_at`` or status expired → ``expired``;
  a condition is set and ``uid`` is not eligible → ``forbidden``; no share left (status
  done) → ``empty``; else the next share is popped and recorded as the uid's claim, in
  claim order, with ``rp_claim`` in the ledger. The grab that takes the last share also
  closes the packet (status done, out of the room's open set, ``rp_done`` in the ledger)
  and returns ``done=True`` with the luckiest claim (largest amount, ties: earliest).
- ``add_eligible(packet_id, uid)`` marks a uid as having met the condition (the wiring
  calls it for a comment carrying the password); False for an unknown packet.
- ``expire(packet_id, now_ms)`` closes an open packet whose ``expires_at ≤ now`` exactly
  once across processes: status expired, the remaining shares removed and refunded
  (``rp_refund`` in the ledger) and returned as a ``Refund``. Every other case — unknown,
  done, already expired, not due — returns None and changes nothing.
- Money invariant, at every moment: claimed + unclaimed shares == total_fen while open;
  claimed (+ refund when expired) == total_fen once closed.
- ``due(now_ms, limit)``: up to ``limit`` ids of open packets with ``expires_at ≤ now``,
  earliest deadline first (ties by id); ids of closed packets are dropped from the index
  on the way.
- ``get`` returns the packet, status, shares left, claims in claim order, refund and
  luckiest; ``open_in_room`` every open packet of a room, oldest first (a packet past its
  deadline stays open until ``expire`` runs).
- Keys, records and the ledger are kept without expiry: claims are money.
"""

from __future__ import annotations

from typing import Protocol

from commerce.ids import room_of
from commerce.models import GrabResult, PacketView, RedPacket, Refund


class RedPacketStore(Protocol):
    async def create(self, packet: RedPacket, shares: list[int]) -> None: ...

    async def grab(self, packet_id: str, uid: str, now_ms: int) -> GrabResult: ...

    async def add_eligible(self, packet_id: str, uid: str) -> bool: ...

    async def expire(self, packet_id: str, now_ms: int) -> Refund | None: ...

    async def due(self, now_ms: int, limit: int) -> list[str]: ...

    async def get(self, packet_id: str) -> PacketView | None: ...

    async def open_in_room(self, room_id: str) -> list[PacketView]: ...


def check_new_packet(packet: RedPacket, shares: list[int]) -> None:
    """Raise ``ValueError`` unless ``shares`` are a valid split of ``packet`` in its room."""
    if room_of(packet.id) != packet.room_id:
        raise ValueError(f"packet id {packet.id!r} is not of room {packet.room_id!r}")
    if packet.count < 1 or len(shares) != packet.count:
        raise ValueError(f"{len(shares)} shares for a packet of {packet.count}")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in shares):
        raise ValueError("every share must be a whole number of fen, at least 1")
    if sum(shares) != packet.total_fen:
        raise ValueError(f"shares sum to {sum(shares)}, not {packet.total_fen}")
    if packet.opens_at > packet.expires_at:
        raise ValueError("a packet cannot open after it expires")
