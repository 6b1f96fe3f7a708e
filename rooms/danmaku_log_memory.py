"""In-process DanmakuLog (see ``rooms.danmaku_log`` for the contract)."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any

import orjson

from interact.floor.errors import Code, Conflict, NotFound
from rooms.broker_memory import MemoryBroker
from rooms.danmaku_log import Appended, History, in_window
from rooms.models import RoomStatus
from rooms.room_store_memory import MemoryRoomStore, wall_ms

# The log owns these two fields; a body cannot overwrite them (the Redis script agrees).
_RESERVED = frozenset({"t", "seq"})


class _RoomLog:
    __slots__ = ("epoch", "items", "journal", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self.epoch = secrets.token_hex(4)
        self.items: OrderedDict[int, bytes] = OrderedDict()
        self.journal: list[bytes] = []


class MemoryDanmakuLog:
    def __init__(
        self, rooms: MemoryRoomStore, broker: MemoryBroker, size: int, *, journal: bool = False
    ) -> None:
        self._journal = journal
        self._rooms = rooms
        self._broker = broker
        self._size = size
        self._logs: dict[str, _RoomLog] = {}

    def _log(self, room_id: str) -> _RoomLog:
        log = self._logs.get(room_id)
        if log is None:
            log = self._logs[room_id] = _RoomLog()
        return log

    async def append(
        self, room_id: str, body: dict[str, Any], *, require_live: bool = True
    ) -> Appended:
        room = self._rooms.get_now(room_id)
        if room is None:
            raise NotFound(f"room {room_id} not found")
        if require_live and room.status is not RoomStatus.LIVE:
            raise Conflict(f"room is {room.status.value}", Code.ROOM_NOT_LIVE)
        log = self._log(room_id)
        log.seq += 1
        fields = {k: v for k, v in body.items() if k not in _RESERVED}
        payload = orjson.dumps({"t": "dm", "seq": log.seq, **fields})
        log.items[log.seq] = payload
        if self._journal:
            log.journal.append(payload)
        floor = log.seq - self._size
        while log.items and next(iter(log.items)) <= floor:
            log.items.popitem(last=False)
        self._broker.publish_now(room_id, payload)
        return Appended(seq=log.seq, epoch=log.epoch, payload=payload)

    async def history(
        self, room_id: str, since: int | None, epoch: str | None, limit: int
    ) -> History:
        log = self._log(room_id)
        if in_window(since, epoch, log.seq, log.epoch, self._size):
            assert since is not None
            items = [p for s, p in log.items.items() if s > since]
            return History(log.seq, log.epoch, True, items)
        items = list(log.items.values())[-limit:] if limit > 0 else []
        return History(log.seq, log.epoch, False, items)

    async def retract(self, room_id: str, seq: int) -> bool:
        log = self._logs.get(room_id)
        if log is None or log.items.pop(seq, None) is None:
            return False
        if self._journal:
            log.journal.append(orjson.dumps({"t": "retract", "seq": seq, "ts": wall_ms()}))
        return True

    async def journal(self, room_id: str, start: int, count: int) -> list[bytes]:
        log = self._logs.get(room_id)
        if log is None or start < 0 or count <= 0:
            return []
        return log.journal[start : start + count]
