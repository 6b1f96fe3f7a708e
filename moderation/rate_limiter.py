"""RateLimiter: the pace rules every comment passes, in one atomic step (DESIGN.md §2).

Contract of ``check_comment(room_id, uid, text_key, now_ms, *, rate_per_s, burst,
repeat_window_ms, slow_mode_ms, room_cap_per_s)``:

- The rules run in this order; the first that refuses decides ``reason`` and
  ``retry_after_ms`` (how long until the comment would pass *that* rule):

  1. ``room_cap`` — at most ``room_cap_per_s`` comments accepted per Unix second in the
     room (0 = off). ``retry_after_ms`` is the time to the next second.
  2. ``slow_mode`` — with ``slow_mode_ms > 0``, the user's last accepted comment in the
     room must be at least ``slow_mode_ms`` old.
  3. ``repeat`` — the same ``text_key`` (the caller's hash of the normalised text) from
     the same user in the room is refused until ``repeat_window_ms`` after it was last
     accepted (0 = off; an empty ``text_key`` skips the rule). Every text accepted within
     the window counts, not only the last one, so alternating two texts does not help.
  4. ``rate`` — per user and room, a GCRA of ``rate_per_s`` comments a second with bursts
     of ``burst`` (``rate_per_s <= 0`` = off).

- Only an accepted comment is recorded: its GCRA step, its time, its text key and the
  room's count for the second. A refused comment records nothing at all, so it neither
  spends the user's budget nor the room's: a client hammering past its limit cannot use up
  the room cap and silence everybody else. The room cap therefore bounds what goes
  downstream (filter, fan-out), which is what it is for.
- Check and record are one step: on Redis one Lua script whose keys are all in the room's
  slot; in memory one call without an await. Concurrent comments by one user with burst
  ``b`` (and a fresh budget) let exactly ``b`` through.
- Time is the caller's ``now_ms`` (Unix ms) on both engines; nothing reads a clock.
- State lapses once it no longer matters (Redis keys carry a PEXPIRE): an idle user or
  room leaves nothing behind. A rule made stricter later (a longer slow mode) sees only the
  state still kept (at least ``STATE_MIN_TTL_MS``).

``rate_limit(key_room, key, now_ms, rate_per_s, burst, *, cost=1)`` is the same GCRA for
anything else (likes, REST calls): ``cost`` units of ``burst`` per request; ``key_room`` is
the room whose slot the key lives in. Refusals record nothing.

Invalid settings (``burst < 1`` with a rate, negative windows or caps, ``cost`` outside
``1..burst``) are ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

# The least time a user's comment state is kept after an accepted comment.
STATE_MIN_TTL_MS = 1_000

# How long a room's per-second counter outlives its second.
INBOUND_TTL_MS = 2_000


class RateReason(StrEnum):
    OK = "ok"
    RATE = "rate"
    REPEAT = "repeat"
    SLOW_MODE = "slow_mode"
    ROOM_CAP = "room_cap"


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    reason: RateReason
    retry_after_ms: int = 0


ALLOWED = RateDecision(True, RateReason.OK, 0)


def interval_us(rate_per_s: float) -> int:
    """The GCRA emission interval in whole µs (0 = no rate rule), as both engines use it."""
    if rate_per_s <= 0:
        return 0
    return max(1, round(1_000_000 / rate_per_s))


def check_comment_settings(
    *, rate_per_s: float, burst: int, repeat_window_ms: int, slow_mode_ms: int, room_cap_per_s: int
) -> None:
    if rate_per_s > 0 and burst < 1:
        raise ValueError(f"rate limiter: burst must be at least 1, not {burst}")
    for name, value in (
        ("repeat_window_ms", repeat_window_ms),
        ("slow_mode_ms", slow_mode_ms),
        ("room_cap_per_s", room_cap_per_s),
    ):
        if value < 0:
            raise ValueError(f"rate limiter: {name} must not be negative, not {value}")


def check_limit_settings(rate_per_s: float, burst: int, cost: int) -> None:
    if rate_per_s <= 0:
        raise ValueError(f"rate limiter: rate_per_s must be positive, not {rate_per_s}")
    if not 1 <= cost <= burst:
        raise ValueError(f"rate limiter: cost must be within 1..burst ({burst}), not {cost}")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class RateLimiter(Protocol):
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
    ) -> RateDecision: ...

    async def rate_limit(
        self,
        key_room: str,
        key: str,
        now_ms: int,
        rate_per_s: float,
        burst: int,
        *,
        cost: int = 1,
    ) -> RateDecision: ...
