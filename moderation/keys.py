"""Redis key layout of the moderation package.

Every key of one room carries the room's hash tag ``{room_id}``, so each per-room Lua
script touches one hash slot and runs unchanged on Redis Cluster. Global bans are the one
pair of keys outside any room; they share the tag ``{bans}`` so the ban scripts, which
touch both, stay on one slot too. ``prefix`` is the same as ``rooms.keys.RoomKeys.prefix``;
it must not contain ``{``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModerationKeys:
    prefix: str = "interact:"

    def _room(self, room_id: str) -> str:
        return f"{self.prefix}mod:{{{room_id}}}"

    # --- rate limits (``moderation.rate_limiter``)

    def inbound(self, room_id: str, second: int) -> str:
        """String: comments the room accepted in one Unix second (counter, short TTL)."""
        return f"{self._room(room_id)}:in:{second}"

    def commenter(self, room_id: str, uid: str) -> str:
        """Hash: a user's comment state in a room: ``tat`` (GCRA, µs) and ``last`` (ms)."""
        return f"{self._room(room_id)}:user:{uid}"

    def recent_texts(self, room_id: str, uid: str) -> str:
        """Sorted set: a user's recently accepted text keys scored by time (ms)."""
        return f"{self._room(room_id)}:texts:{uid}"

    def limit(self, key_room: str, key: str) -> str:
        """String: the GCRA theoretical arrival time (µs) of a generic limit."""
        return f"{self._room(key_room)}:rl:{key}"

    # --- mutes and bans (``moderation.mute_store``)

    def mutes(self, room_id: str) -> str:
        """Sorted set: muted uids scored by the end of their mute (ms)."""
        return f"{self._room(room_id)}:mutes"

    def mute_info(self, room_id: str) -> str:
        """Hash: uid -> JSON ``{"by", "reason", "at"}`` of each mute."""
        return f"{self._room(room_id)}:mute-info"

    def refusals(self, room_id: str, uid: str) -> str:
        """Sorted set: a user's recent refusals in a room, scored by time (ms)."""
        return f"{self._room(room_id)}:refusals:{uid}"

    def bans(self) -> str:
        """Sorted set: banned uids scored by the end of their ban (ms, ``inf`` = forever)."""
        return f"{self.prefix}bans:{{bans}}"

    def ban_info(self) -> str:
        """Hash: uid -> JSON ``{"by", "reason", "at"}`` of each ban."""
        return f"{self.prefix}bans:{{bans}}:info"

    # --- moderation log, review queue (``moderation.moderation_log``, ``review_queue``)

    def log(self, room_id: str) -> str:
        """Stream: the room's moderation events."""
        return f"{self.prefix}modlog:{{{room_id}}}"

    def review(self, room_id: str) -> str:
        """Stream: comments of the room held for review, one ``item`` JSON field each."""
        return f"{self.prefix}review:{{{room_id}}}"

    # --- viewer reports (``moderation.report_store``)

    def reports(self, room_id: str) -> str:
        """Hash: ``t:<target>`` -> the open report's id, ``i:<id>`` -> its target, and
        ``h:<id>`` once its comment was held."""
        return f"{self._room(room_id)}:reports"

    def reporters(self, room_id: str, target: str) -> str:
        """Hash: reporter uid -> reason, of the open report on ``target``."""
        return f"{self._room(room_id)}:reporters:{target}"

    def report_alerts(self) -> str:
        """Sorted set: ``<room> <report id>`` scored by when its alert is due (ms); global."""
        return f"{self.prefix}reports:due"

    # --- room settings and circuit breaker (``moderation.room_settings``)

    def settings(self, room_id: str) -> str:
        """Hash: ``slow_s``, ``slow_until`` ("" = until lifted) and ``slow_by``."""
        return f"{self._room(room_id)}:settings"

    def verdicts(self, room_id: str) -> str:
        """Hash: ``t<second>`` / ``r<second>`` -> comments checked / refused in that second."""
        return f"{self._room(room_id)}:verdicts"

    def words(self) -> str:
        """Hash: the operators' word list (``data``, JSON) and its ``version``."""
        return f"{self.prefix}modwords"
