"""In-process LedgerFeed (see ``webhooks.feed``) over an event log's ``read``: a cursor
per room, moved on pull (a crash loses the memory engine's ledger too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from webhooks.feed import Entry

Read = Callable[[str, str | None, int], Awaitable[list[tuple[str, dict[str, str]]]]]


class MemoryLedgerFeed:
    # The memory ledger has no wake-up to wait on: the service polls it.
    blocks = False

    def __init__(self, read: Read) -> None:
        self._read = read
        self._cursors: dict[str, str | None] = {}

    async def pull(self, rooms: list[str], count: int, block_ms: int = 0) -> list[Entry]:
        out: list[Entry] = []
        for room in rooms:
            if len(out) >= count:
                break
            rows = await self._read(room, self._cursors.get(room), count - len(out))
            if rows:
                self._cursors[room] = rows[-1][0]
                out.extend((room, entry_id, fields) for entry_id, fields in rows)
        return out

    async def ack(self, room: str, entry_ids: list[str]) -> None:
        return None
