"""Invite rewards: "when N invitees have entered (or one has paid), give the inviter
coupon batch X". Rules, their evaluation, and the service that hands rewards out.

Within WeChat's rules (docs/growth.md §1): a reward follows what invitees did (entered
through the inviter's token, paid an order), never a share; direct invites only unless a
rule says ``levels: 2`` — then the inviter's own inviter counts second-level invitees
too, and no further (multi-level schemes are treated as pyramid selling).

Exactly once: each reward is issued with the key ``inv:{room}:{rule}:{inviter}`` by the
coupon store, which returns the first coupon for a key it has seen (in the same step as
the issue and its ``coupon_issued`` ledger event). A rule's id is a digest of its
content, so putting the same rule again never rewards anyone twice.

The coupon side lives in commerce; the application hands in ``issue`` (growth imports
no other domain).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import orjson

from interact.floor.errors import BadRequest

log = logging.getLogger(__name__)

MAX_RULES = 10
MAX_N = 1000
_BATCH_ID_MAX = 100


class Trigger(StrEnum):
    ENTERED = "entered"  # n invitees entered through the inviter's tokens
    PAID = "paid"  # one invitee paid an order


@dataclass(frozen=True, slots=True)
class RewardRule:
    on: Trigger
    n: int
    batch: str
    levels: int = 1

    @property
    def id(self) -> str:
        raw = f"{self.on.value}:{self.n}:{self.batch}:{self.levels}"
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "on": self.on.value, "n": self.n, "batch": self.batch,
                "levels": self.levels}  # fmt: skip


def parse_rules(data: object, valid_batch: Callable[[str], bool]) -> list[RewardRule]:
    """Rules of ``PUT /rooms/{id}/invite-rewards``'s ``rules``, or ``BadRequest``."""
    if not isinstance(data, list) or len(data) > MAX_RULES:
        raise BadRequest(f"'rules' must be a list of at most {MAX_RULES} rules")
    rules: list[RewardRule] = []
    for raw in data:
        if not isinstance(raw, dict) or set(raw) - {"on", "n", "batch", "levels"}:
            raise BadRequest('a rule is {"on": "entered"|"paid", "n", "batch", "levels"}')
        on = raw.get("on")
        if on not in ("entered", "paid"):
            raise BadRequest("a rule's 'on' is entered or paid")
        n = raw.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
            raise BadRequest(f"a rule's 'n' is 1 to {MAX_N}")
        if on == "paid" and n != 1:
            raise BadRequest("a 'paid' rule rewards one invitee's payment: n is 1")
        levels = raw.get("levels", 1)
        if levels not in (1, 2) or isinstance(levels, bool):
            raise BadRequest("a rule's 'levels' is 1 (direct invites, the default) or 2")
        batch = raw.get("batch")
        if not isinstance(batch, str) or len(batch) > _BATCH_ID_MAX or not valid_batch(batch):
            raise BadRequest("a rule's 'batch' is a coupon batch of this room or merchant-wide")
        rules.append(RewardRule(Trigger(on), n, batch, levels))
    if len({r.id for r in rules}) != len(rules):
        raise BadRequest("the same rule twice")
    return rules


def encode_rules(rules: list[RewardRule]) -> str:
    return orjson.dumps([r.to_dict() for r in rules]).decode()


def decode_rules(raw: str | None) -> list[RewardRule]:
    if not raw:
        return []
    return [
        RewardRule(Trigger(r["on"]), int(r["n"]), r["batch"], int(r["levels"]))
        for r in orjson.loads(raw)
    ]


def earned(rule: RewardRule, direct: int, second: int, level: int) -> bool:
    """Whether an inviter ``level`` steps above an invitee who just entered has earned an
    ``entered`` rule's reward, with ``direct`` and ``second``-level invitees (pure)."""
    if rule.on is not Trigger.ENTERED or level > rule.levels:
        return False
    counted = direct + (second if rule.levels == 2 else 0)
    return counted >= rule.n


def reward_key(room_id: str, rule: RewardRule, inviter: str) -> str:
    return f"inv:{room_id}:{rule.id}:{inviter}"


# batch, uid, key, room, reason -> the outcome ("ok", "replay", or a refusal)
IssueReward = Callable[[str, str, str, str, str], Awaitable[str]]


class RewardsStore(Protocol):
    """What the rewards need of the invite store (``growth.invites.InviteStore``)."""

    async def rewards(self, room_id: str) -> str | None: ...

    async def set_rewards(self, room_id: str, raw: str) -> None: ...

    async def inviter_of(self, room_id: str, uid: str) -> tuple[str, int] | None: ...

    async def invited_by(self, room_id: str, uid: str) -> int: ...

    async def second_level(self, room_id: str, uid: str) -> int: ...


@dataclass(slots=True)
class RewardStats:
    issued: int = 0
    replayed: int = 0
    refused: int = 0


class InviteRewards:
    def __init__(self, store: RewardsStore, issue: IssueReward | None = None) -> None:
        self.store = store
        self.issue = issue
        self.stats = RewardStats()

    async def rules(self, room_id: str) -> list[RewardRule]:
        return decode_rules(await self.store.rewards(room_id))

    async def set_rules(self, room_id: str, rules: list[RewardRule]) -> None:
        await self.store.set_rewards(room_id, encode_rules(rules))

    async def entered(self, room_id: str, inviter: str) -> None:
        """An invitee of ``inviter`` was just attributed: check the ``entered`` rules for
        the inviter and (for ``levels: 2`` rules) the inviter's own inviter."""
        rules = [r for r in await self.rules(room_id) if r.on is Trigger.ENTERED]
        if not rules or self.issue is None:
            return
        up = await self.store.inviter_of(room_id, inviter)
        for level, who in ((1, inviter), (2, up[0] if up else None)):
            if who is None:
                continue
            direct = await self.store.invited_by(room_id, who)
            second = await self.store.second_level(room_id, who)
            for rule in rules:
                if earned(rule, direct, second, level):
                    await self._give(room_id, rule, who, "invite_entered")

    async def paid(self, room_id: str, uid: str, paid_ms: int) -> None:
        """``uid`` paid an order in the room: if an invitee (attributed before paying),
        the ``paid`` rules reward their inviter (and, with ``levels: 2``, the next one)."""
        if self.issue is None:
            return
        rules = [r for r in await self.rules(room_id) if r.on is Trigger.PAID]
        me = await self.store.inviter_of(room_id, uid) if rules else None
        if me is None or me[1] > paid_ms:
            return
        up = await self.store.inviter_of(room_id, me[0])
        for rule in rules:
            await self._give(room_id, rule, me[0], "invite_paid")
            if rule.levels == 2 and up is not None:
                await self._give(room_id, rule, up[0], "invite_paid")

    async def _give(self, room_id: str, rule: RewardRule, inviter: str, reason: str) -> None:
        assert self.issue is not None
        outcome = await self.issue(
            rule.batch, inviter, reward_key(room_id, rule, inviter), room_id, reason
        )
        if outcome == "ok":
            self.stats.issued += 1
            log.info("invite reward %s to %s in room %s", rule.id, inviter, room_id)
        elif outcome == "replay":
            self.stats.replayed += 1
        else:
            self.stats.refused += 1
            log.warning("invite reward %s for %s refused: %s", rule.id, inviter, outcome)


__all__ = ["InviteRewards", "IssueReward", "RewardRule", "parse_rules"]
