"""Everything one process's handlers share, hung off the app under one typed key."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from commerce.orders import OrderService
from commerce.service import CommerceService
from interact.alerts_setup import AlertEvaluator
from interact.archive_setup import Archiving
from interact.config import Config
from interact.edge import Edge
from interact.engine import Engine
from interact.growth_setup import Growth
from interact.hub import Hub
from interact.metrics import Metrics
from interact.moderation_setup import WordListSync
from interact.protocol import Enter, Grab, ack
from interact.viewer import Viewer
from interact.wechat_login import WeChatLogin
from moderation.report_service import ReportService
from moderation.service import ModerationService
from rooms.service import RoomService
from webhooks.service import WebhookService

log = logging.getLogger("interact")


@dataclass(slots=True)
class Context:
    KEY: ClassVar[web.AppKey[Context]]

    config: Config
    engine: Engine
    service: RoomService
    commerce: CommerceService
    orders: OrderService
    moderation: ModerationService
    words_sync: WordListSync
    hub: Hub
    metrics: Metrics
    node_id: str
    edge: Edge
    wechat: WeChatLogin | None = None
    webhooks: WebhookService | None = None
    growth: Growth | None = None
    archiving: Archiving | None = None  # None: archive_dir not set
    reports: ReportService | None = None  # viewer reports (docs/moderation.md)
    alerts: AlertEvaluator | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run a side task (stats) without holding up the caller; keep it referenced."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(_finished)
        task.add_done_callback(self._tasks.discard)

    async def snapshot(self, room_id: str) -> dict[str, Any]:
        """What a late joiner's welcome carries: open packets, lotteries and sales."""
        return {**await self.commerce.snapshot(room_id), **await self.orders.snapshot(room_id)}

    async def interactions(self, viewer: Viewer, message: Grab | Enter) -> dict[str, Any]:
        """A red-packet grab or a lottery entry from a viewer in its room."""
        uid = viewer.user.uid
        if isinstance(message, Grab):
            result = await self.commerce.grab(message.id, uid, viewer.room_id)
            return ack(message.ref, True, amount_fen=result.amount_fen, left=result.left)
        watched_ms = int((time.monotonic() - viewer.joined_at) * 1000)
        entries = await self.commerce.enter(
            message.id, uid, room_id=viewer.room_id, watched_ms=watched_ms
        )
        return ack(message.ref, True, entries=entries)


def _finished(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("side task failed: %r", task.exception())


Context.KEY = web.AppKey("interact.context", Context)
