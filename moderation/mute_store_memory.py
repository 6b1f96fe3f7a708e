"""In-process MuteStore (see ``moderation.mute_store`` for the contract).

Lapsed mutes of a room go when a call for that room meets them; a room nobody asks about
again keeps its few lapsed entries until the process ends (bounded by mutes ever set).
"""

from __future__ import annotations

import bisect

from moderation.memory import ExpiringMap
from moderation.mute_store import REFUSALS_CAP, Ban, Mute, check_until, check_window


def _in_force(until_ms: int | None, now_ms: int) -> bool:
    return until_ms is None or until_ms > now_ms


class MemoryMuteStore:
    def __init__(self) -> None:
        self._mutes: dict[str, dict[str, Mute]] = {}
        self._bans: dict[str, Ban] = {}
        # (room, uid) -> refusal times (ms), sorted
        self._refusals: ExpiringMap[tuple[str, str], list[int]] = ExpiringMap()

    def _room(self, room_id: str, now_ms: int) -> dict[str, Mute]:
        """The room's mutes in force (lapsed ones dropped); not stored when empty."""
        mutes = self._mutes.get(room_id)
        if mutes is None:
            return {}
        for uid in [u for u, m in mutes.items() if m.until_ms <= now_ms]:
            del mutes[uid]
        if not mutes:
            del self._mutes[room_id]
        return mutes

    def _prune_bans(self, now_ms: int) -> None:
        for uid in [u for u, b in self._bans.items() if not _in_force(b.until_ms, now_ms)]:
            del self._bans[uid]

    async def mute(
        self, room_id: str, uid: str, until_ms: int, by: str, reason: str, *, now_ms: int
    ) -> Mute:
        check_until(uid, until_ms, now_ms)
        self._room(room_id, now_ms)
        mute = Mute(uid=uid, until_ms=int(until_ms), by=by, reason=reason, at_ms=int(now_ms))
        self._mutes.setdefault(room_id, {})[uid] = mute
        return mute

    async def unmute(self, room_id: str, uid: str, *, now_ms: int) -> bool:
        mutes = self._room(room_id, now_ms)
        if mutes.pop(uid, None) is None:
            return False
        if not mutes:
            del self._mutes[room_id]
        return True

    async def muted_until(self, room_id: str, uid: str, now_ms: int) -> int | None:
        mute = self._mutes.get(room_id, {}).get(uid)
        if mute is None or mute.until_ms <= now_ms:
            return None
        return mute.until_ms

    async def list_mutes(self, room_id: str, now_ms: int) -> list[Mute]:
        mutes = self._room(room_id, now_ms)
        return sorted(mutes.values(), key=lambda m: (m.until_ms, m.uid))

    async def ban(
        self, uid: str, until_ms: int | None, by: str, reason: str, *, now_ms: int
    ) -> Ban:
        check_until(uid, until_ms, now_ms)
        self._prune_bans(now_ms)
        until = None if until_ms is None else int(until_ms)
        ban = Ban(uid=uid, until_ms=until, by=by, reason=reason, at_ms=int(now_ms))
        self._bans[uid] = ban
        return ban

    async def unban(self, uid: str, *, now_ms: int) -> bool:
        self._prune_bans(now_ms)
        return self._bans.pop(uid, None) is not None

    async def banned(self, uid: str, now_ms: int) -> bool:
        ban = self._bans.get(uid)
        return ban is not None and _in_force(ban.until_ms, now_ms)

    async def list_bans(self, now_ms: int) -> list[Ban]:
        self._prune_bans(now_ms)
        forever = float("inf")
        return sorted(
            self._bans.values(),
            key=lambda b: (forever if b.until_ms is None else b.until_ms, b.uid),
        )

    async def record_refusal(self, room_id: str, uid: str, now_ms: int, window_ms: int) -> int:
        check_window(window_ms)
        now = int(now_ms)
        times = self._refusals.get((room_id, uid), now) or []
        del times[: bisect.bisect_right(times, now - window_ms)]
        bisect.insort(times, now)
        del times[:-REFUSALS_CAP]
        self._refusals.set((room_id, uid), times, now + window_ms, now)
        return len(times)
