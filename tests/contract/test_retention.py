"""Retention (``rooms.retention``, docs/archive.md section 11), on every engine.

Time is driven by the test: the memory engine runs on a clock the test moves; on Redis the
end's script stamps its TTLs from the transition's ``now_ms`` (``PEXPIREAT``), so ending a
room "in the past" makes its hot keys due at once while the refund window still lies ahead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from commerce.coupons import Batch, CouponKind, CouponTerms, new_batch_id, new_coupon_id
from commerce.draw import commitment, new_secret
from commerce.ids import new_lottery_id, new_packet_id, new_sale_id
from commerce.keys import CommerceKeys
from commerce.models import (
    Condition,
    ConditionKind,
    EnterOutcome,
    Lottery,
    Prize,
    PrizeKind,
    RedPacket,
    Split,
)
from commerce.sale_models import OrderStatus, ReserveOutcome, Sale
from growth.keys import GrowthKeys
from interact.engine import Engine, memory_engine, redis_engine, room_key_sets
from moderation.keys import ModerationKeys
from rooms.keys import RoomKeys
from rooms.models import Room
from rooms.retention import DAY_MS, RetentionPolicy
from rooms.service import new_room_id

POLICY = RetentionPolicy(7 * DAY_MS, 400 * DAY_MS)
BODY = {"uid": "u1", "nick": "n", "role": "viewer", "text": "hi", "color": 0, "mode": "scroll"}


@dataclass
class World:
    kind: str
    engine: Engine
    clock: list[int]  # memory: the engine's clock; redis: unused (wall time)
    client: aioredis.Redis | None
    prefix: str

    def now(self) -> int:
        return self.clock[0] if self.kind == "memory" else int(time.time() * 1000)


MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture
async def make_world(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[MakeWorld]:
    built: list[World] = []

    async def make(policy: RetentionPolicy = POLICY) -> World:
        if kind == "memory":
            clock = [int(time.time() * 1000)]
            engine = memory_engine(10, journal=True, retention=policy, clock=lambda: clock[0])
            world = World(kind, engine, clock, None, "")
        else:
            url = str(request.getfixturevalue(
                "redis_cluster_url" if kind == "redis-cluster" else "redis_url"))  # fmt: skip
            prefix = str(request.getfixturevalue("redis_prefix"))
            engine = redis_engine(url, prefix, 10, journal=True, retention=policy)
            world = World(kind, engine, [0], engine_client(engine), prefix)
        await world.engine.start()
        built.append(world)
        return world

    yield make
    for w in reversed(built):
        await w.engine.close()


def engine_client(engine: Engine) -> aioredis.Redis:
    return engine.rooms._client  # type: ignore[attr-defined,no-any-return]


async def busy_room(w: World) -> tuple[str, str, Sale]:
    """A live room with comments, a retraction, moderation state and a paid order."""
    rid = new_room_id()
    now = w.now()
    await w.engine.rooms.create(Room(id=rid, title="t", created_at=now, updated_at=now))
    await w.engine.rooms.transition(rid, "start", now)
    for _ in range(3):
        await w.engine.danmaku.append(rid, dict(BODY))
    assert await w.engine.danmaku.retract(rid, 2)
    await w.engine.stats.commented(rid, "u1")
    await w.engine.mod_settings.set_slow_mode(rid, 5, None, "op")
    await w.engine.mutes.mute(rid, "u9", now + 60_000, "op", "spam", now_ms=now)
    await w.engine.modlog.append(rid, {"type": "mute", "uid": "u9"})
    sale = Sale(id=new_sale_id(rid), room_id=rid, title="s", sku="k", price_fen=990, stock=5,
                limit=2, starts_at=now - 1000, ends_at=now + 3_600_000, reserve_ms=60_000,
                created_at=now - 2000)  # fmt: skip
    await w.engine.sales.create(sale)
    got = await w.engine.sales.reserve(sale.id, "u1", 1, "idem-1", now)
    assert got.outcome is ReserveOutcome.OK and got.order is not None
    paid = await w.engine.sales.confirm_paid(got.order.id, got.order.amount_fen, "tx-1", now)
    assert paid is not None
    packet = RedPacket(id=new_packet_id(rid), room_id=rid, sender="anchor", total_fen=300,
                       count=3, split=Split.EQUAL, created_at=now, opens_at=now,
                       expires_at=now + 60_000)  # fmt: skip
    await w.engine.packets.create(packet, [100, 100, 100])
    await w.engine.packets.grab(packet.id, "u1", now)
    return rid, got.order.id, sale


async def hot_state(w: World, rid: str) -> dict[str, object]:
    """What a reader sees of the room's hot state."""
    hist = await w.engine.danmaku.history(rid, None, None, 100)
    return {
        "room": await w.engine.rooms.get(rid),
        "comments": len(hist.items),
        "journal": len(await w.engine.danmaku.journal(rid, 0, 100)),
        "stats": (await w.engine.stats.get(rid))["comments"],
        "slow": (await w.engine.mod_settings.slow_mode(rid, w.now())).seconds,
        "modlog": len(await w.engine.modlog.read(rid)),
    }


