"""Redis key layout of the commerce package.

Every key of one red packet or lottery carries its room's hash tag ``{room_id}`` (the
room is read from the id, see ``commerce.ids``), so a grab, an entry or a draw and its
ledger append run in one Lua script on one hash slot, unchanged on Redis Cluster. The two
deadline indexes are the only global keys; no script touches them. ``prefix`` is the
same as ``rooms.keys.RoomKeys.prefix``; it must not contain ``{``.
"""

from __future__ import annotations

from dataclasses import dataclass

from commerce.ids import room_of


def _tag(entity_id: str) -> str:
    room = room_of(entity_id)
    if room is None:
        # Stores check ids with room_of first; reaching here is a bug, not bad input.
        raise ValueError(f"not a packet or lottery id: {entity_id!r}")
    return room


@dataclass(frozen=True, slots=True)
class CommerceKeys:
    prefix: str = "interact:"

    # --- ledger

    def ledger(self, room_id: str) -> str:
        """Stream: the room's money-moving events (``commerce.ledger``)."""
        return f"{self.prefix}ledger:{{{room_id}}}"

    # --- red packets

    def packet(self, packet_id: str) -> str:
        """Hash: the packet's record, status, running luckiest and refund."""
        return f"{self.prefix}rp:{{{_tag(packet_id)}}}:{packet_id}"

    def packet_shares(self, packet_id: str) -> str:
        """List: the unclaimed pre-split shares (fen), popped from the left."""
        return f"{self.packet(packet_id)}:shares"

    def packet_claims(self, packet_id: str) -> str:
        """Hash: uid -> amount_fen of every claim."""
        return f"{self.packet(packet_id)}:claims"

    def packet_order(self, packet_id: str) -> str:
        """List: claiming uids in claim order."""
        return f"{self.packet(packet_id)}:order"

    def packet_eligible(self, packet_id: str) -> str:
        """Set: uids that met the packet's condition (sent its password)."""
        return f"{self.packet(packet_id)}:eligible"

    def packets_open(self, room_id: str) -> str:
        """Set: ids of the room's open packets."""
        return f"{self.prefix}rp-open:{{{room_id}}}"

    def packets_due(self) -> str:
        """Sorted set: packet ids scored by expires_at (global; never inside a script)."""
        return f"{self.prefix}rp-due"

    # --- lotteries

    def lottery(self, lottery_id: str) -> str:
        """Hash: the lottery's record, secret, status, lease and result."""
        return f"{self.prefix}lot:{{{_tag(lottery_id)}}}:{lottery_id}"

    def lottery_entries(self, lottery_id: str) -> str:
        """Set: entrant uids."""
        return f"{self.lottery(lottery_id)}:entries"

    def lotteries_open(self, room_id: str) -> str:
        """Set: ids of the room's lotteries not drawn yet (open or drawing)."""
        return f"{self.prefix}lot-open:{{{room_id}}}"

    def lottery_winners(self, room_id: str) -> str:
        """Set: uids that won any lottery of the room (for ``new_first``)."""
        return f"{self.prefix}lot-won:{{{room_id}}}"

    def lotteries_due(self) -> str:
        """Sorted set: lottery ids scored by draw_at, or lease end while drawing (global)."""
        return f"{self.prefix}lot-due"
