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
