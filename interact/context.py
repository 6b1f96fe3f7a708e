"""Everything one process's handlers share, hung off the app under one typed key."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from interact.config import Config
from interact.engine import Engine
from interact.errors import Code
from interact.hub import Hub
from interact.metrics import Metrics
from interact.protocol import Enter, Grab, ack
from interact.viewer import Viewer
from interact.wechat_login import WeChatLogin
from rooms.service import RoomService

log = logging.getLogger("interact")


@dataclass(slots=True)
class Context:
    KEY: ClassVar[web.AppKey[Context]]

    config: Config
    engine: Engine
    service: RoomService
    hub: Hub
    metrics: Metrics
    node_id: str
    wechat: WeChatLogin | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run a side task (stats) without holding up the caller; keep it referenced."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(_finished)
        task.add_done_callback(self._tasks.discard)

    async def interactions(self, viewer: Viewer, message: Grab | Enter) -> dict[str, Any]:
        """Red-packet grabs and lottery entries; no packet or lottery exists yet."""
        kind = "red packet" if isinstance(message, Grab) else "lottery"
        return ack(message.ref, False, Code.NOT_FOUND.value, msg=f"no {kind} {message.id}")


def _finished(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("side task failed: %r", task.exception())


Context.KEY = web.AppKey("interact.context", Context)
