"""Redis key layout of the growth package.

Every key of one room carries the room's hash tag ``{room_id}`` (as ``rooms.keys``), so
each per-room script touches one slot and runs unchanged on Redis Cluster. The reminder
schedule is the one global key: its script touches nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GrowthKeys:
    prefix: str = "interact:"

    def tokens(self, room_id: str) -> str:
        """Hash: share token -> the uid it belongs to."""
        return f"{self.prefix}g:{{{room_id}}}:tok"

    def user_tokens(self, room_id: str, uid: str) -> str:
        """List: the user's share tokens in the room, oldest first (capped)."""
        return f"{self.prefix}g:{{{room_id}}}:ut:{uid}"

    def tree(self, room_id: str) -> str:
        """Hash: invitee -> ``depth TAB inviter TAB root TAB attributed_at_ms``."""
        return f"{self.prefix}g:{{{room_id}}}:tree"

    def kids(self, room_id: str) -> str:
        """Hash: inviter -> invitees attributed to them (its length: the inviters)."""
        return f"{self.prefix}g:{{{room_id}}}:kids"

    def kids2(self, room_id: str) -> str:
        """Hash: inviter -> second-level invitees (their invitees' invitees)."""
        return f"{self.prefix}g:{{{room_id}}}:kids2"

    def rewards(self, room_id: str) -> str:
        """String: the room's invite reward rules (JSON, ``growth.rewards``)."""
        return f"{self.prefix}g:{{{room_id}}}:rewards"

    def opened(self, room_id: str) -> str:
        """Set: ``inviter TAB opener`` pairs, one per invite opened by someone else."""
        return f"{self.prefix}g:{{{room_id}}}:opened"

    def depths(self, room_id: str) -> str:
        """Hash: depth -> invitees at that depth."""
        return f"{self.prefix}g:{{{room_id}}}:depth"

    def credits(self, room_id: str, uid: str) -> str:
        """Hash: template id -> the user's subscribe-message credits left in the room."""
        return f"{self.prefix}g:{{{room_id}}}:cred:{uid}"

    def subscribers(self, room_id: str) -> str:
        """Set: uids that ever subscribed to the room's reminders."""
        return f"{self.prefix}g:{{{room_id}}}:subs"

    def sent(self, room_id: str, stage: str, start_ms: int) -> str:
        """Hash: uid -> state of its reminder for one stage of one start time."""
        return f"{self.prefix}g:{{{room_id}}}:sent:{stage}:{start_ms}"

    def due(self) -> str:
        """Sorted set: reminder jobs (``room TAB stage TAB start_ms``) -> due or lease ms."""
        return f"{self.prefix}g:reminders:due"
