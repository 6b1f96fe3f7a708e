"""In-process RoomStore (see ``rooms.room_store`` for the contract).

Rooms that have not ended are indexed per anchor, so the quota check is a set's length;
rooms waiting to expire (created with a TTL, never started) sit in a heap by deadline and
are forgotten by the next call past it. With a retention policy (``rooms.retention``), an
ended room's hot state is forgotten ``hot_ms`` after its end and its record and money
state ``money_ms`` after it (a refund checks the room's anchor), by the same
clock-driven heap (``sweep`` or any call); a room that never started takes its hot and
money state with it. Nothing awaits between a check and its write, so every operation is
atomic on the event loop.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Callable, Mapping

from interact.floor.errors import Conflict, NotFound
from rooms.lifecycle import TRANSITIONS
from rooms.models import Room, RoomStatus
from rooms.retention import Forget, RetentionPolicy
from rooms.room_store import (
    LEDGER_EVENTS,
    quota_exceeded,
    schedule_refused,
    stream_start_refused,
)


def wall_ms() -> int:
    return int(time.time() * 1000)


class MemoryRoomStore:
    def __init__(
        self,
        clock: Callable[[], int] = wall_ms,
        *,
        ledger: Callable[[str, Mapping[str, object]], str] | None = None,
        retention: RetentionPolicy | None = None,
        forget_hot: Forget | None = None,
        forget_money: Forget | None = None,
    ) -> None:
        self._retention = retention
        self._forget_hot = forget_hot
        self._forget_money = forget_money
        # Heap of (when, room id, "hot" | "money") for ended rooms.
        self._retained: list[tuple[int, str, str]] = []
        # The memory ledger's append_now: called with no await after the transition, so
        # both are one step.
        self._ledger = ledger
        self._rooms: dict[str, Room] = {}
        self._clock = clock
        self._open: dict[str, set[str]] = {}  # anchor -> ids of their rooms not ended
        self._deadline: dict[str, int] = {}  # room id -> when it expires unless started
        self._due: list[tuple[int, str]] = []  # heap of (deadline, room id); may hold stale

    async def sweep(self, now_ms: int | None = None) -> int:
        """Forget what is due by the clock (every call does this first; ``now_ms`` is
        the Redis store's, for a test that drives time: here the clock is the store's)."""
        self._expire()
        return 0

    def _expire(self) -> None:
        now = self._clock()
        while self._retained and self._retained[0][0] <= now:
            _, room_id, kind = heapq.heappop(self._retained)
            if kind == "money":
                self._rooms.pop(room_id, None)
                if self._forget_money is not None:
                    self._forget_money(room_id)
                continue
            if self._forget_hot is not None:
                self._forget_hot(room_id)
        if not self._due or self._due[0][0] > now:
            return
        while self._due and self._due[0][0] <= now:
            deadline, room_id = heapq.heappop(self._due)
            if self._deadline.get(room_id) != deadline:
                continue  # started since, or recreated: not this entry's business
            del self._deadline[room_id]
            room = self._rooms.pop(room_id)
            self._close(room)
            if room.status is not RoomStatus.ENDED:
                # Never started: it took no money, so nothing of it is kept.
                for forget in (self._forget_hot, self._forget_money):
                    if forget is not None:
                        forget(room_id)

    def _close(self, room: Room) -> None:
        if room.anchor is not None:
            ids = self._open.get(room.anchor)
            if ids is not None:
                ids.discard(room.id)
                if not ids:
                    del self._open[room.anchor]

    async def create(self, room: Room, *, quota: int = 0, unstarted_ttl_ms: int = 0) -> None:
        self._expire()
        if room.id in self._rooms:
            raise Conflict(f"room {room.id} exists")
        ids = self._open.get(room.anchor) if room.anchor is not None else None
        if quota > 0 and ids is not None and len(ids) >= quota:
            raise quota_exceeded(quota)
        self._rooms[room.id] = dataclasses.replace(room)
        if room.anchor is not None and room.status is not RoomStatus.ENDED:
            self._open.setdefault(room.anchor, set()).add(room.id)
        if unstarted_ttl_ms > 0 and room.status is RoomStatus.SCHEDULED:
            deadline = self._clock() + unstarted_ttl_ms
            self._deadline[room.id] = deadline
            heapq.heappush(self._due, (deadline, room.id))

    def get_now(self, room_id: str) -> Room | None:
        self._expire()
        return self._rooms.get(room_id)

    async def get(self, room_id: str) -> Room | None:
        room = self.get_now(room_id)
        return None if room is None else dataclasses.replace(room)

    async def open_rooms(self, anchor: str) -> int:
        self._expire()
        return len(self._open.get(anchor, ()))

    async def list(
        self, status: RoomStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Room]:
        self._expire()
        rooms = [r for r in self._rooms.values() if status is None or r.status is status]
        rooms.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [dataclasses.replace(r) for r in rooms[offset : offset + limit]]

    async def transition(self, room_id: str, action: str, now_ms: int) -> Room:
        self._expire()
        room = self._rooms.get(room_id)
        if room is None:
            raise NotFound(f"room {room_id} not found")
        allowed, target, stamp = TRANSITIONS[action]
        if room.status not in allowed:
            raise Conflict(f"cannot {action} a room that is {room.status.value}")
        room.status = target
        room.updated_at = now_ms
        if stamp is not None:
            setattr(room, stamp, now_ms)
        if target is RoomStatus.LIVE:
            self._deadline.pop(room_id, None)  # started: it no longer expires
        elif target is RoomStatus.ENDED:
            self._close(room)
            if self._retention is not None:
                self._deadline.pop(room_id, None)  # its end's retention rules now
                heapq.heappush(self._retained, (now_ms + self._retention.hot_ms, room_id, "hot"))
                heapq.heappush(
                    self._retained, (now_ms + self._retention.money_ms, room_id, "money")
                )
        logged = LEDGER_EVENTS.get(action)
        if logged is not None and self._ledger is not None:
            self._ledger(room_id, {"type": logged, "ts": now_ms})
        return dataclasses.replace(room)

    async def set_stream_start(self, room_id: str, ms: int | None) -> Room:
        room = self.get_now(room_id)
        if room is None:
            raise NotFound(f"room {room_id} not found")
        if room.status is RoomStatus.ENDED:
            raise stream_start_refused()
        room.stream_started_at = ms
        return dataclasses.replace(room)

    async def set_schedule(self, room_id: str, ms: int | None) -> Room:
        room = self.get_now(room_id)
        if room is None:
            raise NotFound(f"room {room_id} not found")
        if room.status is not RoomStatus.SCHEDULED:
            raise schedule_refused(room.status)
        room.scheduled_at = ms
        return dataclasses.replace(room)
