"""RoomStats contract (``rooms.stats``), on every engine."""

from __future__ import annotations

import asyncio

from interact.engine import Engine
from rooms.stats import STAT_FIELDS


async def test_fresh_room_is_all_zero(engine: Engine) -> None:
    stats = await engine.stats.get("r")
    assert set(stats) == set(STAT_FIELDS)
    assert stats == dict.fromkeys(STAT_FIELDS, 0)


async def test_joined_counts_views_and_unique_viewers(engine: Engine) -> None:
    for uid in ["u1", "u2", "u1", "u3", "u1"]:
        await engine.stats.joined("r", [uid])
    stats = await engine.stats.get("r")
    assert (stats["pv"], stats["uv"]) == (5, 3)
    assert (stats["comments"], stats["participants"]) == (0, 0)


async def test_joins_counted_in_one_step_count_as_many(engine: Engine) -> None:
    await engine.stats.joined("r", ["u1", "u2", "u1"])
    await engine.stats.joined("r", [])
    await engine.stats.joined("r", ["u3"])
    stats = await engine.stats.get("r")
    assert (stats["pv"], stats["uv"]) == (4, 3)
    assert (stats["comments"], stats["participants"]) == (0, 0)


async def test_commented_counts_comments_and_participants(engine: Engine) -> None:
    for uid in ["u1", "u1", "u2", "u1"]:
        await engine.stats.commented("r", uid)
    stats = await engine.stats.get("r")
    assert (stats["comments"], stats["participants"]) == (4, 2)
    assert (stats["pv"], stats["uv"]) == (0, 0)


async def test_likes_return_the_running_total(engine: Engine) -> None:
    assert await engine.stats.add_likes("r", 3) == 3
    assert await engine.stats.add_likes("r", 1) == 4
    assert await engine.stats.add_likes("r", 10) == 14
    assert await engine.stats.add_likes("other", 2) == 2
    assert (await engine.stats.get("r"))["likes"] == 14


async def test_concurrent_likes_are_not_lost(engine: Engine) -> None:
    totals = await asyncio.gather(*(engine.stats.add_likes("r", 1) for _ in range(100)))
    assert sorted(totals) == list(range(1, 101))


async def test_peak_online_keeps_the_maximum(engine: Engine) -> None:
    for online in [5, 3, 8, 2, 8, 0]:
        await engine.stats.observe_online("r", online)
    assert (await engine.stats.get("r"))["peak_online"] == 8
    await engine.stats.observe_online("r", 9)
    assert (await engine.stats.get("r"))["peak_online"] == 9


async def test_unique_counts_are_close_for_many_uids(engine: Engine) -> None:
    await asyncio.gather(*(engine.stats.joined("r", [f"user-{i}"]) for i in range(2_000)))
    stats = await engine.stats.get("r")
    assert stats["pv"] == 2_000
    assert abs(stats["uv"] - 2_000) <= 20  # HyperLogLog on redis: within 1 %


async def test_rooms_are_independent(engine: Engine) -> None:
    await engine.stats.joined("a", ["u1"])
    await engine.stats.commented("a", "u1")
    await engine.stats.add_likes("a", 5)
    await engine.stats.observe_online("a", 7)
    assert await engine.stats.get("b") == dict.fromkeys(STAT_FIELDS, 0)
    assert await engine.stats.get("a") == {
        "pv": 1, "uv": 1, "peak_online": 7, "comments": 1, "likes": 5, "participants": 1,
    }  # fmt: skip
