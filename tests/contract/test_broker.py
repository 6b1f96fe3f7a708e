"""Broker contract (``rooms.broker``), on every engine; plus Redis reconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis

from interact.engine import Engine
from rooms.broker_redis import RedisBroker
from rooms.keys import RoomKeys
from tests.redis_server import start_redis_server, stop_redis_server

if TYPE_CHECKING:
    from tests.conftest import Eventually
    from tests.contract.conftest import MakeEngine

Got = list[tuple[str, bytes]]


def collect(engine: Engine) -> Got:
    got: Got = []
    engine.broker.set_handler(lambda room, payload: got.append((room, payload)))
    return got


def of(got: Got, room: str) -> list[bytes]:
    return [payload for r, payload in got if r == room]


# "Nothing arrived" is shown by a marker, never by a pause: a marker published to the same
# room after the message that must not arrive travels the same connection (the same node
# on a cluster), so once the marker is in, anything before it would be in too.


async def test_subscribed_room_reaches_the_handler(engine: Engine, eventually: Eventually) -> None:
    got = collect(engine)
    await engine.broker.subscribe("a")
    await engine.broker.publish("a", b'{"t":"notice"}')
    await eventually(lambda: len(got) == 1)
    assert got == [("a", b'{"t":"notice"}')]


async def test_other_rooms_do_not_reach_the_handler(engine: Engine, eventually: Eventually) -> None:
    got = collect(engine)
    await engine.broker.subscribe("a")
    await engine.broker.publish("b", b"b1")
    await engine.broker.publish("a", b"a1")
    await engine.broker.subscribe("b")
    await engine.broker.publish("b", b"marker")
    await eventually(lambda: ("b", b"marker") in got and ("a", b"a1") in got)
    assert of(got, "a") == [b"a1"]
    assert of(got, "b") == [b"marker"]  # b1, published before b was subscribed, never came


async def test_unsubscribe_stops_delivery(engine: Engine, eventually: Eventually) -> None:
    got = collect(engine)
    await engine.broker.subscribe("a")
    await engine.broker.subscribe("b")
    await engine.broker.publish("a", b"1")
    await eventually(lambda: len(got) == 1)
    await engine.broker.unsubscribe("a")
    await engine.broker.unsubscribe("a")  # idempotent
    await engine.broker.unsubscribe("never")  # never subscribed: no error
    await engine.broker.publish("a", b"2")
    await engine.broker.publish("b", b"3")
    await engine.broker.subscribe("a")
    await engine.broker.publish("a", b"4")  # the marker: "2" would have come before it
    await eventually(lambda: ("a", b"4") in got and ("b", b"3") in got)
    assert of(got, "a") == [b"1", b"4"]
    assert of(got, "b") == [b"3"]


async def test_subscribe_is_idempotent(engine: Engine, eventually: Eventually) -> None:
    got = collect(engine)
    await engine.broker.subscribe("a")
    await engine.broker.subscribe("a")
    await asyncio.gather(engine.broker.subscribe("b"), engine.broker.subscribe("b"))
    await engine.broker.publish("a", b"1")
    await engine.broker.publish("b", b"2")
    await engine.broker.publish("a", b"end")
    await engine.broker.publish("b", b"end")
    await eventually(lambda: ("a", b"end") in got and ("b", b"end") in got)
    # Once each: a doubled subscription would have delivered "1" (or "2") twice by now.
    assert of(got, "a") == [b"1", b"end"]
    assert of(got, "b") == [b"2", b"end"]


async def test_no_handler_is_harmless(engine: Engine, eventually: Eventually) -> None:
    await engine.broker.subscribe("a")
    await engine.broker.publish("a", b"dropped")  # may be read before or after the handler
    got = collect(engine)
    await engine.broker.publish("a", b"kept")
    # Harmless: the reader survived a message with no one to take it, and delivers on.
    await eventually(lambda: ("a", b"kept") in got)
    assert of(got, "a") in ([b"kept"], [b"dropped", b"kept"])


async def test_order_is_preserved(engine: Engine, eventually: Eventually) -> None:
    got = collect(engine)
    await engine.broker.subscribe("a")
    for i in range(100):
        await engine.broker.publish("a", str(i).encode())
    await eventually(lambda: len(got) == 100)
    assert [int(p) for _, p in got] == list(range(100))


async def test_a_failing_handler_does_not_stop_delivery(
    engine: Engine, eventually: Eventually
) -> None:
    got: list[bytes] = []

    def handler(room: str, payload: bytes) -> None:
        if payload == b"boom":
            raise RuntimeError("handler bug")
        got.append(payload)

    engine.broker.set_handler(handler)
    await engine.broker.subscribe("a")
    if engine.kind == "memory":
        # The memory broker calls the handler inline; its error reaches the publisher.
        with pytest.raises(RuntimeError):
            await engine.broker.publish("a", b"boom")
    else:
        await engine.broker.publish("a", b"boom")
    await engine.broker.publish("a", b"after")
    await eventually(lambda: got == [b"after"])


@pytest.mark.parametrize("kind", ["redis"])
async def test_publish_reaches_another_process_in_order(
    make_engine: MakeEngine, eventually: Eventually
) -> None:
    a, b = await make_engine(), await make_engine()
    got_a, got_b = collect(a), collect(b)
    await b.broker.subscribe("r")
    await a.broker.subscribe("r")
    for i in range(100):
        await a.broker.publish("r", str(i).encode())
    await eventually(lambda: len(got_a) == 100 and len(got_b) == 100)
    assert [int(p) for _, p in got_b] == list(range(100))
    assert got_a == got_b
    await b.broker.unsubscribe("r")
    await a.broker.publish("r", b"only-a")
    await b.broker.subscribe("r")
    await a.broker.publish("r", b"marker")
    await eventually(lambda: ("r", b"marker") in got_b)
    assert of(got_b, "r")[100:] == [b"marker"]  # "only-a" came while b was away: not to b
    assert of(got_a, "r")[100:] == [b"only-a", b"marker"]


async def test_subscribe_before_start(
    redis_url: str, redis_prefix: str, eventually: Eventually
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    broker = RedisBroker(client, RoomKeys(redis_prefix))
    got: Got = []
    broker.set_handler(lambda room, payload: got.append((room, payload)))
    try:
        await broker.subscribe("early")
        await broker.start()
        await broker.publish("early", b"x")
        await eventually(lambda: got == [("early", b"x")])
    finally:
        await broker.close()
        await client.aclose()


async def test_close_without_start(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    keys = RoomKeys(redis_prefix)
    broker = RedisBroker(client, keys)
    channel = keys.channel("a")
    try:
        await broker.subscribe("a")
        # Before start a subscription is only recorded: no connection subscribes yet.
        assert broker.rooms == {"a"}
        assert await client.pubsub_numsub(channel) == [(channel.encode(), 0)]
        await broker.close()
        assert broker.rooms == frozenset()
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "redis-broker-reader"]
        # Nothing left subscribed behind: a publish reaches no one.
        assert await client.publish(channel, b"x") == 0
        await broker.close()  # twice: still fine
    finally:
        await client.aclose()


async def test_resubscribes_after_a_redis_restart(tmp_path: Path, eventually: Eventually) -> None:
    proc, port = start_redis_server(tmp_path)
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    broker = RedisBroker(client, RoomKeys("t:"), backoff_min_s=0.02, backoff_max_s=0.2)
    got: list[bytes] = []
    resyncs: list[int] = []
    broker.set_handler(lambda room, payload: got.append(payload))
    broker.set_resync(lambda: resyncs.append(len(got)))
    try:
        await broker.start()
        await broker.subscribe("a")
        await broker.subscribe("b")
        await broker.unsubscribe("b")
        await broker.publish("a", b"before")
        await eventually(lambda: got == [b"before"])
        assert resyncs == []  # the first connection lost nothing

        stop_redis_server(proc)
        await broker.subscribe("c")  # while Redis is down: recorded, subscribed later
        await asyncio.sleep(0.2)
        proc, _ = start_redis_server(tmp_path, port=port)

        async def publish_until_seen(room: str, tag: bytes) -> None:
            # The publisher's pool reconnects on its own; the broker needs a moment more.
            for _ in range(200):
                try:
                    await broker.publish(room, tag)
                except (ConnectionError, aioredis.ConnectionError):
                    pass
                if tag in got:
                    return
                await asyncio.sleep(0.02)
            pytest.fail(f"{room} never delivered after the restart; got {got}")

        await publish_until_seen("a", b"after-a")
        await publish_until_seen("c", b"after-c")
        await broker.publish("b", b"not-b")
        await broker.subscribe("b")
        await broker.publish("b", b"b-marker")
        await eventually(lambda: b"b-marker" in got)
        assert b"not-b" not in got  # b was unsubscribed before the restart, and stayed so
        # Told (once per reconnect) that messages may have been lost: after the first
        # connection's message, not before.
        assert len(resyncs) >= 1 and resyncs[0] >= 1
    finally:
        await broker.close()
        await client.aclose()
        stop_redis_server(proc)


async def test_idle_connection_is_pinged_and_keeps_delivering(
    redis_url: str, redis_prefix: str, eventually: Eventually
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    broker = RedisBroker(client, RoomKeys(redis_prefix), poll_s=0.02, ping_after_s=0.05)
    got: list[bytes] = []
    broker.set_handler(lambda room, payload: got.append(payload))
    try:
        await broker.start()
        await broker.subscribe("quiet")
        await asyncio.sleep(0.3)  # several PING rounds on an idle room
        await broker.publish("quiet", b"still here")
        await eventually(lambda: got == [b"still here"])
    finally:
        await broker.close()
        await client.aclose()
