"""ReminderStore contract (``growth.reminders``), on every engine."""

from __future__ import annotations

import asyncio

import pytest

from growth.reminders import Job, Mark, Stage
from tests.contract.growth_fixtures import MakeStores, make_stores_fixture  # noqa: F401

R = "room-1"
LEAD = Job(R, Stage.LEAD, 10_000)
START = Job(R, Stage.START, 10_000)


async def test_credits_are_capped_per_user_and_room(make_stores: MakeStores) -> None:
    _, store = make_stores()
    assert await store.add_credits(R, "u1", ["t1", "t1", "t2"], 4) == (3, {"t1": 2, "t2": 1})
    assert await store.add_credits(R, "u1", ["t2", "t2", "t2"], 4) == (1, {"t1": 2, "t2": 2})
    assert await store.add_credits(R, "u1", ["t1"], 4) == (0, {"t1": 2, "t2": 2})
    assert await store.add_credits("room-2", "u1", ["t1"], 4) == (1, {"t1": 1})
    assert await store.add_credits(R, "u2", ["t1"], 4) == (1, {"t1": 1})
    assert await store.credits(R, "u1") == {"t1": 2, "t2": 2}
    assert sorted(await store.subscribers(R)) == ["u1", "u2"]
    assert await store.subscribers("room-3") == []


async def test_take_spends_one_credit_once_per_job_in_template_order(
    make_stores: MakeStores,
) -> None:
    _, store = make_stores()
    await store.add_credits(R, "u1", ["t2", "t1"], 4)
    assert await store.take(LEAD, "u1", ["t1", "t2"]) == "t1"
    assert await store.take(LEAD, "u1", ["t1", "t2"]) is None  # marked for this job
    assert await store.mark_of(LEAD, "u1") is Mark.PENDING
    assert await store.take(START, "u1", ["t1", "t2"]) == "t2"
    assert await store.credits(R, "u1") == {}
    # No credit: nothing taken, nothing marked (a later credit still counts).
    assert await store.take(Job(R, Stage.START, 20_000), "u1", ["t1", "t2"]) is None
    assert await store.mark_of(Job(R, Stage.START, 20_000), "u1") is None


@pytest.mark.parametrize(
    ("mark", "credits_after", "mark_after"),
    [
        (Mark.SENT, {"t1": 1}, Mark.SENT),
        (Mark.UNKNOWN, {"t1": 1}, Mark.UNKNOWN),
        (Mark.REFUSED, {}, Mark.REFUSED),
        (Mark.FAILED, {"t1": 2}, Mark.FAILED),
        (Mark.RETRY, {"t1": 2}, None),
    ],
)
async def test_settle(
    make_stores: MakeStores, mark: Mark, credits_after: dict[str, int], mark_after: Mark | None
) -> None:
    _, store = make_stores()
    await store.add_credits(R, "u1", ["t1", "t1"], 4)
    assert await store.take(START, "u1", ["t1"]) == "t1"
    await store.settle(START, "u1", "t1", mark)
    assert await store.credits(R, "u1") == credits_after
    assert await store.mark_of(START, "u1") == mark_after
    taken_again = await store.take(START, "u1", ["t1"])
    assert (taken_again == "t1") is (mark is Mark.RETRY)


async def test_concurrent_takes_spend_each_credit_once(make_stores: MakeStores) -> None:
    _, one = make_stores()
    _, two = make_stores()
    await one.add_credits(R, "u1", ["t1"] * 3, 10)
    jobs = [Job(R, Stage.START, 1_000 * i) for i in range(1, 6)] * 4
    taken = await asyncio.gather(
        *((one if i % 2 else two).take(job, "u1", ["t1"]) for i, job in enumerate(jobs))
    )
    assert sum(t is not None for t in taken) == 3
    assert await one.credits(R, "u1") == {}


async def test_jobs_are_claimed_by_one_holder_and_come_back_after_the_lease(
    make_stores: MakeStores,
) -> None:
    _, one = make_stores()
    _, two = make_stores()
    await one.ensure_job(LEAD, 5_000)
    await one.ensure_job(START, 10_000)
    await one.ensure_job(LEAD, 1)  # already there: the due time stays
    assert await one.due_jobs() == {LEAD: 5_000, START: 10_000}
    assert await one.claim(4_999, 1_000) is None
    claims = await asyncio.gather(one.claim(5_000, 1_000), two.claim(5_000, 1_000))
    held = [c for c in claims if c is not None]
    assert len(held) == 1 and held[0].job == LEAD and held[0].lease == 6_000
    # Leased: not due again until the lease ends, then another holder takes it over.
    assert await two.claim(5_999, 1_000) is None
    taken_over = await two.claim(6_000, 1_000)
    assert taken_over is not None and taken_over.job == LEAD and taken_over.lease == 7_000
    # The first holder's lease is gone: it may neither finish, move nor extend the job.
    assert not await one.finish(held[0])
    assert not await one.retry_at(held[0], 9_000)
    assert await one.extend(held[0], 9_000) is None
    extended = await two.extend(taken_over, 8_000)
    assert extended is not None and extended.lease == 8_000
    assert await two.retry_at(extended, 9_500)
    assert await one.due_jobs() == {LEAD: 9_500, START: 10_000}
    again = await one.claim(10_000, 1_000)
    assert again is not None and again.job == LEAD  # earliest due first
    assert await one.finish(again)
    assert await one.due_jobs() == {START: 10_000}
    await one.drop_job(START)
    assert await one.due_jobs() == {}


async def test_a_claimed_job_keeps_its_lease_when_ensured_again(make_stores: MakeStores) -> None:
    _, store = make_stores()
    await store.ensure_job(START, 100)
    claim = await store.claim(100, 60_000)
    assert claim is not None
    await store.ensure_job(START, 100)
    assert await store.claim(200, 60_000) is None
    assert await store.finish(claim)
