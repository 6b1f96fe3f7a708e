"""In-process ModerationSettings (see ``moderation.room_settings`` for the contract)."""

from __future__ import annotations

from moderation.memory import ExpiringMap
from moderation.room_settings import (
    SLOW_MODE_OFF,
    SlowMode,
    VerdictCounts,
    check_slow_mode,
    window_seconds,
)


class MemoryModerationSettings:
    def __init__(self) -> None:
        self._slow: dict[str, SlowMode] = {}
        # room -> {second: [total, refused]}
        self._verdicts: ExpiringMap[str, dict[int, list[int]]] = ExpiringMap()

    async def set_slow_mode(
        self, room_id: str, seconds: int, until_ms: int | None, by: str
    ) -> None:
        check_slow_mode(seconds)
        if seconds == 0:
            self._slow.pop(room_id, None)
        else:
            until = None if until_ms is None else int(until_ms)
            self._slow[room_id] = SlowMode(int(seconds), until, by)

    async def slow_mode(self, room_id: str, now_ms: int) -> SlowMode:
        mode = self._slow.get(room_id)
        if mode is None or (mode.until_ms is not None and mode.until_ms <= now_ms):
            return SLOW_MODE_OFF
        return mode

    async def record_verdict(
        self, room_id: str, refused: bool, now_ms: int, window_ms: int
    ) -> VerdictCounts:
        span = window_seconds(window_ms)
        now = int(now_ms)
        second = now // 1000
        first = second - span + 1
        buckets = self._verdicts.get(room_id, now) or {}
        for old in [s for s in buckets if s < first]:
            del buckets[old]
        bucket = buckets.setdefault(second, [0, 0])
        bucket[0] += 1
        bucket[1] += int(refused)
        self._verdicts.set(room_id, buckets, now + span * 1000, now)
        total = sum(b[0] for b in buckets.values())
        return VerdictCounts(total, sum(b[1] for b in buckets.values()))
