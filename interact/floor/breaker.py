"""A circuit breaker and a per-minute call budget for an outside service; pure, no I/O.

Both take the time from the caller (``now``: monotonic seconds) and are meant to be used
from one thread (the event loop).

Breaker states::

    closed    ── ``failures`` consecutive failures ──▶ open
    open      ── ``cooldown`` elapsed, next allow() ──▶ half_open (one probe at a time)
    half_open ── probe succeeded ──▶ closed
    half_open ── probe failed ─────▶ open (the cooldown starts again)

In ``half_open`` one call at a time (the probe) is let through. Every call that
:meth:`CircuitBreaker.allow` let through must end in exactly one of
:meth:`~CircuitBreaker.record_success` or :meth:`~CircuitBreaker.record_failure`
(a cancelled call is a failure: its outcome is unknown).

Results reported while ``open`` are ignored: they belong to calls made before the breaker
opened. A result reported in ``half_open`` decides the probe, whichever call it came from;
with a cooldown far longer than a call's timeout that is the probe's own.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker", "RateBudget"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; probes again after ``cooldown`` s."""

    def __init__(self, *, failures: int = 5, cooldown: float = 30.0) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.failures = failures
        self.cooldown = cooldown
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state.value}, consecutive={self._consecutive}, "
            f"failures={self.failures}, cooldown={self.cooldown})"
        )

    @property
    def state(self) -> BreakerState:
        """The state as of the last call; ``open`` turns ``half_open`` in :meth:`allow`."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def allow(self, now: float) -> bool:
        """Whether a call may go out now; in ``half_open`` this takes the one probe slot."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self.cooldown:
                return False
            self._state = BreakerState.HALF_OPEN
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def record_success(self, now: float) -> None:
        if self._state is BreakerState.OPEN:
            return
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._probing = False

    def record_failure(self, now: float) -> None:
        if self._state is BreakerState.OPEN:
            return
        if self._state is BreakerState.HALF_OPEN:
            self._open(now)
            return
        self._consecutive += 1
        if self._consecutive >= self.failures:
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._probing = False
        self._consecutive = 0


class RateBudget:
    """At most ``per_minute`` takes in any 60-second sliding window (an exact log)."""

    WINDOW = 60.0

    def __init__(self, per_minute: int = 4000) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must not be negative")
        self.per_minute = per_minute
        self._taken: deque[float] = deque()

    def __repr__(self) -> str:
        return f"RateBudget(per_minute={self.per_minute}, used={len(self._taken)})"

    def _expire(self, now: float) -> None:
        taken = self._taken
        while taken and taken[0] <= now - self.WINDOW:
            taken.popleft()

    def remaining(self, now: float) -> int:
        """Takes left in the window ending at ``now``, without taking one."""
        self._expire(now)
        return self.per_minute - len(self._taken)

    def take(self, now: float) -> bool:
        """Spend one unit if the last 60 s left one; ``False`` (nothing spent) otherwise."""
        if self.remaining(now) <= 0:
            return False
        self._taken.append(now)
        return True
