"""An in-process app on a real loopback socket, for tests that look inside the hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from interact import tokens
from interact.app import build_app
from interact.config import Config
from interact.context import Context
from interact.upgrade import dispatch_factory
from rooms.service import Author

SECRET = "functional-secret-0123456789abcdef0123456789"
OPERATOR = Author("ops", "ops", "operator")


@dataclass
class Served:
    base: str
    port: int
    ctx: Context


ServeApp = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve_app() -> AsyncIterator[ServeApp]:
    runners: list[web.AppRunner] = []

    async def start(**overrides: Any) -> Served:
        settings = {"rate_per_s": 0.0, "repeat_window": 0.0, **overrides}
        config = Config(host="127.0.0.1", port=0, secret=SECRET, **settings)
        app = build_app(config)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return Served(f"http://127.0.0.1:{port}", port, app[Context.KEY])

    yield start
    for runner in runners:
        await runner.cleanup()


async def serve_dispatched(config: Config) -> tuple[web.AppRunner, asyncio.Server, Context]:
    """The app behind ``interact serve``'s own dispatcher (``interact.upgrade``), as the
    real server listens, on a free loopback port; the caller cleans both up."""
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    ctx = app[Context.KEY]
    server = await asyncio.get_running_loop().create_server(
        dispatch_factory(ctx, runner.server), "127.0.0.1", 0
    )
    return runner, server, ctx


def counter(ctx: Context, name: str) -> float:
    value = ctx.metrics.registry.get_sample_value(f"interact_{name}_total")
    return 0.0 if value is None else value


def token(uid: str) -> str:
    return tokens.issue(SECRET, tokens.User(uid, uid, tokens.Role.VIEWER), 600)


async def live_room(ctx: Context) -> str:
    room = await ctx.service.create("functional", None)
    await ctx.service.act(room.id, "start")
    return room.id


async def settle(ctx: Context) -> None:
    """Wait two ticks so everything queued has been flushed."""
    await asyncio.sleep(2 * ctx.config.tick_ms / 1000)