async def test_hot_state_expires_while_the_order_stays_refundable(make_world: MakeWorld) -> None:
    w = await make_world()
    rid, order_id, _ = await busy_room(w)
    before = await hot_state(w, rid)
    assert before["room"] is not None and before["comments"] == 2 and before["journal"] == 4
    assert before["stats"] == 1 and before["slow"] == 5 and before["modlog"] == 1
    if w.kind == "memory":
        await w.engine.rooms.transition(rid, "end", w.now())
        w.clock[0] += POLICY.hot_ms - 1
        assert (await hot_state(w, rid))["comments"] == 2  # not yet
        w.clock[0] += 1
        await w.engine.rooms.sweep()  # type: ignore[attr-defined]
    else:
        # Ended a retention period ago: the hot keys are due now, the money keys later.
        await w.engine.rooms.transition(rid, "end", w.now() - POLICY.hot_ms)
    after = await hot_state(w, rid)
    room = after.pop("room")
    assert after == {"comments": 0, "journal": 0, "stats": 0, "slow": 0, "modlog": 0}
    # The record stays with the money: a refund checks its anchor.
    assert room is not None and room.status.value == "ended"  # type: ignore[attr-defined]
    order = await w.engine.sales.get_order(order_id)
    assert order is not None and order.status is OrderStatus.PAID
    refunded = await w.engine.sales.mark_refunded(
        order_id, order.amount_fen, "rf-1", w.now(), restock=False
    )
    assert refunded is not None and refunded.refund_fen == order.amount_fen
    types = [f.get("type") for _, f in await w.engine.ledger.read(rid, None, 100)]
    assert "room_ended" in types and types[-1] != "room_ended"  # the refund came after
    if w.kind == "memory":
        w.clock[0] += POLICY.money_ms - POLICY.hot_ms
        await w.engine.rooms.sweep()  # type: ignore[attr-defined]
        assert await w.engine.sales.get_order(order_id) is None
        assert await w.engine.ledger.read(rid, None, 100) == []
        assert await w.engine.rooms.get(rid) is None


@pytest.mark.parametrize(
    "kind", ["redis", pytest.param("redis-cluster", marks=pytest.mark.cluster)]
)
async def test_redis_end_sets_hot_and_money_ttls(make_world: MakeWorld) -> None:
    w = await make_world()
    assert w.client is not None
    rid, order_id, sale = await busy_room(w)
    sets = room_key_sets(w.prefix)(rid)
    ck = CommerceKeys(w.prefix)
    end = w.now()
    await w.engine.rooms.transition(rid, "end", end)

    async def left(key: str) -> int:
        assert w.client is not None
        return int(await w.client.pttl(key))

    def near(ms: int, want: int) -> bool:
        return want - 60_000 < ms <= want

    rk = RoomKeys(w.prefix)
    hot_written = [rk.dm_meta(rid), rk.dm_history(rid), rk.dm_journal(rid),
                   rk.stats(rid)]  # fmt: skip
    for key in hot_written + sets.hot:
        ms = await left(key)
        assert ms == -2 or near(ms, POLICY.hot_ms), (key, ms)
    for key in hot_written:
        assert near(await left(key), POLICY.hot_ms), key
    money = [rk.room(rid), ck.ledger(rid), ck.order(order_id), ck.sale(sale.id),
             ck.sale_holds(sale.id), ck.sale_idem(sale.id), ck.orders_in_room(rid),
             ck.sales_in_room(rid)]  # fmt: skip
    for key in money:
        assert near(await left(key), POLICY.money_ms), key
    # Nothing of the room is left without a TTL (the mute's keys included).
    tagged = [k async for k in w.client.scan_iter(match=f"{w.prefix}*{{{rid}}}*", count=1000)]
    assert tagged
    for key in tagged:
        assert await left(key.decode()) > 0, key


