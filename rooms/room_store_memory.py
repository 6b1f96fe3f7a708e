"""In-process RoomStore (see ``rooms.room_store`` for the contract)."""

from __future__ import annotations

import dataclasses

from interact.errors import Conflict, NotFound
from rooms.lifecycle import TRANSITIONS
from rooms.models import Room, RoomStatus


class MemoryRoomStore:
    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    async def create(self, room: Room) -> None:
        if room.id in self._rooms:
            raise Conflict(f"room {room.id} exists")
        self._rooms[room.id] = dataclasses.replace(room)

    def get_now(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    async def get(self, room_id: str) -> Room | None:
        room = self._rooms.get(room_id)
        return None if room is None else dataclasses.replace(room)

    async def list(
        self, status: RoomStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Room]:
        rooms = [r for r in self._rooms.values() if status is None or r.status is status]
        rooms.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [dataclasses.replace(r) for r in rooms[offset : offset + limit]]

    async def transition(self, room_id: str, action: str, now_ms: int) -> Room:
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
        return dataclasses.replace(room)
