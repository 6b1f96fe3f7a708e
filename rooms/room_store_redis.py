"""Redis RoomStore (see ``rooms.room_store`` for the contract).

A room is one hash (``keys.room``); the global sorted set ``keys.index`` orders rooms by
creation time for listing. Create and transition are Lua scripts on the room's key only,
so they run on Redis Cluster; the index is written after a successful create.

An anchor's open rooms are a sorted set on the anchor's own key (``keys.anchor_rooms``),
so the quota is checked and taken in one script there (``anchor_admit``) before the room
is written; the room and the anchor live in different slots, so the two steps are not one
transaction. What a crash between them can leave: a place taken for a room that was
never written (it lapses with the room's deadline), or an ended room still counted (the
next refused create drops counted rooms that have ended, then checks again). A room that
never starts expires by its key's TTL, which its start removes (``PERSIST``); its index
entry is dropped by a later create or ``sweep`` (``keys.unstarted``), which then deletes
the room's other keys (``room_forget``: they were written without a TTL).

Retention (``rooms.retention``): the end's script sets the hot and money TTLs of the
room's keys, and the room is put in ``keys.ended`` with its hot deadline, so
the index entry of an ended room leaves the index once its record has expired.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from interact.floor.errors import Conflict, NotFound
from interact.floor.scripts import register
from rooms.keys import RoomKeys
from rooms.lifecycle import TRANSITIONS
from rooms.models import Room, RoomStatus
from rooms.retention import RetentionPolicy, RoomKeySets
from rooms.room_store import (
    LEDGER_EVENTS,
    quota_exceeded,
    schedule_refused,
    stream_start_refused,
)

# Index entries fetched per round trip while filtering a listing by status.
_PAGE = 200
# Expired rooms dropped from the index per create: a bounded step that keeps up with any
# creation rate (each create adds at most one).
_PRUNE = 32


def _encode(room: Room) -> list[str]:
    """The hash fields of a room; unset optional fields are left out, not stored as ""."""
    out: list[str] = []
    for field, value in room.to_dict().items():
        if value is not None:
            out += [field, str(value)]
    return out


def _decode(flat: list[bytes] | dict[bytes, bytes]) -> Room:
    if isinstance(flat, dict):
        pairs = flat.items()
    else:
        pairs = zip(flat[::2], flat[1::2], strict=True)
    data: dict[str, Any] = {k.decode(): v.decode() for k, v in pairs}
    return Room.from_dict(data)


class RedisRoomStore:
    def __init__(
        self,
        client: Redis,
        keys: RoomKeys,
        *,
        ledger: Callable[[str], str] | None = None,
        ledger_maxlen: int = 100_000,
        key_sets: Callable[[str], RoomKeySets] | None = None,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self._client = client
        self._keys = keys
        # The key of a room's ledger stream (in the room's slot): start and end are
        # written there by the transition's script.
        self._ledger = ledger
        self._ledger_maxlen = ledger_maxlen
        # Without key sets only the room record and its ledger get TTLs at the end.
        self._key_sets = key_sets or (lambda room_id: RoomKeySets([], []))
        self._retention = retention
        self._forget = register(client, "room_forget", "rooms")
        self._create = register(client, "create_room", "rooms")
        self._transition = register(client, "transition", "rooms")
        self._admit = register(client, "anchor_admit", "rooms")
        self._mark = register(client, "anchor_mark", "rooms")
        self._stream_start = register(client, "stream_start", "rooms")
        self._schedule = register(client, "schedule", "rooms")

    async def create(self, room: Room, *, quota: int = 0, unstarted_ttl_ms: int = 0) -> None:
        ttl = unstarted_ttl_ms if room.status is RoomStatus.SCHEDULED else 0
        counted = room.anchor is not None and room.status is not RoomStatus.ENDED
        admitted = 0
        if counted:
            assert room.anchor is not None
            admitted = await self._admit_once(room, quota, ttl)
            if admitted == 0 and await self._drop_ended(room.anchor):
                admitted = await self._admit_once(room, quota, ttl)
            if admitted == 0:
                raise quota_exceeded(quota)
        # Taken before the record is written, so the deadline is never later than the
        # key's expiry: an expired room is always due for ``_prune_index``.
        deadline = int(time.time() * 1000) + ttl
        created = await self._create(
            keys=[self._keys.room(room.id)], args=[int(ttl), *_encode(room)]
        )
        if not created:
            if admitted == 1:
                await self._mark_anchor(room.anchor, room.id, RoomStatus.ENDED)
            raise Conflict(f"room {room.id} exists")
        # Cross-slot with the room key, hence outside the script: a crash in between
        # leaves a room that ``get`` finds but ``list`` does not, never a duplicate.
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(self._keys.index(), {room.id: room.created_at})
            if ttl:
                pipe.zadd(self._keys.unstarted(), {room.id: deadline})
            await pipe.execute()
        await self._prune_index()
        await self._prune_ended()

    async def _admit_once(self, room: Room, quota: int, ttl: int) -> int:
        assert room.anchor is not None
        return int(
            await self._admit(
                keys=[self._keys.anchor_rooms(room.anchor)], args=[room.id, int(quota), int(ttl)]
            )
        )

    async def _drop_ended(self, anchor: str) -> bool:
        """Uncount the anchor's started rooms that have ended since (a crash, or a start
        and an end racing, can leave them counted); True when any was dropped.

        Only started members (+inf) are checked: a room being created has a deadline or
        no record yet, and must keep its place."""
        key = self._keys.anchor_rooms(anchor)
        ids = await self._client.zrangebyscore(key, "+inf", "+inf")
        if not ids:
            return False
        async with self._client.pipeline(transaction=False) as pipe:
            for rid in ids:
                pipe.hget(self._keys.room(rid.decode()), "status")
            statuses = await pipe.execute()
        ended = [rid for rid, st in zip(ids, statuses, strict=True) if st == b"ended"]
        if ended:
            await self._client.zrem(key, *ended)
        return bool(ended)

    async def _mark_anchor(self, anchor: str | None, room_id: str, status: RoomStatus) -> None:
        if anchor is not None:
            await self._mark(keys=[self._keys.anchor_rooms(anchor)], args=[room_id, status.value])

    async def sweep(self, now_ms: int | None = None) -> int:
        """Drop every room whose deadline has passed from the index (and delete the other
        keys of those that never started); how many rooms left the deadline sets."""
        done = 0
        for pruned in (self._prune_index, self._prune_ended):
            # A full step may have more behind it; a short one has seen them all.
            while (n := await pruned(now_ms)) > 0:
                done += n
                if n < _PRUNE:
                    break
        return done

    async def _prune_ended(self, now_ms: int | None = None) -> int:
        """Drop from the index a few ended rooms whose record has expired (with the money
        keys, at the end of the refund window; the hot keys went before)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        due = await self._client.zrangebyscore(self._keys.ended(), "-inf", now, 0, _PRUNE)
        if not due:
            return 0
        async with self._client.pipeline(transaction=False) as pipe:
            for rid in due:
                pipe.exists(self._keys.room(rid.decode()))
            alive = await pipe.execute()
        gone = [rid for rid, n in zip(due, alive, strict=True) if not n]
        if gone:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.zrem(self._keys.index(), *gone)
                pipe.zrem(self._keys.ended(), *gone)
                await pipe.execute()
        return len(gone)

    async def _prune_index(self, now_ms: int | None = None) -> int:
        """Drop from the index a few rooms whose deadline to start has passed: those whose
        record expired leave the index and lose their other keys; those that started just
        leave ``unstarted``."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        due = await self._client.zrangebyscore(self._keys.unstarted(), "-inf", now, 0, _PRUNE)
        if not due:
            return 0
        async with self._client.pipeline(transaction=False) as pipe:
            for rid in due:
                pipe.pttl(self._keys.room(rid.decode()))
            ttls = await pipe.execute()
        gone = [rid for rid, left in zip(due, ttls, strict=True) if left == -2]
        settled = [rid for rid, left in zip(due, ttls, strict=True) if left < 0]
        # Before the index entry goes, so a crash leaves it due for the next sweep.
        for rid in gone:
            room_id = rid.decode()
            sets = self._key_sets(room_id)
            record = self._keys.room(room_id)
            await self._forget(keys=[record, *sets.hot, *sets.money])
        async with self._client.pipeline(transaction=False) as pipe:
            if gone:
                pipe.zrem(self._keys.index(), *gone)
            if settled:
                pipe.zrem(self._keys.unstarted(), *settled)
            await pipe.execute()
        return len(settled)

    async def open_rooms(self, anchor: str) -> int:
        key = self._keys.anchor_rooms(anchor)
        return int(await self._client.zcount(key, f"({int(time.time() * 1000)}", "+inf"))

    async def get(self, room_id: str) -> Room | None:
        raw = await self._client.hgetall(self._keys.room(room_id))
        return _decode(raw) if raw else None

    async def list(
        self, status: RoomStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Room]:
        if limit <= 0 or offset < 0:
            # Odd bounds: read everything and slice exactly as the memory store does.
            return (await self._scan(status, None))[offset : offset + limit]
        return (await self._scan(status, offset + limit))[offset : offset + limit]

    async def _scan(self, status: RoomStatus | None, want: int | None) -> list[Room]:
        """Rooms newest first (ties: id descending), filtered, until ``want`` are found.

        ZRANGE … REV orders equal scores by member descending, which is the memory
        store's ``(created_at, id)`` descending order.
        """
        out: list[Room] = []
        page = _PAGE if status is not None or want is None else max(want, 1)
        start = 0
        while want is None or len(out) < want:
            ids = await self._client.zrange(self._keys.index(), start, start + page - 1, desc=True)
            if not ids:
                break
            async with self._client.pipeline(transaction=False) as pipe:
                for rid in ids:
                    pipe.hgetall(self._keys.room(rid.decode()))
                records = await pipe.execute()
            for raw in records:
                if not raw:
                    continue  # an index entry whose room record is gone
                room = _decode(raw)
                if status is None or room.status is status:
                    out.append(room)
            if len(ids) < page:
                break
            start += page
        return out

    async def transition(self, room_id: str, action: str, now_ms: int) -> Room:
        allowed, target, stamp = TRANSITIONS[action]
        starts = "1" if target is RoomStatus.LIVE else "0"
        record = self._keys.room(room_id)
        keys = [record, self._ledger(room_id) if self._ledger is not None else record]
        logged = LEDGER_EVENTS.get(action, "") if self._ledger is not None else ""
        retain: list[object] = ["", 0, 0, 0, "", "", "", "", "", "", "", "", 0]
        if target is RoomStatus.ENDED and self._retention is not None:
            sets = self._key_sets(room_id)
            keys += [*sets.hot, *sets.money]
            retain = [self._retention.hot_ms, self._retention.money_ms, len(sets.hot),
                      len(sets.money), sets.orders_index, sets.order_prefix, sets.sales_index,
                      sets.sale_prefix, " ".join(sets.sale_suffixes), sets.packets_index,
                      sets.packet_prefix, " ".join(sets.packet_suffixes), len(sets.groups),
                      *(a for g in sets.groups for a in g.args())]  # fmt: skip
        reply = await self._transition(
            keys=keys,
            args=[target.value, int(now_ms), stamp or "", starts, logged, self._ledger_maxlen,
                  *retain, *sorted(s.value for s in allowed)],
        )  # fmt: skip
        tag = reply[0]
        if tag == b"not_found":
            raise NotFound(f"room {room_id} not found")
        if tag == b"conflict":
            raise Conflict(f"cannot {action} a room that is {reply[1].decode()}")
        room = _decode(reply[1:])
        if target in (RoomStatus.LIVE, RoomStatus.ENDED):
            await self._mark_anchor(room.anchor, room.id, target)
        if target is RoomStatus.ENDED and self._retention is not None:
            # Global, hence after the script: a crash here leaves an index entry whose
            # record is gone, which listings skip.
            due = int(now_ms) + self._retention.money_ms
            await self._client.zadd(self._keys.ended(), {room.id: due})
        return room

    async def set_stream_start(self, room_id: str, ms: int | None) -> Room:
        reply = await self._stream_start(
            keys=[self._keys.room(room_id)], args=["" if ms is None else int(ms)]
        )
        tag = reply[0]
        if tag == b"not_found":
            raise NotFound(f"room {room_id} not found")
        if tag == b"conflict":
            raise stream_start_refused()
        return _decode(reply[1:])

    async def set_schedule(self, room_id: str, ms: int | None) -> Room:
        reply = await self._schedule(
            keys=[self._keys.room(room_id)], args=["" if ms is None else int(ms)]
        )
        tag = reply[0]
        if tag == b"not_found":
            raise NotFound(f"room {room_id} not found")
        if tag == b"conflict":
            raise schedule_refused(RoomStatus(reply[1].decode()))
        return _decode(reply[1:])
