"""Redis event log (see ``interact.floor.event_log``): one stream per room.

``XADD … MAXLEN ~`` trims whole stream nodes, which keeps appends O(1); stores that log
from inside their Lua scripts append to the same stream with the same cap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from redis.asyncio import Redis

from interact.floor.event_log import check_event, parse_id
from interact.floor.scripts import text as _text


class RedisEventLog:
    def __init__(self, client: Redis, key: Callable[[str], str], *, maxlen: int) -> None:
        self._client = client
        self._key = key  # the stream of a room
        self._maxlen = maxlen

    async def append(self, room_id: str, event: Mapping[str, object]) -> str:
        fields = check_event(event)
        entry_id = await self._client.xadd(
            self._key(room_id), fields, maxlen=self._maxlen, approximate=True
        )
        return _text(entry_id)

    async def read(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        if after is not None:
            parse_id(after)
        if count <= 0:
            return []
        rows = await self._client.xrange(
            self._key(room_id),
            min="-" if after is None else f"({after}",
            max="+",
            count=count,
        )
        return [
            (_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
            for entry_id, fields in rows
        ]
