"""Redis RoomStore (see ``rooms.room_store`` for the contract).

A room is one hash (``keys.room``); the global sorted set ``keys.index`` orders rooms by
creation time for listing. Create and transition are Lua scripts on the room's key only,
so they run on Redis Cluster; the index is written after a successful create.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from interact.errors import Conflict, NotFound
from rooms.keys import RoomKeys
from rooms.lifecycle import TRANSITIONS
from rooms.models import Room, RoomStatus
from rooms.scripts import register

# Index entries fetched per round trip while filtering a listing by status.
_PAGE = 200


def _encode(room: Room) -> list[str]:
    """The hash fields of a room; unset optional fields are left out, not stored as ""."""
    out: list[str] = []
    for field, value in room.to_dict().items():
        if value is not None:
            out += [field, str(value)]
    return out


def _decode(flat: list[bytes] | dict[bytes, bytes]) -> Room:
    if isinstance(flat, dict):
        pairs = flat.items()
    else:
        pairs = zip(flat[::2], flat[1::2], strict=True)
    data: dict[str, Any] = {k.decode(): v.decode() for k, v in pairs}
    return Room.from_dict(data)


class RedisRoomStore:
    def __init__(self, client: Redis, keys: RoomKeys) -> None:
        self._client = client
        self._keys = keys
        self._create = register(client, "create_room")
        self._transition = register(client, "transition")

    async def create(self, room: Room) -> None:
        created = await self._create(keys=[self._keys.room(room.id)], args=_encode(room))
        if not created:
            raise Conflict(f"room {room.id} exists")
        # Cross-slot with the room key, hence outside the script: a crash in between
        # leaves a room that ``get`` finds but ``list`` does not, never a duplicate.
        await self._client.zadd(self._keys.index(), {room.id: room.created_at})

    async def get(self, room_id: str) -> Room | None:
        raw = await self._client.hgetall(self._keys.room(room_id))
        return _decode(raw) if raw else None

    async def list(
        self, status: RoomStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Room]:
        if limit <= 0 or offset < 0:
            # Odd bounds: read everything and slice exactly as the memory store does.
            return (await self._scan(status, None))[offset : offset + limit]
        return (await self._scan(status, offset + limit))[offset : offset + limit]

    async def _scan(self, status: RoomStatus | None, want: int | None) -> list[Room]:
        """Rooms newest first (ties: id descending), filtered, until ``want`` are found.

        ZRANGE … REV orders equal scores by member descending, which is the memory
        store's ``(created_at, id)`` descending order.
        """
        out: list[Room] = []
        page = _PAGE if status is not None or want is None else max(want, 1)
        start = 0
        while want is None or len(out) < want:
            ids = await self._client.zrange(self._keys.index(), start, start + page - 1, desc=True)
            if not ids:
                break
            async with self._client.pipeline(transaction=False) as pipe:
                for rid in ids:
                    pipe.hgetall(self._keys.room(rid.decode()))
                records = await pipe.execute()
            for raw in records:
                if not raw:
                    continue  # an index entry whose room record is gone
                room = _decode(raw)
                if status is None or room.status is status:
                    out.append(room)
            if len(ids) < page:
                break
            start += page
        return out

    async def transition(self, room_id: str, action: str, now_ms: int) -> Room:
        allowed, target, stamp = TRANSITIONS[action]
        reply = await self._transition(
            keys=[self._keys.room(room_id)],
            args=[target.value, int(now_ms), stamp or "", *sorted(s.value for s in allowed)],
        )
        tag = reply[0]
        if tag == b"not_found":
            raise NotFound(f"room {room_id} not found")
        if tag == b"conflict":
            raise Conflict(f"cannot {action} a room that is {reply[1].decode()}")
        return _decode(reply[1:])
