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


async def settle() -> None:
    """Give a published message time to arrive, for tests that expect nothing."""
    await asyncio.sleep(0.05)


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
    await eventually(lambda: len(got) >= 1)
    await settle()
    assert got == [("a", b"a1")]


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
    await eventually(lambda: len(got) == 2)
    await settle()
    assert got == [("a", b"1"), ("b", b"3")]
    await engine.broker.subscribe("a")
    await engine.broker.publish("a", b"4")
    await eventually(lambda: len(got) == 3)
    assert got[-1] == ("a", b"4")


async def test_subscribe_is_idempotent(engine: Engine, eventually: Eventually) -> None:
    got = collect(engine)
    await engine.broker.subscribe("a")
    await engine.broker.subscribe("a")
    await asyncio.gather(engine.broker.subscribe("b"), engine.broker.subscribe("b"))
    await engine.broker.publish("a", b"1")
    await engine.broker.publish("b", b"2")
    await eventually(lambda: len(got) >= 2)
    await settle()
    assert got == [("a", b"1"), ("b", b"2")]


async def test_no_handler_is_harmless(engine: Engine, eventually: Eventually) -> None:
    await engine.broker.subscribe("a")
    await engine.broker.publish("a", b"dropped")
    await settle()
    got = collect(engine)
    await engine.broker.publish("a", b"kept")
    await eventually(lambda: got == [("a", b"kept")])


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
    await eventually(lambda: len(got_a) == 101)
    await settle()
    assert len(got_b) == 100


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
    broker = RedisBroker(client, RoomKeys(redis_prefix))
    await broker.subscribe("a")
    await broker.close()
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
        await settle()
        assert b"not-b" not in got
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
