"""Redis key layout of the rooms package.

Every key of one room carries the room's hash tag ``{room_id}``, so each per-room Lua
script touches one hash slot and runs unchanged on Redis Cluster. ``prefix`` lets
several deployments (or test runs) share one Redis; it must not contain ``{``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoomKeys:
    prefix: str = "interact:"

    def room(self, room_id: str) -> str:
        """Hash: the room record (id, title, anchor, status, timestamps)."""
        return f"{self.prefix}room:{{{room_id}}}"

    def index(self) -> str:
        """Sorted set: room ids scored by creation time (the one global key)."""
        return f"{self.prefix}rooms"

    def unstarted(self) -> str:
        """Sorted set: ids of rooms created with a deadline to start, scored by it (global);
        read to drop expired rooms from ``index``."""
        return f"{self.prefix}rooms:unstarted"

    def ended(self) -> str:
        """Sorted set: ids of ended rooms scored by when their record expires (global); read
        to drop them from ``index`` once it has (``rooms.retention``)."""
        return f"{self.prefix}rooms:ended"

    def anchor_rooms(self, anchor: str) -> str:
        """Sorted set: the anchor's rooms not ended -> ms they expire unless started (+inf
        once started); the anchor's quota counts its members."""
        return f"{self.prefix}anchor:{{{anchor}}}:rooms"

    def dm_meta(self, room_id: str) -> str:
        """Hash: ``seq`` (last sequence number) and ``epoch`` of the danmaku log."""
        return f"{self.prefix}dm:{{{room_id}}}:meta"

    def dm_history(self, room_id: str) -> str:
        """Sorted set: stored danmaku payloads scored by seq."""
        return f"{self.prefix}dm:{{{room_id}}}:hist"

    def dm_journal(self, room_id: str) -> str:
        """List: every danmaku payload and retraction of the room in order, never trimmed
        (kept only when archiving is on; the archive writer reads it)."""
        return f"{self.prefix}dm:{{{room_id}}}:journal"

    def online(self, room_id: str) -> str:
        """Hash: node id -> ``"count:expires_at_ms"``."""
        return f"{self.prefix}online:{{{room_id}}}"

    def stats(self, room_id: str) -> str:
        """Hash: pv, comments, likes, peak_online counters."""
        return f"{self.prefix}stats:{{{room_id}}}"

    def viewers(self, room_id: str) -> str:
        """HyperLogLog: unique viewer uids."""
        return f"{self.prefix}uv:{{{room_id}}}"

    def participants(self, room_id: str) -> str:
        """HyperLogLog: uids that commented."""
        return f"{self.prefix}part:{{{room_id}}}"

    def channel(self, room_id: str) -> str:
        """Pub/sub channel of the room's events."""
        return f"{self.prefix}ch:{{{room_id}}}"

    def room_of_channel(self, channel: str) -> str:
        head = f"{self.prefix}ch:{{"
        return channel[len(head) : -1]
