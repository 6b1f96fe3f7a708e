"""RoomStore: room records and their atomic state transitions.

Contract:
- ``create`` stores a new room; creating an id that exists is ``Conflict``.
- ``transition(room, action, now_ms)`` applies one lifecycle action (``rooms.lifecycle``)
  as an atomic compare-and-set: ``NotFound`` for an unknown room, ``Conflict`` when the
  room's current state forbids it; on success the updated room.
- ``list`` returns rooms newest first, optionally filtered by status.
"""

from __future__ import annotations

from typing import Protocol

from rooms.models import Room, RoomStatus


class RoomStore(Protocol):
    async def create(self, room: Room) -> None: ...

    async def get(self, room_id: str) -> Room | None: ...

    async def list(
        self, status: RoomStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Room]: ...

    async def transition(self, room_id: str, action: str, now_ms: int) -> Room: ...
