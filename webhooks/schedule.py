"""When to try a delivery again, as data and one pure decision.

Standard Webhooks' schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
20 h and 24 h after the previous attempt (ten attempts, about 75 h), then dead-letter.
"""

from __future__ import annotations

import email.utils
import enum
from dataclasses import dataclass

# Delay before attempt n+2, in seconds, after attempt n+1 failed.
RETRY_DELAYS_S: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
# The endpoint statuses that ask to slow down; their Retry-After is honoured.
SLOW_DOWN = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_S = 24 * 3600
# An endpoint that has failed everything for this long is disabled.
DISABLE_AFTER_MS = 5 * 24 * 3600 * 1000


class Verdict(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    next_at_ms: int | None = None  # for RETRY
    disable: bool = False  # the endpoint answered 410 Gone


def retry_after_s(value: str | None, now_ms: int) -> int | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), capped;
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(int(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    seconds = int(when.timestamp() - now_ms / 1000)
    return min(max(seconds, 0), MAX_RETRY_AFTER_S)


def decide(attempts: int, status: int | None, retry_after: str | None, now_ms: int) -> Decision:
    """What follows attempt number ``attempts`` (1-based) that got ``status`` (None: no
    answer — timeout, refused address, connection error)."""
    if status is not None and 200 <= status < 300:
        return Decision(Verdict.SUCCEEDED)
    gone = status == 410
    if attempts >= MAX_ATTEMPTS:
        return Decision(Verdict.DEAD, disable=gone)
    delay = RETRY_DELAYS_S[attempts - 1]
    if status in SLOW_DOWN:
        # Never sooner than the schedule, nor than the endpoint asked.
        delay = max(delay, retry_after_s(retry_after, now_ms) or 0)
    return Decision(Verdict.RETRY, now_ms + delay * 1000, disable=gone)


def failing_too_long(failing_since_ms: int | None, now_ms: int) -> bool:
    return failing_since_ms is not None and now_ms - failing_since_ms >= DISABLE_AFTER_MS
