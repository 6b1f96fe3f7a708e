"""In-process RateLimiter (see ``moderation.rate_limiter`` for the contract).

The same steps as ``lua/comment.lua`` and ``lua/limit.lua``, in the same integer units
(GCRA in µs), so both engines take the same decisions for the same inputs.
"""

from __future__ import annotations

from moderation.memory import ExpiringMap
from moderation.rate_limiter import (
    ALLOWED,
    INBOUND_TTL_MS,
    STATE_MIN_TTL_MS,
    RateDecision,
    RateReason,
    ceil_div,
    check_comment_settings,
    check_limit_settings,
    interval_us,
)


class _Commenter:
    __slots__ = ("last_ms", "tat_us", "texts")

    def __init__(self) -> None:
        self.tat_us: int | None = None
        self.last_ms: int | None = None
        # text key -> when it was last accepted (ms)
        self.texts: dict[str, int] = {}


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._inbound: ExpiringMap[tuple[str, int], int] = ExpiringMap()
        self._users: ExpiringMap[tuple[str, str], _Commenter] = ExpiringMap()
        self._limits: ExpiringMap[tuple[str, str], int] = ExpiringMap()

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
        now = int(now_ms)
        second = now // 1000
        if room_cap_per_s > 0:
            accepted = self._inbound.get((room_id, second), now) or 0
            if accepted >= room_cap_per_s:
                return RateDecision(False, RateReason.ROOM_CAP, 1000 - now % 1000)
        user = self._users.get((room_id, uid), now) or _Commenter()
        last = user.last_ms
        if slow_mode_ms > 0 and last is not None and now - last < slow_mode_ms:
            return RateDecision(False, RateReason.SLOW_MODE, last + slow_mode_ms - now)
        check_repeat = repeat_window_ms > 0 and text_key != ""
        if check_repeat:
            at = user.texts.get(text_key)
            if at is not None and now - at < repeat_window_ms:
                return RateDecision(False, RateReason.REPEAT, at + repeat_window_ms - now)
        step = interval_us(rate_per_s)
        now_us = now * 1000
        tat = user.tat_us
        if step > 0:
            tat = max(tat if tat is not None else now_us, now_us) + step
            allow_at = tat - burst * step
            if allow_at > now_us:
                return RateDecision(False, RateReason.RATE, ceil_div(allow_at - now_us, 1000))
        # Every rule passed: record the comment.
        if room_cap_per_s > 0:
            self._inbound.incr((room_id, second), INBOUND_TTL_MS, now)
        user.tat_us = tat
        user.last_ms = now
        if check_repeat:
            floor = now - repeat_window_ms
            user.texts = {t: at for t, at in user.texts.items() if at > floor}
            user.texts[text_key] = now
        ttl = max(STATE_MIN_TTL_MS, slow_mode_ms, repeat_window_ms)
        if tat is not None:
            ttl = max(ttl, ceil_div(tat - now_us, 1000))
        self._users.set((room_id, uid), user, now + ttl, now)
        return ALLOWED

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
        step = interval_us(rate_per_s)
        now_us = int(now_ms) * 1000
        stored = self._limits.get((key_room, key), int(now_ms))
        tat = max(stored if stored is not None else now_us, now_us) + cost * step
        allow_at = tat - burst * step
        if allow_at > now_us:
            return RateDecision(False, RateReason.RATE, ceil_div(allow_at - now_us, 1000))
        ttl = max(1, ceil_div(tat - now_us, 1000))
        self._limits.set((key_room, key), tat, int(now_ms) + ttl, int(now_ms))
        return ALLOWED
