"""Evaluates live rooms' alert rules (``rooms.alerts``): one process per room at a time.

Every process runs ``AlertEvaluator.run``. Each round it lists the live rooms and asks
the alert store for each room's lease (``rooms.alert_store``: a key set ``PX`` with a
fencing token, renewed by its holder every round). For the rooms it holds, it reads the
signals (online, the per-minute counters, sold-out sales, packets emptied according to
the ledger), runs the pure rules, saves the new state and the alerts in one fenced step,
and only then tells the room's staff (an ``alert`` message for the anchor and operator
roles, through the broker) and the merchants' webhooks (``alert.raised`` /
``alert.cleared``). A process that dies holds its rooms until their leases run out
(``alert_lease``); the next round of any other process takes them over with the state
saved, so nothing already raised is raised again.

This is application code: it combines rooms, commerce (sales, ledger) and webhooks,
which the domain packages may not import from each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from commerce.ledger import Ledger
from commerce.sale_store import SaleStore
from growth.alerts import Alert as GrowthAlert
from interact.config import Config
from interact.engine import Engine
from rooms.alert_store import AlertStore
from rooms.alerts import (
    MINUTES_NEEDED,
    RULES,
    Alert,
    AlertRules,
    AlertState,
    Signals,
    close_all,
    evaluate,
    notice_alert,
    staff_message,
)
from rooms.audience import MINUTE_MS, AudienceStore, minute_of
from rooms.broker import Broker
from rooms.models import Room, RoomStatus
from rooms.presence import Presence
from rooms.room_store import RoomStore
from webhooks.service import WebhookService

log = logging.getLogger("interact.alerts")

# Live rooms looked at per round, and ledger entries read per room per round.
MAX_ROOMS = 10_000
LEDGER_PAGE = 1000
LEDGER_PAGES = 5

PublishAlert = Callable[[str, str, Mapping[str, Any], int], Awaitable[int]]


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class _Held:
    token: int
    state: AlertState


@dataclass(slots=True)
class AlertEvaluator:
    store: AlertStore
    audience: AudienceStore
    rooms: RoomStore
    presence: Presence
    sales: SaleStore
    ledger: Ledger
    broker: Broker
    defaults: AlertRules
    holder: str
    lease_ms: int
    retention_ms: int
    webhook: PublishAlert | None = None
    clock: Callable[[], int] = wall_ms
    held: dict[str, _Held] = field(default_factory=dict)
    anchors: dict[str, str | None] = field(default_factory=dict)  # live room -> its anchor
    # Growth's alerts being stored and told (``from_growth``): awaited by ``close``.
    pending: set[asyncio.Task[Any]] = field(default_factory=set)

    async def rules_of(self, room_id: str) -> AlertRules:
        overrides = await self.store.rules(room_id)
        if not overrides:
            return self.defaults
        try:
            return self.defaults.with_overrides(overrides)
        except ValueError:  # stored under older defaults that no longer agree with them
            log.warning("room %s: alert overrides %r ignored", room_id, overrides)
            return self.defaults

    async def live_rooms(self) -> list[str]:
        out: list[str] = []
        while len(out) < MAX_ROOMS:
            page = await self.rooms.list(RoomStatus.LIVE, 200, len(out))
            out.extend(room.id for room in page)
            self.anchors.update((room.id, room.anchor) for room in page)
            if len(page) < 200:
                break
        return out

    async def round(self) -> list[Alert]:
        """One pass over the live rooms; the alerts this process raised or cleared."""
        live = await self.live_rooms()
        out: list[Alert] = []
        for room_id in live:
            try:
                out += await self.evaluate_room(room_id)
            except Exception:  # one room's trouble must not stop the others'
                log.warning("alert rules of room %s failed", room_id, exc_info=True)
        for room_id in set(self.held) - set(live):
            try:
                out += await self.leave_room(room_id)
            except Exception:
                log.warning("closing alerts of room %s failed", room_id, exc_info=True)
        return out

    async def _lease(self, room_id: str) -> _Held | None:
        token = await self.store.acquire(room_id, self.holder, self.lease_ms)
        mine = self.held.get(room_id)
        if not token:
            self.held.pop(room_id, None)
            return None
        if mine is None or mine.token != token:
            # Taken (over) now: carry on from the state its last holder saved.
            mine = self.held[room_id] = _Held(token, await self.store.load(room_id) or AlertState())
        return mine

    async def evaluate_room(self, room_id: str) -> list[Alert]:
        """Evaluate one room if this process holds (or takes) its lease."""
        held = await self._lease(room_id)
        if held is None:
            return []
        now = self.clock()
        minute = minute_of(now)
        rules = await self.rules_of(room_id)
        online = await self.presence.total(room_id)
        await self.audience.sample(room_id, minute, online)
        minutes = await self.audience.minutes(room_id, minute - MINUTES_NEEDED + 1, minute)
        sold_out = frozenset(
            v.sale.id for v in await self.sales.in_room(room_id, now) if v.left == 0
        )
        emptied, after = await self._emptied(room_id, held.state.ledger_after)
        signals = Signals(now, online, minutes, sold_out, emptied)
        state, alerts = evaluate(room_id, rules, held.state, signals)
        state.ledger_after = after
        return await self._commit(room_id, held, state, alerts)

    async def leave_room(self, room_id: str) -> list[Alert]:
        """A room this process evaluated is no longer live: once ended, its alerts clear
        and its audience data is kept for the retention from its end; the lease goes."""
        held = self.held.get(room_id)
        if held is None:
            return []
        room = await self.rooms.get(room_id)
        if room is not None and room.status is not RoomStatus.ENDED:
            return []  # paused: kept until it is live again or ends
        alerts: list[Alert] = []
        still = await self.store.acquire(room_id, self.holder, self.lease_ms) == held.token
        if room is not None and still:
            state, alerts = close_all(room_id, held.state, self.clock())
            alerts = await self._commit(room_id, held, state, alerts)
            await self._retain(room)
        self.held.pop(room_id, None)
        await self.store.release(room_id, self.holder, held.token)
        return alerts

    async def _retain(self, room: Room) -> None:
        end = room.ended_at or self.clock()
        start = room.started_at or room.created_at or end
        await self.audience.retain(
            room.id, minute_of(start), minute_of(end), end + self.retention_ms
        )

    async def _emptied(self, room_id: str, after: str) -> tuple[tuple[str, ...], str]:
        found: list[str] = []
        for _ in range(LEDGER_PAGES):
            page = await self.ledger.read(room_id, after or None, LEDGER_PAGE)
            for entry_id, event in page:
                after = entry_id
                if event.get("type") == "rp_done" and event.get("packet"):
                    found.append(event["packet"])
            if len(page) < LEDGER_PAGE:
                break
        return tuple(found), after

    async def _commit(
        self, room_id: str, held: _Held, state: AlertState, alerts: list[Alert]
    ) -> list[Alert]:
        if not await self.store.save(room_id, self.holder, held.token, state, alerts):
            self.held.pop(room_id, None)  # the lease ran out meanwhile: someone else's now
            return []
        held.state = state
        for alert in alerts:
            await self._tell(alert)
        return alerts

    async def _tell(self, alert: Alert) -> None:
        """Staff over WebSocket, merchants over webhooks: after the save, so at most once
        (a process that dies in between loses the message, never repeats it)."""
        try:
            # The hub's staff path: operators by role, the room's own anchor by uid (not
            # every anchor watching); the uid list is not sent on.
            anchor = self.anchors.get(alert.room)
            message = {
                **staff_message(alert),
                "to": ["operator"],
                "uids": [anchor] if anchor else [],
            }
            await self.broker.publish(alert.room, orjson.dumps(message))
        except Exception:
            log.warning("could not send alert %s to the room", alert.id, exc_info=True)
        if self.webhook is not None:
            try:
                ts = alert.raised_at if alert.state == "raised" else alert.cleared_at
                await self.webhook(alert.state, alert.id, alert.to_dict(), ts or self.clock())
            except Exception:
                log.warning("could not queue webhooks of alert %s", alert.id, exc_info=True)

    def from_growth(self, alert: GrowthAlert) -> None:
        """growth's alert hook (``growth.alerts.Alerts.subscribe``): called without
        awaiting, so the store and the telling run in a task of their own."""
        task = asyncio.ensure_future(self.notice(alert))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def notice(self, alert: GrowthAlert) -> Alert | None:
        """Store a growth alert (``AlertStore.notice``: once per room, kind and errcode
        within the room's ``cooldown_s``, over every process) and tell it like the rules'
        ones: the room's staff over WebSocket, the merchants' webhooks. None when it is
        within the quiet time, disabled for the room, or not storable."""
        if alert.kind not in RULES:
            log.warning("growth alert of unknown kind %r dropped", alert.kind)
            return None
        try:
            rules = await self.rules_of(alert.room_id)
            if alert.kind in rules.disabled:
                return None
            subject = "" if alert.errcode is None else str(alert.errcode)
            found = notice_alert(
                alert.room_id, alert.kind, subject, alert.message, self.clock(),
                secrets.token_hex(4), float(alert.errcode or 0),
            )  # fmt: skip
            if not await self.store.notice(alert.room_id, found, rules.cooldown_s * 1000):
                return None
            if alert.room_id not in self.anchors:
                room = await self.rooms.get(alert.room_id)
                self.anchors[alert.room_id] = None if room is None else room.anchor
        except Exception:
            log.warning("could not store growth alert of room %s", alert.room_id, exc_info=True)
            return None
        await self._tell(found)
        return found

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.round()
            except Exception:  # Redis away: the next round tries again
                log.warning("alert round failed", exc_info=True)

    async def close(self) -> None:
        """Give the leases up so that another process takes the rooms at once."""
        for task in list(self.pending):
            with contextlib.suppress(Exception):
                await task
        for room_id, held in list(self.held.items()):
            with contextlib.suppress(Exception):
                await self.store.release(room_id, self.holder, held.token)
        self.held.clear()


__all__ = ["MINUTE_MS", "AlertEvaluator"]


def build_alerts(
    config: Config, engine: Engine, node: str, webhooks: WebhookService | None
) -> AlertEvaluator:
    """The evaluator of this process, from the config (``alert_*``), over the engine."""
    from rooms.alerts import parse_overrides

    return AlertEvaluator(
        store=engine.alerts,
        audience=engine.audience,
        rooms=engine.rooms,
        presence=engine.presence,
        sales=engine.sales,
        ledger=engine.ledger,
        broker=engine.broker,
        defaults=AlertRules().with_overrides(parse_overrides(config.alert_rules)),
        holder=node,
        lease_ms=int(config.alert_lease * 1000),
        retention_ms=int(config.analytics_retention * 1000),
        webhook=None if webhooks is None else webhooks.publish_alert,
    )
