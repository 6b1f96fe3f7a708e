"""The alert evaluator (``interact/alerts_setup.py``) over real stores, on every engine,
with time driven by the test: signals go into the stores the way producers write them,
the clock is the test's, and each round's alerts must reach the store, the room's staff
(through the broker) and the webhook hook exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from commerce.ids import new_packet_id, new_sale_id
from commerce.models import RedPacket, Split
from commerce.sale_models import Sale
from growth.alerts import Alert as GrowthAlert
from growth.alerts import Alerts
from interact.alerts_setup import AlertEvaluator
from interact.engine import Engine
from rooms.alerts import Alert, AlertRules
from rooms.audience import MINUTE_MS, Batch
from rooms.models import Room
from tests.contract.conftest import MakeEngine

M0 = (int(time.time() * 1000) // MINUTE_MS) + 100  # minutes ahead: the room is fresh


class Clock:
    def __init__(self, minute: int) -> None:
        self.ms = minute * MINUTE_MS

    def __call__(self) -> int:
        return self.ms

    def to(self, minute: int, second: int = 0) -> None:
        self.ms = minute * MINUTE_MS + second * 1000


class Heard:
    """What the staff path and the webhook hook were given."""

    def __init__(self) -> None:
        self.staff: list[dict[str, Any]] = []
        self.hooks: list[tuple[str, str, dict[str, Any], int]] = []

    def on_broker(self, room_id: str, payload: bytes) -> None:
        msg = orjson.loads(payload)
        if msg.get("t") == "alert":
            self.staff.append(msg)

    async def webhook(self, state: str, alert_id: str, data: Mapping[str, Any], ts: int) -> int:
        self.hooks.append((state, alert_id, dict(data), ts))
        return 1


async def live_room(engine: Engine, room_id: str, anchor: str = "anchor1") -> None:
    await engine.rooms.create(Room(room_id, "t", anchor=anchor, created_at=1))
    await engine.rooms.transition(room_id, "start", int(time.time() * 1000))


def evaluator(
    engine: Engine, clock: Clock, heard: Heard, holder: str = "p1", **rules: Any
) -> AlertEvaluator:
    return AlertEvaluator(
        store=engine.alerts,
        audience=engine.audience,
        rooms=engine.rooms,
        presence=engine.presence,
        sales=engine.sales,
        ledger=engine.ledger,
        broker=engine.broker,
        defaults=AlertRules().with_overrides(rules),
        holder=holder,
        lease_ms=60_000,
        retention_ms=3_600_000,
        webhook=heard.webhook,
        clock=clock,
    )


async def heard_until(heard: Heard, n: int) -> None:
    deadline = time.monotonic() + 5  # the broker delivers on its own connection
    while len(heard.staff) < n:
        assert time.monotonic() < deadline, heard.staff
        await asyncio.sleep(0.01)


@pytest.fixture
async def heard(engine: Engine) -> Heard:
    h = Heard()
    engine.broker.set_handler(h.on_broker)
    return h


async def test_uv_drop_raised_once_stored_told_and_cleared(engine: Engine, heard: Heard) -> None:
    rid = "uvroom"
    await live_room(engine, rid)
    await engine.broker.subscribe(rid)
    clock = Clock(M0 + 20)
    ev = evaluator(engine, clock, heard)
    # 30 new viewers a minute for ten minutes, then 25 a minute: a 17 % fall.
    batches = [
        Batch(rid, M0 + m, {"watch": tuple(f"u{m}-{i}" for i in range(30 if m < 10 else 25))})
        for m in range(20)
    ]
    await engine.audience.record(batches)
    raised = await ev.round()
    assert [(a.rule, a.state, a.id) for a in raised] == [("uv_drop", "raised", f"{rid}.1")]
    assert raised[0].value == pytest.approx(1 / 6, abs=1e-4)
    stored = await engine.alerts.alerts(rid)
    assert stored == raised
    await heard_until(heard, 1)
    assert heard.staff[0]["id"] == f"{rid}.1" and heard.staff[0]["to"] == ["operator"]
    assert heard.staff[0]["uids"] == ["anchor1"]  # the room's own anchor, by uid
    assert heard.hooks == [("raised", f"{rid}.1", raised[0].to_dict(), clock())]
    # The same fall a few seconds later: nothing new (raised once).
    clock.to(M0 + 20, 10)
    assert await ev.round() == []
    # Newcomers pick up again (the windows move on): calm, but cleared only after hold_s.
    await engine.audience.record(
        [
            Batch(rid, M0 + m, {"watch": tuple(f"v{m}-{i}" for i in range(40))})
            for m in range(20, 31)
        ]
    )
    clock.to(M0 + 31)
    assert await ev.round() == []  # the first calm reading starts the hold
    clock.to(M0 + 31, 59)
    assert await ev.round() == []
    clock.to(M0 + 32)
    cleared = await ev.round()
    assert [(a.id, a.state, a.cleared_at) for a in cleared] == [(f"{rid}.1", "cleared", clock())]
    assert [(a.id, a.state) for a in await engine.alerts.alerts(rid)] == [(f"{rid}.1", "cleared")]
    await heard_until(heard, 2)
    assert [h[0] for h in heard.hooks] == ["raised", "cleared"]


async def test_commerce_and_moderation_signals(engine: Engine, heard: Heard) -> None:
    rid = "shop"
    await live_room(engine, rid)
    clock = Clock(M0)
    ev = evaluator(engine, clock, heard)
    now = int(time.time() * 1000)
    sale = Sale(
        new_sale_id(rid), rid, "tea", "sku", 100, 1, 1, now - 1000, now + 86_400_000, 60_000, now
    )
    await engine.sales.create(sale)
    packet = RedPacket(
        new_packet_id(rid), rid, "anchor1", 200, 2, Split.EQUAL, now, now - 1, now + 60_000
    )
    await engine.packets.create(packet, [100, 100])
    assert await ev.round() == []
    await engine.sales.reserve(sale.id, "buyer", 1, "k1", now)  # the last unit
    for uid in ("g1", "g2"):
        await engine.packets.grab(packet.id, uid, now)  # the last share empties it
    clock.to(M0, 1)
    await engine.audience.record(
        [
            Batch(
                rid,
                M0,
                {},
                {
                    "refused_comments": 12,
                    "pay_attempts": 4,
                    "pay_failures": 3,
                    "pay_unavailable": 2,
                },
            )
        ]
    )
    got = {(a.rule, a.subject) for a in await ev.round()}
    assert got == {
        ("sold_out", sale.id),
        ("packet_emptied", packet.id),
        ("refused_spike", ""),
        ("pay_failures", ""),
        ("pay_unavailable", ""),
    }
    # The ledger is read from where the last round stopped: the packet is not raised again,
    # even by a fresh process that takes the room over with the saved state.
    clock.to(M0, 3)
    assert await ev.round() == []
    await ev.close()
    other = evaluator(engine, clock, heard, holder="p2")
    clock.to(M0, 5)
    assert await other.round() == []
    assert len(await engine.alerts.alerts(rid)) == 5
    # The room ends: what is up clears, and the lease is given up.
    await engine.rooms.transition(rid, "end", now)
    clock.to(M0, 7)
    closed = await other.round()
    assert len(closed) == 5 and all(a.state == "cleared" for a in closed)
    assert await engine.alerts.alerts(rid, active_only=True) == []
    assert await engine.alerts.holder(rid) is None


async def test_only_the_lease_holder_evaluates_and_overrides_apply(
    engine: Engine, heard: Heard
) -> None:
    rid = "leased"
    await live_room(engine, rid)
    clock = Clock(M0)
    one, two = evaluator(engine, clock, heard, "p1"), evaluator(engine, clock, heard, "p2")
    await engine.audience.record([Batch(rid, M0, {}, {"refused_comments": 6})])
    assert await one.round() == [] and await two.round() == []  # 6 < refused_min
    assert await engine.alerts.holder(rid) == "p1" and rid not in two.held
    await engine.alerts.set_rules(rid, {"refused_min": 5})
    clock.to(M0, 2)
    assert await two.round() == []  # not its room
    assert [a.rule for a in await one.round()] == ["refused_spike"]
    await engine.alerts.set_rules(rid, {"disabled": ["refused_spike"], "hold_s": 0})
    clock.to(M0, 4)
    assert [(a.rule, a.state) for a in await one.round()] == [("refused_spike", "cleared")]
    # Online is sampled into the minute for the series by the holder only.
    assert (await engine.audience.minutes(rid, M0, M0))[M0]["online"] == 0


@pytest.mark.parametrize("kind", ["redis"])
async def test_a_stale_holder_writes_nothing(make_engine: MakeEngine) -> None:
    """A process that lost its lease (paused past it) and comes back: its round is fenced
    out, and it does not tell anyone what it would have raised."""
    e1, e2 = await make_engine(), await make_engine()
    rid = "stale"
    await live_room(e1, rid)
    h1, h2 = Heard(), Heard()
    clock = Clock(M0)
    one = evaluator(e1, clock, h1, "p1")
    one.lease_ms = 100
    two = evaluator(e2, clock, h2, "p2")
    assert await one.round() == []
    deadline = time.monotonic() + 5
    while not await e2.alerts.acquire(rid, "p2", 60_000):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await e1.audience.record([Batch(rid, M0, {}, {"pay_unavailable": 1})])
    clock.to(M0, 2)
    # Its lease ran out between its acquire and its save: the save is fenced out, and
    # nothing is told or stored.
    held = one.held[rid]
    late = Alert(
        f"{rid}.1", rid, "pay_unavailable", "", "raised", "critical", "x", 1.0, 1.0, clock()
    )
    assert await one._commit(rid, held, held.state, [late]) == []
    assert rid not in one.held and h1.hooks == [] and await e2.alerts.alerts(rid) == []
    assert await one.round() == [] and h1.hooks == []
    assert [a.rule for a in await two.round()] == ["pay_unavailable"]
    assert len(h2.hooks) == 1


async def test_growth_alerts_are_stored_and_told_once_per_quiet_time(
    make_engine: MakeEngine, kind: str
) -> None:
    """growth's hook (reminder setup refused: 47003, 41030) into the alert store, the
    room's staff and the webhooks, like the rules' alerts; the same errcode again within
    ``cooldown_s`` is not repeated, even from another process; a disabled rule is silent."""
    one = await make_engine()
    # Two processes share the engine on Redis; in memory, one engine is one process.
    two = one if kind == "memory" else await make_engine()
    heard = Heard()
    one.broker.set_handler(heard.on_broker)
    rid = "remind"
    await one.rooms.create(Room(rid, "t", anchor="anc9", created_at=1))  # scheduled, not live
    await one.broker.subscribe(rid)
    clock = Clock(M0)
    hooks = [Alerts(), Alerts()]
    evs = [evaluator(e, clock, heard, holder=f"p{i}") for i, e in enumerate((one, two))]
    for hook, ev in zip(hooks, evs, strict=True):
        hook.subscribe(ev.from_growth)

    def refused(errcode: int) -> GrowthAlert:
        return GrowthAlert("reminder_config", rid, f"WeChat refused ({errcode})", errcode)

    hooks[0].emit(refused(47003))
    hooks[1].emit(refused(47003))  # the same, from the other process
    hooks[1].emit(refused(41030))
    for ev in evs:
        await ev.close()  # awaits what the hook started
    stored = await two.alerts.alerts(rid)
    assert sorted((a.rule, a.subject, a.state, a.severity) for a in stored) == [
        ("reminder_config", "41030", "raised", "warning"),
        ("reminder_config", "47003", "raised", "warning"),
    ]
    assert len({a.id for a in stored}) == 2
    await heard_until(heard, 2)
    assert sorted(m["subject"] for m in heard.staff) == ["41030", "47003"]
    assert all(m["uids"] == ["anc9"] and m["to"] == ["operator"] for m in heard.staff)
    assert sorted((h[0], h[1]) for h in heard.hooks) == sorted(("raised", a.id) for a in stored)
    # Disabled for the room: stored nowhere, told to nobody.
    await one.alerts.set_rules(rid, {"disabled": ["reminder_config"]})
    assert await evs[0].notice(refused(40037)) is None
    assert len(await one.alerts.alerts(rid)) == 2
    # A room with no quiet time: the same errcode is raised again, as a new alert.
    await one.rooms.create(Room("remind2", "t", anchor="anc9", created_at=1))
    await one.alerts.set_rules("remind2", {"cooldown_s": 0})
    first = await evs[0].notice(GrowthAlert("reminder_config", "remind2", "m", 47003))
    assert first is not None
    deadline = time.monotonic() + 5
    again = await evs[1].notice(GrowthAlert("reminder_config", "remind2", "m", 47003))
    while again is None:  # the Redis quiet marker lives at least a millisecond
        assert time.monotonic() < deadline
        again = await evs[1].notice(GrowthAlert("reminder_config", "remind2", "m", 47003))
    assert again.id != first.id
    assert [a.id for a in await one.alerts.alerts("remind2")] == [again.id, first.id]
    # An unknown kind is dropped, not stored.
    assert await evs[0].notice(GrowthAlert("nope", rid, "x")) is None


async def test_alert_store_notice_is_quiet_within_its_time(engine: Engine) -> None:
    from rooms.alerts import notice_alert

    store = engine.alerts
    first = notice_alert("q", "reminder_config", "47003", "m", 1, "a")
    assert await store.notice("q", first, 60_000)
    assert not await store.notice(
        "q", notice_alert("q", "reminder_config", "47003", "m", 2, "b"), 60_000
    )
    other = notice_alert("q", "reminder_config", "41030", "m", 3, "c")
    assert await store.notice("q", other, 60_000)
    assert [a.id for a in await store.alerts("q")] == [other.id, first.id]
    assert [a.id for a in await store.alerts("q", active_only=True)] == [other.id, first.id]
