"""In-process AudienceStore (see ``rooms.audience`` for the contract).

Sets hold interned integers, as the Redis bitmaps do, so both engines intern the same way
and a set costs one small int per member rather than a copy of the uid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rooms.audience import (
    ITEM_STEPS,
    MAX_ITEMS,
    PAIRS,
    SETS,
    Batch,
    ItemSnapshot,
    Snapshot,
    check_batch,
    new_key,
    pair_key,
)


@dataclass(slots=True)
class _Room:
    totals: dict[str, int] = field(default_factory=dict)
    sets: dict[str, set[int]] = field(default_factory=dict)
    minutes: dict[int, dict[str, int]] = field(default_factory=dict)
    # Per product (at most MAX_ITEMS): counters, and the sets of its steps.
    item_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    item_sets: dict[str, dict[str, set[int]]] = field(default_factory=dict)


class MemoryAudience:
    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._rooms: dict[str, _Room] = {}
        # (room, uid, event id) -> monotonic expiry
        self._claims: dict[tuple[str, str, str], float] = {}

    def intern(self, uid: str) -> int:
        n = self._ids.get(uid)
        if n is None:
            n = self._ids[uid] = len(self._ids)
        return n

    async def record(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            check_batch(batch)
        for batch in batches:
            room = self._rooms.setdefault(batch.room_id, _Room())
            minute = room.minutes.setdefault(batch.minute, {})
            for name, n in batch.counts.items():
                room.totals[name] = room.totals.get(name, 0) + n
                minute[name] = minute.get(name, 0) + n
            for name, uids in batch.marks.items():
                members = room.sets.setdefault(name, set())
                before = len(members)
                members.update(self.intern(u) for u in uids)
                if len(members) > before:
                    key = new_key(name)
                    minute[key] = minute.get(key, 0) + len(members) - before
            for item in {*batch.item_marks, *batch.item_counts}:
                if item not in room.item_counts:
                    if len(room.item_counts) >= MAX_ITEMS:
                        continue  # past the bound: dropped (rooms.audience)
                    room.item_counts[item] = {}
                    room.item_sets[item] = {}
                counts = room.item_counts[item]
                for name, n in batch.item_counts.get(item, {}).items():
                    counts[name] = counts.get(name, 0) + n
                for step, uids in batch.item_marks.get(item, {}).items():
                    room.item_sets[item].setdefault(step, set()).update(
                        self.intern(u) for u in uids
                    )

    async def read(self, room_id: str, first_minute: int, last_minute: int) -> Snapshot:
        room = self._rooms.get(room_id) or _Room()
        empty: set[int] = set()
        sets = {name: room.sets.get(name, empty) for name in SETS}
        return Snapshot(
            totals=dict(room.totals),
            uv={name: len(members) for name, members in sets.items()},
            pairs={pair_key(a, b): len(sets[a] & sets[b]) for a, b in PAIRS},
            minutes={
                m: dict(room.minutes[m])
                for m in range(first_minute, last_minute + 1)
                if m in room.minutes
            },
        )

    async def claim_events(
        self, room_id: str, uid: str, event_ids: Sequence[str], ttl_ms: int
    ) -> list[bool]:
        now = time.monotonic()
        if len(self._claims) > 4096:  # lapse the expired ones now and then, not per call
            for key in [k for k, exp in self._claims.items() if exp <= now]:
                del self._claims[key]
        out = []
        for event_id in event_ids:
            key = (room_id, uid, event_id)
            exp = self._claims.get(key)
            fresh = exp is None or exp <= now
            if fresh:
                self._claims[key] = now + ttl_ms / 1000
            out.append(fresh)
        return out

    async def minutes(
        self, room_id: str, first_minute: int, last_minute: int
    ) -> dict[int, dict[str, int]]:
        room = self._rooms.get(room_id)
        if room is None:
            return {}
        if last_minute - first_minute < len(room.minutes):
            span = range(first_minute, last_minute + 1)
            return {m: dict(room.minutes[m]) for m in span if m in room.minutes}
        return {
            m: dict(c) for m, c in sorted(room.minutes.items()) if first_minute <= m <= last_minute
        }

    async def sample(self, room_id: str, minute: int, online: int) -> None:
        room = self._rooms.setdefault(room_id, _Room())
        counters = room.minutes.setdefault(minute, {})
        counters["online"] = online
        counters["online_peak"] = max(counters.get("online_peak", online), online)

    async def items(self, room_id: str) -> list[str]:
        room = self._rooms.get(room_id)
        return [] if room is None else sorted(room.item_counts)

    async def products(self, room_id: str) -> dict[str, ItemSnapshot]:
        room = self._rooms.get(room_id)
        if room is None:
            return {}
        return {
            item: ItemSnapshot(
                dict(counts),
                {step: len(room.item_sets[item].get(step, ())) for step in ITEM_STEPS},
            )
            for item, counts in room.item_counts.items()
        }

    async def retain(
        self, room_id: str, first_minute: int, last_minute: int, until_ms: int
    ) -> None:
        return None  # kept for the life of the process (rooms.audience)
