"""Redis LedgerFeed (see ``webhooks.feed``): a consumer group on every room's ledger
stream (docs/ledger.md §3), ``XREADGROUP`` for new entries and ``XAUTOCLAIM`` for the
ones a dead process left pending.

The group starts at ``0``: entries written before the first poll of a room are not
skipped (endpoints only get events from after their own creation). Reads do not block:
a blocked read would hold one of the pool's connections, which the money path shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from interact.floor.scripts import text as _text
from webhooks.feed import Entry

GROUP = "webhooks"
# Rooms per XREADGROUP on one Redis; on a cluster each stream is its own slot.
KEYS_PER_READ = 200


class RedisLedgerFeed:
    def __init__(
        self,
        client: Redis,
        stream: Callable[[str], str],
        consumer: str,
        *,
        cluster: bool = False,
        claim_idle_ms: int = 30_000,
        claim_every_s: float = 5.0,
    ) -> None:
        self._r = client
        self._stream = stream
        self._consumer = consumer
        self._per_read = 1 if cluster else KEYS_PER_READ
        self._claim_idle_ms = claim_idle_ms
        self._claim_every_s = claim_every_s
        self._grouped: set[str] = set()
        self._last_claim = 0.0

    async def _group(self, room: str) -> None:
        try:
            await self._r.xgroup_create(self._stream(room), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped.add(room)

    async def pull(self, rooms: list[str], count: int) -> list[Entry]:
        for room in rooms:
            if room not in self._grouped:
                await self._group(room)
        out: list[Entry] = []
        if time.monotonic() - self._last_claim >= self._claim_every_s:
            self._last_claim = time.monotonic()
            for room in rooms:
                out.extend(await self._claim(room, count))
        for i in range(0, len(rooms), self._per_read):
            if len(out) >= count:
                break
            chunk = rooms[i : i + self._per_read]
            by_key = {self._stream(room): room for room in chunk}
            reply = await self._r.xreadgroup(
                GROUP, self._consumer, dict.fromkeys(by_key, ">"), count=count - len(out)
            )
            for key, rows in reply or []:
                room = by_key[_text(key)]
                out.extend(_entries(room, rows))
        return out

    async def _claim(self, room: str, count: int) -> list[Entry]:
        reply = await self._r.xautoclaim(
            self._stream(room), GROUP, self._consumer, self._claim_idle_ms, "0-0", count=count
        )
        return _entries(room, reply[1])

    async def ack(self, room: str, entry_ids: list[str]) -> None:
        if entry_ids:
            await self._r.xack(self._stream(room), GROUP, *entry_ids)


def _entries(room: str, rows: list[tuple[bytes, dict[bytes, bytes]] | None]) -> list[Entry]:
    out: list[Entry] = []
    for row in rows:
        if row is None or row[1] is None:  # trimmed while pending
            continue
        entry_id, fields = row
        out.append((room, _text(entry_id), {_text(k): _text(v) for k, v in fields.items()}))
    return out
