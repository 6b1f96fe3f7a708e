"""Retention of an ended room's keys (docs/archive.md section 11).

When a room ends, in the same step: its hot keys (comments, journal, stats, presence,
moderation, growth, archive lease) get ``hot_ms``; its money keys (the room record, whose
anchor a refund checks, the ledger, its orders and sales with their holds and idempotency
records, its red packets, the room's lottery indexes) get ``money_ms``, the refund
window, so an order stays refundable after the hot keys are gone. A room that never
started expires whole after its deadline (``unstarted_ttl_ms``), money keys included: it
took no payment.

``RoomKeySets`` names a room's fixed keys per engine deployment (``interact.engine``
builds it from every package's key layout); the Redis transition script expires them
and, on the same slot, the orders and sales listed in the room's indexes. The memory
engine forgets a room's state through ``forget_room``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DAY_MS = 24 * 3600 * 1000
DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_REFUND_WINDOW_DAYS = 400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    hot_ms: int = int(DEFAULT_RETENTION_DAYS * DAY_MS)
    money_ms: int = int(DEFAULT_REFUND_WINDOW_DAYS * DAY_MS)

    def __post_init__(self) -> None:
        if not 0 < self.hot_ms <= self.money_ms:
            raise ValueError("hot_ms must be positive and at most money_ms")

    @classmethod
    def of_days(cls, retention_days: float, refund_window_days: float) -> RetentionPolicy:
        return cls(int(retention_days * DAY_MS), int(refund_window_days * DAY_MS))


@dataclass(frozen=True, slots=True)
class KeyGroup:
    """Keys named by the members of one of the room's keys, all on the room's slot.

    ``read`` says how the members are read from ``index``: ``smembers``, ``hvals``,
    ``lrange``, ``zrange``, or ``hkeys:<p>`` (the fields that start with ``p``, without
    it). Each member names ``prefix + member`` and that key plus each suffix. ``ttl``:
    ``hot`` or ``money``; ``prize`` (money when the key's ``prize_kind`` is cash or
    coupon, else hot); ``ends_at`` (the later of the key's ``ends_at`` field and the hot
    deadline, and ``index`` outlives the latest of them)."""

    index: str
    read: str
    prefix: str
    suffixes: list[str] = field(default_factory=list)
    ttl: str = "hot"

    def args(self) -> list[str]:
        return [self.index, self.read, self.prefix, " ".join(self.suffixes), self.ttl]


@dataclass(frozen=True, slots=True)
class RoomKeySets:
    """A room's fixed Redis keys by how long they outlive its end (all in its slot).

    ``orders``/``sales``: the room's order and sale indexes plus how to name an order's or
    a sale's keys from its id, so the script can reach each one (same hash tag)."""

    hot: list[str]
    money: list[str]
    orders_index: str = ""
    order_prefix: str = ""
    sales_index: str = ""
    sale_prefix: str = ""
    sale_suffixes: list[str] = field(default_factory=list)
    packets_index: str = ""
    packet_prefix: str = ""
    packet_suffixes: list[str] = field(default_factory=list)
    groups: list[KeyGroup] = field(default_factory=list)


def forget_room(stores: Iterable[Any], room_id: str) -> int:
    """Drop ``room_id``'s state from in-process stores: every dict attribute keyed by the
    room id, or by tuples that start with it. Returns how many entries were dropped.

    The memory stores keep per-room state in such dicts; reaching them this way keeps one
    rule for all of them (a store whose state is keyed otherwise needs its own forget)."""
    dropped = 0
    for store in stores:
        for value in list(_attrs(store)):
            if not isinstance(value, dict):
                continue
            if room_id in value:
                del value[room_id]
                dropped += 1
            tupled = [k for k in value if isinstance(k, tuple) and k and k[0] == room_id]
            for k in tupled:
                del value[k]
            dropped += len(tupled)
    return dropped


def _attrs(store: Any) -> list[Any]:
    names = list(getattr(store, "__dict__", {}))
    for cls in type(store).__mro__:
        names += [n for n in getattr(cls, "__slots__", ()) if isinstance(n, str)]
    out = []
    for name in names:
        try:
            out.append(getattr(store, name))
        except AttributeError:
            continue
    return out


Forget = Callable[[str], object]
