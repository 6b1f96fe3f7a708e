"""RateLimiter contract (``moderation.rate_limiter``), on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from moderation.keys import ModerationKeys
from moderation.rate_limiter import RateDecision, RateLimiter, RateReason
from moderation.rate_limiter_memory import MemoryRateLimiter
from moderation.rate_limiter_redis import RedisRateLimiter
from tests.contract.conftest import NewClient

NOW = 1_700_000_000_000  # a whole second
OFF: dict[str, Any] = {
    "rate_per_s": 0,
    "burst": 1,
    "repeat_window_ms": 0,
    "slow_mode_ms": 0,
    "room_cap_per_s": 0,
}

Backend = tuple[aioredis.Redis, ModerationKeys] | None


@pytest.fixture
async def backend(
    kind: str, request: pytest.FixtureRequest, new_redis_client: NewClient
) -> AsyncIterator[Backend]:
    """None on memory; on redis a client of its own and this test's key layout."""
    if kind == "memory":
        yield None
        return
    prefix = request.getfixturevalue("redis_prefix")
    client = new_redis_client()
    yield client, ModerationKeys(prefix)
    await client.aclose()


@pytest.fixture
def limiter(backend: Backend) -> RateLimiter:
    return MemoryRateLimiter() if backend is None else RedisRateLimiter(*backend)


async def comment(
    limiter: RateLimiter,
    now: int,
    text: str = "",
    uid: str = "u1",
    room: str = "r",
    **rules: Any,
) -> RateDecision:
    return await limiter.check_comment(room, uid, text, now, **{**OFF, **rules})


def refused(reason: RateReason, retry_after_ms: int) -> RateDecision:
    return RateDecision(False, reason, retry_after_ms)


OK = RateDecision(True, RateReason.OK, 0)


async def test_with_every_rule_off_everything_passes(limiter: RateLimiter) -> None:
    for _ in range(50):
        assert await comment(limiter, NOW, text="same") == OK
    assert (await comment(limiter, NOW)).reason == "ok"  # the reason is a str enum


async def test_gcra_allows_a_burst_then_the_rate(limiter: RateLimiter) -> None:
    rules = {"rate_per_s": 1, "burst": 3}
    for i in range(3):
        assert await comment(limiter, NOW, text=f"t{i}", **rules) == OK
    assert await comment(limiter, NOW, text="t3", **rules) == refused(RateReason.RATE, 1000)
    assert await comment(limiter, NOW + 999, text="t3", **rules) == refused(RateReason.RATE, 1)
    assert await comment(limiter, NOW + 1000, text="t3", **rules) == OK
    assert await comment(limiter, NOW + 1000, text="t4", **rules) == refused(RateReason.RATE, 1000)
    # Idle long enough, the whole burst is back.
    later = NOW + 60_000
    results = [await comment(limiter, later, text=f"x{i}", **rules) for i in range(4)]
    assert [d.allowed for d in results] == [True, True, True, False]


async def test_gcra_with_a_fractional_interval(limiter: RateLimiter) -> None:
    rules = {"rate_per_s": 3, "burst": 1}  # one per 333.333 ms
    assert await comment(limiter, NOW, **rules) == OK
    # 33.333 ms short: rounded up, so waiting retry_after_ms is always enough.
    assert await comment(limiter, NOW + 300, **rules) == refused(RateReason.RATE, 34)
    assert await comment(limiter, NOW + 334, **rules) == OK


async def test_a_refused_comment_does_not_spend_the_budget(limiter: RateLimiter) -> None:
    rules = {"rate_per_s": 1, "burst": 1}
    assert await comment(limiter, NOW, **rules) == OK
    for ms in (100, 300, 500, 900):
        assert await comment(limiter, NOW + ms, **rules) == refused(RateReason.RATE, 1000 - ms)
    assert await comment(limiter, NOW + 1000, **rules) == OK


