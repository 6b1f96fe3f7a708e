"""Redis AudienceStore (see ``rooms.audience`` for the contract).

Uids are interned by ``intern.lua`` into one hash per deployment (``uid -> n``) plus a
counter, so every room's set is a bitmap indexed by the same dense integers: about one
bit per interned uid per set (1,000,000 viewers: 125 KB a set). The mapping never changes
once written, so each process caches it. A room's totals, bitmaps and per-minute hashes
all carry the room's hash tag: a batch is one script on one slot, on Redis Cluster too;
the interning keys have a tag of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from interact.floor.scripts import register, text
from rooms.audience import (
    ITEM_STEPS,
    MAX_ITEMS,
    PAIRS,
    RETENTION_MS,
    SETS,
    Batch,
    ItemSnapshot,
    Snapshot,
    check_batch,
    pair_key,
)

# Uids interned per script call: a script blocks Redis while it runs, so keep it short.
INTERN_CHUNK = 500
# Keys whose expiry one ``retain`` script moves.
RETAIN_CHUNK = 2000
# Uids whose integer this process remembers; past it the cache starts again.
CACHE_SIZE = 200_000
_SET_INDEX = {name: i for i, name in enumerate(SETS)}


@dataclass(frozen=True, slots=True)
class AudienceKeys:
    prefix: str = "interact:"

    def ids(self) -> str:
        """Hash: uid -> its integer (one per deployment)."""
        return f"{self.prefix}uid:{{ids}}"

    def next_id(self) -> str:
        """Counter: integers handed out."""
        return f"{self.prefix}uid:{{ids}}:n"

    def totals(self, room_id: str) -> str:
        return f"{self.prefix}an:{{{room_id}}}:tot"

    def bitmap(self, room_id: str, set_name: str) -> str:
        return f"{self.prefix}an:{{{room_id}}}:b:{set_name}"

    def minute(self, room_id: str, minute: int) -> str:
        return f"{self.prefix}an:{{{room_id}}}:m:{minute}"

    def items(self, room_id: str) -> str:
        """Set: the room's products (sale ids), at most ``MAX_ITEMS``."""
        return f"{self.prefix}an:{{{room_id}}}:items"

    def item_counts(self, room_id: str) -> str:
        """Hash: ``<item>|<counter>`` -> amount."""
        return f"{self.prefix}an:{{{room_id}}}:ic"

    def item_bitmap(self, room_id: str, item: str, step: str) -> str:
        return f"{self.prefix}an:{{{room_id}}}:ib:{step}:{item}"

    def scratch(self, room_id: str) -> str:
        return f"{self.prefix}an:{{{room_id}}}:tmp"

    def claims(self, room_id: str, uid: str) -> str:
        """Sorted set: the user's recent client event ids -> their expiry (ms)."""
        return f"{self.prefix}an:{{{room_id}}}:ev:{uid}"


def _pairs(flat: list[bytes]) -> dict[str, int]:
    return {text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}


