"""In-process ArchiveJobs (see ``archive.jobs`` for the contract)."""

from __future__ import annotations

import time
from collections.abc import Callable


def _mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class MemoryArchiveJobs:
    def __init__(self, clock: Callable[[], int] = _mono_ms) -> None:
        self._clock = clock  # for leases only: due times are the caller's (wall) ms
        self._waiting: dict[str, int] = {}
        self._leases: dict[str, tuple[str, int]] = {}  # room -> (token, expires)

    async def schedule(self, room_id: str, due_ms: int) -> None:
        self._waiting[room_id] = min(due_ms, self._waiting.get(room_id, due_ms))

    async def due(self, now_ms: int, limit: int) -> list[str]:
        ready = sorted((t, r) for r, t in self._waiting.items() if t <= now_ms)
        return [r for _, r in ready[: max(limit, 0)]]

    async def done(self, room_id: str) -> None:
        self._waiting.pop(room_id, None)

    def _holder(self, room_id: str) -> str | None:
        lease = self._leases.get(room_id)
        if lease is None or lease[1] <= self._clock():
            return None
        return lease[0]

    async def acquire(self, room_id: str, token: str, ttl_ms: int) -> bool:
        if self._holder(room_id) is not None:
            return False
        self._leases[room_id] = (token, self._clock() + ttl_ms)
        return True

    async def renew(self, room_id: str, token: str, ttl_ms: int) -> bool:
        if self._holder(room_id) != token:
            return False
        self._leases[room_id] = (token, self._clock() + ttl_ms)
        return True

    async def release(self, room_id: str, token: str) -> None:
        if self._holder(room_id) == token:
            del self._leases[room_id]
