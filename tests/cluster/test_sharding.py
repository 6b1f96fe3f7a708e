"""Sharded pub/sub and per-slot routing on a real cluster: each room's channel lives on its
slot's master only; subscriptions follow viewers; they survive a slot migration, and so do
the hot scripts (MOVED)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
import redis
from redis.crc import key_slot

from interact.engine import Engine, redis_engine
from interact.floor.redis_pipe import RedisPipe
from rooms.broker import CONTROL_ROOM
from rooms.keys import RoomKeys
from rooms.models import Room, RoomStatus
from tests.conftest import Eventually
from tests.redis_server import RedisCluster, start_redis_cluster, stop_redis_cluster


def _node(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)


def _shard_channels(port: int) -> set[str]:
    client = _node(port)
    try:
        return {c.decode() for c in client.execute_command("PUBSUB", "SHARDCHANNELS")}
    finally:
        client.close()


def _pubsub_ids(port: int) -> set[int]:
    """Ids of the connections of a node in pub/sub mode (sharded subscriptions included)."""
    client = _node(port)
    try:
        return {int(c["id"]) for c in client.client_list(_type="pubsub")}
    finally:
        client.close()


def _owner(ports: list[int], slot: int) -> int:
    client = _node(ports[0])
    try:
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
    finally:
        client.close()
    raise AssertionError(f"slot {slot} not covered")


def _start_moving(slot: int, src: int, dst: int) -> None:
    """First half of a slot migration (as ``redis-cli --cluster reshard`` does it): mark
    the slot migrating and importing, move its keys; the old master still owns it and
    answers ``ASK`` for keys it no longer has."""
    s, d = _node(src), _node(dst)
    try:
        src_id = s.execute_command("CLUSTER", "MYID").decode()
        dst_id = d.execute_command("CLUSTER", "MYID").decode()
        d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while keys := s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            s.execute_command("MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", *keys)
    finally:
        s.close()
        d.close()


def _finish_moving(ports: list[int], slot: int, src: int, dst: int) -> None:
    """Second half: every node learns that ``dst`` owns the slot."""
    d = _node(dst)
    try:
        dst_id = d.execute_command("CLUSTER", "MYID").decode()
    finally:
        d.close()
    for port in [dst, src, *(p for p in ports if p not in (src, dst))]:
        node = _node(port)
        try:
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        finally:
            node.close()


def _move_slot(ports: list[int], slot: int, src: int, dst: int) -> None:
    _start_moving(slot, src, dst)
    _finish_moving(ports, slot, src, dst)


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A cluster of this module's own: the tests move slots around."""
    cluster = start_redis_cluster(tmp_path_factory.mktemp("moving-cluster"))
    yield cluster
    stop_redis_cluster(cluster)


@pytest.fixture
async def engines(own_cluster: RedisCluster, redis_prefix: str) -> AsyncIterator[list[Engine]]:
    made = [redis_engine(own_cluster.url, redis_prefix, history_size=50) for _ in range(2)]
    for engine in made:
        await engine.start()
    yield made
    for engine in made:
        await engine.close()


async def test_channels_live_on_their_slot_master_only(
    engines: list[Engine], own_cluster: RedisCluster, redis_prefix: str, eventually: Eventually
) -> None:
    keys = RoomKeys(redis_prefix)
    one = engines[0]
    rooms = [f"room{i}" for i in range(12)]
    for rid in rooms:
        await one.broker.subscribe(rid)
    ports = own_cluster.ports
    owners = {rid: _owner(ports, key_slot(keys.channel(rid).encode())) for rid in rooms}
    assert len(set(owners.values())) > 1  # 12 rooms spread over the masters
    for port in ports:
        mine = {keys.channel(r) for r, p in owners.items() if p == port}
        ours = {c for c in _shard_channels(port) if c.startswith(redis_prefix)}
        assert ours == mine
        # Nothing on classic pub/sub, which a cluster would broadcast to every node.
        client = _node(port)
        try:
            assert not [
                c for c in client.execute_command("PUBSUB", "CHANNELS")
                if c.decode().startswith(redis_prefix)
            ]  # fmt: skip
        finally:
            client.close()
    # The last viewer gone, the subscription goes too.
    for rid in rooms[:6]:
        await one.broker.unsubscribe(rid)
    left = {keys.channel(r) for r in rooms[6:]}
    await eventually(
        lambda: {c for p in ports for c in _shard_channels(p) if c.startswith(redis_prefix)} == left
    )


async def test_fan_out_across_engines(engines: list[Engine], eventually: Eventually) -> None:
    got: list[tuple[str, bytes]] = []
    one, two = engines
    two.broker.set_handler(lambda room, payload: got.append((room, payload)))
    rooms = [f"fan{i}" for i in range(6)]
    for rid in rooms:
        await two.broker.subscribe(rid)
    await two.broker.subscribe(CONTROL_ROOM)
    for rid in [*rooms, CONTROL_ROOM]:
        for n in range(3):
            await one.broker.publish(rid, f"{rid}:{n}".encode())
    await one.broker.publish("not-subscribed", b"x")
    want = [(rid, f"{rid}:{n}".encode()) for rid in [*rooms, CONTROL_ROOM] for n in range(3)]
    await eventually(lambda: sorted(got) == sorted(want))
    for rid in [*rooms, CONTROL_ROOM]:  # in order per room
        assert [p for r, p in got if r == rid] == [f"{rid}:{n}".encode() for n in range(3)]


