"""The ``engine`` fixture: every contract test runs once per engine (memory, redis).

A test that needs two processes sharing state (two connections to one Redis) asks for
``make_engine`` and calls it twice; such tests pin ``kind`` to redis with
``@pytest.mark.parametrize("kind", ["redis"])``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from interact.engine import Engine, connect_redis, memory_engine, redis_engine

HISTORY_SIZE = 10

MakeEngine = Callable[..., Awaitable[Engine]]
NewClient = Callable[[], aioredis.Redis]


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_engine(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[MakeEngine]:
    """Build started engines of ``kind``; on redis they share this test's key prefix."""
    url = prefix = ""
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
    engines: list[Engine] = []

    async def make(history_size: int = HISTORY_SIZE) -> Engine:
        if kind == "memory":
            engine = memory_engine(history_size=history_size)
        else:
            engine = redis_engine(url, prefix, history_size=history_size)
        engines.append(engine)
        await engine.start()
        return engine

    yield make
    for engine in reversed(engines):
        await engine.close()


@pytest.fixture
async def engine(make_engine: MakeEngine) -> Engine:
    return await make_engine()


@pytest.fixture
async def new_redis_client(request: pytest.FixtureRequest) -> AsyncIterator[NewClient]:
    """Clients built as the engine builds them (blocking pool, hot scripts over a pipe),
    each one a separate process's connections; all closed after the test."""
    made = []

    def make() -> aioredis.Redis:
        client, pipe = connect_redis(request.getfixturevalue("redis_url"))
        made.append((client, pipe))
        return client

    yield make
    for client, pipe in made:
        if pipe is not None:
            await pipe.close()
        await client.aclose()
