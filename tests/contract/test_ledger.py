"""Ledger contract (``commerce.ledger``), on every engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from commerce.keys import CommerceKeys
from commerce.ledger import LEDGER_MAXLEN, Ledger, parse_id
from commerce.ledger_memory import MemoryLedger
from commerce.ledger_redis import RedisLedger
from tests.contract.conftest import NewClient

MakeLedger = Callable[..., Ledger]


@pytest.fixture
async def make_ledger(
    kind: str, request: pytest.FixtureRequest, new_redis_client: NewClient
) -> AsyncIterator[MakeLedger]:
    """Build ledgers of ``kind``; on redis each has its own client and this test's prefix."""
    clients: list[aioredis.Redis] = []

    def make(maxlen: int = LEDGER_MAXLEN) -> Ledger:
        if kind == "memory":
            return MemoryLedger(maxlen=maxlen)
        prefix = request.getfixturevalue("redis_prefix")
        client = new_redis_client()
        clients.append(client)
        return RedisLedger(client, CommerceKeys(prefix), maxlen=maxlen)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def ledger(make_ledger: MakeLedger) -> Ledger:
    return make_ledger()


async def test_append_then_read_in_order_with_string_values(ledger: Ledger) -> None:
    first = await ledger.append("r1", {"type": "rp_claim", "uid": "u1", "amount_fen": 12})
    second = await ledger.append("r1", {"type": "rp_claim", "uid": "u2", "amount_fen": "7"})
    assert parse_id(first) < parse_id(second)
    assert await ledger.read("r1") == [
        (first, {"type": "rp_claim", "uid": "u1", "amount_fen": "12"}),
        (second, {"type": "rp_claim", "uid": "u2", "amount_fen": "7"}),
    ]


async def test_read_after_and_count(ledger: Ledger) -> None:
    ids = [await ledger.append("r", {"n": i}) for i in range(10)]
    assert [e for e, _ in await ledger.read("r", None, 3)] == ids[:3]
    assert [f["n"] for _, f in await ledger.read("r", ids[3], 4)] == ["4", "5", "6", "7"]
    assert await ledger.read("r", ids[-1], 10) == []
    assert await ledger.read("r", None, 0) == []
    # Paging with the last id seen reads every event exactly once.
    seen: list[str] = []
    after = None
    while page := await ledger.read("r", after, 3):
        seen += [f["n"] for _, f in page]
        after = page[-1][0]
    assert seen == [str(i) for i in range(10)]


async def test_unicode_and_empty_values_round_trip(ledger: Ledger) -> None:
    event = {"type": "rp_refund", "sender": "主播 🎉", "note": "", "amount_fen": 0}
    entry = await ledger.append("r", event)
    assert await ledger.read("r") == [(entry, {**event, "amount_fen": "0"})]


async def test_rooms_are_separate_and_unknown_reads_empty(ledger: Ledger) -> None:
    await ledger.append("a", {"x": 1})
    await ledger.append("b", {"x": 2})
    assert [f for _, f in await ledger.read("a")] == [{"x": "1"}]
    assert [f for _, f in await ledger.read("b")] == [{"x": "2"}]
    assert await ledger.read("ghost") == []


@pytest.mark.parametrize("bad", [{}, {"": "x"}])
async def test_bad_events_are_refused(ledger: Ledger, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        await ledger.append("r", bad)
    assert await ledger.read("r") == []


@pytest.mark.parametrize("after", ["", "abc", "1-", "-1", "1-2-3", "1.5-0"])
async def test_malformed_after_is_value_error(ledger: Ledger, after: str) -> None:
    with pytest.raises(ValueError):
        await ledger.read("r", after, 10)


async def test_concurrent_appends_get_distinct_increasing_ids(ledger: Ledger) -> None:
    ids = await asyncio.gather(*(ledger.append("r", {"n": i}) for i in range(500)))
    assert len(set(ids)) == 500
    events = await ledger.read("r", None, 1_000)
    assert [e for e, _ in events] == sorted(ids, key=parse_id)
    assert sorted(int(f["n"]) for _, f in events) == list(range(500))


async def test_maxlen_caps_the_log_keeping_the_newest(make_ledger: MakeLedger) -> None:
    ledger = make_ledger(maxlen=10)
    for i in range(1_000):
        await ledger.append("r", {"n": i})
    events = await ledger.read("r", None, 10_000)
    # Approximate on Redis (whole stream nodes of 100), exact in memory: never fewer than
    # maxlen, never everything, always the newest.
    assert 10 <= len(events) <= 200
    assert [int(f["n"]) for _, f in events] == list(range(1_000 - len(events), 1_000))


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_stream_key_carries_the_room_hash_tag(
    ledger: Ledger, redis_url: str, redis_prefix: str
) -> None:
    await ledger.append("tagged", {"x": 1})
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")]
        assert keys == [f"{redis_prefix}ledger:{{tagged}}"]
        assert await client.type(keys[0]) == b"stream"
    finally:
        await client.aclose()
