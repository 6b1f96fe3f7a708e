"""Redis ModerationLog (see ``moderation.moderation_log`` for the contract): a stream per room.

``XADD … MAXLEN ~`` trims whole stream nodes, which keeps appends O(1).
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from moderation.keys import ModerationKeys
from moderation.moderation_log import MODLOG_MAXLEN, check_event, parse_id
from moderation.scripts import text


class RedisModerationLog:
    def __init__(self, client: Redis, keys: ModerationKeys, *, maxlen: int = MODLOG_MAXLEN) -> None:
        self._client = client
        self._keys = keys
        self._maxlen = maxlen

    async def append(self, room_id: str, event: Mapping[str, str | int]) -> str:
        fields = check_event(event)
        entry_id = await self._client.xadd(
            self._keys.log(room_id), fields, maxlen=self._maxlen, approximate=True
        )
        return text(entry_id)

    async def read(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        if after is not None:
            parse_id(after)
        if count <= 0:
            return []
        rows = await self._client.xrange(
            self._keys.log(room_id),
            min="-" if after is None else f"({after}",
            max="+",
            count=count,
        )
        return [
            (text(entry_id), {text(k): text(v) for k, v in fields.items()})
            for entry_id, fields in rows
        ]
