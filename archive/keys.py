"""Redis key layout of the archive package (see ``rooms.keys`` for the prefix rule)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ArchiveKeys:
    prefix: str = "interact:"

    def pending(self) -> str:
        """Sorted set: rooms waiting to be archived, scored by when (Unix ms); global."""
        return f"{self.prefix}archive:pending"

    def lease(self, room_id: str) -> str:
        """String: the token of the process archiving the room (``SET NX PX``)."""
        return f"{self.prefix}archive:{{{room_id}}}:lease"
