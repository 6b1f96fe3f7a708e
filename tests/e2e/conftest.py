from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess, start_server

_HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in tests/e2e carries the ``e2e`` marker, so ``-m e2e`` and ``-m "not e2e"``
    select them; tryfirst: before ``-m`` deselects anything."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real server processes; every one is stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(*args: str, **kwargs: Any) -> ServerProcess:
        server = start_server(tmp_path, *args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One memory-engine server shared by a module's tests (each test uses its own rooms)."""
    server = start_server(
        tmp_path_factory.mktemp("memory"),
        env={"INTERACT_ONLINE_INTERVAL": "0.3", "INTERACT_HISTORY_SIZE": "20"},
    )
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # No keep-alive: every WebSocket then opens a fresh connection, as a mini-program's
    # does, and meets the server's own upgrade path (interact.upgrade), not aiohttp's.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


@pytest.fixture
def operator(memory_server: ServerProcess, session: aiohttp.ClientSession) -> Api:
    return Api(session, memory_server.base, memory_server.token("ops", "operator"))
