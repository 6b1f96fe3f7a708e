"""Redis RateLimiter (see ``moderation.rate_limiter`` for the contract).

Per room and user: a hash (GCRA ``tat`` in µs, ``last`` accepted ms) and a sorted set of
recently accepted text keys; per room and second: a counter. ``lua/comment.lua`` checks
and records a comment in one step on the room's slot; ``lua/limit.lua`` is the generic
GCRA. Both take the caller's ``now_ms``, never Redis ``TIME``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from interact.floor.scripts import text
from moderation.keys import ModerationKeys
from moderation.rate_limiter import (
    ALLOWED,
    INBOUND_TTL_MS,
    STATE_MIN_TTL_MS,
    RateDecision,
    RateReason,
    check_comment_settings,
    check_limit_settings,
    interval_us,
)
from moderation.scripts import register


def _decision(reply: Sequence[Any]) -> RateDecision:
    reason = RateReason(text(reply[0]))
    if reason is RateReason.OK:
        return ALLOWED
    return RateDecision(False, reason, int(reply[1]))


class RedisRateLimiter:
    def __init__(self, client: Redis, keys: ModerationKeys) -> None:
        self._keys = keys
        self._comment = register(client, "comment")
        self._limit = register(client, "limit")

    async def check_comment(
        self,
        room_id: str,
        uid: str,
        text_key: str,
        now_ms: int,
        *,
        rate_per_s: float,
        burst: int,
        repeat_window_ms: int,
        slow_mode_ms: int,
        room_cap_per_s: int,
    ) -> RateDecision:
        check_comment_settings(
            rate_per_s=rate_per_s,
            burst=burst,
            repeat_window_ms=repeat_window_ms,
            slow_mode_ms=slow_mode_ms,
            room_cap_per_s=room_cap_per_s,
        )
        k = self._keys
        now = int(now_ms)
        reply = await self._comment(
            keys=[
                k.inbound(room_id, now // 1000),
                k.commenter(room_id, uid),
                k.recent_texts(room_id, uid),
            ],
            args=[
                now,
                text_key,
                interval_us(rate_per_s),
                int(burst),
                int(repeat_window_ms),
                int(slow_mode_ms),
                int(room_cap_per_s),
                STATE_MIN_TTL_MS,
                INBOUND_TTL_MS,
            ],
        )
        return _decision(reply)

    async def rate_limit(
        self,
        key_room: str,
        key: str,
        now_ms: int,
        rate_per_s: float,
        burst: int,
        *,
        cost: int = 1,
    ) -> RateDecision:
        check_limit_settings(rate_per_s, burst, cost)
        reply = await self._limit(
            keys=[self._keys.limit(key_room, key)],
            args=[int(now_ms), interval_us(rate_per_s), int(burst), int(cost)],
        )
        return _decision(reply)
