"""Share tokens and invite attribution: the rules, the records and the store contract.

A share token is 16 characters of URL-safe base64 over 12 random bytes (96 bits): short
enough for a share path, unguessable, and with nothing about the user in it. The store
maps it back to its owner and room; an HMAC-signed compact id would have saved that
lookup, but it must carry the owner (or an index to look up anyway), cannot be revoked
without a key rotation, and the lookup runs in the same script as the attribution.

InviteStore contract (both engines, tests/contract/test_invite_store.py):

- ``issue_token(room, uid, token, max_per_user)`` stores ``token`` for ``uid`` in
  ``room`` unless the user already holds ``max_per_user`` tokens there; then it answers
  the user's newest token instead, with ``new`` False. Atomic per room.
- ``attribute(room, invitee, token, now_ms)`` is one atomic step per room:
  an unknown token is ``UNKNOWN`` (nothing written); the owner opening their own is
  ``SELF``. Otherwise the open is recorded (opens count distinct inviter → opener pairs),
  then: an invitee already attributed keeps their inviter (``REPEAT``: first touch wins);
  an invitee who is the root of the inviter's chain would close a loop (``LOOP``);
  else ``inviter → invitee`` is recorded with depth = inviter's depth + 1 (an inviter
  nobody invited has depth 0) and the invitee's root = the inviter's root.
  Since an invitee gets an inviter at most once and only when it is not the root of the
  inviter's chain, the records always form a forest.
- ``summary(room)`` reads opens, invited UV, inviters and the depth histogram in one step.
- ``invitees(room)``: invitee -> the ms their attribution was recorded.
- ``invited_by(room, uid)``: how many invitees ``uid`` brought into the room;
  ``second_level(room, uid)``: how many their invitees brought (counted in the
  attribution's step); ``inviter_of(room, uid)``: (inviter, attributed ms) or None.
- ``rewards`` / ``set_rewards``: the room's invite reward rules, as text.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

TOKEN_BYTES = 12
TOKEN_LEN = 16
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16}\Z")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def valid_token(value: object) -> bool:
    return isinstance(value, str) and TOKEN_RE.match(value) is not None


class Outcome(StrEnum):
    RECORDED = "recorded"
    REPEAT = "repeat"
    SELF = "self"
    LOOP = "loop"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Attribution:
    outcome: Outcome
    inviter: str | None = None
    depth: int | None = None


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One invitee's record: who brought them, how deep, the root of their chain."""

    depth: int
    inviter: str
    root: str
    at_ms: int

    def encode(self) -> str:
        return f"{self.depth}\t{self.inviter}\t{self.root}\t{self.at_ms}"

    @classmethod
    def decode(cls, raw: str) -> TreeEntry:
        depth, inviter, root, at_ms = raw.split("\t")
        return cls(int(depth), inviter, root, int(at_ms))


def judge(
    owner: str | None, invitee: str, entry_of: Mapping[str, TreeEntry], now_ms: int
) -> tuple[Attribution, TreeEntry | None]:
    """What one open decides, from the token's owner and the room's tree (pure; the
    memory store runs it, ``lua/attribute.lua`` is the same rule)."""
    if owner is None:
        return Attribution(Outcome.UNKNOWN), None
    if owner == invitee:
        return Attribution(Outcome.SELF, owner), None
    if invitee in entry_of:
        return Attribution(Outcome.REPEAT, owner), None
    up = entry_of.get(owner)
    depth, root = (1, owner) if up is None else (up.depth + 1, up.root)
    if root == invitee:
        return Attribution(Outcome.LOOP, owner), None
    return Attribution(Outcome.RECORDED, owner, depth), TreeEntry(depth, owner, root, now_ms)


@dataclass(frozen=True, slots=True)
class InviteSummary:
    opens: int = 0
    invited_uv: int = 0
    inviters: int = 0
    depths: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InvitedSales:
    buyers: int = 0
    gmv_fen: int = 0


def k_factor(invited_uv: int, inviters: int) -> float:
    """Invited UV per inviter (the viral coefficient of the room's opens); 0 for none."""
    return round(invited_uv / inviters, 4) if inviters else 0.0


def invited_sales(events: Iterable[Mapping[str, str]], invitees: Mapping[str, int]) -> InvitedSales:
    """Buyers and GMV of invitees, from a room's ledger events (docs/ledger.md).

    An order counts when an invitee paid it at or after their attribution (a purchase
    made before the invite was not brought by it); its refund (``order_refunded`` with
    ``late`` "0") is taken off the GMV. Buyers: invitees with at least one such order.
    """
    counted: dict[str, int] = {}  # order -> amount
    buyers: set[str] = set()
    gmv = 0
    for event in events:
        kind = event.get("type")
        if kind == "order_paid":
            uid = event.get("uid", "")
            at = invitees.get(uid)
            try:
                amount, ts = int(event["amount_fen"]), int(event["ts"])
            except (KeyError, ValueError):
                continue
            if at is None or ts < at:
                continue
            counted[event.get("order", "")] = amount
            buyers.add(uid)
            gmv += amount
        elif kind == "order_refunded" and event.get("late", "0") == "0":
            order = event.get("order", "")
            if order in counted:
                try:
                    gmv -= min(int(event["amount_fen"]), counted[order])
                except (KeyError, ValueError):
                    continue
    return InvitedSales(len(buyers), gmv)


class InviteStore(Protocol):
    async def issue_token(
        self, room_id: str, uid: str, token: str, max_per_user: int
    ) -> tuple[str, bool]: ...

    async def attribute(
        self, room_id: str, invitee: str, token: str, now_ms: int
    ) -> Attribution: ...

    async def summary(self, room_id: str) -> InviteSummary: ...

    async def invitees(self, room_id: str) -> dict[str, int]: ...

    async def invited_by(self, room_id: str, uid: str) -> int: ...

    async def second_level(self, room_id: str, uid: str) -> int: ...

    async def inviter_of(self, room_id: str, uid: str) -> tuple[str, int] | None: ...

    async def rewards(self, room_id: str) -> str | None: ...

    async def set_rewards(self, room_id: str, raw: str) -> None: ...