async def live_room(w: World) -> tuple[str, int]:
    """A room just started, and the time it started."""
    rid, now = new_room_id(), w.now()
    await w.engine.rooms.create(Room(id=rid, title="t", created_at=now, updated_at=now))
    await w.engine.rooms.transition(rid, "start", now)
    return rid, now


@pytest.mark.parametrize(
    "kind", ["redis", pytest.param("redis-cluster", marks=pytest.mark.cluster)]
)
@pytest.mark.parametrize("counted_before", [True, False])
async def test_counts_landing_after_the_end_leave_no_key_without_a_ttl(
    make_world: MakeWorld, counted_before: bool
) -> None:
    """The hub writes a tick's joins, likes and online peak after the fact: a batch in
    flight when the room ends creates its counters after the end's expiries ran. They
    take the stats hash's TTL, or the room record's when the batch created that too."""
    w = await make_world()
    assert w.client is not None
    rid, now = await live_room(w)
    if counted_before:
        await w.engine.stats.add_likes(rid, 1)
    await w.engine.rooms.transition(rid, "end", now)
    await w.engine.stats.joined(rid, ["u1", "u2"])
    await w.engine.stats.commented(rid, "u1")
    assert await w.engine.stats.add_likes(rid, 3) == (4 if counted_before else 3)
    await w.engine.stats.observe_online(rid, 7)
    stats = await w.engine.stats.get(rid)
    assert (stats["uv"], stats["comments"], stats["peak_online"]) == (2, 1, 7)
    rk = RoomKeys(w.prefix)
    want = POLICY.hot_ms if counted_before else POLICY.money_ms
    for key in (rk.stats(rid), rk.viewers(rid), rk.participants(rid)):
        ms = int(await w.client.pttl(key))
        assert want - 60_000 < ms <= want, (key, ms)


@pytest.mark.parametrize(
    "kind", ["redis", pytest.param("redis-cluster", marks=pytest.mark.cluster)]
)
async def test_counts_of_a_live_room_keep_no_ttl(make_world: MakeWorld) -> None:
    w = await make_world()
    assert w.client is not None
    rid, _ = await live_room(w)
    await w.engine.stats.joined(rid, ["u1"])
    await w.engine.stats.commented(rid, "u1")
    await w.engine.stats.add_likes(rid, 2)
    await w.engine.stats.observe_online(rid, 3)
    rk = RoomKeys(w.prefix)
    for key in (rk.stats(rid), rk.viewers(rid), rk.participants(rid)):
        assert int(await w.client.pttl(key)) == -1, key


async def test_a_room_that_never_starts_takes_its_other_keys(make_world: MakeWorld) -> None:
    w = await make_world()
    rid = new_room_id()
    now = w.now()
    ttl = 300
    await w.engine.rooms.create(
        Room(id=rid, title="t", created_at=now, updated_at=now), unstarted_ttl_ms=ttl
    )
    await w.engine.mod_settings.set_slow_mode(rid, 5, None, "op")
    assert (await w.engine.mod_settings.slow_mode(rid, now)).seconds == 5
    if w.kind == "memory":
        w.clock[0] += ttl
    deadline = time.monotonic() + 10
    while True:  # on Redis the record expires on Redis's clock
        await w.engine.rooms.sweep()  # type: ignore[attr-defined]
        gone = await w.engine.rooms.get(rid) is None
        if gone and (await w.engine.mod_settings.slow_mode(rid, w.now())).seconds == 0:
            break
        assert time.monotonic() < deadline, "the unstarted room's keys were not dropped"
        await asyncio.sleep(0.05)
    assert (await w.engine.mod_settings.slow_mode(rid, w.now())).seconds == 0
    assert await w.engine.rooms.list() == []


