"""Invite rewards (``growth.rewards``) over the invite store and the real coupon store, on
every engine: rewards follow entries and payments, direct by default, two levels at most,
each exactly once and in the room's ledger."""

from __future__ import annotations

import asyncio

from commerce.coupon_service import CouponService
from commerce.coupons import Batch, CouponKind, CouponTerms, new_batch_id
from growth.invites import Outcome, new_token
from growth.rewards import InviteRewards, RewardRule, Trigger, earned
from interact.engine import Engine
from tests.contract.growth_fixtures import MakeStores, make_stores_fixture  # noqa: F401

ROOM = "rwroom"
T0 = 1_700_000_000_000


async def setup(engine: Engine, make_stores: MakeStores) -> tuple[object, InviteRewards, str]:
    invites, _ = make_stores()
    t = CouponTerms(CouponKind.FIXED, 300, 0, 0, T0, T0 + 10**9, ROOM)
    batch = Batch(new_batch_id(ROOM), "invite", t, 100, 10, T0)
    assert await engine.sales.coupons.create_batch(batch, 10)
    coupons = CouponService(engine.sales.coupons, clock=lambda: T0 + 1)

    async def issue(batch_id: str, uid: str, key: str, room: str, reason: str) -> str:
        result = await coupons.issue(batch_id, uid, reason=reason, idem=key, ledger_room=room)
        return result.outcome.value

    return invites, InviteRewards(invites, issue), batch.id


async def chain(invites: object, pairs: list[tuple[str, str]]) -> None:
    for inviter, invitee in pairs:
        token = new_token()
        await invites.issue_token(ROOM, inviter, token, 100)  # type: ignore[attr-defined]
        got = await invites.attribute(ROOM, invitee, token, T0)  # type: ignore[attr-defined]
        assert got.outcome is Outcome.RECORDED


async def rewarded(engine: Engine) -> list[tuple[str, str]]:
    events = await engine.ledger.read(ROOM, None, 1000)
    return sorted((e["uid"], e["reason"]) for _, e in events if e["type"] == "coupon_issued")


async def test_entered_direct_only_by_default_and_once(
    engine: Engine, make_stores: MakeStores
) -> None:
    invites, rewards, batch = await setup(engine, make_stores)
    await rewards.set_rules(ROOM, [RewardRule(Trigger.ENTERED, 2, batch)])
    # ann -> bob -> (cat, dan): bob has 2 direct; ann 1 direct, 2 second-level.
    await chain(invites, [("ann", "bob"), ("bob", "cat")])
    for who in ("ann", "bob"):
        await rewards.entered(ROOM, who)
    assert await rewarded(engine) == []
    await chain(invites, [("bob", "dan")])
    # Evaluated many times at once (every process, every open): one reward.
    await asyncio.gather(*(rewards.entered(ROOM, "bob") for _ in range(20)))
    assert await rewarded(engine) == [("bob", "invite_entered")]
    assert rewards.stats.issued == 1
    assert await invites.second_level(ROOM, "ann") == 2  # type: ignore[attr-defined]


async def test_second_level_when_configured(engine: Engine, make_stores: MakeStores) -> None:
    invites, rewards, batch = await setup(engine, make_stores)
    await rewards.set_rules(ROOM, [RewardRule(Trigger.ENTERED, 3, batch, levels=2)])
    await chain(invites, [("ann", "bob"), ("bob", "cat"), ("bob", "dan"), ("cat", "eve")])
    await rewards.entered(ROOM, "bob")  # bob: 2 direct + 1 second-level = 3; ann: 1 + 2
    await rewards.entered(ROOM, "cat")  # cat's inviter bob, and bob's ann (level 2)
    assert await rewarded(engine) == [("ann", "invite_entered"), ("bob", "invite_entered")]
    # Never a third level: eve is ann's third level and counts nowhere for her.
    assert await invites.second_level(ROOM, "ann") == 2  # type: ignore[attr-defined]


async def test_paid_rewards_the_inviter_of_an_invitee(
    engine: Engine, make_stores: MakeStores
) -> None:
    invites, rewards, batch = await setup(engine, make_stores)
    await rewards.set_rules(ROOM, [RewardRule(Trigger.PAID, 1, batch)])
    await chain(invites, [("ann", "bob"), ("bob", "cat")])
    await rewards.paid(ROOM, "zed", T0 + 5)  # not an invitee
    await rewards.paid(ROOM, "bob", T0 - 5)  # paid before the invite
    assert await rewarded(engine) == []
    await rewards.paid(ROOM, "cat", T0 + 5)  # direct only: bob, not ann
    await rewards.paid(ROOM, "cat", T0 + 6)
    assert await rewarded(engine) == [("bob", "invite_paid")]


def test_earned_is_pure_and_bounded() -> None:
    rule = RewardRule(Trigger.ENTERED, 3, "b")
    assert not earned(rule, 2, 5, 1)  # second-level invitees do not count by default
    assert earned(rule, 3, 0, 1)
    assert not earned(rule, 9, 9, 2)  # a one-level rule never reaches a second level
    two = RewardRule(Trigger.ENTERED, 3, "b", levels=2)
    assert earned(two, 1, 2, 2) and not earned(two, 1, 1, 1)
    assert rule.id == RewardRule(Trigger.ENTERED, 3, "b").id != two.id
