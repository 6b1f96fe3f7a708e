"""In-process RoomStats (see ``rooms.stats`` for the contract)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Stats:
    pv: int = 0
    comments: int = 0
    likes: int = 0
    peak_online: int = 0
    viewers: set[str] = field(default_factory=set)
    participants: set[str] = field(default_factory=set)


class MemoryRoomStats:
    def __init__(self) -> None:
        self._rooms: dict[str, _Stats] = {}

    def _get(self, room_id: str) -> _Stats:
        stats = self._rooms.get(room_id)
        if stats is None:
            stats = self._rooms[room_id] = _Stats()
        return stats

    async def joined(self, room_id: str, uids: list[str]) -> None:
        stats = self._get(room_id)
        stats.pv += len(uids)
        stats.viewers.update(uids)

    async def commented(self, room_id: str, uid: str) -> None:
        stats = self._get(room_id)
        stats.comments += 1
        stats.participants.add(uid)

    async def add_likes(self, room_id: str, n: int) -> int:
        stats = self._get(room_id)
        stats.likes += n
        return stats.likes

    async def observe_online(self, room_id: str, online: int) -> None:
        stats = self._get(room_id)
        stats.peak_online = max(stats.peak_online, online)

    async def get(self, room_id: str) -> dict[str, int]:
        s = self._get(room_id)
        return {
            "pv": s.pv,
            "uv": len(s.viewers),
            "peak_online": s.peak_online,
            "comments": s.comments,
            "likes": s.likes,
            "participants": len(s.participants),
        }