@dataclass
class Extras:
    """A room's lotteries, coupons, report and growth state (docs/archive.md section 11)."""

    goods: str  # a goods lottery: hot retention
    cash: str  # a cash lottery: the refund window
    short_batch: str  # valid for a day: hot retention
    short_coupon: str
    long_batch: str  # valid past the refund window: kept until its end
    long_coupon: str
    long_ends: int
    report: str
    invites: object
    reminders: object


def growth_stores(w: World) -> tuple[Any, Any]:
    if w.kind == "memory":
        from growth.invite_store_memory import MemoryInviteStore
        from growth.reminder_store_memory import MemoryReminderStore

        invites: Any = MemoryInviteStore()
        reminders: Any = MemoryReminderStore()
        # As interact.growth_setup wires them.
        w.engine.hot_stores.extend([invites, reminders])
        return invites, reminders
    from growth.invite_store_redis import RedisInviteStore
    from growth.keys import GrowthKeys
    from growth.reminder_store_redis import RedisReminderStore

    return RedisInviteStore(w.client, GrowthKeys(w.prefix)), RedisReminderStore(
        w.client, GrowthKeys(w.prefix)
    )


async def extras(w: World, rid: str) -> Extras:
    now = w.now()
    ids = []
    for prize in (Prize("耳机", PrizeKind.GOODS), Prize("现金", PrizeKind.CASH, 100)):
        secret = new_secret()
        lot = Lottery(id=new_lottery_id(rid), room_id=rid, prize=prize, winners=1,
                      condition=Condition(ConditionKind.ENTER), draw_at=now + 60_000,
                      created_at=now, commit=commitment(secret))  # fmt: skip
        await w.engine.lotteries.create(lot, secret)
        got = await w.engine.lotteries.enter(lot.id, "u1", now)
        assert got.outcome is EnterOutcome.OK
        ids.append(lot.id)
    coupons = w.engine.sales.coupons  # type: ignore[attr-defined]
    made = []
    long_ends = now + 450 * DAY_MS
    for starts, ends in ((now - 1000, now + DAY_MS), (now + 100 * DAY_MS, long_ends)):
        terms = CouponTerms(CouponKind.FIXED, 100, 0, 0, starts, ends, rid)
        b = Batch(new_batch_id(rid), "立减", terms, 10, 2, now - 1000)
        assert await coupons.create_batch(b, 200)
        got = await coupons.issue(b.id, "u1", new_coupon_id(b.id), now, idem=f"k:{b.id}")
        assert got.coupon is not None
        made += [b.id, got.coupon.id]
    filed = await w.engine.reports.file(rid, "u9", "u1", "spam", {"text": "x"}, now)
    assert filed.new
    invites, reminders = growth_stores(w)
    assert await invites.issue_token(rid, "u1", "tok-1", 1) == ("tok-1", True)
    await reminders.add_credits(rid, "u1", ["tpl"], 5)
    assert await reminders.credits(rid, "u1") == {"tpl": 1}
    return Extras(ids[0], ids[1], made[0], made[1], made[2], made[3], long_ends,
                  filed.report_id, invites, reminders)  # fmt: skip


