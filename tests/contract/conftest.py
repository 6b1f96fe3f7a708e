"""The ``engine`` fixture: every contract test runs once per engine (memory, redis,
redis-cluster: three masters, see ``tests/conftest.py``).

A test that needs two processes sharing state (two connections to one Redis) asks for
``make_engine`` and calls it twice; such tests pin ``kind`` to redis with
``@pytest.mark.parametrize("kind", ["redis"])``. The cluster cases carry the ``cluster``
marker: ``pytest -m cluster`` runs only them, ``-m "not cluster"`` skips them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from interact.engine import Engine, connect_redis, memory_engine, redis_engine
from tests.conftest import REDIS_CLUSTER_URL_ENV, delete_cluster_prefix

HISTORY_SIZE = 10

MakeEngine = Callable[..., Awaitable[Engine]]
NewClient = Callable[[], aioredis.Redis]


@pytest.fixture(
    params=["memory", "redis", pytest.param("redis-cluster", marks=pytest.mark.cluster)]
)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _url_of(kind: str, request: pytest.FixtureRequest) -> str:
    """The Redis URL for ``kind``; on a shared cluster, this test's keys go after it."""
    if kind != "redis-cluster":
        return str(request.getfixturevalue("redis_url"))
    url = str(request.getfixturevalue("redis_cluster_url"))
    prefix = str(request.getfixturevalue("redis_prefix"))
    # The cluster started for this session dies with it: cleaning per test (a scan of
    # every master) would only cost time. One given in the environment may be shared.
    shared = bool(os.environ.get(REDIS_CLUSTER_URL_ENV))
    if shared and not getattr(request.node, "_cluster_cleanup", False):
        request.node._cluster_cleanup = True
        request.addfinalizer(lambda: delete_cluster_prefix(url, prefix))
    return url


@pytest.fixture
async def make_engine(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[MakeEngine]:
    """Build started engines of ``kind``; on redis they share this test's key prefix."""
    url = prefix = ""
    if kind != "memory":
        url = _url_of(kind, request)
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

    kind = request.getfixturevalue("kind") if "kind" in request.fixturenames else "redis"
    url = _url_of(kind if kind != "memory" else "redis", request)

    def make() -> aioredis.Redis:
        client, pipe = connect_redis(url)
        made.append((client, pipe))
        return client  # type: ignore[return-value]  # a RedisCluster on the cluster

    yield make
    for client, pipe in made:
        if pipe is not None:
            await pipe.close()
        await client.aclose()
