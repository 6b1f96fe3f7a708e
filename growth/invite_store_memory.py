"""In-process InviteStore (contract: ``growth.invites``); nothing awaits between a read
and its write, so each operation is atomic on the event loop."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from growth.invites import Attribution, InviteSummary, Outcome, TreeEntry, judge


@dataclass(slots=True)
class _Room:
    tokens: dict[str, str] = field(default_factory=dict)
    user_tokens: dict[str, list[str]] = field(default_factory=dict)
    tree: dict[str, TreeEntry] = field(default_factory=dict)
    kids: Counter[str] = field(default_factory=Counter)
    opened: set[tuple[str, str]] = field(default_factory=set)
    depths: Counter[int] = field(default_factory=Counter)
    kids2: Counter[str] = field(default_factory=Counter)
    rewards: str | None = None


class MemoryInviteStore:
    def __init__(self) -> None:
        self._rooms: dict[str, _Room] = {}

    def _room(self, room_id: str) -> _Room:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = _Room()
        return room

    async def issue_token(
        self, room_id: str, uid: str, token: str, max_per_user: int
    ) -> tuple[str, bool]:
        room = self._room(room_id)
        held = room.user_tokens.setdefault(uid, [])
        if len(held) >= max_per_user and held:
            return held[-1], False
        if token in room.tokens:
            raise ValueError("share token collision")
        room.tokens[token] = uid
        held.append(token)
        return token, True

    async def attribute(self, room_id: str, invitee: str, token: str, now_ms: int) -> Attribution:
        room = self._rooms.get(room_id)
        owner = None if room is None else room.tokens.get(token)
        if room is None or owner is None:
            return Attribution(Outcome.UNKNOWN)
        verdict, entry = judge(owner, invitee, room.tree, now_ms)
        if verdict.outcome is not Outcome.SELF:
            room.opened.add((owner, invitee))
        if entry is not None:
            room.tree[invitee] = entry
            room.kids[owner] += 1
            room.depths[entry.depth] += 1
            up = room.tree.get(owner)
            if up is not None:
                room.kids2[up.inviter] += 1
        return verdict

    async def summary(self, room_id: str) -> InviteSummary:
        room = self._rooms.get(room_id)
        if room is None:
            return InviteSummary()
        return InviteSummary(
            opens=len(room.opened),
            invited_uv=len(room.tree),
            inviters=len(room.kids),
            depths=dict(room.depths),
        )

    async def invitees(self, room_id: str) -> dict[str, int]:
        room = self._rooms.get(room_id)
        return {} if room is None else {uid: e.at_ms for uid, e in room.tree.items()}

    async def invited_by(self, room_id: str, uid: str) -> int:
        room = self._rooms.get(room_id)
        return 0 if room is None else room.kids.get(uid, 0)

    async def second_level(self, room_id: str, uid: str) -> int:
        room = self._rooms.get(room_id)
        return 0 if room is None else room.kids2.get(uid, 0)

    async def inviter_of(self, room_id: str, uid: str) -> tuple[str, int] | None:
        room = self._rooms.get(room_id)
        entry = None if room is None else room.tree.get(uid)
        return None if entry is None else (entry.inviter, entry.at_ms)

    async def rewards(self, room_id: str) -> str | None:
        room = self._rooms.get(room_id)
        return None if room is None else room.rewards

    async def set_rewards(self, room_id: str, raw: str) -> None:
        self._room(room_id).rewards = raw
