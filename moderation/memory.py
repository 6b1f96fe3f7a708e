"""Helpers of the in-process moderation stores: expiry by the caller's clock.

The memory stores never read the clock for a decision: every expiry is judged by the
``now_ms`` the caller passes, so tests are deterministic and both engines agree.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# How often (in the callers' ms) an ExpiringMap looks for entries nobody asked about again.
SWEEP_EVERY_MS = 10_000


class ExpiringMap(Generic[K, V]):
    """A dict whose entries lapse at a deadline in Unix ms, like keys with a PEXPIRE.

    A lapsed entry reads as missing; entries nobody reads again are dropped by a full
    sweep that runs at most once per ``sweep_every_ms`` of the callers' clock, so idle
    users leave nothing behind.
    """

    __slots__ = ("_entries", "_next_sweep", "_sweep_every_ms")

    def __init__(self, sweep_every_ms: int = SWEEP_EVERY_MS) -> None:
        self._entries: dict[K, tuple[V, int]] = {}
        self._sweep_every_ms = sweep_every_ms
        self._next_sweep: int | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, now_ms: int) -> V | None:
        self._maybe_sweep(now_ms)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now_ms:
            del self._entries[key]
            return None
        return entry[0]

    def set(self, key: K, value: V, expires_at_ms: int, now_ms: int) -> None:
        self._maybe_sweep(now_ms)
        self._entries[key] = (value, expires_at_ms)

    def incr(self: ExpiringMap[K, int], key: K, ttl_ms: int, now_ms: int) -> int:
        """Like INCR on a key given a PEXPIRE when created: later increments keep its deadline."""
        self._maybe_sweep(now_ms)
        entry = self._entries.get(key)
        if entry is None or entry[1] <= now_ms:
            entry = (0, now_ms + ttl_ms)
        count = entry[0] + 1
        self._entries[key] = (count, entry[1])
        return count

    def _maybe_sweep(self, now_ms: int) -> None:
        if self._next_sweep is None:
            self._next_sweep = now_ms + self._sweep_every_ms
        elif now_ms >= self._next_sweep:
            self._next_sweep = now_ms + self._sweep_every_ms
            for key in [k for k, (_, exp) in self._entries.items() if exp <= now_ms]:
                del self._entries[key]
