"""Builds the aiohttp application from a Config: engine, services, hub, routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from commerce.service import CommerceLimits, CommerceService
from interact.alerts_setup import build_alerts
from interact.api import add_routes
from interact.api import console as console_api
from interact.api.common import MAX_ANY_BODY_BYTES
from interact.api.middleware import errors
from interact.archive_setup import build_archiving
from interact.config import Config
from interact.context import Context
from interact.edge import Edge
from interact.engine import Engine, memory_engine, redis_engine
from interact.floor.errors import Close
from interact.growth_setup import build_growth
from interact.hub import Hub, HubConfig
from interact.metrics import Metrics
from interact.moderation_setup import WordListSync, build_moderation
from interact.orders_setup import build_orders, close_orders
from interact.reports_setup import build_reports
from interact.stay import StayWatch
from interact.webhooks_setup import build_webhooks
from interact.wechat_login import WeChatLogin
from interact.ws import ws_handler
from rooms.audience import AudienceRecorder
from rooms.retention import RetentionPolicy
from rooms.service import RoomService

log = logging.getLogger("interact")


def build_engine(config: Config) -> Engine:
    # Archiving reads every comment from the journal, which only it needs.
    journal = config.archiving
    # An ended room's keys expire (docs/archive.md section 11).
    retention = RetentionPolicy.of_days(config.retention_days, config.refund_window_days)
    if config.redis_url:
        return redis_engine(
            config.redis_url, config.redis_prefix, config.history_size, journal=journal,
            retention=retention,
        )  # fmt: skip
    return memory_engine(config.history_size, journal=journal, retention=retention)


def node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def build_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=MAX_ANY_BODY_BYTES)
    app.router.add_get("/ws", ws_handler)
    add_routes(app)
    console_api.setup(app, config)
    app.cleanup_ctx.append(_context(config))
    return app


async def _every(job: Callable[[], Awaitable[Any]], interval: float) -> None:
    """Run ``job`` every ``interval`` seconds until cancelled; a failed round is logged."""
    task = asyncio.current_task()
    while True:
        await asyncio.sleep(interval)
        try:
            await job()
        except Exception:  # Redis or WeChat away: try again next round
            log.warning("%s failed", getattr(job, "__name__", "job"), exc_info=True)
        if task is not None and task.cancelling():
            # The job swallowed our cancellation (the Redis Cluster client can, when it
            # lands mid-command): stop anyway, or the shutdown waits for this for ever.
            raise asyncio.CancelledError


def _control_handler(hub: Hub) -> Callable[[dict[str, Any]], None]:
    def on_control(message: dict[str, Any]) -> None:
        if message.get("t") == "ban" and isinstance(message.get("uid"), str):
            hub.close_user(message["uid"], Close.BANNED, b"banned")

    return on_control


def _context(config: Config):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        engine = build_engine(config)
        await engine.start()
        metrics = Metrics()
        moderation = build_moderation(config, engine, metrics)
        words_sync = WordListSync(engine, moderation)
        # One per process: every producer marks it, the hub writes it once per tick.
        recorder = AudienceRecorder()
        service = RoomService(
            recorder=recorder,
            rooms=engine.rooms,
            danmaku=engine.danmaku,
            broker=engine.broker,
            presence=engine.presence,
            stats=engine.stats,
            policy=moderation,
            max_text_len=config.max_text_len,
            rooms_per_anchor=config.rooms_per_anchor,
            unstarted_room_ttl_ms=int(config.unstarted_room_ttl * 1000),
        )
        moderation.retract = service.retract
        moderation.anchor_of = service.anchor_of
        node = node_id()
        hub = Hub(
            broker=engine.broker,
            danmaku=engine.danmaku,
            presence=engine.presence,
            stats=engine.stats,
            add_likes=service.add_likes,
            config=HubConfig(
                leading_edge=config.flush_leading_edge,
                tick_ms=config.tick_ms,
                danmaku_cap=config.danmaku_cap,
                max_window_ms=max(config.max_window_ms, config.tick_ms),
                soft_buffer_bytes=config.soft_buffer_bytes,
                hard_buffer_bytes=config.hard_buffer_bytes,
                slow_grace=config.slow_grace,
                suspend_grace=config.suspend_grace,
                online_interval=config.online_interval,
                welcome_history=config.welcome_history,
                idle_timeout=config.idle_timeout,
                likes_per_s=config.likes_per_s,
            ),
            metrics=metrics,
            node_id=node,
            audience=engine.audience,
            recorder=recorder,
        )
        commerce = CommerceService(
            packets=engine.packets,
            lotteries=engine.lotteries,
            broker=engine.broker,
            limits=CommerceLimits(max_total_fen=config.max_packet_fen),
        )
        orders = build_orders(config, engine)
        commerce.recorder = orders.recorder = recorder
        webhooks, close_webhooks = build_webhooks(config, engine, node)
        archiving = build_archiving(config, engine)
        reports = build_reports(config, engine, moderation)
        growth = build_growth(config, engine)
        orders.on_paid.append(growth.order_paid)  # invite rewards for invitees' payments
        commerce.invite_facts = growth.invite_facts  # lucky bags' invite conditions
        commerce.coupons = growth.coupons  # lucky bags' coupon prizes
        alerts = build_alerts(config, engine, node, webhooks)
        growth.alerts.subscribe(alerts.from_growth)  # reminder setup errors (growth)
        wechat = None
        if config.wechat_appid and config.wechat_secret:
            wechat = WeChatLogin(
                config.wechat_appid, config.wechat_secret, api_base=config.wechat_api_base
            )
        app[Context.KEY] = Context(
            config=config,
            engine=engine,
            service=service,
            commerce=commerce,
            orders=orders,
            moderation=moderation,
            words_sync=words_sync,
            hub=hub,
            metrics=metrics,
            node_id=node,
            edge=Edge(config.max_conns_per_address, config.max_unwelcomed),
            wechat=wechat,
            webhooks=webhooks,
            archiving=archiving,
            reports=reports,
            growth=growth,
            alerts=alerts,
        )
        hub.on_control = _control_handler(hub)
        stay = StayWatch(hub, hub.recorder, config.stay_seconds)
        await hub.start()
        loops = [
            asyncio.create_task(_every(commerce.sweep, config.sweep_interval), name="sweeper"),
            asyncio.create_task(words_sync.run(), name="word-list"),
            asyncio.create_task(_every(orders.sweep, config.sweep_interval), name="orders"),
            asyncio.create_task(_every(orders.reconcile, 5.0), name="reconcile"),
            asyncio.create_task(_every(orders.flush_stock, config.tick_ms / 1000), name="stock"),
            asyncio.create_task(webhooks.run(config.webhook_poll_interval), name="webhooks"),
            asyncio.create_task(alerts.run(config.alert_interval), name="alerts"),
            asyncio.create_task(stay.run(), name="stay"),  # the funnel's stay step
        ]
        if growth.reminders.sender is not None:
            reminders = growth.reminders.run(config.reminder_poll)
            loops.append(asyncio.create_task(reminders, name="reminders"))
        loops.append(
            asyncio.create_task(_every(reports.sweep, config.sweep_interval), name="reports")
        )
        # Retention (docs/archive.md section 11): drop due rooms from the indexes and the
        # keys of never-started ones. Idempotent, so every process may run it.
        retain = _every(engine.rooms.sweep, config.retention_sweep)
        loops.append(asyncio.create_task(retain, name="retention"))
        if archiving is not None:
            archive = _every(archiving.writer.sweep, config.archive_interval)
            loops.append(asyncio.create_task(archive, name="archive"))
        try:
            yield
        finally:
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await alerts.close()
            await close_webhooks()
            await growth.close()
            if archiving is not None:
                await archiving.close()
            await moderation.close()
            if moderation.security is not None:
                await moderation.security.close()
            await hub.close()
            await engine.close()
            await close_orders(orders)
            if wechat is not None:
                await wechat.close()

    return context
