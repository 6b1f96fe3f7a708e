"""Redis ReviewQueue (see ``moderation.review_queue`` for the contract): a stream per room.

Each entry has one field, ``item`` (the item's JSON). ``take`` is ``lua/review_take.lua``:
read and XDEL in one step, so exactly one caller gets an item.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

import orjson
from redis.asyncio import Redis

from interact.floor.event_log import parse_id
from interact.floor.scripts import text
from moderation.keys import ModerationKeys
from moderation.review_queue import REVIEW_MAXLEN, encode_item, kind_matches
from moderation.scripts import register


def _item(fields: Mapping[Any, Any]) -> dict[str, Any]:
    body = next(v for k, v in fields.items() if text(k) == "item")
    return orjson.loads(body)


class RedisReviewQueue:
    def __init__(
        self, client: Redis, keys: ModerationKeys, *, max_items: int = REVIEW_MAXLEN
    ) -> None:
        self._client = client
        self._keys = keys
        self._max_items = max_items
        self._take = register(client, "review_take")

    async def hold(self, room_id: str, item: Mapping[str, Any]) -> str:
        body = encode_item(item)
        item_id = await self._client.xadd(
            self._keys.review(room_id), {"item": body}, maxlen=self._max_items, approximate=True
        )
        return text(item_id)

    async def take(self, room_id: str, item_id: str) -> dict[str, Any] | None:
        try:
            parse_id(item_id)
        except ValueError:
            return None
        body = await self._take(keys=[self._keys.review(room_id)], args=[item_id])
        return None if body is None else orjson.loads(body)

    async def get(self, room_id: str, item_id: str) -> dict[str, Any] | None:
        try:
            parse_id(item_id)
        except ValueError:
            return None
        rows = await self._client.xrange(self._keys.review(room_id), item_id, item_id)
        return _item(rows[0][1]) if rows else None

    async def pending(self, room_id: str) -> int:
        return int(await self._client.xlen(self._keys.review(room_id)))

    async def list(
        self, room_id: str, limit: int = 100, after: str | None = None, kind: str | None = None
    ) -> builtins.list[tuple[str, dict[str, Any]]]:
        if after is not None:
            parse_id(after)
        if limit <= 0:
            return []
        out: builtins.list[tuple[str, dict[str, Any]]] = []
        # Filtered by kind, a page may hold fewer matches than asked: read on. The queue
        # is capped (``max_items``), so this ends.
        page = limit if kind is None else max(limit, 100)
        while True:
            rows = await self._client.xrange(
                self._keys.review(room_id),
                min="-" if after is None else f"({after}",
                max="+",
                count=page,
            )
            for raw_id, fields in rows:
                item = _item(fields)
                if kind_matches(item, kind):
                    out.append((text(raw_id), item))
                    if len(out) >= limit:
                        return out
            if len(rows) < page:
                return out
            after = text(rows[-1][0])