async def test_lotteries_coupons_reports_and_growth_state_follow_the_room(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    rid, _, _ = await busy_room(w)
    packet_ids = [p.packet.id for p in await w.engine.packets.open_in_room(rid)]
    assert packet_ids
    x = await extras(w, rid)
    coupons = w.engine.sales.coupons  # type: ignore[attr-defined]
    assert await w.engine.reports.reporters(rid, x.report) == {"u1": "spam"}
    inv: Any = x.invites
    rem: Any = x.reminders
    if w.kind == "memory":
        await w.engine.rooms.transition(rid, "end", w.now())
        w.clock[0] += POLICY.hot_ms
        await w.engine.rooms.sweep()  # type: ignore[attr-defined]
    else:
        await w.engine.rooms.transition(rid, "end", w.now() - POLICY.hot_ms)
    # The hot retention has passed: a goods lottery, the reporters, the share tokens
    # and the credits are gone (a token can be issued afresh, past the old one's bound).
    assert await w.engine.lotteries.get(x.goods) is None
    assert await w.engine.reports.reporters(rid, x.report) == {}
    assert await inv.issue_token(rid, "u1", "tok-2", 1) == ("tok-2", True)
    assert await rem.credits(rid, "u1") == {}
    # A cash prize stays for the refund window; a coupon valid longer stays until its end.
    assert await w.engine.lotteries.get(x.cash) is not None
    assert await coupons.get(x.long_coupon) is not None
    assert await coupons.get_batch(x.long_batch) is not None
    if w.kind == "memory":
        # The day-long coupon ended before the hot retention did.
        assert await coupons.get(x.short_coupon) is None
        assert await coupons.get_batch(x.short_batch) is None
        assert [c.id for c in await coupons.wallet("u1", 10)] == [x.long_coupon]
        w.clock[0] += POLICY.money_ms - POLICY.hot_ms
        await w.engine.rooms.sweep()  # type: ignore[attr-defined]
        assert await w.engine.lotteries.get(x.cash) is None
        assert await w.engine.lotteries.open_in_room(rid) == []
        for pid in packet_ids:
            assert await w.engine.packets.get(pid) is None
        assert await w.engine.packets.due(w.now() + DAY_MS, 10) == []
        assert await w.engine.lotteries.due(w.now() + DAY_MS, 10) == []
        assert await coupons.get(x.long_coupon) is not None  # valid 450 days
    else:
        # On Redis the day-long coupon is kept until its validity ends.
        assert await coupons.get(x.short_coupon) is not None


@pytest.mark.parametrize(
    "kind", ["redis", pytest.param("redis-cluster", marks=pytest.mark.cluster)]
)
async def test_redis_end_sets_ttls_of_lotteries_coupons_reports_and_growth(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    assert w.client is not None
    rid, _, _ = await busy_room(w)
    x = await extras(w, rid)
    ck, mk, gk = CommerceKeys(w.prefix), ModerationKeys(w.prefix), GrowthKeys(w.prefix)
    end = w.now()
    await w.engine.rooms.transition(rid, "end", end)

    async def left(key: str) -> int:
        assert w.client is not None
        return int(await w.client.pttl(key))

    def near(ms: int, want: int) -> bool:
        return want - 60_000 < ms <= want

    hot = [ck.lottery(x.goods), ck.lottery_entries(x.goods),
           ck.coupon_batch(x.short_batch), ck.coupon_batch_users(x.short_batch),
           ck.coupon_batch_idem(x.short_batch), ck.coupon(x.short_coupon),
           mk.reporters(rid, "u9"), gk.user_tokens(rid, "u1"), gk.credits(rid, "u1")]  # fmt: skip
    money = [ck.lottery(x.cash), ck.lottery_entries(x.cash), ck.lotteries_all(rid)]
    until_end = [ck.coupon_batch(x.long_batch), ck.coupon_batch_users(x.long_batch),
                 ck.coupon_batch_idem(x.long_batch), ck.coupon(x.long_coupon),
                 ck.coupon_batches(rid), ck.coupons_in_room(rid)]  # fmt: skip
    for key in hot:
        assert near(await left(key), POLICY.hot_ms), key
    for key in money:
        assert near(await left(key), POLICY.money_ms), key
    for key in until_end:
        assert near(await left(key), x.long_ends - end), key
    # Nothing of the room is left without a TTL.
    tagged = [k async for k in w.client.scan_iter(match=f"{w.prefix}*{{{rid}}}*", count=1000)]
    assert len(tagged) > len(hot + money + until_end)
    for key in tagged:
        assert await left(key.decode()) > 0, key
