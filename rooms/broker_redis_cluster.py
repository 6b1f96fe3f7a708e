"""Redis Cluster Broker over sharded pub/sub (see ``rooms.broker`` for the contract).

A room's channel ``{prefix}ch:{room}`` carries the room's hash tag, so it lives in the
room's slot: SPUBLISH reaches only the master owning that slot (and its replicas), not
every node as classic PUBLISH does on a cluster. A process subscribes on each master to
exactly the rooms of that master its viewers are in: one ``RedisBroker(sharded=True)``
per master, each with its own connection, reader and reconnect loop. All messages of a
room come over one connection, so they keep their order.

Which master a room belongs to is redis-py's slot map. The map is reloaded, and rooms
are moved to their new master, when a node broker reports trouble: the server dropped a
subscription (``SUNSUBSCRIBE`` pushed on slot migration), or its connection failed (a
node down or failed over, or a ``MOVED`` reply to SSUBSCRIBE). ``_wanted`` is the truth:
whatever happens to connections and slots, every room in it ends up subscribed on its
slot's current master.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from interact.floor.redis_pipe import pipe_of
from rooms.broker import Handler, Resync
from rooms.broker_redis import RedisBroker
from rooms.keys import RoomKeys

log = logging.getLogger(__name__)


class RedisClusterBroker:
    def __init__(
        self,
        client: RedisCluster,
        keys: RoomKeys,
        *,
        backoff_min_s: float = 0.05,
        backoff_max_s: float = 5.0,
        **node_options: Any,
    ) -> None:
        self._client = client
        self._keys = keys
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._node_options = {
            "backoff_min_s": backoff_min_s,
            "backoff_max_s": backoff_max_s,
            **node_options,
        }
        self._handler: Handler | None = None
        self._resync: Resync | None = None
        self._wanted: set[str] = set()
        self._home: dict[str, str] = {}  # room -> name ("host:port") of its node broker
        self._nodes: dict[str, RedisBroker] = {}
        self._lost: set[str] = set()  # rooms the server dropped, to subscribe again
        self._kick = asyncio.Event()
        self._stale = False  # the slot map needs a reload before the next reconcile
        self._task: asyncio.Task[None] | None = None
        self._started = False

    def set_handler(self, handler: Handler) -> None:
        self._handler = handler
        for node in self._nodes.values():
            node.set_handler(handler)

    def set_resync(self, callback: Resync) -> None:
        self._resync = callback
        for node in self._nodes.values():
            node.set_resync(callback)

    async def publish(self, room_id: str, payload: bytes) -> None:
        channel = self._keys.channel(room_id)
        pipe = pipe_of(self._client)
        if pipe is not None:
            # The hot scripts' pipe routes by slot (the channel's) and follows MOVED.
            await pipe.execute("SPUBLISH", channel, payload)
        else:
            await self._client.spublish(channel, payload)

    async def subscribe(self, room_id: str) -> None:
        """Return once the room's master confirmed the subscription (as ``RedisBroker``);
        while the cluster is unreachable the room is recorded and subscribed later."""
        self._wanted.add(room_id)
        if not self._started:
            return
        name = self._home.get(room_id)
        if name is None:
            node = self._owner(room_id)
            if node is None:
                self._wake(stale=True)
                return
            name = node.name
            self._home[room_id] = name
            broker = await self._node(node)
            if self._home.get(room_id) != name:
                return  # unsubscribed (or moved) while the node broker connected
        else:
            broker = self._nodes[name]
        await broker.subscribe(room_id)

    async def unsubscribe(self, room_id: str) -> None:
        self._wanted.discard(room_id)
        self._lost.discard(room_id)
        name = self._home.pop(room_id, None)
        if name is not None and name in self._nodes:
            await self._nodes[name].unsubscribe(room_id)

    async def start(self) -> None:
        if self._task is not None:
            return
        self._started = True
        try:
            await self._client.initialize()
            await self._reconcile()
        except Exception as exc:
            log.warning("broker: Redis Cluster unreachable at start (%r); retrying", exc)
            self._stale = True
            self._kick.set()
        self._task = asyncio.create_task(self._run(), name="redis-cluster-broker")

    async def close(self) -> None:
        self._started = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        nodes, self._nodes = self._nodes, {}
        for broker in nodes.values():
            await broker.close()
        self._wanted.clear()
        self._home.clear()
        self._lost.clear()

    # -- node brokers --------------------------------------------------------------

    def _owner(self, room_id: str) -> ClusterNode | None:
        slot = key_slot(self._keys.channel(room_id).encode())
        nodes = self._client.nodes_manager.slots_cache.get(slot)
        return nodes[0] if nodes else None

    async def _node(self, node: ClusterNode) -> RedisBroker:
        broker = self._nodes.get(node.name)
        if broker is None:
            kwargs = dict(node.connection_kwargs)
            kwargs["connection_class"] = node.connection_class
            name = node.name
            broker = RedisBroker(
                self._client,  # type: ignore[arg-type]  # only its node_kwargs are used
                self._keys,
                sharded=True,
                node_kwargs=kwargs,
                on_lost=self._on_lost,
                on_error=lambda exc: self._on_error(name, exc),
                **self._node_options,
            )
            if self._handler is not None:
                broker.set_handler(self._handler)
            if self._resync is not None:
                broker.set_resync(self._resync)
            self._nodes[name] = broker
            await broker.start()
        return broker

    def _on_lost(self, room_id: str) -> None:
        self._lost.add(room_id)
        self._wake(stale=True)

    def _on_error(self, name: str, exc: Exception) -> None:
        log.info("broker: cluster node %s failed (%r); reloading the slot map", name, exc)
        self._wake(stale=True)

    def _wake(self, *, stale: bool) -> None:
        self._stale = self._stale or stale
        self._kick.set()

    # -- reconciliation ------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self._backoff_min_s
        while self._started:
            await self._kick.wait()
            self._kick.clear()
            try:
                moved = self._stale
                if self._stale:
                    self._stale = False
                    await self._client.nodes_manager.initialize()
                await self._reconcile()
                if moved and self._resync is not None:
                    self._resync()  # rooms moved or a node failed: messages may be lost
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "broker: cluster reconcile failed (%r); retrying in %.2fs", exc, backoff
                )
                self._stale = True
                self._kick.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            backoff = self._backoff_min_s
            # Several node brokers report one failover: let them settle before reloading.
            await asyncio.sleep(self._backoff_min_s)

    async def _reconcile(self) -> None:
        """Put every wanted room on its slot's master; drop node brokers left empty."""
        for room_id in sorted(self._wanted):
            node = self._owner(room_id)
            if node is None:
                self._stale = True
                self._kick.set()
                continue
            old = self._home.get(room_id)
            if old == node.name:
                if room_id in self._lost:
                    self._lost.discard(room_id)
                    await self._nodes[old].resubscribe(room_id)
                continue
            if old is not None and old in self._nodes:
                await self._nodes[old].unsubscribe(room_id)
            self._lost.discard(room_id)
            if room_id not in self._wanted:
                continue  # unsubscribed while we awaited
            self._home[room_id] = node.name
            await (await self._node(node)).subscribe(room_id)
        # A node broker of a node that is no longer a master would retry it for ever.
        masters = {n.name for n in self._client.get_primaries()}
        homes = set(self._home.values())
        for name, broker in list(self._nodes.items()):
            if name not in masters and name not in homes and not broker.rooms:
                del self._nodes[name]
                await broker.close()
