"""In-process Presence (see ``rooms.presence`` for the contract)."""

from __future__ import annotations

import time


class MemoryPresence:
    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, tuple[int, float]]] = {}

    async def report(self, room_id: str, node: str, count: int, ttl_ms: int) -> int:
        nodes = self._rooms.setdefault(room_id, {})
        if count > 0:
            nodes[node] = (count, time.monotonic() + ttl_ms / 1000)
        else:
            nodes.pop(node, None)
        return await self.total(room_id)

    async def total(self, room_id: str) -> int:
        nodes = self._rooms.get(room_id)
        if not nodes:
            return 0
        now = time.monotonic()
        for node in [n for n, (_, exp) in nodes.items() if exp <= now]:
            del nodes[node]
        if not nodes:
            del self._rooms[room_id]
        return sum(c for c, _ in nodes.values())
