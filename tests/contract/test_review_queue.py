"""ReviewQueue contract (``moderation.review_queue``), on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from interact.floor.event_log import parse_id
from moderation.keys import ModerationKeys
from moderation.review_queue import REVIEW_MAXLEN, ReviewQueue
from moderation.review_queue_memory import MemoryReviewQueue
from moderation.review_queue_redis import RedisReviewQueue
from tests.contract.conftest import NewClient

MakeQueue = Callable[..., ReviewQueue]

HELD = {
    "uid": "u1",
    "nick": "小明",
    "text": "加我 v 信",
    "color": 16777215,
    "mode": "scroll",
    "ts": 1_700_000_000_000,
    "reason": {"rule": "msg_sec_check", "label": 10001, "suggest": "review"},
    "flags": ["ads"],
}


@pytest.fixture
async def make_queue(
    kind: str, request: pytest.FixtureRequest, new_redis_client: NewClient
) -> AsyncIterator[MakeQueue]:
    """Build queues of ``kind``; on redis they share one client and this test's prefix."""
    clients: list[aioredis.Redis] = []

    def make(max_items: int = REVIEW_MAXLEN) -> ReviewQueue:
        if kind == "memory":
            return MemoryReviewQueue(max_items=max_items)
        prefix = request.getfixturevalue("redis_prefix")
        client = new_redis_client()
        clients.append(client)
        return RedisReviewQueue(client, ModerationKeys(prefix), max_items=max_items)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def queue(make_queue: MakeQueue) -> ReviewQueue:
    return make_queue()


async def test_hold_list_take(queue: ReviewQueue) -> None:
    first = await queue.hold("r", HELD)
    second = await queue.hold("r", {**HELD, "uid": "u2"})
    assert parse_id(first) < parse_id(second)
    assert await queue.pending("r") == 2
    assert await queue.list("r", 10) == [(first, HELD), (second, {**HELD, "uid": "u2"})]
    assert await queue.take("r", first) == HELD
    assert await queue.take("r", first) is None
    assert await queue.list("r", 10) == [(second, {**HELD, "uid": "u2"})]
    assert await queue.pending("r") == 1
    assert await queue.take("r", second) == {**HELD, "uid": "u2"}
    assert await queue.list("r", 10) == []
    assert await queue.pending("r") == 0


async def test_values_round_trip_as_json(queue: ReviewQueue) -> None:
    item_id = await queue.hold("r", {"pair": (1, 2), "none": None, "f": 1.5, "t": True})
    assert await queue.take("r", item_id) == {"pair": [1, 2], "none": None, "f": 1.5, "t": True}


async def test_list_limit_and_after(queue: ReviewQueue) -> None:
    ids = [await queue.hold("r", {"n": i}) for i in range(7)]
    assert [i for i, _ in await queue.list("r", 3)] == ids[:3]
    assert [item["n"] for _, item in await queue.list("r", 3, after=ids[2])] == [3, 4, 5]
    assert await queue.list("r", 0) == []
    assert await queue.list("r", 10, after=ids[-1]) == []
    await queue.take("r", ids[0])
    assert [i for i, _ in await queue.list("r", 2)] == ids[1:3]


async def test_rooms_are_separate(queue: ReviewQueue) -> None:
    a = await queue.hold("a", {"x": 1})
    await queue.hold("b", {"x": 2})
    # Ids are per room (b's item may well have the same id): taking in b leaves a alone.
    assert await queue.take("b", a) in (None, {"x": 2})
    assert [item for _, item in await queue.list("a")] == [{"x": 1}]
    assert await queue.take("a", a) == {"x": 1}
    assert await queue.list("ghost") == []
    assert await queue.pending("ghost") == 0


@pytest.mark.parametrize("item_id", ["", "abc", "1-", "1-2-3", "0-0", "99999999999999-0"])
async def test_unknown_or_malformed_ids_take_nothing(queue: ReviewQueue, item_id: str) -> None:
    await queue.hold("r", {"x": 1})
    assert await queue.take("r", item_id) is None
    assert await queue.pending("r") == 1


@pytest.mark.parametrize("bad", [{}, {"x": {1, 2}}, {"x": object()}])
async def test_bad_items_are_value_errors(queue: ReviewQueue, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await queue.hold("r", bad)
    assert await queue.pending("r") == 0


async def test_malformed_after_is_value_error(queue: ReviewQueue) -> None:
    with pytest.raises(ValueError):
        await queue.list("r", 10, after="nope")


async def test_concurrent_takes_of_one_item_resolve_once(queue: ReviewQueue) -> None:
    item_id = await queue.hold("r", HELD)
    got = await asyncio.gather(*(queue.take("r", item_id) for _ in range(50)))
    assert [g for g in got if g is not None] == [HELD]
    assert await queue.pending("r") == 0


async def test_concurrent_takes_across_many_items(queue: ReviewQueue) -> None:
    ids = await asyncio.gather(*(queue.hold("r", {"n": i}) for i in range(40)))
    # Two operators sweep the queue at once, each trying every item.
    got = await asyncio.gather(*(queue.take("r", i) for i in ids + ids))
    assert sorted(g["n"] for g in got if g is not None) == list(range(40))


@pytest.mark.parametrize("kind", ["redis"])
async def test_takes_from_two_clients_resolve_once(make_queue: MakeQueue) -> None:
    one, two = make_queue(), make_queue()
    item_id = await one.hold("r", HELD)
    got = await asyncio.gather(*(q.take("r", item_id) for q in [one, two] * 25))
    assert [g for g in got if g is not None] == [HELD]


async def test_max_items_drops_the_oldest(make_queue: MakeQueue) -> None:
    queue = make_queue(max_items=10)
    for i in range(1_000):
        await queue.hold("r", {"n": i})
    items = await queue.list("r", 10_000)
    # Approximate on Redis (whole stream nodes of 100), exact in memory.
    assert 10 <= len(items) <= 200
    assert [item["n"] for _, item in items] == list(range(1_000 - len(items), 1_000))
    assert await queue.pending("r") == len(items)


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_queue_key_carries_the_room_hash_tag(
    queue: ReviewQueue, redis_url: str, redis_prefix: str
) -> None:
    await queue.hold("tagged", {"x": 1})
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")]
        assert keys == [f"{redis_prefix}review:{{tagged}}"]
    finally:
        await client.aclose()
