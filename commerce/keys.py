"""Redis key layout of the commerce package.

Every key of one red packet or lottery carries its room's hash tag ``{room_id}`` (the
room is read from the id, see ``commerce.ids``), so a grab, an entry or a draw and its
ledger append run in one Lua script on one hash slot, unchanged on Redis Cluster. The two
deadline indexes are the only global keys; no script touches them. ``prefix`` is the
same as ``rooms.keys.RoomKeys.prefix``; it must not contain ``{``.
"""

from __future__ import annotations

from dataclasses import dataclass

from commerce.coupons import tag_of
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

    def packets_all(self, room_id: str) -> str:
        """Set: ids of every packet of the room (the room's end expires them through it)."""
        return f"{self.prefix}rp-all:{{{room_id}}}"

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

    def lotteries_all(self, room_id: str) -> str:
        """Set: ids of every lottery of the room (the room's end expires them through it)."""
        return f"{self.prefix}lot-all:{{{room_id}}}"

    def lottery_winners(self, room_id: str) -> str:
        """Set: uids that won any lottery of the room (for ``new_first``)."""
        return f"{self.prefix}lot-won:{{{room_id}}}"

    def lotteries_due(self) -> str:
        """Sorted set: lottery ids scored by draw_at, or lease end while drawing (global)."""
        return f"{self.prefix}lot-due"

    def lottery_prizes_due(self) -> str:
        """Sorted set: drawn lotteries whose coupon prizes may still be owed (global)."""
        return f"{self.prefix}lot-prizes"

    # --- flash sales and orders
    #
    # Every key of a sale, its orders, holds and idempotency records carries the room's hash
    # tag, beside the room's ledger, so reserve, release, confirm and refund are each one
    # script on one slot. ``sale_rooms`` is global; the one script that writes it
    # (``sale_rooms_prune``) touches no other key.

    def sale(self, sale_id: str) -> str:
        """Hash: the sale's record and its counters left, reserved, paid, refunded."""
        return f"{self.prefix}sale:{{{_tag(sale_id)}}}:{sale_id}"

    def sale_holds(self, sale_id: str) -> str:
        """Hash: uid -> units the uid holds (reserved + paid) of the sale."""
        return f"{self.sale(sale_id)}:holds"

    def sale_idem(self, sale_id: str) -> str:
        """Hash: sha256 of (uid, idempotency key) -> order id, one field per order."""
        return f"{self.sale(sale_id)}:idem"

    def sales_in_room(self, room_id: str) -> str:
        """Sorted set: the room's sale ids scored by ends_at."""
        return f"{self.prefix}sales:{{{room_id}}}"

    def order(self, order_id: str) -> str:
        """Hash: the order's record, status, payment and refund."""
        return f"{self.prefix}order:{{{_tag(order_id)}}}:{order_id}"

    def orders_in_room(self, room_id: str) -> str:
        """Sorted set: the room's order ids scored 1, 2, 3, … in reservation order."""
        return f"{self.prefix}orders:{{{room_id}}}"

    def orders_due(self, room_id: str) -> str:
        """Sorted set: ids of the room's reserved orders scored by deadline."""
        return f"{self.prefix}orders-due:{{{room_id}}}"

    def sale_rooms(self) -> str:
        """Sorted set (global): rooms with sales, scored by the last deadline any can reach."""
        return f"{self.prefix}sale-rooms"

    # --- coupons (commerce.coupons)
    #
    # A batch and its coupons carry the batch's scope as hash tag: the room's (so a
    # reserve locks a room coupon on the room's slot) or ``~m`` for merchant-wide ones.
    # The wallet index is per user and written outside the scripts.

    def coupon_batch(self, batch_id: str) -> str:
        """Hash: the batch's record and its ``issued`` counter."""
        return f"{self.prefix}cpb:{{{_coupon_tag(batch_id)}}}:{batch_id}"

    def coupon_batch_users(self, batch_id: str) -> str:
        """Hash: uid -> coupons of the batch issued to the uid."""
        return f"{self.coupon_batch(batch_id)}:users"

    def coupon_batch_idem(self, batch_id: str) -> str:
        """Hash: issue key (an invite reward's) -> the coupon it issued."""
        return f"{self.coupon_batch(batch_id)}:idem"

    def coupon_batches(self, tag: str) -> str:
        """List: batch ids of a room (or ``~m``: the merchant), oldest first."""
        return f"{self.prefix}cpbs:{{{tag}}}"

    def coupon(self, coupon_id: str) -> str:
        """Hash: one issued coupon, its terms copied, its status and holding order."""
        return f"{self.prefix}cpn:{{{_coupon_tag(coupon_id)}}}:{coupon_id}"

    def coupons_in_room(self, room_id: str) -> str:
        """Set: ids of every coupon issued from the room's batches (the room's end expires
        them through it; merchant-wide coupons are not listed)."""
        return f"{self.prefix}cpn-room:{{{room_id}}}"

    def coupon_wallet(self, uid: str) -> str:
        """Sorted set: the uid's coupon ids by issue time."""
        return f"{self.prefix}cpn-w:{uid}"


def _coupon_tag(entity_id: str) -> str:
    tag = tag_of(entity_id)
    if tag is None:
        raise ValueError(f"not a coupon or batch id: {entity_id!r}")
    return tag
