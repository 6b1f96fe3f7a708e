"""RoomStats: page views, unique viewers, peak online, comments, likes, participation.

Contract:
- ``joined(room, uids)`` counts a page view per uid (repeats count) and each uid as a
  (unique) viewer.
- ``commented`` counts a comment and the uid as a participant.
- ``add_likes`` adds to the like total and returns the new total.
- ``observe_online`` keeps the highest online count seen.
- ``get`` returns ``{"pv", "uv", "peak_online", "comments", "likes", "participants"}``;
  unique counts may be approximate (HyperLogLog on Redis, within 1 %).
"""

from __future__ import annotations

from typing import Protocol

STAT_FIELDS = ("pv", "uv", "peak_online", "comments", "likes", "participants")


class RoomStats(Protocol):
    async def joined(self, room_id: str, uids: list[str]) -> None:
        """One view per uid (repeats count), in one step: a process writes a tick's joins."""
        ...

    async def commented(self, room_id: str, uid: str) -> None: ...

    async def add_likes(self, room_id: str, n: int) -> int: ...

    async def observe_online(self, room_id: str, online: int) -> None: ...

    async def get(self, room_id: str) -> dict[str, int]: ...
