"""Presence: online counts per room, summed over processes.

Contract:
- Each process reports its own count of a room's viewers with ``report(room, node,
  count, ttl_ms)``, periodically; the answer is the room's total over every node whose
  report is younger than its ttl. A node that stops reporting drops out after its ttl.
- A report of 0 removes the node from the room.
- No per-viewer write: the cost is one call per room per process per interval.
"""

from __future__ import annotations

from typing import Protocol


class Presence(Protocol):
    async def report(self, room_id: str, node: str, count: int, ttl_ms: int) -> int: ...

    async def total(self, room_id: str) -> int: ...