async def test_subscriptions_and_scripts_follow_a_slot_migration(
    engines: list[Engine], own_cluster: RedisCluster, redis_prefix: str, eventually: Eventually
) -> None:
    keys = RoomKeys(redis_prefix)
    one, two = engines
    got: list[bytes] = []
    two.broker.set_handler(lambda room, payload: got.append(payload))
    rid = "moving"
    await one.rooms.create(
        Room(id=rid, title="t", anchor="a", status=RoomStatus.LIVE, created_at=1)
    )
    await two.broker.subscribe(rid)
    assert (await one.danmaku.append(rid, {"text": "before"})).seq == 1
    await eventually(lambda: len(got) == 1)

    slot = key_slot(keys.channel(rid).encode())
    src = _owner(own_cluster.ports, slot)
    dst = next(p for p in own_cluster.ports if p != src)
    await asyncio.to_thread(_move_slot, own_cluster.ports, slot, src, dst)
    assert _owner(own_cluster.ports, slot) == dst

    # The server dropped the subscription on the old master (SUNSUBSCRIBE push); the
    # broker finds the new master and subscribes there.
    await eventually(lambda: keys.channel(rid) in _shard_channels(dst), within=10)
    assert keys.channel(rid) not in _shard_channels(src)
    # The hot scripts follow MOVED: the log goes on from where it was, on the new master.
    appended = await one.danmaku.append(rid, {"text": "after"})
    assert appended.seq == 2
    await eventually(lambda: len(got) == 2)
    assert b'"seq":2' in got[1]
    # And the cluster client's slot map caught up too (plain commands).
    assert (await one.rooms.get(rid)) is not None


async def test_scripts_follow_ask_while_a_slot_is_migrating(
    engines: list[Engine],
    own_cluster: RedisCluster,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[object, ...]] = []
    real = RedisPipe.execute_asking

    async def spy(self: RedisPipe, *args: Any) -> Any:
        asked.append(args)
        return await real(self, *args)

    monkeypatch.setattr(RedisPipe, "execute_asking", spy)
    keys = RoomKeys(redis_prefix)
    one = engines[0]
    rid = "half-moved"
    await one.rooms.create(
        Room(id=rid, title="t", anchor="a", status=RoomStatus.LIVE, created_at=1)
    )
    assert (await one.danmaku.append(rid, {"text": "before"})).seq == 1
    slot = key_slot(keys.room(rid).encode())
    src = _owner(own_cluster.ports, slot)
    dst = next(p for p in own_cluster.ports if p != src)
    await asyncio.to_thread(_start_moving, slot, src, dst)
    try:
        # The keys are on dst, the slot still src's: src answers ASK, the pipe follows.
        assert (await one.danmaku.append(rid, {"text": "during"})).seq == 2
        assert [a[0] for a in asked] == ["EVALSHA"]  # one ASK, followed once
    finally:
        await asyncio.to_thread(_finish_moving, own_cluster.ports, slot, src, dst)
    assert (await one.danmaku.append(rid, {"text": "after"})).seq == 3
    history = await one.danmaku.history(rid, None, None, 10)
    assert history.seq == 3
    assert [orjson.loads(p)["text"] for p in history.items] == ["before", "during", "after"]


async def test_subscriptions_come_back_after_the_connections_are_killed(
    engines: list[Engine], own_cluster: RedisCluster, redis_prefix: str, eventually: Eventually
) -> None:
    keys = RoomKeys(redis_prefix)
    one, two = engines
    got: list[tuple[str, bytes]] = []
    resyncs: list[int] = []
    two.broker.set_handler(lambda room, payload: got.append((room, payload)))
    two.broker.set_resync(lambda: resyncs.append(len(got)))
    rooms = [f"killed{i}" for i in range(6)]
    for rid in rooms:
        await two.broker.subscribe(rid)
    ports = own_cluster.ports
    placed = {port: _shard_channels(port) & {keys.channel(r) for r in rooms} for port in ports}
    holders = [port for port, channels in placed.items() if channels]
    before = {port: _pubsub_ids(port) for port in holders}
    assert all(before.values()), before
    killed = 0
    for port in ports:
        node = _node(port)
        try:
            killed += node.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        finally:
            node.close()
    assert killed >= len(holders)  # at least the connection holding the rooms, per master
    # Publishing while the subscribers reconnect may be lost (pub/sub keeps nothing):
    # publish until every room has been heard again.
    async with asyncio.timeout(10):
        n = 0
        while {r for r, _ in got} != set(rooms):
            for rid in rooms:
                await one.broker.publish(rid, b"%d" % n)
            n += 1
            await asyncio.sleep(0.05)
    # Heard again because of a resubscribe: each master carries the same rooms as before,
    # on connections that are not the killed ones, and the broker said messages may be lost.
    for port in holders:
        assert _shard_channels(port) & placed[port] == placed[port]
        assert not _pubsub_ids(port) & before[port]
    await eventually(lambda: len(resyncs) >= 1)
