"""A pipelined Redis connection for the hot Lua scripts.

redis-py spends 70–100 µs of client CPU per command (pool checkout, timeouts, packing,
reply parsing); a grab or a reserve is one short script that Redis runs in ~15 µs. Here
every command is written to one connection as soon as it is issued and the replies,
which Redis sends in order, are matched to their callers first-in first-out: no checkout,
no round trip per caller, replies parsed by hiredis. Everything else stays on redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = bytes | str | int | float


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

    async def close(self) -> None:
        self._closed = True
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
            self._proto = None


class FastScript:
    """A Lua script run by EVALSHA over a pipe; loads itself after a Redis restart."""

    def __init__(self, pipe: RedisPipe, source: str) -> None:
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


_pipes: weakref.WeakKeyDictionary[Redis, RedisPipe] = weakref.WeakKeyDictionary()


def attach_pipe(client: Redis) -> RedisPipe | None:
    """Give ``client``'s hot scripts a pipe (TCP Redis only); the engine closes it."""
    kwargs = client.connection_pool.connection_kwargs
    if "host" not in kwargs:
        return None  # a unix socket or another transport: redis-py handles it
    pipe = RedisPipe(
        kwargs.get("host", "localhost"), int(kwargs.get("port", 6379)),
        int(kwargs.get("db", 0) or 0), kwargs.get("username"), kwargs.get("password"),
    )  # fmt: skip
    _pipes[client] = pipe
    return pipe


def pipe_of(client: Redis) -> RedisPipe | None:
    return _pipes.get(client)


async def command(client: Redis, *args: Arg) -> Any:
    """One plain command on the hot path: over the client's pipe when it has one (raw
    reply: bulk strings as bytes), else through redis-py (its reply parsing)."""
    pipe = _pipes.get(client)
    if pipe is not None:
        return await pipe.execute(*args)
    return await client.execute_command(*args)