async def test_users_and_rooms_have_budgets_of_their_own(limiter: RateLimiter) -> None:
    rules = {"rate_per_s": 1, "burst": 1}
    assert await comment(limiter, NOW, uid="a", **rules) == OK
    assert not (await comment(limiter, NOW, uid="a", **rules)).allowed
    assert await comment(limiter, NOW, uid="b", **rules) == OK
    assert await comment(limiter, NOW, uid="a", room="other", **rules) == OK


async def test_repeat_refuses_the_same_text_within_the_window(limiter: RateLimiter) -> None:
    rules = {"repeat_window_ms": 5000}
    assert await comment(limiter, NOW, text="h1", **rules) == OK
    assert await comment(limiter, NOW + 1000, text="h1", **rules) == refused(
        RateReason.REPEAT, 4000
    )
    assert await comment(limiter, NOW + 1000, text="h2", **rules) == OK
    # Every text of the window counts, so alternating two does not get through.
    assert await comment(limiter, NOW + 2000, text="h1", **rules) == refused(
        RateReason.REPEAT, 3000
    )
    assert await comment(limiter, NOW + 4999, text="h1", **rules) == refused(RateReason.REPEAT, 1)
    assert await comment(limiter, NOW + 5000, text="h1", **rules) == OK
    assert await comment(limiter, NOW + 6000, text="h2", **rules) == OK  # h2 was at +1000
    # Another user, another room: not a repeat.
    assert await comment(limiter, NOW + 5500, text="h1", uid="u2", **rules) == OK
    assert await comment(limiter, NOW + 5500, text="h1", room="r2", **rules) == OK


