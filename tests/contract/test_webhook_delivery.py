"""Webhook delivery end to end in one process, on every engine: the ledger (the outbox)
→ fan-out → signed POSTs to a real aiohttp receiver that verifies each one with the
``standardwebhooks`` package. The test drives the schedule's clock."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from commerce.keys import CommerceKeys
from interact.engine import Engine, connect_redis
from interact.floor.errors import BadRequest
from interact.webhooks_sender import Sender
from tests.contract.conftest import MakeEngine, _url_of
from tests.fakes.webhook_receiver import Receiver
from webhooks.events import EVENT_TYPES
from webhooks.feed_memory import MemoryLedgerFeed
from webhooks.feed_redis import RedisLedgerFeed
from webhooks.keys import WebhookKeys
from webhooks.models import DeliveryStatus, EndpointStatus
from webhooks.schedule import RETRY_DELAYS_S
from webhooks.service import WebhookService
from webhooks.store_memory import MemoryWebhookStore
from webhooks.store_redis import RedisWebhookStore
from webhooks.urls import Target

ROOM = "rwebhook0001"


@dataclass
class Clock:
    now: int

    def __call__(self) -> int:
        return self.now


@dataclass
class Rig:
    engine: Engine
    service: WebhookService
    clock: Clock

    async def ledger(self, event: dict[str, Any]) -> str:
        return await self.engine.ledger.append(ROOM, {**event, "ts": self.clock.now})

    async def settle(self, rounds: int = 20) -> None:
        """Fan out and deliver until nothing more is due at the current time."""
        for _ in range(rounds):
            moved = await self.service.fanout()
            sent = await self.service.deliver(wait=True)
            if not moved and not sent:
                return
        raise AssertionError("deliveries still due after many rounds")


@pytest.fixture
async def rig(
    kind: str, make_engine: MakeEngine, request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    engine = await make_engine()
    clock = Clock(time.time_ns() // 1_000_000 - 60_000)
    closers = []
    if kind == "memory":
        store: Any = MemoryWebhookStore()
        feed: Any = MemoryLedgerFeed(engine.ledger.read)
    else:
        client, pipe = connect_redis(_url_of(kind, request))
        prefix = request.getfixturevalue("redis_prefix")
        store = RedisWebhookStore(client, WebhookKeys(prefix))  # type: ignore[arg-type]
        feed = RedisLedgerFeed(
            client,
            CommerceKeys(prefix).ledger,
            "c1",
            cluster=kind == "redis-cluster",  # type: ignore[arg-type]
        )
        closers.append(client.aclose)
        if pipe is not None:
            closers.insert(0, pipe.close)
    service = WebhookService(
        store=store,
        feed=feed,
        sender=Sender(allow_http=True, allow_private=True, timeout=5),
        rooms=lambda: _rooms(),
        clock=clock,
        rotation_overlap_ms=3_600_000,
    )
    yield Rig(engine, service, clock)
    await service.close()
    for close in closers:
        await close()


async def _rooms() -> list[str]:
    return [ROOM]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver(secrets=[]).start()
    yield r
    await r.stop()


async def register(rig: Rig, receiver: Receiver, events: tuple[str, ...] = EVENT_TYPES) -> str:
    endpoint = await rig.service.register(receiver.url, list(events), None)
    receiver.secrets.append(endpoint.secrets[0].value)
    return endpoint.id


def order(i: int) -> dict[str, Any]:
    return {"order": f"{ROOM}.od{i}", "sale": f"{ROOM}.sl1", "uid": f"u{i}", "qty": 1,
            "amount_fen": 990}  # fmt: skip


async def test_orders_arrive_in_order_and_retries_keep_the_id(rig: Rig, receiver: Receiver) -> None:
    await register(rig, receiver)
    first_tries: set[str] = set()

    def answer(event_id: str, payload: dict[str, Any]) -> tuple[int, dict[str, str]]:
        # Every order.paid is "lost" once: processed by the receiver, answered 500.
        if payload["type"] == "order.paid" and event_id not in first_tries:
            first_tries.add(event_id)
            return 500, {}
        return 204, {}

    receiver.answer = answer
    for i in range(20):
        await rig.ledger({"type": "order_reserved", **order(i), "deadline": 1})
    for i in range(20):
        await rig.ledger({"type": "order_paid", **order(i), "transaction_id": f"t{i}"})
        await rig.ledger({"type": "order_refunded", **order(i), "out_refund_no": f"rf{i}",
                          "restock": "1", "late": "0"})  # fmt: skip
    await rig.ledger({"type": "rp_claim", "packet": "p", "uid": "u", "amount_fen": 1})
    await rig.settle()
    # The refunds wait behind their failed payments: nothing but reservations and the
    # first tries of the payments has arrived.
    assert {r.payload["type"] for r in receiver.unique.values()} == {"order.reserved"}
    rig.clock.now += RETRY_DELAYS_S[0] * 1000
    await rig.settle()
    assert receiver.rejected == []
    assert len(receiver.unique) == 60  # each event once after dedupe; no claim was sent
    assert len(receiver.all) == 80  # the 20 payments twice, with the same id
    seen: dict[str, list[int]] = defaultdict(list)
    bodies: dict[str, dict[str, Any]] = {}
    for got in receiver.all:
        assert bodies.setdefault(got.id, got.payload) == got.payload
        if got.id in receiver.unique and receiver.unique[got.id] is got:
            seen[got.payload["data"]["order"]].append(got.payload["data"]["sequence"])
    assert len(seen) == 20
    assert all(seqs == [1, 2, 4] for seqs in seen.values()), seen


async def test_rotation_signs_with_both_secrets_for_the_overlap(
    rig: Rig, receiver: Receiver
) -> None:
    eid = await register(rig, receiver, ("room.started", "room.ended"))
    old = receiver.secrets[0]
    _, new = await rig.service.rotate(eid)
    receiver.secrets[:] = [new]  # a receiver already on the new secret
    await rig.ledger({"type": "room_started"})
    await rig.settle()
    [got] = receiver.all
    assert len(got.signatures) == 2
    receiver.secrets[:] = [old]  # and one still on the old one
    await rig.ledger({"type": "room_ended"})
    await rig.settle()
    assert len(receiver.all) == 2 and receiver.rejected == []
    rig.clock.now += 3_600_001  # the overlap is over: the old secret no longer signs
    await rig.service.send_test(eid)
    await rig.settle()
    assert receiver.rejected and len(receiver.all) == 2
    receiver.secrets[:] = [new]
    rig.clock.now += RETRY_DELAYS_S[0] * 1000
    await rig.settle()
    assert receiver.all[-1].payload["type"] == "webhook.test"
    assert len(receiver.all[-1].signatures) == 1


async def test_410_disables_and_enable_resumes(rig: Rig, receiver: Receiver) -> None:
    eid = await register(rig, receiver, ("room.started",))
    receiver.answer = lambda _i, _p: (410, {})
    await rig.ledger({"type": "room_started"})
    await rig.settle()
    endpoint = await rig.service.endpoint(eid)
    assert endpoint.status is EndpointStatus.DISABLED and "410" in endpoint.disabled_reason
    receiver.answer = lambda _i, _p: (204, {})
    rig.clock.now += 10**7
    await rig.settle()
    assert len(receiver.all) == 1  # disabled: nothing more is sent
    await rig.service.enable(eid)
    await rig.settle()
    assert len(receiver.unique) == 1 and len(receiver.all) == 2


async def test_503_retry_after_is_honoured(rig: Rig, receiver: Receiver) -> None:
    eid = await register(rig, receiver, ("room.started",))
    answers = iter([(503, {"Retry-After": "7"})])
    receiver.answer = lambda _i, _p: next(answers, (204, {}))
    await rig.ledger({"type": "room_started"})
    await rig.settle()
    rig.clock.now += 6_000  # past the schedule's 5 s, before the 7 s asked for
    await rig.settle()
    assert len(receiver.all) == 1
    rig.clock.now += 1_000
    await rig.settle()
    assert len(receiver.unique) == 1
    [d] = await rig.service.deliveries(eid, 10)
    assert [a.status for a in d.attempt_log] == [503, 204]


async def test_the_whole_schedule_then_dead_letter_and_replay(rig: Rig, receiver: Receiver) -> None:
    eid = await register(rig, receiver, ("room.started",))
    receiver.answer = lambda _i, _p: (500, {})
    start = rig.clock.now
    await rig.ledger({"type": "room_started"})
    await rig.settle()
    assert len(receiver.all) == 1
    for n, delay in enumerate(RETRY_DELAYS_S, start=2):
        rig.clock.now += delay * 1000 - 1
        await rig.settle()
        assert len(receiver.all) == n - 1  # not a millisecond early
        rig.clock.now += 1
        await rig.settle()
        assert len(receiver.all) == n
    assert rig.clock.now - start == 272_105_000  # 5 s + 5 min + … + 24 h: about 75.6 h
    [d] = await rig.service.deliveries(eid, 10)
    assert d.status is DeliveryStatus.DEAD and len(d.attempt_log) == 10
    rig.clock.now += 10**9
    await rig.settle()
    assert len(receiver.all) == 10
    receiver.answer = lambda _i, _p: (200, {})
    assert await rig.service.replay_dead(eid, start) == 1
    await rig.settle()
    assert len(receiver.unique) == 1 and len(receiver.all) == 11
    assert len({r.id for r in receiver.all}) == 1  # one event id throughout


async def test_ssrf_guard_after_resolution(rig: Rig, receiver: Receiver) -> None:
    guarded = Sender(allow_http=True, allow_private=False, timeout=5)
    rig.service.sender = guarded
    local = f"http://localhost:{receiver.port}/hook"  # resolves to a loopback address
    with pytest.raises(BadRequest, match="loopback"):
        await rig.service.register(local, ["room.started"], None)
    outcome = await guarded.send("wh", local, {}, b"{}")
    assert outcome.status is None and "refused" in outcome.error
    outcome = await guarded.send("wh", f"http://[::ffff:127.0.0.1]:{receiver.port}/hook", {}, b"{}")
    assert outcome.status is None and "refused" in outcome.error
    await guarded.close()
    assert receiver.all == [] and receiver.rejected == []

    # The connection goes to the address that was checked, not to a second lookup of
    # the name: pinned to 127.0.0.2 (where nothing listens), "localhost" is not reached;
    # pinned to 127.0.0.1 it is, with the name kept for Host (and SNI).
    answers = {"127.0.0.2": 0, "127.0.0.1": 0}
    for address in answers:

        async def pin(target: Target, address: str = address) -> str:
            assert target.host == "localhost"
            return address

        pinned = Sender(allow_http=True, allow_private=True, timeout=5, pin=pin)
        outcome = await pinned.send("wh", local, {}, b"{}")
        await pinned.close()
        answers[address] = outcome.status or 0
    assert answers == {"127.0.0.2": 0, "127.0.0.1": 401}  # unsigned: refused by the receiver
    assert receiver.rejected == ["?"]


@pytest.fixture
async def monitor() -> AsyncIterator[Receiver]:
    """A second merchant system, subscribed to alerts only."""
    r = await Receiver(secrets=[]).start()
    yield r
    await r.stop()


async def test_alerts_from_the_hook_reach_subscribers_once(
    rig: Rig, receiver: Receiver, monitor: Receiver
) -> None:
    await register(rig, monitor, ("alert.raised", "alert.cleared"))
    other_room = await rig.service.register(receiver.url, ["alert.raised"], "rsomewhere01")
    receiver.secrets.append(other_room.secrets[0].value)
    data = {"room": ROOM, "name": "pay_failure_rate", "value": 0.3, "threshold": 0.1}
    assert await rig.service.publish_alert("raised", "pf-1", data) == 1
    assert await rig.service.publish_alert("raised", "pf-1", data) == 0  # idempotent
    await rig.settle()
    assert await rig.service.publish_alert("cleared", "pf-1", {"room": ROOM}) == 1
    await rig.settle()
    assert monitor.rejected == [] and receiver.all == []  # another room's endpoint: nothing
    assert [(r.id, r.payload["type"]) for r in monitor.all] == [
        ("alert_pf-1_raised", "alert.raised"),
        ("alert_pf-1_cleared", "alert.cleared"),
    ]
    assert monitor.all[0].payload["data"] == {**data, "alert": "pf-1", "state": "raised"}


async def test_five_days_of_failures_disable_the_endpoint_and_raise_an_alert(
    rig: Rig, receiver: Receiver, monitor: Receiver
) -> None:
    await register(rig, monitor, ("alert.raised",))
    eid = await register(rig, receiver, ("room.started",))
    receiver.answer = lambda _i, _p: (503, {})
    start = rig.clock.now
    hour = 3_600_000
    while rig.clock.now - start < 5 * 24 * hour - 6 * hour:  # new events keep it failing
        await rig.ledger({"type": "room_started"})
        await rig.settle()
        rig.clock.now += 6 * hour
    endpoint = await rig.service.endpoint(eid)
    assert endpoint.status is EndpointStatus.ENABLED and endpoint.failing_since is not None
    assert monitor.all == [] and len(receiver.all) > 5
    while rig.clock.now - start <= 5 * 24 * hour + 6 * hour:
        await rig.ledger({"type": "room_started"})
        await rig.settle()
        rig.clock.now += 6 * hour
    endpoint = await rig.service.endpoint(eid)
    assert endpoint.status is EndpointStatus.DISABLED
    assert endpoint.disabled_reason == "every delivery failed for 5 days"
    assert endpoint.failing_since is not None
    assert rig.clock.now - endpoint.failing_since >= 5 * 24 * hour
    await rig.settle()
    [alert] = monitor.all
    assert alert.payload["type"] == "alert.raised" and monitor.rejected == []
    assert alert.payload["data"]["name"] == "webhook_endpoint_disabled"
    assert alert.payload["data"]["endpoint"] == eid
    sent = len(receiver.all)
    rig.clock.now += 48 * hour
    await rig.ledger({"type": "room_started"})
    await rig.settle()
    assert len(receiver.all) == sent and len(monitor.all) == 1  # disabled: quiet, one alert


async def test_an_endpoint_whose_backlog_is_full_is_disabled_with_an_alert(
    rig: Rig, receiver: Receiver, monitor: Receiver
) -> None:
    rig.service.store._max_pending = 5  # type: ignore[attr-defined]
    await register(rig, monitor, ("alert.raised",))
    eid = await register(rig, receiver, ("order.reserved",))
    receiver.answer = lambda _i, _p: (500, {})
    for i in range(8):
        await rig.ledger({"type": "order_reserved", **order(i), "deadline": 1})
    await rig.settle()
    endpoint = await rig.service.endpoint(eid)
    assert endpoint.status is EndpointStatus.DISABLED and "pending" in endpoint.disabled_reason
    assert len(await rig.service.deliveries(eid, 100)) == 5  # the backlog is kept
    [alert] = monitor.all
    assert alert.payload["data"] == {
        "name": "webhook_endpoint_disabled", "endpoint": eid,
        "message": endpoint.disabled_reason,
        "alert": alert.payload["data"]["alert"], "state": "raised",
    }  # fmt: skip


async def test_sale_sold_out_is_sent_once_however_many_race(rig: Rig, receiver: Receiver) -> None:
    import asyncio

    from commerce.ids import new_sale_id
    from commerce.sale_models import ReleaseReason, ReserveOutcome, Sale

    await register(rig, receiver, ("sale.sold_out", "order.reserved"))
    now = rig.clock.now
    sale = Sale(new_sale_id(ROOM), ROOM, "口红", "sku-1", 990, 30, 1, now - 1000, now + 10**7,
                60_000, now - 2000)  # fmt: skip
    await rig.engine.sales.create(sale)

    async def rush(uids: range, key: str) -> list[Any]:
        return await asyncio.gather(
            *(rig.engine.sales.reserve(sale.id, f"u{i}", 1, f"{key}{i}", now) for i in uids)
        )

    first = await rush(range(300), "a")
    won = [r.order for r in first if r.outcome is ReserveOutcome.OK]
    assert len(won) == 30
    await rig.settle()
    # Two buyers cancel, the stock comes back and sells out a second time.
    for o in won[:2]:
        assert await rig.engine.sales.release(o.id, now, ReleaseReason.CANCELLED, owner=o.uid)
    second = await rush(range(300, 400), "b")
    assert sum(r.outcome is ReserveOutcome.OK for r in second) == 2
    await rig.settle()
    ledger = [f for _, f in await rig.engine.ledger.read(ROOM, None, 1000)]
    assert sum(f.get("left") == "0" for f in ledger if f["type"] == "order_reserved") == 2
    sold_out = [r for r in receiver.all if r.payload["type"] == "sale.sold_out"]
    assert len(sold_out) == 1 and receiver.rejected == []
    assert sold_out[0].id == f"evt_{sale.id}.sold_out"
    assert sold_out[0].payload["data"]["sale"] == sale.id
    assert sold_out[0].payload["data"]["last_order"] in {o.id for o in won}
    assert sum(r.payload["type"] == "order.reserved" for r in receiver.unique.values()) == 32


async def test_lottery_drawn_carries_the_winners_and_the_revealed_proof(
    rig: Rig, receiver: Receiver
) -> None:
    import hashlib

    from commerce.draw import list_sha256
    from commerce.service import CommerceService
    from interact.webhooks_setup import _lottery_proof

    rig.service.lottery_proof = _lottery_proof(rig.engine)
    await register(rig, receiver, ("lottery.opened", "lottery.drawn"))
    commerce = CommerceService(
        packets=rig.engine.packets, lotteries=rig.engine.lotteries, broker=rig.engine.broker,
        clock=rig.clock,
    )  # fmt: skip
    lot = await commerce.create_lottery(
        ROOM, prize="福袋", winners=2, condition={"kind": "enter"}, duration=60
    )
    entrants = [f"u{i}" for i in range(5)]
    for uid in entrants:
        await commerce.enter(lot.lottery.id, uid, room_id=ROOM)
    drawn = await commerce.draw_now(lot.lottery.id)
    await rig.settle()
    opened, got = [r.payload for r in receiver.all]
    assert opened["type"] == "lottery.opened" and got["type"] == "lottery.drawn"
    data = got["data"]
    assert data["winners"] == list(drawn.winners) and len(data["winners"]) == 2
    assert data["winners_truncated"] is False and data["entries"] == 5
    proof = data["proof"]
    # Anyone can check the reveal against the commitment published at opening.
    assert proof["commit"] == opened["data"]["commit"] == lot.lottery.commit
    assert hashlib.sha256(bytes.fromhex(proof["secret"])).hexdigest() == proof["commit"]
    assert proof["entries_sha256"] == list_sha256(entrants) and proof["entries"] == 5


async def test_room_transitions_write_their_ledger_event_in_the_same_step(
    rig: Rig, receiver: Receiver
) -> None:
    from interact.floor.errors import Conflict
    from rooms.models import Room

    await register(rig, receiver, ("room.started", "room.ended"))
    rooms = rig.engine.rooms
    await rooms.create(Room(id=ROOM, title="t", anchor=None, created_at=1, updated_at=1))
    await rooms.transition(ROOM, "start", rig.clock.now)
    with pytest.raises(Conflict):  # refused: no event either
        await rooms.transition(ROOM, "start", rig.clock.now + 1)
    await rooms.transition(ROOM, "pause", rig.clock.now + 2)  # not an event merchants get
    await rooms.transition(ROOM, "end", rig.clock.now + 3)
    ledger = [f for _, f in await rig.engine.ledger.read(ROOM, None, 100)]
    assert ledger == [
        {"type": "room_started", "ts": str(rig.clock.now)},
        {"type": "room_ended", "ts": str(rig.clock.now + 3)},
    ]
    await rig.settle()
    assert [(r.payload["type"], r.payload["data"]["at"]) for r in receiver.all] == [
        ("room.started", rig.clock.now),
        ("room.ended", rig.clock.now + 3),
    ]


async def test_the_cached_endpoint_list_follows_changes_made_elsewhere(
    rig: Rig, receiver: Receiver
) -> None:
    endpoint_id = await register(rig, receiver, ("order.paid",))
    await rig.ledger({"type": "order_paid", **order(1), "transaction_id": "t1"})
    await rig.settle()
    assert len(receiver.unique) == 1
    # Another process disables it (through the store, not this service): the next round
    # sees it although this service holds the list cached.
    record = await rig.service.store.get_endpoint(endpoint_id)
    assert record is not None
    await rig.service.store.put_endpoint(record.evolve(status=EndpointStatus.DISABLED))
    await rig.ledger({"type": "order_paid", **order(2), "transaction_id": "t2"})
    await rig.settle()
    assert len(receiver.unique) == 1
    await rig.service.store.put_endpoint(record)
    await rig.ledger({"type": "order_paid", **order(3), "transaction_id": "t3"})
    await rig.settle()
    assert sorted(r.payload["data"]["order"] for r in receiver.unique.values()) == [
        f"{ROOM}.od1",
        f"{ROOM}.od3",
    ]


async def test_an_idle_feed_wakes_on_the_next_entry_of_any_room(rig: Rig, kind: str) -> None:
    feed: Any = rig.service.feed
    # More rooms than one non-blocking read names: the blocking read covers them all.
    rooms = [ROOM, *(f"rwhidle{i:05d}" for i in range(250))]
    await feed.pull(rooms, 100)  # groups made, nothing pending
    if not feed.blocks:  # memory and cluster: the service polls instead
        assert kind != "redis"
        t0 = time.monotonic()
        assert await feed.pull(rooms, 100, 3000) == []
        assert time.monotonic() - t0 < 1.0
        return
    client = feed._r
    pulled = asyncio.create_task(feed.pull(rooms, 100, 10_000))
    deadline = time.monotonic() + 5
    while not any(
        "b" in c.get("flags", "") and c.get("cmd") == "xreadgroup"
        for c in await client.client_list()
    ):
        assert time.monotonic() < deadline, "the feed never blocked"
        await asyncio.sleep(0.01)
    t0 = time.monotonic()
    entry_id = await rig.engine.ledger.append(rooms[-1], {"type": "order_paid", **order(9)})
    got = await asyncio.wait_for(pulled, 5)
    assert [(room, eid) for room, eid, _ in got] == [(rooms[-1], entry_id)]
    assert time.monotonic() - t0 < 2.0  # woken, not timed out at 10 s
    await feed.ack(rooms[-1], [entry_id])


async def test_the_sender_reads_at_most_64_kb_and_follows_no_redirect() -> None:
    from aiohttp import web

    async def big(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200, body=b"x" * (8 * 1024 * 1024))

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"location": "/big"})

    app = web.Application()
    app.router.add_post("/big", big)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sender = Sender(allow_http=True, allow_private=True, timeout=5)
    try:
        got = await sender.send("e1", f"http://127.0.0.1:{port}/big", {}, b"{}")
        assert (got.status, got.error) == (200, "")
        got = await sender.send("e1", f"http://127.0.0.1:{port}/moved", {}, b"{}")
        assert got.status == 302  # reported, not followed (a 3xx fails the attempt)
        got = await sender.send("e1", f"http://127.0.0.1:{port}/big", {}, b"{}")
        assert got.status == 200  # the pool is usable after a cut answer
    finally:
        await sender.close()
        await runner.cleanup()


async def test_a_ledger_stream_deleted_under_the_group_is_followed_again(
    redis_url: str, redis_prefix: str
) -> None:
    client, pipe = connect_redis(redis_url)
    keys = CommerceKeys(redis_prefix)
    feed = RedisLedgerFeed(client, keys.ledger, "c1")
    try:
        first = await client.xadd(keys.ledger(ROOM), {"type": "order_paid", "n": "1"})
        [(_, got, _)] = await feed.pull([ROOM], 10)
        assert got == first.decode()
        await client.delete(keys.ledger(ROOM))  # the room's keys dropped under the group
        with pytest.raises(Exception, match="NOGROUP"):
            await feed.pull([ROOM], 10)
        again = await client.xadd(keys.ledger(ROOM), {"type": "order_paid", "n": "2"})
        assert [e for _, e, _ in await feed.pull([ROOM], 10)] == [again.decode()]
    finally:
        if pipe is not None:
            await pipe.close()
        await client.aclose()
