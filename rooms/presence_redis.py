"""Redis Presence (see ``rooms.presence`` for the contract).

One hash per room, node -> ``"count:expires_at_ms"``; expiry is judged by the Redis
server's clock inside the scripts, so nodes whose clocks disagree still agree on totals.
"""

from __future__ import annotations

from redis.asyncio import Redis

from interact.floor.scripts import register
from rooms.keys import RoomKeys


class RedisPresence:
    def __init__(self, client: Redis, keys: RoomKeys) -> None:
        self._keys = keys
        self._report = register(client, "online", "rooms")
        self._total = register(client, "online_total", "rooms")

    async def report(self, room_id: str, node: str, count: int, ttl_ms: int) -> int:
        key = self._keys.online(room_id)
        return int(await self._report(keys=[key], args=[node, int(count), int(ttl_ms)]))

    async def total(self, room_id: str) -> int:
        return int(await self._total(keys=[self._keys.online(room_id)], args=[]))
