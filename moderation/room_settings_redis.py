"""Redis ModerationSettings (see ``moderation.room_settings`` for the contract).

Slow mode is three fields of the room's settings hash, written by one HSET (or HDEL) and
read by one HMGET; the verdict counts are a hash of per-second buckets updated and summed
by ``lua/verdict.lua`` in one step.
"""

from __future__ import annotations

from redis.asyncio import Redis

from interact.floor.redis_pipe import command
from interact.floor.scripts import text
from moderation.keys import ModerationKeys
from moderation.room_settings import (
    SLOW_MODE_OFF,
    SlowMode,
    VerdictCounts,
    check_slow_mode,
    window_seconds,
)
from moderation.scripts import register

_SLOW_FIELDS = ("slow_s", "slow_until", "slow_by")


class RedisModerationSettings:
    def __init__(self, client: Redis, keys: ModerationKeys) -> None:
        self._client = client
        self._keys = keys
        self._verdict = register(client, "verdict")

    async def set_slow_mode(
        self, room_id: str, seconds: int, until_ms: int | None, by: str
    ) -> None:
        check_slow_mode(seconds)
        key = self._keys.settings(room_id)
        if seconds == 0:
            await self._client.hdel(key, *_SLOW_FIELDS)
            return
        until = "" if until_ms is None else str(int(until_ms))
        await self._client.hset(
            key, mapping={"slow_s": int(seconds), "slow_until": until, "slow_by": by}
        )

    async def slow_mode(self, room_id: str, now_ms: int) -> SlowMode:
        seconds, until, by = await command(
            self._client, "HMGET", self._keys.settings(room_id), *_SLOW_FIELDS
        )
        if seconds is None:
            return SLOW_MODE_OFF
        until_ms = int(until) if until else None
        if until_ms is not None and until_ms <= now_ms:
            return SLOW_MODE_OFF
        return SlowMode(int(seconds), until_ms, text(by or b""))

    async def record_verdict(
        self, room_id: str, refused: bool, now_ms: int, window_ms: int
    ) -> VerdictCounts:
        span = window_seconds(window_ms)
        total, n_refused = await self._verdict(
            keys=[self._keys.verdicts(room_id)], args=[int(now_ms), span, int(bool(refused))]
        )
        return VerdictCounts(int(total), int(n_refused))
