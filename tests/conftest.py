"""Shared fixtures: a Redis and a Redis Cluster for the whole session, a key prefix per test.

Redis is either ``INTERACT_TEST_REDIS_URL`` or a ``redis-server`` started here on a free
loopback port; the cluster is ``INTERACT_TEST_REDIS_CLUSTER_URL`` (``redis+cluster://…``)
or three cluster-enabled ``redis-server`` masters started here. Without them the Redis
tests fail, loudly: they are never skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis

from tests.redis_server import (
    RedisServerError,
    start_redis_cluster,
    start_redis_server,
    stop_redis_cluster,
    stop_redis_server,
)

REDIS_URL_ENV = "INTERACT_TEST_REDIS_URL"
REDIS_CLUSTER_URL_ENV = "INTERACT_TEST_REDIS_CLUSTER_URL"


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


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis+cluster://…`` of the test cluster (tests share it; keep to your prefix and
    clean up with ``delete_cluster_prefix``)."""
    url = os.environ.get(REDIS_CLUSTER_URL_ENV)
    if url:
        yield url
        return
    try:
        cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    except RedisServerError as exc:
        pytest.fail(
            f"no Redis Cluster for the tests: set {REDIS_CLUSTER_URL_ENV} or put "
            f"redis-server and redis-cli on PATH ({exc})",
            pytrace=False,
        )
    try:
        yield cluster.url
    finally:
        stop_redis_cluster(cluster)


def delete_cluster_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` on every master of the cluster at ``url``."""
    from redis.cluster import ClusterNode, RedisCluster

    from interact.engine import parse_cluster_url

    opts = parse_cluster_url(url)
    client = RedisCluster(
        startup_nodes=[ClusterNode(h, p) for h, p in opts["startup"]],
        username=opts["username"],
        password=opts["password"],
    )
    try:
        # SCAN on a cluster client walks every master; DEL is split per slot.
        batch = list(client.scan_iter(match=f"{prefix}*", count=500))
        if batch:
            client.delete(*batch)
    finally:
        client.close()


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
