"""A pipelined Redis connection for the hot Lua scripts.

redis-py spends 70–100 µs of client CPU per command (pool checkout, timeouts, packing,
reply parsing); a grab or a reserve is one short script that Redis runs in ~15 µs. Here
every command is written to one connection as soon as it is issued and the replies,
which Redis sends in order, are matched to their callers first-in first-out: no checkout,
no round trip per caller, replies parsed by hiredis. Everything else stays on redis-py.

On Redis Cluster a ``ClusterPipe`` keeps one such connection per master and sends each
command to the master owning the hash slot of its first key (every per-room script's keys
share the room's hash tag), following ``MOVED`` and ``ASK`` redirections.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError, SlotNotCoveredError

log = logging.getLogger(__name__)

Arg = bytes | str | int | float

# A client the stores accept: one Redis, or a Redis Cluster (same command methods).
AnyRedis = Redis | RedisCluster


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def encode(args: Sequence[Arg]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.lost: Exception | None = None
        # Commands issued in one turn of the event loop leave in one write (one syscall).
        self.outbox: list[bytes] = []

    def send(self, data: bytes) -> None:
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outbox.append(data)

    def flush(self) -> None:
        if self.outbox and self.transport is not None and self.lost is None:
            self.transport.write(b"".join(self.outbox))
        self.outbox.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but behave as one.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiters.popleft()
            if waiter.done():
                continue  # its caller was cancelled; the reply is dropped in order
            if isinstance(reply, hiredis.ReplyError):
                text = str(reply)
                error = NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)
                waiter.set_exception(error)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}")
        self.outbox.clear()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)


class RedisPipe:
    """One pipelined connection to the Redis a redis-py client points at."""

    def __init__(
        self,
        host: str,
        port: int,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self._address = (host, port)
        self._setup = []
        if password:
            self._setup.append(("AUTH", username, password) if username else ("AUTH", password))
        if db:
            self._setup.append(("SELECT", db))
        self._timeout = connect_timeout
        self._proto: _Protocol | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and proto.lost is None:
            return proto
        async with self._lock:
            if self._proto is not None and self._proto.lost is None:
                return self._proto
            if self._closed:
                raise RedisConnectionError("the pipe is closed")
            loop = asyncio.get_running_loop()
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(_Protocol, *self._address), self._timeout
                )
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot reach Redis: {exc}") from None
            for command in self._setup:
                await self._send(proto, [a for a in command if a is not None])
            self._proto = proto
            return proto

    def _send(self, proto: _Protocol, args: Sequence[Arg]) -> asyncio.Future[Any]:
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        proto.waiters.append(waiter)
        proto.send(encode(args))
        return waiter

    async def execute(self, *args: Arg) -> Any:
        proto = await self._connection()
        return await self._send(proto, args)

    async def execute_asking(self, *args: Arg) -> Any:
        """``ASKING`` then the command, adjacent on the connection (a slot being migrated:
        Redis accepts the command only right after ``ASKING`` on the same connection)."""
        proto = await self._connection()
        asking = self._send(proto, ("ASKING",))
        reply = self._send(proto, args)
        try:
            await asking
        except ResponseError:
            pass  # the command's own reply says what went wrong
        return await reply

    async def close(self) -> None:
        self._closed = True
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
            self._proto = None


class Pipe(Protocol):
    async def execute(self, *args: Arg) -> Any: ...

    async def close(self) -> None: ...


# Redirections followed per command before giving up (a slot moves once; a second MOVED
# means the topology is still settling).
_MAX_REDIRECTS = 5
_TRYAGAIN_S = 0.05

Address = tuple[str, int]


def _routing_key(args: Sequence[Arg]) -> Arg | None:
    """The key whose slot decides the node: a script's first key, else the first argument."""
    name = args[0]
    if isinstance(name, str):
        name = name.encode()
    if isinstance(name, bytes) and name.upper() in (b"EVAL", b"EVALSHA", b"FCALL"):
        return args[3] if int(args[2]) > 0 else None
    return args[1] if len(args) > 1 else None


def _slot(key: Arg | None) -> int:
    if key is None:
        return 0  # keyless: any master will do
    if isinstance(key, str):
        data = key.encode()
    elif isinstance(key, bytes):
        data = key
    else:
        data = str(key).encode()
    return key_slot(data)


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


