"""Shared fixtures: a Redis for the whole session and a key prefix per test.

Redis is either ``INTERACT_TEST_REDIS_URL`` or a ``redis-server`` started here on a free
loopback port. Without either the Redis tests fail, loudly: they are never skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis

from tests.redis_server import RedisServerError, start_redis_server, stop_redis_server

REDIS_URL_ENV = "INTERACT_TEST_REDIS_URL"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the test Redis (tests share it; keep to your ``redis_prefix``)."""
    url = os.environ.get(REDIS_URL_ENV)
    if url:
        client = redis.Redis.from_url(url)
        try:
            client.ping()
        except redis.RedisError as exc:
            pytest.fail(f"{REDIS_URL_ENV}={url} does not answer PING: {exc}", pytrace=False)
        finally:
            client.close()
        yield url
        return
    try:
        proc, port = start_redis_server(tmp_path_factory.mktemp("redis"))
    except RedisServerError as exc:
        pytest.fail(
            f"no Redis for the tests: set {REDIS_URL_ENV} or put redis-server on PATH ({exc})",
            pytrace=False,
        )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_redis_server(proc)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, like ``t:1a2b3c4d:``; its keys go at teardown.

    Never FLUSHALL: the Redis may be shared with other runs.
    """
    prefix = f"t:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        batch = list(client.scan_iter(match=f"{prefix}*", count=500))
        if batch:
            client.delete(*batch)
    finally:
        client.close()


Eventually = Callable[..., Awaitable[None]]


async def _eventually(
    predicate: Callable[[], bool], within: float = 3.0, interval: float = 0.005
) -> None:
    try:
        async with asyncio.timeout(within):
            # Polling is the point: the condition is another component's state.
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(interval)
    except TimeoutError:
        pytest.fail(f"condition not met within {within}s: {predicate}")


@pytest.fixture
def eventually() -> Eventually:
    """``await eventually(predicate, within=3.0)``: poll until true, else fail the test."""
    return _eventually
