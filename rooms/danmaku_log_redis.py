"""Redis DanmakuLog (see ``rooms.danmaku_log`` for the contract).

Append is one Lua script (``lua/append.lua``) that checks the room, numbers the comment,
stores it and publishes it, so seq order, history order and delivery order agree across
every process.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from redis.asyncio import Redis

from interact.floor.errors import Code, Conflict, NotFound
from interact.floor.redis_pipe import is_cluster
from interact.floor.scripts import register
from rooms.danmaku_log import Appended, History, in_window
from rooms.keys import RoomKeys

# The script writes these two itself; a body carrying them would give duplicate keys.
_RESERVED = ("t", "seq")


class RedisDanmakuLog:
    def __init__(
        self, client: Redis, keys: RoomKeys, history_size: int, *, journal: bool = False
    ) -> None:
        self._journal = journal
        self._client = client
        self._keys = keys
        self._size = history_size
        self._append = register(client, "append", "rooms")
        self._history = register(client, "history", "rooms")
        self._retract = register(client, "retract", "rooms")
        # A cluster's subscribers listen with SSUBSCRIBE (rooms.broker_redis_cluster).
        self._publish = (b"SPUBLISH",) if is_cluster(client) else ()

    async def append(
        self, room_id: str, body: dict[str, Any], *, require_live: bool = True
    ) -> Appended:
        clean = {k: v for k, v in body.items() if k not in _RESERVED}
        k = self._keys
        reply = await self._append(
            keys=[
                k.dm_meta(room_id),
                k.dm_history(room_id),
                k.room(room_id),
                *self._journal_key(room_id),
            ],
            args=[
                b"1" if require_live else b"0",
                orjson.dumps(clean),
                self._size,
                secrets.token_hex(4),
                k.channel(room_id),
                *self._publish,
            ],
        )
        tag = reply[0]
        if tag == b"not_found":
            raise NotFound(f"room {room_id} not found")
        if tag == b"not_live":
            raise Conflict(f"room is {reply[1].decode()}", Code.ROOM_NOT_LIVE)
        return Appended(seq=int(reply[1]), epoch=reply[2].decode(), payload=reply[3])

    async def history(
        self, room_id: str, since: int | None, epoch: str | None, limit: int
    ) -> History:
        k = self._keys
        head, cur_epoch, after, latest = await self._history(
            keys=[k.dm_meta(room_id), k.dm_history(room_id)],
            args=[
                secrets.token_hex(4),
                b"" if since is None else str(int(since)),
                epoch or "",
                max(limit, 0),
            ],
        )
        head = int(head)
        cur = cur_epoch.decode()
        if in_window(since, epoch, head, cur, self._size):
            return History(head, cur, True, list(after))
        return History(head, cur, False, list(latest))

    def _journal_key(self, room_id: str) -> list[str]:
        return [self._keys.dm_journal(room_id)] if self._journal else []

    async def retract(self, room_id: str, seq: int) -> bool:
        entry = orjson.dumps({"t": "retract", "seq": int(seq), "ts": int(time.time() * 1000)})
        keys = [self._keys.dm_history(room_id), *self._journal_key(room_id)]
        return bool(await self._retract(keys=keys, args=[int(seq), entry]))

    async def journal(self, room_id: str, start: int, count: int) -> list[bytes]:
        if not self._journal or start < 0 or count <= 0:
            return []
        key = self._keys.dm_journal(room_id)
        return list(await self._client.lrange(key, start, start + count - 1))
