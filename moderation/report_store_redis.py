"""Redis ReportStore (see ``moderation.report_store`` for the contract).

Per room: a hash of open reports (target -> id, id -> target, held marks), one hash of
reporters per open target, and the room's review stream, all with the room's hash tag,
changed together by ``lua/report_file.lua``, ``report_resolve.lua`` and
``report_hold.lua``. Alerts are one global sorted set; a claim is a ``ZREM`` that only one
caller wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from redis.asyncio import Redis

from interact.floor.event_log import parse_id
from interact.floor.scripts import text
from moderation.keys import ModerationKeys
from moderation.report_store import Filed
from moderation.review_queue import REVIEW_MAXLEN, encode_item
from moderation.scripts import register


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


class RedisReportStore:
    def __init__(
        self, client: Redis, keys: ModerationKeys, *, max_items: int = REVIEW_MAXLEN
    ) -> None:
        self._client = client
        self._keys = keys
        self._max_items = max_items
        self._file = register(client, "report_file")
        self._resolve = register(client, "report_resolve")
        self._hold = register(client, "report_hold")

    async def file(
        self,
        room_id: str,
        target: str,
        reporter: str,
        reason: str,
        item: Mapping[str, Any],
        now_ms: int,
    ) -> Filed:
        body = encode_item(item)
        k = self._keys
        report_id, new, opened, count = await self._file(
            keys=[k.reports(room_id), k.reporters(room_id, target), k.review(room_id)],
            args=[target, reporter, reason, body, self._max_items],
        )
        return Filed(text(report_id), bool(new), bool(opened), int(count))

    async def _target(self, room_id: str, report_id: str) -> str | None:
        try:
            parse_id(report_id)
        except ValueError:
            return None
        raw = await self._client.hget(self._keys.reports(room_id), f"i:{report_id}")
        return None if raw is None else text(raw)

    async def reporters(self, room_id: str, report_id: str) -> dict[str, str]:
        target = await self._target(room_id, report_id)
        if target is None:
            return {}
        if not await self._client.xrange(self._keys.review(room_id), report_id, report_id):
            return {}  # its item left the queue: not open
        raw = await self._client.hgetall(self._keys.reporters(room_id, target))
        return {text(uid): text(reason) for uid, reason in raw.items()}

    async def resolve(
        self, room_id: str, report_id: str
    ) -> tuple[dict[str, Any], dict[str, str]] | None:
        target = await self._target(room_id, report_id)
        if target is None:
            return None
        k = self._keys
        reply = await self._resolve(
            keys=[k.reports(room_id), k.reporters(room_id, target), k.review(room_id)],
            args=[report_id, target],
        )
        if not reply or not reply[0]:
            return None
        return orjson.loads(reply[0]), _pairs(list(reply[1:]))

    async def hold_once(self, room_id: str, report_id: str) -> bool:
        return bool(await self._hold(keys=[self._keys.reports(room_id)], args=[report_id]))

    @staticmethod
    def _member(room_id: str, report_id: str) -> str:
        return f"{room_id} {report_id}"

    async def schedule_alert(self, room_id: str, report_id: str, due_ms: int) -> None:
        member = self._member(room_id, report_id)
        await self._client.zadd(self._keys.report_alerts(), {member: due_ms}, nx=True)

    async def cancel_alert(self, room_id: str, report_id: str) -> None:
        await self._client.zrem(self._keys.report_alerts(), self._member(room_id, report_id))

    async def due_alerts(self, now_ms: int, limit: int) -> list[tuple[str, str]]:
        if limit <= 0:
            return []
        key = self._keys.report_alerts()
        found = await self._client.zrangebyscore(key, "-inf", now_ms, 0, limit)
        out: list[tuple[str, str]] = []
        for raw in found:
            member = text(raw)
            # Every process sweeps: whoever removes the member sends the alert.
            if await self._client.zrem(key, member):
                room_id, _, report_id = member.partition(" ")
                out.append((room_id, report_id))
        return out
