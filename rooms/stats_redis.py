"""Redis RoomStats (see ``rooms.stats`` for the contract).

Counters live in one hash per room; unique viewers and participants are HyperLogLogs
(about 0.8 % error, a few KB per room, whatever the audience).
"""

from __future__ import annotations

from redis.asyncio import Redis

from rooms.keys import RoomKeys
from rooms.scripts import register


class RedisRoomStats:
    def __init__(self, client: Redis, keys: RoomKeys) -> None:
        self._client = client
        self._keys = keys
        self._peak = register(client, "peak")

    async def joined(self, room_id: str, uid: str) -> None:
        # Both keys share the room's hash tag, so MULTI is allowed on Cluster too.
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._keys.stats(room_id), "pv", 1)
            pipe.pfadd(self._keys.viewers(room_id), uid)
            await pipe.execute()

    async def commented(self, room_id: str, uid: str) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._keys.stats(room_id), "comments", 1)
            pipe.pfadd(self._keys.participants(room_id), uid)
            await pipe.execute()

    async def add_likes(self, room_id: str, n: int) -> int:
        return int(await self._client.hincrby(self._keys.stats(room_id), "likes", n))

    async def observe_online(self, room_id: str, online: int) -> None:
        await self._peak(keys=[self._keys.stats(room_id)], args=[int(online)])

    async def get(self, room_id: str) -> dict[str, int]:
        k = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hmget(k.stats(room_id), "pv", "peak_online", "comments", "likes")
            pipe.pfcount(k.viewers(room_id))
            pipe.pfcount(k.participants(room_id))
            (pv, peak, comments, likes), uv, participants = await pipe.execute()
        return {
            "pv": int(pv or 0),
            "uv": int(uv),
            "peak_online": int(peak or 0),
            "comments": int(comments or 0),
            "likes": int(likes or 0),
            "participants": int(participants),
        }
