"""In-process ReviewQueue (see ``moderation.review_queue`` for the contract)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

import orjson

from interact.floor.event_log import StreamIds, format_id, parse_id
from moderation.review_queue import REVIEW_MAXLEN, encode_item, kind_matches


class _Queue:
    __slots__ = ("ids", "items")

    def __init__(self) -> None:
        self.ids = StreamIds()
        # insertion order is id order
        self.items: dict[tuple[int, int], bytes] = {}


class MemoryReviewQueue:
    def __init__(self, *, max_items: int = REVIEW_MAXLEN) -> None:
        self._max_items = max_items
        self._rooms: dict[str, _Queue] = {}

    async def hold(self, room_id: str, item: Mapping[str, Any]) -> str:
        body = encode_item(item)
        queue = self._rooms.get(room_id)
        if queue is None:
            queue = self._rooms[room_id] = _Queue()
        item_id = queue.ids.next()
        queue.items[item_id] = body
        while len(queue.items) > self._max_items:
            del queue.items[next(iter(queue.items))]
        return format_id(item_id)

    async def take(self, room_id: str, item_id: str) -> dict[str, Any] | None:
        queue = self._rooms.get(room_id)
        try:
            key = parse_id(item_id)
        except ValueError:
            return None
        body = None if queue is None else queue.items.pop(key, None)
        return None if body is None else orjson.loads(body)

    def has(self, room_id: str, item_id: str) -> bool:
        queue = self._rooms.get(room_id)
        try:
            return queue is not None and parse_id(item_id) in queue.items
        except ValueError:
            return False

    async def get(self, room_id: str, item_id: str) -> dict[str, Any] | None:
        if not self.has(room_id, item_id):
            return None
        return orjson.loads(self._rooms[room_id].items[parse_id(item_id)])

    async def pending(self, room_id: str) -> int:
        queue = self._rooms.get(room_id)
        return 0 if queue is None else len(queue.items)

    async def list(
        self, room_id: str, limit: int = 100, after: str | None = None, kind: str | None = None
    ) -> builtins.list[tuple[str, dict[str, Any]]]:
        floor = (-1, -1) if after is None else parse_id(after)
        queue = self._rooms.get(room_id)
        if queue is None or limit <= 0:
            return []
        out: builtins.list[tuple[str, dict[str, Any]]] = []
        for item_id, body in queue.items.items():
            if item_id > floor:
                item = orjson.loads(body)
                if not kind_matches(item, kind):
                    continue
                out.append((format_id(item_id), item))
                if len(out) >= limit:
                    break
        return out
