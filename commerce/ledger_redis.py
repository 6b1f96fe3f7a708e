"""Redis Ledger (see ``commerce.ledger`` for the contract): one stream per room.

``XADD … MAXLEN ~`` trims whole stream nodes, which keeps appends O(1); the commerce
scripts append to the same stream with the same cap inside their own atomic step.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from commerce.keys import CommerceKeys
from commerce.ledger import LEDGER_MAXLEN, check_event, parse_id


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisLedger:
    def __init__(self, client: Redis, keys: CommerceKeys, *, maxlen: int = LEDGER_MAXLEN) -> None:
        self._client = client
        self._keys = keys
        self._maxlen = maxlen

    async def append(self, room_id: str, event: Mapping[str, object]) -> str:
        fields = check_event(event)
        entry_id = await self._client.xadd(
            self._keys.ledger(room_id), fields, maxlen=self._maxlen, approximate=True
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
            self._keys.ledger(room_id),
            min="-" if after is None else f"({after}",
            max="+",
            count=count,
        )
        return [
            (_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
            for entry_id, fields in rows
        ]
