"""ModerationLog contract (``moderation.moderation_log``), on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from moderation.keys import ModerationKeys
from moderation.moderation_log import MODLOG_MAXLEN, ModerationLog, parse_id
from moderation.moderation_log_memory import MemoryModerationLog
from moderation.moderation_log_redis import RedisModerationLog
from tests.contract.conftest import NewClient

MakeLog = Callable[..., ModerationLog]

EVENT = {
    "who": "u1",
    "what": "加微信 abc",
    "rule": "word",
    "category": "ads",
    "action": "reject",
    "by": "system",
    "ts": 1_700_000_000_000,
}


@pytest.fixture
async def make_log(
    kind: str, request: pytest.FixtureRequest, new_redis_client: NewClient
) -> AsyncIterator[MakeLog]:
    """Build logs of ``kind``; on redis each has its own client and this test's prefix."""
    clients: list[aioredis.Redis] = []

    def make(maxlen: int = MODLOG_MAXLEN) -> ModerationLog:
        if kind == "memory":
            return MemoryModerationLog(maxlen=maxlen)
        prefix = request.getfixturevalue("redis_prefix")
        client = new_redis_client()
        clients.append(client)
        return RedisModerationLog(client, ModerationKeys(prefix), maxlen=maxlen)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def log(make_log: MakeLog) -> ModerationLog:
    return make_log()


async def test_append_then_read_in_order_with_string_values(log: ModerationLog) -> None:
    first = await log.append("r1", EVENT)
    second = await log.append("r1", {**EVENT, "who": "u2", "action": "mute", "by": "op7"})
    assert parse_id(first) < parse_id(second)
    as_strings = {**EVENT, "ts": str(EVENT["ts"])}
    assert await log.read("r1", None, 10) == [
        (first, as_strings),
        (second, {**as_strings, "who": "u2", "action": "mute", "by": "op7"}),
    ]


async def test_read_after_is_exclusive_and_pages(log: ModerationLog) -> None:
    ids = [await log.append("r", {"n": i}) for i in range(10)]
    assert [e for e, _ in await log.read("r", None, 3)] == ids[:3]
    assert [f["n"] for _, f in await log.read("r", ids[3], 4)] == ["4", "5", "6", "7"]
    assert await log.read("r", ids[-1], 10) == []
    assert await log.read("r", None, 0) == []
    seen: list[str] = []
    after = None
    while page := await log.read("r", after, 3):
        seen += [f["n"] for _, f in page]
        after = page[-1][0]
    assert seen == [str(i) for i in range(10)]


async def test_unicode_and_empty_values_round_trip(log: ModerationLog) -> None:
    event = {"who": "主播 🎉", "what": "", "ts": 0}
    entry = await log.append("r", event)
    assert await log.read("r") == [(entry, {"who": "主播 🎉", "what": "", "ts": "0"})]


async def test_rooms_are_separate_and_unknown_reads_empty(log: ModerationLog) -> None:
    await log.append("a", {"x": 1})
    await log.append("b", {"x": 2})
    assert [f for _, f in await log.read("a")] == [{"x": "1"}]
    assert [f for _, f in await log.read("b")] == [{"x": "2"}]
    assert await log.read("ghost") == []


@pytest.mark.parametrize("bad", [{}, {"": "x"}])
async def test_bad_events_are_refused(log: ModerationLog, bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        await log.append("r", bad)
    assert await log.read("r") == []


@pytest.mark.parametrize("after", ["", "abc", "1-", "-1", "1-2-3", "1.5-0"])
async def test_malformed_after_is_value_error(log: ModerationLog, after: str) -> None:
    with pytest.raises(ValueError):
        await log.read("r", after, 10)


async def test_concurrent_appends_get_distinct_increasing_ids(log: ModerationLog) -> None:
    ids = await asyncio.gather(*(log.append("r", {"n": i}) for i in range(300)))
    assert len(set(ids)) == 300
    events = await log.read("r", None, 1_000)
    assert [e for e, _ in events] == sorted(ids, key=parse_id)
    assert sorted(int(f["n"]) for _, f in events) == list(range(300))


async def test_maxlen_caps_the_log_keeping_the_newest(make_log: MakeLog) -> None:
    log = make_log(maxlen=10)
    for i in range(1_000):
        await log.append("r", {"n": i})
    events = await log.read("r", None, 10_000)
    # Approximate on Redis (whole stream nodes of 100), exact in memory.
    assert 10 <= len(events) <= 200
    assert [int(f["n"]) for _, f in events] == list(range(1_000 - len(events), 1_000))


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_stream_key_carries_the_room_hash_tag(
    log: ModerationLog, redis_url: str, redis_prefix: str
) -> None:
    await log.append("tagged", {"x": 1})
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")]
        assert keys == [f"{redis_prefix}modlog:{{tagged}}"]
        assert await client.type(keys[0]) == b"stream"
    finally:
        await client.aclose()
