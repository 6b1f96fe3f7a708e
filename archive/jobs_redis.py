"""Redis ArchiveJobs (see ``archive.jobs`` for the contract).

The waiting rooms are one global sorted set (``keys.pending``), like the rooms index; the
lease is a string per room set with ``NX PX`` and renewed or released by a script that
checks the token, so a writer whose lease ran out cannot extend or drop its successor's.
"""

from __future__ import annotations

from redis.asyncio import Redis

from archive.keys import ArchiveKeys
from interact.floor.scripts import register, text


class RedisArchiveJobs:
    def __init__(self, client: Redis, keys: ArchiveKeys) -> None:
        self._client = client
        self._keys = keys
        self._renew = register(client, "lease_renew", "archive")
        self._release = register(client, "lease_release", "archive")

    async def schedule(self, room_id: str, due_ms: int) -> None:
        # LT adds a new member, and moves an existing one only to an earlier time.
        await self._client.zadd(self._keys.pending(), {room_id: due_ms}, lt=True)

    async def due(self, now_ms: int, limit: int) -> list[str]:
        if limit <= 0:
            return []
        ids = await self._client.zrangebyscore(self._keys.pending(), "-inf", now_ms, 0, limit)
        return [text(i) for i in ids]

    async def done(self, room_id: str) -> None:
        await self._client.zrem(self._keys.pending(), room_id)

    async def acquire(self, room_id: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._client.set(self._keys.lease(room_id), token, nx=True, px=ttl_ms))

    async def renew(self, room_id: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._renew(keys=[self._keys.lease(room_id)], args=[token, ttl_ms]))

    async def release(self, room_id: str, token: str) -> None:
        await self._release(keys=[self._keys.lease(room_id)], args=[token])