class RedisAudience:
    def __init__(
        self, client: Redis, prefix: str = "interact:", *, retention_ms: int = RETENTION_MS
    ) -> None:
        self._keys = AudienceKeys(prefix)
        self._retention_ms = retention_ms
        self._intern = register(client, "intern", "rooms")
        self._record = register(client, "audience_record", "rooms")
        self._read = register(client, "audience_read", "rooms")
        self._claim = register(client, "event_claim", "rooms")
        self._sample = register(client, "audience_sample", "rooms")
        self._retain = register(client, "audience_retain", "rooms")
        self._items = register(client, "audience_items", "rooms")
        self._client = client
        self._cache: dict[str, int] = {}

    async def intern(self, uids: Sequence[str]) -> list[int]:
        """The integers of ``uids``, interning the ones never seen."""
        # Read the cache before awaiting: a concurrent call may clear it meanwhile.
        known = {u: self._cache[u] for u in uids if u in self._cache}
        missing = list(dict.fromkeys(u for u in uids if u not in known))
        chunks = [missing[i : i + INTERN_CHUNK] for i in range(0, len(missing), INTERN_CHUNK)]
        answers = await asyncio.gather(
            *(self._intern(keys=[self._keys.ids(), self._keys.next_id()], args=c) for c in chunks)
        )
        found = dict(zip(missing, (int(n) for a in answers for n in a), strict=True))
        out = [found[u] if u in found else known[u] for u in uids]
        if len(self._cache) + len(found) > CACHE_SIZE:
            self._cache.clear()
        self._cache.update(found)
        return out

    async def record(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            check_batch(batch)
        uids = [u for b in batches for members in b.marks.values() for u in members]
        uids += [
            u for b in batches for steps in b.item_marks.values()
            for members in steps.values() for u in members
        ]  # fmt: skip
        ids = dict(zip(uids, await self.intern(uids), strict=True)) if uids else {}
        await asyncio.gather(*(self._apply(batch, ids) for batch in batches))

    async def _apply(self, batch: Batch, ids: dict[str, int]) -> None:
        k = self._keys
        room = batch.room_id
        keys = [k.totals(room), k.minute(room, batch.minute)]
        args: list[str | int] = [self._retention_ms, len(batch.counts)]
        for name, n in batch.counts.items():
            args += [name, n]
        for name, members in batch.marks.items():
            if not members:
                continue
            keys.append(k.bitmap(room, name))
            args += [name, len(members), *(ids[u] for u in members)]
        await self._record(keys=keys, args=args)
        if batch.item_marks or batch.item_counts:
            await self._apply_items(batch, ids)

    async def _apply_items(self, batch: Batch, ids: dict[str, int]) -> None:
        k = self._keys
        room = batch.room_id
        items = list(dict.fromkeys([*batch.item_marks, *batch.item_counts]))
        keys = [k.items(room), k.item_counts(room)]
        args: list[str | int] = [self._retention_ms, MAX_ITEMS, len(items)]
        for item in items:
            counts = batch.item_counts.get(item, {})
            args += [item, len(counts)]
            for name, n in counts.items():
                args += [name, n]
            steps = batch.item_marks.get(item, {})
            args.append(len(steps))
            for step, members in steps.items():
                keys.append(k.item_bitmap(room, item, step))
                args += [len(members), *(ids[u] for u in members)]
        await self._items(keys=keys, args=args)

    async def read(self, room_id: str, first_minute: int, last_minute: int) -> Snapshot:
        k = self._keys
        span = range(first_minute, last_minute + 1)
        keys = [
            k.totals(room_id),
            *(k.bitmap(room_id, s) for s in SETS),
            k.scratch(room_id),
            *(k.minute(room_id, m) for m in span),
        ]
        args: list[int] = [len(SETS), len(PAIRS)]
        for a, b in PAIRS:
            args += [_SET_INDEX[a] + 1, _SET_INDEX[b] + 1]
        totals, uv, both, minutes = await self._read(keys=keys, args=args)
        return Snapshot(
            totals=_pairs(totals),
            uv={name: int(n) for name, n in zip(SETS, uv, strict=True)},
            pairs={pair_key(a, b): int(n) for (a, b), n in zip(PAIRS, both, strict=True)},
            minutes={m: _pairs(flat) for m, flat in zip(span, minutes, strict=True) if flat},
        )

    async def claim_events(
        self, room_id: str, uid: str, event_ids: Sequence[str], ttl_ms: int
    ) -> list[bool]:
        if not event_ids:
            return []
        answer = await self._claim(
            keys=[self._keys.claims(room_id, uid)], args=[int(ttl_ms), *event_ids]
        )
        return [bool(int(n)) for n in answer]

    async def minutes(
        self, room_id: str, first_minute: int, last_minute: int
    ) -> dict[int, dict[str, int]]:
        span = range(first_minute, last_minute + 1)
        if not span:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for m in span:
            pipe.hgetall(self._keys.minute(room_id, m))
        answers = await pipe.execute()
        return {
            m: {text(k): int(v) for k, v in found.items()}
            for m, found in zip(span, answers, strict=True)
            if found
        }

    async def sample(self, room_id: str, minute: int, online: int) -> None:
        await self._sample(
            keys=[self._keys.minute(room_id, minute)], args=[int(online), self._retention_ms]
        )

    async def items(self, room_id: str) -> list[str]:
        return sorted(text(m) for m in await self._client.smembers(self._keys.items(room_id)))

    async def products(self, room_id: str) -> dict[str, ItemSnapshot]:
        k = self._keys
        items = await self.items(room_id)
        if not items:
            return {}
        # Reads only (no scratch key): a pipeline, not a script that would block Redis
        # for the BITCOUNTs of every product at once.
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(k.item_counts(room_id))
        for item in items:
            for step in ITEM_STEPS:
                pipe.bitcount(k.item_bitmap(room_id, item, step))
        flat, *counts = await pipe.execute()
        per: dict[str, dict[str, int]] = {item: {} for item in items}
        for field_, value in flat.items():
            item, _, name = text(field_).rpartition("|")
            if item in per:
                per[item][name] = int(value)
        n = len(ITEM_STEPS)
        return {
            item: ItemSnapshot(
                per[item], dict(zip(ITEM_STEPS, map(int, counts[j * n : j * n + n]), strict=True))
            )
            for j, item in enumerate(items)
        }

    async def retain(
        self, room_id: str, first_minute: int, last_minute: int, until_ms: int
    ) -> None:
        k = self._keys
        fixed = [k.totals(room_id), *(k.bitmap(room_id, s) for s in SETS)]
        fixed += [k.items(room_id), k.item_counts(room_id)]
        fixed += [
            k.item_bitmap(room_id, item, step)
            for item in await self.items(room_id)
            for step in ITEM_STEPS
        ]
        minutes = [k.minute(room_id, m) for m in range(first_minute, last_minute + 1)]
        # A few thousand keys per script: a long room's week of minutes in several steps.
        for i in range(0, max(1, len(minutes)), RETAIN_CHUNK):
            chunk = minutes[i : i + RETAIN_CHUNK]
            await self._retain(keys=[*(fixed if i == 0 else ()), *chunk], args=[int(until_ms)])
