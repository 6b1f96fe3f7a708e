"""RoomStore: room records and their atomic state transitions.

Contract:
- ``create`` stores a new room; creating an id that exists is ``Conflict``.
- ``create(room, quota=N)`` with N > 0 and ``room.anchor`` set refuses the room when its
  anchor already holds N rooms that are open (not ended, not expired): ``Conflict`` with
  code ``limit_reached`` and ``limit`` N. The check and the write are one atomic step per
  anchor, so concurrent creates never admit more than N. Every room with an anchor is
  counted, whatever quota it was created with (an operator's create passes 0: no check).
- ``create(room, unstarted_ttl_ms=T)`` with T > 0: unless the room starts (first goes
  ``live``) within T ms of its creation, it is forgotten (``get`` None, gone from ``list``,
  no longer counted). Starting it removes the deadline for good.
- ``open_rooms(anchor)``: how many open rooms count against that anchor now.
- ``transition(room, action, now_ms)`` applies one lifecycle action (``rooms.lifecycle``)
  as an atomic compare-and-set: ``NotFound`` for an unknown room, ``Conflict`` when the
  room's current state forbids it; on success the updated room. Ending a room frees its
  place in its anchor's quota.
- ``list`` returns rooms newest first, optionally filtered by status.
"""

from __future__ import annotations

from typing import Protocol

from interact.floor.errors import Code, Conflict
from rooms.models import Room, RoomStatus


def quota_exceeded(quota: int) -> Conflict:
    return Conflict(
        f"this anchor already has {quota} rooms that have not ended; end one first",
        Code.LIMIT_REACHED,
        limit=quota,
    )


class RoomStore(Protocol):
    async def create(self, room: Room, *, quota: int = 0, unstarted_ttl_ms: int = 0) -> None: ...

    async def get(self, room_id: str) -> Room | None: ...

    async def open_rooms(self, anchor: str) -> int: ...

    async def list(
        self, status: RoomStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Room]: ...

    async def transition(self, room_id: str, action: str, now_ms: int) -> Room: ...
