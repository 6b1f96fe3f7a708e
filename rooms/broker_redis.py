"""Redis Broker over pub/sub (see ``rooms.broker`` for the contract).

One pub/sub connection per process carries every room this process subscribed to; a
reader task hands each message to the handler in arrival order. The set of rooms in
``_rooms`` is the truth: whenever the connection is lost, the reader backs off, opens a
new connection and subscribes to that whole set again, so subscriptions survive Redis
restarts and failovers. Messages published while the connection was down are lost
(pub/sub keeps nothing); a client catches up from the danmaku history by seq.

With ``sharded=True`` the same machinery speaks sharded pub/sub (SSUBSCRIBE, one channel
per command) to one node of a Redis Cluster; ``rooms.broker_redis_cluster`` keeps one such
broker per master and tells it, through ``on_lost`` and ``on_error``, when the cluster
moved a room's slot away or the node failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rooms.broker import Handler, Resync
from rooms.keys import RoomKeys

log = logging.getLogger(__name__)


class RedisBroker:
    def __init__(
        self,
        client: Redis,
        keys: RoomKeys,
        *,
        poll_s: float = 1.0,
        ping_after_s: float = 10.0,
        confirm_timeout_s: float = 5.0,
        backoff_min_s: float = 0.05,
        backoff_max_s: float = 5.0,
        sharded: bool = False,
        node_kwargs: dict[str, Any] | None = None,
        on_lost: Callable[[str], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._client = client
        self._sharded = sharded
        # Connection kwargs (host, port, auth, connection_class) of the node to subscribe
        # on; default: the node ``client`` points at.
        self._node_kwargs = node_kwargs
        self._on_lost = on_lost
        self._on_error = on_error
        # Per room, UNSUBSCRIBEs sent and not yet confirmed on the current connection:
        # an unsubscribe confirmation beyond those is the server dropping the room.
        self._unsubs: dict[str, int] = {}
        self._keys = keys
        self._poll_s = poll_s
        self._ping_after_s = ping_after_s
        self._confirm_timeout_s = confirm_timeout_s
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._handler: Handler | None = None
        self._resync: Resync | None = None
        self._resyncs: set[asyncio.Future[None]] = set()
        self._connected_once = False
        self._rooms: set[str] = set()
        # Per room, one future per SUBSCRIBE sent and not yet confirmed, oldest first:
        # Redis confirms in the order it received them.
        self._acks: dict[str, deque[asyncio.Future[bool]]] = {}
        self._pool: ConnectionPool | None = None
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def set_handler(self, handler: Handler) -> None:
        self._handler = handler

    def set_resync(self, callback: Resync) -> None:
        self._resync = callback

    async def publish(self, room_id: str, payload: bytes) -> None:
        if self._sharded:
            await self._client.spublish(self._keys.channel(room_id), payload)
        else:
            await self._client.publish(self._keys.channel(room_id), payload)

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this broker holds (subscribed, or to subscribe on reconnect)."""
        return frozenset(self._rooms)

    async def resubscribe(self, room_id: str) -> None:
        """Subscribe again to a room the server dropped (sharded pub/sub, slot moves)."""
        ps = self._pubsub
        if room_id not in self._rooms or ps is None:
            return
        fut = self._expect(room_id)
        try:
            await self._subscribe_on(ps, [room_id])
        except Exception as exc:
            log.warning("broker: resubscribe %s failed (%r); dropping connection", room_id, exc)
            await self._drop(ps)
            return
        await self._confirmed(room_id, fut)

    async def _subscribe_on(self, ps: PubSub, rooms: list[str]) -> None:
        channels = [self._keys.channel(r) for r in rooms]
        if not self._sharded:
            await ps.subscribe(*channels)
            return
        # One SSUBSCRIBE per channel: several channels in one command must share a slot.
        for channel in channels:
            await ps.ssubscribe(channel)

    async def _unsubscribe_on(self, ps: PubSub, rooms: list[str]) -> None:
        for r in rooms:
            self._unsubs[r] = self._unsubs.get(r, 0) + 1
        channels = [self._keys.channel(r) for r in rooms]
        if not self._sharded:
            await ps.unsubscribe(*channels)
            return
        for channel in channels:
            await ps.sunsubscribe(channel)

    async def subscribe(self, room_id: str) -> None:
        """Return once Redis confirmed the subscription.

        When Redis is unreachable (or before ``start``) the room is only recorded; the
        reader subscribes to it as soon as it has a connection.
        """
        if room_id in self._rooms:
            pending = self._acks.get(room_id)
            if pending:
                await self._confirmed(room_id, pending[-1])
            return
        self._rooms.add(room_id)
        ps = self._pubsub
        if ps is None:
            return
        fut = self._expect(room_id)
        try:
            await self._subscribe_on(ps, [room_id])
        except Exception as exc:
            log.warning(
                "broker: subscribe %s failed (%r); resubscribing on reconnect", room_id, exc
            )
            await self._drop(ps)
            return
        await self._confirmed(room_id, fut)

    async def unsubscribe(self, room_id: str) -> None:
        if room_id not in self._rooms:
            return
        # Dropped from the set first: from here on its messages are not delivered,
        # whatever is still in flight on the connection.
        self._rooms.discard(room_id)
        ps = self._pubsub
        if ps is None:
            return
        try:
            await self._unsubscribe_on(ps, [room_id])
        except Exception as exc:
            log.warning("broker: unsubscribe %s failed (%r); dropping connection", room_id, exc)
            await self._drop(ps)

    async def start(self) -> None:
        if self._task is not None:
            return
        self._closed = False
        pending: list[asyncio.Future[bool]] = []
        try:
            pending = await self._connect()
            self._connected_once = True
        except Exception as exc:
            # Serve anyway; the reader keeps retrying and /readyz reports Redis down.
            log.warning("broker: Redis pub/sub unreachable at start (%r); retrying", exc)
        self._task = asyncio.create_task(self._run(), name="redis-broker-reader")
        for fut in pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(fut), self._confirm_timeout_s)

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pubsub is not None:
            await self._drop(self._pubsub)
        self._rooms.clear()
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    # -- connection ----------------------------------------------------------------

    def _new_pubsub(self) -> PubSub:
        if self._pool is None:
            # A pool of its own, without redis-py's retries: a retry that reconnects
            # inside redis-py would come back with none of our subscriptions, so every
            # connection error must reach the reader, which resubscribes the full set.
            if self._node_kwargs is not None:
                kwargs = dict(self._node_kwargs)
            else:
                kwargs = dict(self._client.connection_pool.connection_kwargs)
                kwargs["connection_class"] = self._client.connection_pool.connection_class
            kwargs["retry"] = Retry(NoBackoff(), 0)
            self._pool = ConnectionPool(**kwargs)
        return PubSub(self._pool)

    async def _connect(self) -> list[asyncio.Future[bool]]:
        """Open a pub/sub connection subscribed to every room in the set."""
        ps = self._new_pubsub()
        self._unsubs.clear()  # confirmations owed on an old connection never come
        done: set[str] = set()
        pending: list[asyncio.Future[bool]] = []
        try:
            await ps.connect()
            # Rooms may come and go while we await; loop until the set held still.
            while (want := set(self._rooms)) != done:
                if add := sorted(want - done):
                    pending += [self._expect(r) for r in add]
                    await self._subscribe_on(ps, add)
                if drop := sorted(done - want):
                    await self._unsubscribe_on(ps, drop)
                done = want
        except BaseException:
            self._fail_acks()
            await ps.aclose()
            raise
        self._pubsub = ps
        return pending

    async def _drop(self, ps: PubSub) -> None:
        """Forget ``ps`` (if still current) and close it; the reader reconnects."""
        if self._pubsub is ps:
            self._pubsub = None
            self._fail_acks()
        with contextlib.suppress(Exception):
            await ps.aclose()

    # -- reader --------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self._backoff_min_s
        last_rx = loop.time()
        pinged = False
        while not self._closed:
            ps = self._pubsub
            try:
                if ps is None:
                    pending = await self._connect()
                    log.info("broker: Redis pub/sub connected, %d rooms", len(self._rooms))
                    last_rx, pinged = loop.time(), False
                    self._after_reconnect(pending)
                    continue
                msg = await ps.get_message(timeout=self._poll_s)
                if msg is None:
                    idle = loop.time() - last_rx
                    if pinged and idle > 2 * self._ping_after_s:
                        raise ConnectionError("no answer to PING")
                    if not pinged and idle > self._ping_after_s:
                        # A half-open TCP connection looks exactly like a quiet room.
                        await ps.ping()
                        pinged = True
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if ps is not None and ps is not self._pubsub:
                    continue  # someone else dropped it already; reconnect now
                log.warning(
                    "broker: Redis pub/sub connection lost (%s: %s); retrying in %.2fs",
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                if ps is not None:
                    await self._drop(ps)
                if self._on_error is not None:
                    self._on_error(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            backoff = self._backoff_min_s
            last_rx, pinged = loop.time(), False
            self._on_message(msg)

    def _after_reconnect(self, pending: list[asyncio.Future[bool]]) -> None:
        """Once the rooms are subscribed again, say that messages may have been lost."""
        if not self._connected_once:
            self._connected_once = True  # the first connection: nothing was missed
            return
        if self._resync is None:
            return
        resync = self._resync

        async def when_confirmed() -> None:
            # Only after the confirmations: a history read that Redis served before the
            # SUBSCRIBE could miss a message published in between.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*pending), self._confirm_timeout_s)
            resync()

        task = asyncio.ensure_future(when_confirmed())
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if isinstance(kind, bytes):
            kind = kind.decode()
        if kind in ("message", "smessage"):
            room_id = self._room_of(msg["channel"])
            # The set, not the server, decides: an unsubscribed room's in-flight
            # messages are dropped, as the memory broker would.
            if room_id in self._rooms and self._handler is not None:
                try:
                    self._handler(room_id, msg["data"])
                except Exception:
                    log.exception("broker: handler failed for room %s", room_id)
        elif kind in ("subscribe", "ssubscribe"):
            room_id = self._room_of(msg["channel"])
            pending = self._acks.get(room_id)
            if pending:
                fut = pending.popleft()
                if not pending:
                    del self._acks[room_id]
                if not fut.done():
                    fut.set_result(True)
        elif kind in ("unsubscribe", "sunsubscribe"):
            room_id = self._room_of(msg["channel"])
            owed = self._unsubs.get(room_id, 0)
            if owed > 1:
                self._unsubs[room_id] = owed - 1
            elif owed == 1:
                del self._unsubs[room_id]
            elif room_id in self._rooms and self._on_lost is not None:
                # Unasked: on a cluster the room's slot moved to another node.
                self._on_lost(room_id)

    def _room_of(self, channel: bytes | str) -> str:
        if isinstance(channel, bytes):
            channel = channel.decode()
        return self._keys.room_of_channel(channel)

    # -- subscription confirmations ------------------------------------------------

    def _expect(self, room_id: str) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._acks.setdefault(room_id, deque()).append(fut)
        return fut

    def _fail_acks(self) -> None:
        acks, self._acks = self._acks, {}
        for pending in acks.values():
            for fut in pending:
                if not fut.done():
                    fut.set_result(False)

    async def _confirmed(self, room_id: str, fut: asyncio.Future[bool]) -> None:
        try:
            ok = await asyncio.wait_for(asyncio.shield(fut), self._confirm_timeout_s)
        except TimeoutError:
            ok = False
        if not ok and not self._closed:
            log.warning("broker: subscription to %s not confirmed yet; will resubscribe", room_id)
