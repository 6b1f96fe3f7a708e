"""How many likes one viewer may add to one room: a token bucket per (room, uid), per process.

Pure rules, no I/O: the caller passes the time. A bucket holds ``BURST_SECONDS`` seconds'
worth of likes and refills at ``per_s``; what a frame asks beyond what the bucket holds is
dropped (the caller counts it). A bucket that has been idle long enough to be full again
is the same as no bucket, so such entries are swept: the table holds only the pairs that
liked within the last ``BURST_SECONDS`` (plus one sweep interval), never more.
"""

from __future__ import annotations

# A tap-happy viewer's first few seconds pass whole; past that, the sustained rate applies.
BURST_SECONDS = 3.0


class LikeLimiter:
    """Token buckets keyed by (room, uid). ``per_s`` 0 (or less) means no limit."""

    __slots__ = ("_buckets", "_next_sweep", "burst", "per_s")

    def __init__(self, per_s: float) -> None:
        self.per_s = float(per_s)
        self.burst = self.per_s * BURST_SECONDS
        # (room, uid) -> (tokens left, monotonic time they were counted)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        """Whether a ``(room, uid)`` pair has a bucket (one that has not refilled yet)."""
        return key in self._buckets

    def take(self, room_id: str, uid: str, n: int, now: float) -> int:
        """How many of ``n`` likes pass now (0..n); the rest are to be dropped."""
        if self.per_s <= 0:
            return n
        if now >= self._next_sweep:
            self._sweep(now)
        key = (room_id, uid)
        entry = self._buckets.get(key)
        if entry is None:
            tokens = self.burst
        else:
            left, at = entry
            tokens = min(self.burst, left + (now - at) * self.per_s)
        granted = min(n, int(tokens))
        self._buckets[key] = (tokens - granted, now)
        return granted

    def _sweep(self, now: float) -> None:
        """Forget every bucket that has refilled completely (one pass per refill time,
        so the cost per like stays constant however many viewers there are)."""
        refill = BURST_SECONDS
        self._buckets = {
            key: (left, at)
            for key, (left, at) in self._buckets.items()
            if left + (now - at) * self.per_s < self.burst
        }
        self._next_sweep = now + refill
