"""Redis LedgerFeed (see ``webhooks.feed``): a consumer group on every room's ledger
stream (docs/ledger.md §3), ``XREADGROUP`` for new entries and ``XAUTOCLAIM`` for the
ones a dead process left pending.

The group starts at ``0``: entries written before the first poll of a room are not
skipped (endpoints only get events from after their own creation).

Reads block (``pull(..., block_ms)``) when nothing is waiting: an idle feed then hands an
entry out within a round trip of its ``XADD`` instead of at the next poll. The blocked
read holds one connection of the webhooks' own pool (``interact.webhooks_setup``), never
the money path's. One ``XREADGROUP`` names every followed room (at most
``MAX_BLOCK_KEYS``), so an entry in any of them wakes it. On a cluster each stream is its
own slot and one read cannot span them: there the feed polls (the caller sleeps).
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
# Streams one blocking read waits on: interact.webhooks_setup follows at most 10,000
# rooms; Redis registers the blocked client on each key, so the bound keeps a wake-up
# cheap.
MAX_BLOCK_KEYS = 10_000


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
        self.blocks = not cluster

    async def _group(self, room: str) -> None:
        try:
            await self._r.xgroup_create(self._stream(room), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped.add(room)

    async def pull(self, rooms: list[str], count: int, block_ms: int = 0) -> list[Entry]:
        for room in rooms:
            if room not in self._grouped:
                await self._group(room)
        out: list[Entry] = []
        if time.monotonic() - self._last_claim >= self._claim_every_s:
            self._last_claim = time.monotonic()
            out.extend(await self._claim(rooms, count))
        for i in range(0, len(rooms), self._per_read):
            if len(out) >= count:
                break
            out.extend(await self._read(rooms[i : i + self._per_read], count - len(out), None))
        if out or block_ms <= 0 or not self.blocks or not rooms:
            return out
        # Nothing waiting: wait on every room at once (Redis answers as soon as one of
        # them gets an entry), so the first entry after an idle spell is not held back by
        # a poll interval.
        return await self._read(rooms[:MAX_BLOCK_KEYS], count, block_ms)

    async def _read(self, chunk: list[str], count: int, block_ms: int | None) -> list[Entry]:
        by_key = {self._stream(room): room for room in chunk}
        try:
            reply = await self._r.xreadgroup(
                GROUP, self._consumer, dict.fromkeys(by_key, ">"), count=count, block=block_ms
            )
        except ResponseError as exc:
            # A stream deleted under the group (or while blocked on it): the round fails
            # and the next one makes the groups again instead of failing for ever.
            if "NOGROUP" in str(exc) or "UNBLOCKED" in str(exc):
                self._grouped.difference_update(chunk)
            raise
        out: list[Entry] = []
        for key, rows in reply or []:
            out.extend(_entries(by_key[_text(key)], rows))
        return out

    async def _claim(self, rooms: list[str], count: int) -> list[Entry]:
        """Entries a dead process left pending, taken over: one pipelined round trip per
        ``KEYS_PER_READ`` rooms (a round trip per room stalled the fan-out for as long as
        the rooms followed took, seconds at thousands of rooms)."""
        out: list[Entry] = []
        for i in range(0, len(rooms), self._per_read):
            chunk = rooms[i : i + self._per_read]
            async with self._r.pipeline(transaction=False) as p:
                for room in chunk:
                    p.xautoclaim(
                        self._stream(room),
                        GROUP,
                        self._consumer,
                        self._claim_idle_ms,
                        "0-0",
                        count=count,
                    )
                replies = await p.execute()
            for room, reply in zip(chunk, replies, strict=True):
                out.extend(_entries(room, reply[1]))
            if len(out) >= count:
                break
        return out

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
