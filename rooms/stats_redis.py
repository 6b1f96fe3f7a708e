"""Redis RoomStats (see ``rooms.stats`` for the contract).

Counters live in one hash per room; unique viewers and participants are HyperLogLogs
(about 0.8 % error, a few KB per room, whatever the audience).
"""

from __future__ import annotations

from redis.asyncio import Redis

from interact.floor.scripts import register
from rooms.keys import RoomKeys


class RedisRoomStats:
    def __init__(self, client: Redis, keys: RoomKeys) -> None:
        self._client = client
        self._keys = keys
        self._peak = register(client, "peak", "rooms")
        self._read = register(client, "stats", "rooms")
        self._count = register(client, "count", "rooms")
        self._likes = register(client, "likes", "rooms")

    async def joined(self, room_id: str, uids: list[str]) -> None:
        # One script over the pipe (joins and every comment pay it): both keys share the
        # room's hash tag, so it runs on Redis Cluster too, where redis-py's MULTI is slow.
        if uids:
            k = self._keys
            await self._count(keys=[k.stats(room_id), k.viewers(room_id), k.room(room_id)],
                              args=["pv", *uids])  # fmt: skip

    async def commented(self, room_id: str, uid: str) -> None:
        k = self._keys
        await self._count(keys=[k.stats(room_id), k.participants(room_id), k.room(room_id)],
                          args=["comments", uid])  # fmt: skip

    async def add_likes(self, room_id: str, n: int) -> int:
        k = self._keys
        return int(await self._likes(keys=[k.stats(room_id), k.room(room_id)], args=[n]))

    async def observe_online(self, room_id: str, online: int) -> None:
        k = self._keys
        await self._peak(keys=[k.stats(room_id), k.room(room_id)], args=[int(online)])

    async def get(self, room_id: str) -> dict[str, int]:
        k = self._keys
        # A script, not MULTI: redis-py refuses PFCOUNT in a cluster pipeline.
        pv, peak, comments, likes, uv, participants = await self._read(
            keys=[k.stats(room_id), k.viewers(room_id), k.participants(room_id)]
        )
        return {
            "pv": int(pv or 0),
            "uv": int(uv),
            "peak_online": int(peak or 0),
            "comments": int(comments or 0),
            "likes": int(likes or 0),
            "participants": int(participants),
        }