async def test_an_empty_text_key_skips_the_repeat_rule(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert await comment(limiter, NOW, text="", repeat_window_ms=5000) == OK


async def test_slow_mode_spaces_a_users_comments(limiter: RateLimiter) -> None:
    rules = {"slow_mode_ms": 3000}
    assert await comment(limiter, NOW, text="a", **rules) == OK
    assert await comment(limiter, NOW + 1000, text="b", **rules) == refused(
        RateReason.SLOW_MODE, 2000
    )
    assert await comment(limiter, NOW + 3000, text="c", **rules) == OK
    # The refused attempt at +4000 does not restart the wait.
    assert await comment(limiter, NOW + 4000, text="d", **rules) == refused(
        RateReason.SLOW_MODE, 2000
    )
    assert await comment(limiter, NOW + 6000, text="e", **rules) == OK
    assert await comment(limiter, NOW + 6000, text="e", uid="u2", **rules) == OK
    # Turned on later, it counts from the last comment accepted while it was off.
    assert await comment(limiter, NOW + 6500, text="f", uid="u3") == OK
    assert await comment(limiter, NOW + 7000, text="g", uid="u3", **rules) == refused(
        RateReason.SLOW_MODE, 2500
    )


async def test_room_cap_bounds_comments_accepted_per_second(limiter: RateLimiter) -> None:
    rules = {"room_cap_per_s": 2}
    assert await comment(limiter, NOW, uid="a", **rules) == OK
    assert await comment(limiter, NOW + 10, uid="b", **rules) == OK
    assert await comment(limiter, NOW + 20, uid="c", **rules) == refused(RateReason.ROOM_CAP, 980)
    assert await comment(limiter, NOW + 999, uid="c", **rules) == refused(RateReason.ROOM_CAP, 1)
    assert await comment(limiter, NOW + 1000, uid="c", **rules) == OK
    assert await comment(limiter, NOW + 1000, uid="c", room="other", **rules) == OK


async def test_refused_comments_do_not_use_up_the_room_cap(limiter: RateLimiter) -> None:
    rules = {"room_cap_per_s": 2, "rate_per_s": 1, "burst": 1}
    assert await comment(limiter, NOW, uid="flooder", **rules) == OK
    for i in range(20):
        decision = await comment(limiter, NOW + i, uid="flooder", **rules)
        assert decision.reason is RateReason.RATE
    assert await comment(limiter, NOW + 50, uid="b", **rules) == OK
    assert (await comment(limiter, NOW + 60, uid="c", **rules)).reason is RateReason.ROOM_CAP


async def test_rules_apply_in_order(limiter: RateLimiter) -> None:
    every = {
        "rate_per_s": 1,
        "burst": 1,
        "repeat_window_ms": 5000,
        "slow_mode_ms": 5000,
        "room_cap_per_s": 1,
    }
    assert await comment(limiter, NOW, text="x", **every) == OK
    again = NOW + 100
    # The same user, the same text, the same second: every rule would refuse.
    assert await comment(limiter, again, text="x", **every) == refused(RateReason.ROOM_CAP, 900)
    no_cap = {**every, "room_cap_per_s": 0}
    assert await comment(limiter, again, text="x", **no_cap) == refused(RateReason.SLOW_MODE, 4900)
    no_slow = {**no_cap, "slow_mode_ms": 0}
    assert await comment(limiter, again, text="x", **no_slow) == refused(RateReason.REPEAT, 4900)
    no_repeat = {**no_slow, "repeat_window_ms": 0}
    assert await comment(limiter, again, text="x", **no_repeat) == refused(RateReason.RATE, 900)


async def test_a_comment_refused_by_a_later_rule_records_nothing(limiter: RateLimiter) -> None:
    rules = {"rate_per_s": 1, "burst": 1, "repeat_window_ms": 5000, "slow_mode_ms": 0}
    assert await comment(limiter, NOW, text="a", **rules) == OK
    # Refused by the rate: neither its text nor its time is remembered.
    assert (await comment(limiter, NOW + 500, text="b", **rules)).reason is RateReason.RATE
    assert await comment(limiter, NOW + 1000, text="b", **rules) == OK
    assert (await comment(limiter, NOW + 1200, text="c", **rules)).reason is RateReason.RATE
    assert await comment(limiter, NOW + 2000, text="c", slow_mode_ms=1000) == OK


@pytest.mark.parametrize(
    "bad",
    [
        {"rate_per_s": 1, "burst": 0},
        {"repeat_window_ms": -1},
        {"slow_mode_ms": -1},
        {"room_cap_per_s": -1},
    ],
)
async def test_invalid_settings_are_value_errors(limiter: RateLimiter, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await comment(limiter, NOW, **bad)


async def test_concurrent_comments_by_one_user_get_exactly_the_burst(
    limiter: RateLimiter,
) -> None:
    rules = {**OFF, "rate_per_s": 1, "burst": 3}
    decisions = await asyncio.gather(
        *(limiter.check_comment("r", "u", f"t{i}", NOW, **rules) for i in range(100))
    )
    assert sum(d.allowed for d in decisions) == 3
    assert {d.reason for d in decisions if not d.allowed} == {RateReason.RATE}


async def test_concurrent_comments_in_a_room_get_exactly_the_cap(limiter: RateLimiter) -> None:
    rules = {**OFF, "room_cap_per_s": 10}
    decisions = await asyncio.gather(
        *(limiter.check_comment("r", f"u{i}", "t", NOW + 5, **rules) for i in range(100))
    )
    assert sum(d.allowed for d in decisions) == 10
    assert {d.retry_after_ms for d in decisions if not d.allowed} == {995}


async def test_concurrent_same_text_passes_once(limiter: RateLimiter) -> None:
    rules = {**OFF, "repeat_window_ms": 5000}
    decisions = await asyncio.gather(
        *(limiter.check_comment("r", "u", "same", NOW, **rules) for _ in range(50))
    )
    assert sum(d.allowed for d in decisions) == 1


# --- the generic limit


async def test_rate_limit_is_a_gcra(limiter: RateLimiter) -> None:
    for _ in range(5):
        assert await limiter.rate_limit("r", "like:u1", NOW, 10, 5) == OK
    assert await limiter.rate_limit("r", "like:u1", NOW, 10, 5) == refused(RateReason.RATE, 100)
    assert await limiter.rate_limit("r", "like:u1", NOW + 100, 10, 5) == OK
    assert await limiter.rate_limit("r", "like:u2", NOW, 10, 5) == OK
    assert await limiter.rate_limit("r2", "like:u1", NOW, 10, 5) == OK


async def test_rate_limit_cost_spends_several_units(limiter: RateLimiter) -> None:
    assert await limiter.rate_limit("r", "k", NOW, 10, 5, cost=3) == OK
    assert await limiter.rate_limit("r", "k", NOW, 10, 5, cost=3) == refused(RateReason.RATE, 100)
    # The refused request spent nothing: two units are still there.
    assert await limiter.rate_limit("r", "k", NOW, 10, 5, cost=2) == OK
    assert not (await limiter.rate_limit("r", "k", NOW, 10, 5)).allowed


@pytest.mark.parametrize(("rate", "burst", "cost"), [(0, 5, 1), (-1, 5, 1), (1, 5, 0), (1, 5, 6)])
async def test_rate_limit_invalid_settings_are_value_errors(
    limiter: RateLimiter, rate: float, burst: int, cost: int
) -> None:
    with pytest.raises(ValueError):
        await limiter.rate_limit("r", "k", NOW, rate, burst, cost=cost)


async def test_concurrent_rate_limit_gets_exactly_the_burst(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.rate_limit("r", "k", NOW, 1, 5) for _ in range(60)))
    assert sum(d.allowed for d in decisions) == 5


# --- state lapses


@pytest.mark.parametrize("kind", ["memory"])
async def test_memory_forgets_idle_users(limiter: RateLimiter) -> None:
    assert isinstance(limiter, MemoryRateLimiter)
    rules = {"rate_per_s": 1, "burst": 3, "repeat_window_ms": 5000, "room_cap_per_s": 100}
    for i in range(50):
        await comment(limiter, NOW, text="t", uid=f"u{i}", **rules)
        await limiter.rate_limit("r", f"k{i}", NOW, 1, 5)
    # The sweep runs on the callers' clock: one call an hour later clears the rest.
    await comment(limiter, NOW + 3_600_000, uid="late", **rules)
    await limiter.rate_limit("r", "late", NOW + 3_600_000, 1, 5)
    assert len(limiter._users) == 1
    assert len(limiter._limits) == 1
    assert len(limiter._inbound) == 1


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_keys_carry_ttls_and_the_room_tag(
    limiter: RateLimiter, backend: Backend
) -> None:
    assert backend is not None
    client, keys = backend
    rules = {"rate_per_s": 1, "burst": 3, "repeat_window_ms": 5000, "slow_mode_ms": 3000}
    assert await comment(limiter, NOW, text="h", room_cap_per_s=10, **rules) == OK
    assert 4000 < await client.pttl(keys.commenter("r", "u1")) <= 5000
    assert 4000 < await client.pttl(keys.recent_texts("r", "u1")) <= 5000
    assert 1000 < await client.pttl(keys.inbound("r", NOW // 1000)) <= 2000
    # The GCRA alone: the state lives until the budget is full again (3 s after a burst).
    for _ in range(3):
        assert await comment(limiter, NOW, uid="u2", rate_per_s=1, burst=3) == OK
    assert 2000 < await client.pttl(keys.commenter("r", "u2")) <= 3000
    # A refused comment writes nothing, not even for a user never seen.
    await comment(limiter, NOW, uid="u3", room_cap_per_s=1)
    assert await comment(limiter, NOW, uid="u4", room_cap_per_s=1) == refused(
        RateReason.ROOM_CAP, 1000
    )
    assert not await client.exists(keys.commenter("r", "u4"), keys.recent_texts("r", "u4"))
    names = [k.decode() async for k in client.scan_iter(match=f"{keys.prefix}*")]
    assert all("mod:{r}:" in name for name in names), names


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_generic_limit_key_lapses_when_the_budget_is_full(
    limiter: RateLimiter, backend: Backend
) -> None:
    assert backend is not None
    client, keys = backend
    assert await limiter.rate_limit("r", "k", NOW, 100, 2) == OK  # 10 ms of budget spent
    assert 0 < await client.pttl(keys.limit("r", "k")) <= 10
    await asyncio.sleep(0.05)
    assert not await client.exists(keys.limit("r", "k"))
