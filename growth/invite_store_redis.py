"""Redis InviteStore (contract: ``growth.invites``): every write is one script on the
room's slot (``lua/share_token.lua``, ``lua/attribute.lua``)."""

from __future__ import annotations

from typing import Any

from growth.invites import Attribution, InviteSummary, Outcome, TreeEntry
from growth.keys import GrowthKeys
from interact.floor.scripts import register, text


class RedisInviteStore:
    def __init__(self, client: Any, keys: GrowthKeys) -> None:
        self._client = client
        self._keys = keys
        self._issue = register(client, "share_token", "growth")
        self._attribute = register(client, "attribute", "growth")
        self._summary = register(client, "invite_summary", "growth")

    async def issue_token(
        self, room_id: str, uid: str, token: str, max_per_user: int
    ) -> tuple[str, bool]:
        k = self._keys
        reply = await self._issue(
            keys=[k.tokens(room_id), k.user_tokens(room_id, uid)],
            args=[token, uid, int(max_per_user)],
        )
        state = int(reply[1])
        if state < 0:
            raise ValueError("share token collision")
        return text(reply[0]), state == 1

    async def attribute(self, room_id: str, invitee: str, token: str, now_ms: int) -> Attribution:
        k = self._keys
        reply = await self._attribute(
            keys=[k.tokens(room_id), k.tree(room_id), k.kids(room_id), k.opened(room_id),
                  k.depths(room_id), k.kids2(room_id)],
            args=[token, invitee, int(now_ms)],
        )  # fmt: skip
        outcome = Outcome(text(reply[0]))
        inviter = text(reply[1]) or None
        depth = int(reply[2]) if outcome is Outcome.RECORDED else None
        return Attribution(outcome, inviter, depth)

    async def summary(self, room_id: str) -> InviteSummary:
        k = self._keys
        opens, uv, inviters, flat = await self._summary(
            keys=[k.opened(room_id), k.tree(room_id), k.kids(room_id), k.depths(room_id)]
        )
        depths = {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return InviteSummary(int(opens), int(uv), int(inviters), depths)

    async def invitees(self, room_id: str) -> dict[str, int]:
        raw = await self._client.hgetall(self._keys.tree(room_id))
        return {text(uid): TreeEntry.decode(text(v)).at_ms for uid, v in raw.items()}

    async def invited_by(self, room_id: str, uid: str) -> int:
        raw = await self._client.hget(self._keys.kids(room_id), uid)
        return int(raw) if raw is not None else 0

    async def second_level(self, room_id: str, uid: str) -> int:
        raw = await self._client.hget(self._keys.kids2(room_id), uid)
        return int(raw) if raw is not None else 0

    async def inviter_of(self, room_id: str, uid: str) -> tuple[str, int] | None:
        raw = await self._client.hget(self._keys.tree(room_id), uid)
        if raw is None:
            return None
        entry = TreeEntry.decode(text(raw))
        return entry.inviter, entry.at_ms

    async def rewards(self, room_id: str) -> str | None:
        raw = await self._client.get(self._keys.rewards(room_id))
        return None if raw is None else text(raw)

    async def set_rewards(self, room_id: str, raw: str) -> None:
        await self._client.set(self._keys.rewards(room_id), raw)
