"""ModerationSettings: a room's slow mode, and the counts its circuit breaker trips on.

Contract:
- ``set_slow_mode(room_id, seconds, until_ms, by)``: comments in the room at most one per
  ``seconds`` per user; ``until_ms`` (Unix ms) lifts it by itself (automatic slow mode
  after a cool-down), None keeps it until changed; ``seconds == 0`` turns it off. The
  last call wins. Negative seconds are ``ValueError``.
- ``slow_mode(room_id, now_ms)`` is the slow mode in force as ``SlowMode(seconds,
  until_ms, by)``; ``SLOW_MODE_OFF`` (0, None, "") when off or lapsed
  (``until_ms <= now_ms``).
- ``record_verdict(room_id, refused, now_ms, window_ms)`` counts one moderated comment
  and returns ``VerdictCounts(total, refused)`` over the window, this one included, in
  one atomic step (concurrent calls each count once). The window is whole Unix seconds:
  the current one and the ``ceil(window_ms / 1000) - 1`` before it. Buckets that left the
  window are dropped as calls meet them, and the room's counts lapse after a
  window without calls.
- Time is the caller's ``now_ms`` on both engines.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class SlowMode(NamedTuple):
    seconds: int
    until_ms: int | None
    by: str


class VerdictCounts(NamedTuple):
    total: int
    refused: int

    @property
    def refused_share(self) -> float:
        return self.refused / self.total if self.total else 0.0


SLOW_MODE_OFF = SlowMode(0, None, "")


def check_slow_mode(seconds: int) -> None:
    if seconds < 0:
        raise ValueError(f"moderation settings: seconds must not be negative, not {seconds}")


def window_seconds(window_ms: int) -> int:
    """How many one-second buckets a window spans (at least one)."""
    if window_ms <= 0:
        raise ValueError(f"moderation settings: window_ms must be positive, not {window_ms}")
    return max(1, -(-window_ms // 1000))


class ModerationSettings(Protocol):
    async def set_slow_mode(
        self, room_id: str, seconds: int, until_ms: int | None, by: str
    ) -> None: ...

    async def slow_mode(self, room_id: str, now_ms: int) -> SlowMode: ...

    async def record_verdict(
        self, room_id: str, refused: bool, now_ms: int, window_ms: int
    ) -> VerdictCounts: ...
