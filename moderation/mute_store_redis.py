"""Redis MuteStore (see ``moderation.mute_store`` for the contract).

A room's mutes are a sorted set (uid scored by until) and a hash of details (who, why,
when) under the room's hash tag; bans are the same pair of global keys, scored ``+inf``
when forever. ``muted_until`` and ``banned`` are one ZSCORE (the hot path of every
comment); writes and lists are Lua scripts that drop lapsed entries on the way. Refusals
are a sorted set per user and room (``lua/refusal.lua``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from interact.floor.redis_pipe import command
from interact.floor.scripts import text
from moderation.keys import ModerationKeys
from moderation.mute_store import REFUSALS_CAP, Ban, Mute, check_until, check_window
from moderation.scripts import register


def _info(by: str, reason: str, now_ms: int) -> bytes:
    return orjson.dumps({"by": by, "reason": reason, "at": int(now_ms)})


def _rows(reply: Sequence[Any]) -> list[tuple[str, int | None, dict[str, Any]]]:
    """``(uid, until or None for forever, details)`` from ``lua/mute_list.lua``."""
    out: list[tuple[str, int | None, dict[str, Any]]] = []
    for i in range(0, len(reply), 3):
        until = float(text(reply[i + 1]))
        details = orjson.loads(reply[i + 2])
        out.append((text(reply[i]), None if until == float("inf") else int(until), details))
    return out


class RedisMuteStore:
    def __init__(self, client: Redis, keys: ModerationKeys) -> None:
        self._client = client
        self._keys = keys
        self._set = register(client, "mute_set")
        self._unset = register(client, "mute_unset")
        self._list = register(client, "mute_list")
        self._refusal = register(client, "refusal")

    async def mute(
        self, room_id: str, uid: str, until_ms: int, by: str, reason: str, *, now_ms: int
    ) -> Mute:
        check_until(uid, until_ms, now_ms)
        k = self._keys
        await self._set(
            keys=[k.mutes(room_id), k.mute_info(room_id)],
            args=[int(now_ms), uid, int(until_ms), _info(by, reason, now_ms), 1],
        )
        return Mute(uid=uid, until_ms=int(until_ms), by=by, reason=reason, at_ms=int(now_ms))

    async def unmute(self, room_id: str, uid: str, *, now_ms: int) -> bool:
        k = self._keys
        removed = await self._unset(
            keys=[k.mutes(room_id), k.mute_info(room_id)], args=[int(now_ms), uid]
        )
        return bool(removed)

    async def muted_until(self, room_id: str, uid: str, now_ms: int) -> int | None:
        raw = await command(self._client, "ZSCORE", self._keys.mutes(room_id), uid)
        until = None if raw is None else float(raw)
        if until is None or until <= now_ms:
            return None
        return int(until)

    async def list_mutes(self, room_id: str, now_ms: int) -> list[Mute]:
        k = self._keys
        reply = await self._list(keys=[k.mutes(room_id), k.mute_info(room_id)], args=[int(now_ms)])
        return [
            Mute(uid=uid, until_ms=int(until or 0), by=d["by"], reason=d["reason"], at_ms=d["at"])
            for uid, until, d in _rows(reply)
        ]

    async def ban(
        self, uid: str, until_ms: int | None, by: str, reason: str, *, now_ms: int
    ) -> Ban:
        check_until(uid, until_ms, now_ms)
        k = self._keys
        until = None if until_ms is None else int(until_ms)
        score = "+inf" if until is None else until
        await self._set(
            keys=[k.bans(), k.ban_info()],
            args=[int(now_ms), uid, score, _info(by, reason, now_ms), 0],
        )
        return Ban(uid=uid, until_ms=until, by=by, reason=reason, at_ms=int(now_ms))

    async def unban(self, uid: str, *, now_ms: int) -> bool:
        k = self._keys
        return bool(await self._unset(keys=[k.bans(), k.ban_info()], args=[int(now_ms), uid]))

    async def banned(self, uid: str, now_ms: int) -> bool:
        raw = await command(self._client, "ZSCORE", self._keys.bans(), uid)
        return raw is not None and float(raw) > now_ms

    async def list_bans(self, now_ms: int) -> list[Ban]:
        k = self._keys
        reply = await self._list(keys=[k.bans(), k.ban_info()], args=[int(now_ms)])
        return [
            Ban(uid=uid, until_ms=until, by=d["by"], reason=d["reason"], at_ms=d["at"])
            for uid, until, d in _rows(reply)
        ]

    async def record_refusal(self, room_id: str, uid: str, now_ms: int, window_ms: int) -> int:
        check_window(window_ms)
        # A member of its own, so refusals in the same ms are counted apart.
        member = f"{int(now_ms)}:{secrets.token_hex(8)}"
        count = await self._refusal(
            keys=[self._keys.refusals(room_id, uid)],
            args=[int(now_ms), int(window_ms), member, REFUSALS_CAP],
        )
        return int(count)
