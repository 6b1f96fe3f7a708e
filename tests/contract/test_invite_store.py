"""InviteStore contract (``growth.invites``), on every engine."""

from __future__ import annotations

import asyncio

from growth.invites import Attribution, InviteSummary, Outcome, new_token
from tests.contract.growth_fixtures import MakeStores, make_stores_fixture  # noqa: F401

R = "room-1"


async def _token(store: object, uid: str, room: str = R) -> str:
    token, new = await store.issue_token(room, uid, new_token(), 5)  # type: ignore[attr-defined]
    assert new
    return token


async def test_tokens_are_per_user_and_capped_then_the_newest_comes_back(
    make_stores: MakeStores,
) -> None:
    invites, _ = make_stores()
    issued = [await invites.issue_token(R, "alice", new_token(), 3) for _ in range(3)]
    assert all(new for _, new in issued)
    assert len({t for t, _ in issued}) == 3
    again, new = await invites.issue_token(R, "alice", new_token(), 3)
    assert (again, new) == (issued[-1][0], False)
    # Another user, or the same user in another room, has a cap of their own.
    assert (await invites.issue_token(R, "bob", new_token(), 3))[1]
    assert (await invites.issue_token("room-2", "alice", new_token(), 3))[1]


async def test_a_colliding_token_is_refused_not_reassigned(make_stores: MakeStores) -> None:
    invites, _ = make_stores()
    token, _ = await invites.issue_token(R, "alice", "A" * 16, 5)
    try:
        await invites.issue_token(R, "bob", token, 5)
    except ValueError:
        pass
    else:
        raise AssertionError("a second owner for one token")
    got = await invites.attribute(R, "carol", token, 1)
    assert got == Attribution(Outcome.RECORDED, "alice", 1)


async def test_attribution_first_touch_depth_self_loop_unknown(make_stores: MakeStores) -> None:
    invites, _ = make_stores()
    a = await _token(invites, "alice")
    assert await invites.attribute(R, "alice", a, 10) == Attribution(Outcome.SELF, "alice")
    assert await invites.attribute(R, "bob", a, 11) == Attribution(Outcome.RECORDED, "alice", 1)
    assert await invites.attribute(R, "bob", a, 12) == Attribution(Outcome.REPEAT, "alice")
    b = await _token(invites, "bob")
    assert await invites.attribute(R, "carol", b, 13) == Attribution(Outcome.RECORDED, "bob", 2)
    c = await _token(invites, "carol")
    # carol's share opened by alice, the root of carol's chain: a loop, not recorded.
    assert await invites.attribute(R, "alice", c, 14) == Attribution(Outcome.LOOP, "carol")
    # bob was brought by alice first: a later touch by carol changes nothing.
    assert await invites.attribute(R, "bob", c, 15) == Attribution(Outcome.REPEAT, "carol")
    assert await invites.attribute(R, "dave", "Z" * 16, 16) == Attribution(Outcome.UNKNOWN)
    # A token is bound to its room.
    assert await invites.attribute("room-2", "dave", a, 17) == Attribution(Outcome.UNKNOWN)

    summary = await invites.summary(R)
    # opens: alice→bob, bob→carol, carol→alice, carol→bob (distinct pairs, self excluded)
    assert summary == InviteSummary(opens=4, invited_uv=2, inviters=2, depths={1: 1, 2: 1})
    assert await invites.invitees(R) == {"bob": 11, "carol": 13}
    assert await invites.invited_by(R, "alice") == 1
    assert await invites.invited_by(R, "bob") == 1
    assert await invites.invited_by(R, "carol") == 0
    assert await invites.summary("room-none") == InviteSummary()
    assert await invites.invitees("room-none") == {}


async def test_concurrent_opens_by_one_invitee_record_one_inviter(
    make_stores: MakeStores,
) -> None:
    first, _ = make_stores()
    second, _ = make_stores()  # another process on redis
    tokens = [await _token(first, f"inv{i}") for i in range(20)]
    results = await asyncio.gather(
        *((first if i % 2 else second).attribute(R, "target", t, i) for i, t in enumerate(tokens))
    )
    recorded = [r for r in results if r.outcome is Outcome.RECORDED]
    assert len(recorded) == 1
    assert all(r.outcome is Outcome.REPEAT for r in results if r not in recorded)
    summary = await second.summary(R)
    assert (summary.invited_uv, summary.inviters, summary.opens) == (1, 1, 20)


async def test_two_users_inviting_each_other_at_once_never_make_a_cycle(
    make_stores: MakeStores,
) -> None:
    first, _ = make_stores()
    second, _ = make_stores()
    for round_ in range(10):
        x, y = f"x{round_}", f"y{round_}"
        tx, ty = await _token(first, x), await _token(first, y)
        one, two = await asyncio.gather(first.attribute(R, y, tx, 1), second.attribute(R, x, ty, 1))
        outcomes = sorted([one.outcome, two.outcome])
        assert outcomes == [Outcome.LOOP, Outcome.RECORDED], (round_, one, two)
