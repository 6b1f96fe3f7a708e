"""WordListStore on Redis: one hash, version bumped in the same transaction as the data."""

from __future__ import annotations

from redis.asyncio import Redis

from moderation.keys import ModerationKeys


class RedisWordListStore:
    def __init__(self, client: Redis, keys: ModerationKeys) -> None:
        self._client = client
        self._key = keys.words()

    async def save(self, data: str) -> int:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._key, "version", 1)
            pipe.hset(self._key, "data", data)
            version, _ = await pipe.execute()
        return int(version)

    async def load(self) -> tuple[int, str] | None:
        version, data = await self._client.hmget(self._key, "version", "data")
        if version is None or data is None:
            return None
        text = data.decode() if isinstance(data, bytes) else str(data)
        return int(version), text

    async def version(self) -> int:
        raw = await self._client.hget(self._key, "version")
        return int(raw) if raw is not None else 0