class ClusterPipe:
    """One ``RedisPipe`` per master of a Redis Cluster, chosen per command by key slot.

    The slot map is redis-py's (``RedisCluster.nodes_manager``); a ``MOVED`` reply records
    the new owner of that slot here and resends, an ``ASK`` resends once with ``ASKING``.
    A lost connection fails the commands in flight (as on one Redis: a script may or may
    not have run) and refreshes the slot map, so the next command finds a failed-over node.
    """

    def __init__(self, client: RedisCluster, connect_timeout: float = 5.0) -> None:
        self._client = client
        kwargs = client.get_connection_kwargs()
        self._username: str | None = kwargs.get("username")
        self._password: str | None = kwargs.get("password")
        self._timeout = connect_timeout
        self._pipes: dict[Address, RedisPipe] = {}
        self._moved: dict[int, Address] = {}
        self._refresh: asyncio.Task[None] | None = None
        self._closed = False

    def _pipe(self, address: Address) -> RedisPipe:
        pipe = self._pipes.get(address)
        if pipe is None:
            if self._closed:
                raise RedisConnectionError("the pipe is closed")
            pipe = RedisPipe(
                address[0], address[1], 0, self._username, self._password, self._timeout
            )
            self._pipes[address] = pipe
        return pipe

    async def owner(self, slot: int) -> Address:
        """The master that owns ``slot``, as far as this process knows."""
        moved = self._moved.get(slot)
        if moved is not None:
            return moved
        nodes = self._client.nodes_manager.slots_cache.get(slot)
        if not nodes:
            await self._client.initialize()  # a no-op once the client knows the cluster
            nodes = self._client.nodes_manager.slots_cache.get(slot)
            if not nodes:
                raise SlotNotCoveredError(f"slot {slot} is not covered by the cluster")
        return nodes[0].host, nodes[0].port

    async def execute(self, *args: Arg) -> Any:
        slot = _slot(_routing_key(args))
        address = await self.owner(slot)
        asking = False
        for _ in range(_MAX_REDIRECTS):
            pipe = self._pipe(address)
            try:
                if asking:
                    return await pipe.execute_asking(*args)
                return await pipe.execute(*args)
            except NoScriptError:
                raise
            except ResponseError as exc:
                text = str(exc)
                if text.startswith("MOVED "):
                    _, moved_slot, where = text.split(" ", 2)
                    address, asking = _address(where), False
                    self._moved[int(moved_slot)] = address
                elif text.startswith("ASK "):
                    address, asking = _address(text.split(" ", 2)[2]), True
                elif text.startswith(("TRYAGAIN", "CLUSTERDOWN")):
                    await asyncio.sleep(_TRYAGAIN_S)
                    address, asking = await self.owner(slot), False
                else:
                    raise
            except RedisConnectionError:
                self._refresh_slots()
                raise
        raise ResponseError(f"too many cluster redirections for slot {slot}")

    def _refresh_slots(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            return
        self._refresh = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        try:
            await self._client.nodes_manager.initialize()
        except Exception as exc:  # the next failure asks again
            log.warning("redis cluster: slot map refresh failed (%r)", exc)
            return
        self._moved.clear()

    async def close(self) -> None:
        self._closed = True
        task, self._refresh = self._refresh, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for pipe in self._pipes.values():
            await pipe.close()
        self._pipes.clear()


class FastScript:
    """A Lua script run by EVALSHA over a pipe; loads itself after a Redis restart."""

    def __init__(self, pipe: Pipe, source: str) -> None:
        self._pipe = pipe
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(
        self, keys: Sequence[Arg] = (), args: Sequence[Arg] = (), client: Any = None
    ) -> Any:
        try:
            return await self._pipe.execute("EVALSHA", self._sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._pipe.execute("EVAL", self._source, len(keys), *keys, *args)


_pipes: weakref.WeakKeyDictionary[AnyRedis, Pipe] = weakref.WeakKeyDictionary()


def attach_pipe(client: AnyRedis) -> Pipe | None:
    """Give ``client``'s hot scripts a pipe (TCP Redis only); the engine closes it."""
    if isinstance(client, RedisCluster):
        if client.get_connection_kwargs().get("connection_class") is not Connection:
            return None  # the pipe speaks plain TCP; redis-py handles TLS
        cluster_pipe = ClusterPipe(client)
        _pipes[client] = cluster_pipe
        return cluster_pipe
    kwargs = client.connection_pool.connection_kwargs
    if "host" not in kwargs:
        return None  # a unix socket or another transport: redis-py handles it
    pipe = RedisPipe(
        kwargs.get("host", "localhost"), int(kwargs.get("port", 6379)),
        int(kwargs.get("db", 0) or 0), kwargs.get("username"), kwargs.get("password"),
    )  # fmt: skip
    _pipes[client] = pipe
    return pipe


def pipe_of(client: AnyRedis) -> Pipe | None:
    return _pipes.get(client)


async def command(client: AnyRedis, *args: Arg) -> Any:
    """One plain command on the hot path: over the client's pipe when it has one (raw
    reply: bulk strings as bytes), else through redis-py (its reply parsing)."""
    pipe = _pipes.get(client)
    if pipe is not None:
        return await pipe.execute(*args)
    return await client.execute_command(*args)
