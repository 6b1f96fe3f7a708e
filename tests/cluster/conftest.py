"""Fixtures of the Redis Cluster tests: real server processes on the session's cluster.

Everything here carries the ``cluster`` marker (``pytest -m cluster`` selects it, and
``-m "not cluster"`` leaves it out); it runs in the default ``pytest`` like every test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import ServerProcess, start_server

StartServer = Callable[..., ServerProcess]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture
def cluster_env(redis_cluster_url: str, redis_prefix: str) -> dict[str, str]:
    """The environment of a server on the session's cluster, under this test's prefix."""
    return {
        "INTERACT_REDIS_URL": redis_cluster_url,
        "INTERACT_REDIS_PREFIX": redis_prefix,
        "INTERACT_ONLINE_INTERVAL": "0.3",
        "INTERACT_SWEEP_INTERVAL": "0.2",
        "INTERACT_PAY_PROVIDER": "dev",  # on Redis it must be asked for explicitly
    }


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[StartServer]:
    """Start real server processes; every one is stopped (and must exit 0) at the end."""
    started: list[ServerProcess] = []

    def start(*args: str, **kwargs: Any) -> ServerProcess:
        server = start_server(tmp_path, *args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        assert server.stop() == 0, server.log()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
        yield s
