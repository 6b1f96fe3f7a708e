"""AudienceStore contract (``rooms.audience``), on every engine."""

from __future__ import annotations

import asyncio
import time

import pytest

from interact.engine import Engine
from rooms.audience import (
    COUNTERS,
    MAX_ITEMS,
    PAIRS,
    SETS,
    AudienceRecorder,
    Batch,
    new_key,
    pair_key,
)
from tests.contract.conftest import MakeEngine

M = 29_000_000  # a minute number (Unix minutes)


async def test_a_fresh_room_reads_empty(engine: Engine) -> None:
    snap = await engine.audience.read("r", M, M + 3)
    assert dict(snap.totals) == {}
    assert dict(snap.uv) == dict.fromkeys(SETS, 0)
    assert dict(snap.pairs) == {pair_key(a, b): 0 for a, b in PAIRS}
    assert dict(snap.minutes) == {}


async def test_sets_are_exact_and_counters_add_up(engine: Engine) -> None:
    await engine.audience.record(
        [
            Batch("r", M, {"watch": ("u1", "u2", "u1")}, {"watch_pv": 3, "watch_ms": 1500}),
            Batch("r", M, {"watch": ("u2", "u3"), "comment": ("u2",)}, {"comments": 4}),
            Batch("r", M + 1, {"watch": ("u3", "u4")}, {"watch_pv": 2}),
            Batch("other", M, {"watch": ("u9",)}, {"watch_pv": 1}),
        ]
    )
    snap = await engine.audience.read("r", M, M + 1)
    assert snap.uv["watch"] == 4 and snap.uv["comment"] == 1 and snap.uv["like"] == 0
    assert dict(snap.totals) == {"watch_pv": 5, "watch_ms": 1500, "comments": 4}
    # First-time members per minute: u1, u2, u3 in M; only u4 in M + 1.
    assert snap.minutes[M][new_key("watch")] == 3
    assert snap.minutes[M][new_key("comment")] == 1
    assert snap.minutes[M]["watch_pv"] == 3 and snap.minutes[M]["comments"] == 4
    assert snap.minutes[M + 1] == {"watch_pv": 2, new_key("watch"): 1}
    assert (await engine.audience.read("other", M, M)).uv["watch"] == 1


async def test_the_funnel_pairs_are_intersections(engine: Engine) -> None:
    exposed = [f"e{i}" for i in range(50)]
    watched = [f"e{i}" for i in range(0, 50, 5)] + [f"w{i}" for i in range(7)]
    await engine.audience.record(
        [Batch("r", M, {"exposure": tuple(exposed), "watch": tuple(watched)}, {})]
    )
    await engine.audience.record(
        [Batch("r", M, {"product_view": ("a", "b", "c"), "product_click": ("b", "c", "d")}, {})]
    )
    snap = await engine.audience.read("r", M, M)
    assert snap.pairs[pair_key("exposure", "watch")] == 10
    assert snap.pairs[pair_key("product_view", "product_click")] == 2
    assert snap.pairs[pair_key("product_click", "order")] == 0
    assert (snap.uv["exposure"], snap.uv["watch"]) == (50, 17)


async def test_only_minutes_in_range_are_read(engine: Engine) -> None:
    await engine.audience.record([Batch("r", M + m, {}, {"likes": m + 1}) for m in range(5)])
    snap = await engine.audience.read("r", M + 1, M + 3)
    assert {m: dict(c) for m, c in snap.minutes.items()} == {
        M + 1: {"likes": 2}, M + 2: {"likes": 3}, M + 3: {"likes": 4},
    }  # fmt: skip
    assert snap.totals["likes"] == 15


async def test_unknown_names_and_negative_counts_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="unknown set"):
        await engine.audience.record([Batch("r", M, {"nope": ("u",)}, {})])
    with pytest.raises(ValueError, match="unknown counter"):
        await engine.audience.record([Batch("r", M, {}, {"nope": 1})])
    with pytest.raises(ValueError, match="must not go down"):
        await engine.audience.record([Batch("r", M, {}, {"likes": -1})])
    assert dict((await engine.audience.read("r", M, M)).totals) == {}


async def test_every_counter_and_set_name_is_accepted(engine: Engine) -> None:
    await engine.audience.record(
        [Batch("r", M, {s: ("u1",) for s in SETS}, dict.fromkeys(COUNTERS, 2))]
    )
    snap = await engine.audience.read("r", M, M)
    assert dict(snap.uv) == dict.fromkeys(SETS, 1)
    assert dict(snap.totals) == dict.fromkeys(COUNTERS, 2)
    assert all(snap.minutes[M][new_key(s)] == 1 for s in SETS)


async def test_event_ids_are_claimed_once_until_their_ttl(engine: Engine) -> None:
    a = engine.audience
    assert await a.claim_events("r", "u1", ["e1", "e2", "e1"], 60_000) == [True, True, False]
    assert await a.claim_events("r", "u1", ["e2", "e3"], 60_000) == [False, True]
    # Per user and per room.
    assert await a.claim_events("r", "u2", ["e1"], 60_000) == [True]
    assert await a.claim_events("r2", "u1", ["e1"], 60_000) == [True]
    assert await a.claim_events("r", "u1", [], 60_000) == []
    assert await a.claim_events("r", "u1", ["short"], 50) == [True]
    deadline = asyncio.get_running_loop().time() + 5
    while not (await a.claim_events("r", "u1", ["short"], 50))[0]:
        assert asyncio.get_running_loop().time() < deadline, "a claim outlived its ttl"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", ["redis"])
async def test_two_processes_intern_the_same_uid_once(make_engine: MakeEngine) -> None:
    one, two = await make_engine(), await make_engine()
    uids = [f"u{i}" for i in range(1200)]  # more than one interning chunk
    await asyncio.gather(
        one.audience.record([Batch("r", M, {"watch": tuple(uids[:800])}, {"watch_pv": 800})]),
        two.audience.record([Batch("r", M, {"watch": tuple(uids[400:])}, {"watch_pv": 800})]),
    )
    # A second round from caches that now know every uid changes no membership.
    await two.audience.record([Batch("r", M + 1, {"watch": tuple(uids[:800])}, {})])
    for engine in (one, two):
        snap = await engine.audience.read("r", M, M + 1)
        assert snap.uv["watch"] == 1200
        assert snap.totals["watch_pv"] == 1600
        assert snap.minutes[M][new_key("watch")] == 1200
        assert new_key("watch") not in snap.minutes.get(M + 1, {})
    ids_one = await one.audience.intern(uids)  # type: ignore[attr-defined]
    ids_two = await two.audience.intern(uids)  # type: ignore[attr-defined]
    assert ids_one == ids_two and sorted(ids_one) == list(range(1200))


async def test_minutes_and_online_samples(engine: Engine) -> None:
    a = engine.audience
    assert await a.minutes("r", M, M + 5) == {}
    await a.record([Batch("r", M + m, {"watch": (f"u{m}",)}, {"likes": m + 1}) for m in range(3)])
    for n in (5, 9, 7):
        await a.sample("r", M + 1, n)
    await a.sample("r", M + 4, 2)
    got = await a.minutes("r", M + 1, M + 4)
    assert got == {
        M + 1: {"likes": 2, new_key("watch"): 1, "online": 7, "online_peak": 9},
        M + 2: {"likes": 3, new_key("watch"): 1},
        M + 4: {"online": 2, "online_peak": 2},
    }
    # Samples are gauges: they are not counters and stay out of the totals.
    assert "online" not in (await a.read("r", M, M)).totals
    assert await a.minutes("r", M + 5, M + 4) == {}


@pytest.mark.parametrize("kind", ["redis"])
async def test_retain_moves_every_key_s_expiry_to_the_end_plus_retention(
    make_engine: MakeEngine, new_redis_client: object, redis_prefix: str
) -> None:
    engine = await make_engine()
    a = engine.audience
    marks = {"watch": ("u1",), "like": ("u1",)}
    items = {"s1": {"view": ("u1",), "click": ("u1",)}}
    await a.record(
        [Batch("r", M + m, marks, {"likes": 1}, items, {"s1": {"view": 1}}) for m in range(3)]
    )
    await a.sample("r", M + 1, 3)
    until = int(time.time() * 1000) + 3_600_000
    await a.retain("r", M, M + 2, until)
    client = new_redis_client()  # type: ignore[operator]
    keys = [k async for k in client.scan_iter(match=f"{redis_prefix}an:{{r}}:*")]
    # totals, two bitmaps, three minutes; the products' set, counters and two bitmaps
    assert len(keys) == 1 + 2 + 3 + 2 + 2
    for key in keys:
        assert abs(await client.pexpiretime(key) - until) <= 1, key


def _item_batch(room: str, item: str, steps: dict[str, tuple[str, ...]], fen: int = 0) -> Batch:
    """What the recorder hands over for these product steps (one per uid and step)."""
    rec = AudienceRecorder(clock=lambda: M * 60_000)
    for step, uids in steps.items():
        for uid in uids:
            rec.item(room, item, step, uid, fen)
    (batch,) = rec.take()
    return batch


async def test_products_are_counted_per_sale_with_exact_uv(engine: Engine) -> None:
    a = engine.audience
    assert await a.products("r") == {} and await a.items("r") == []
    await a.record(
        [
            _item_batch("r", "s1", {"view": ("a", "b", "c", "a"), "click": ("a", "b")}),
            _item_batch("r", "s1", {"view": ("c", "d"), "click": ("b",)}),
            _item_batch("r", "s1", {"order": ("a", "a")}, 300),
            _item_batch("r", "s1", {"paid": ("a",)}, 300),
            _item_batch("r", "s2", {"view": ("a",)}),
            _item_batch("other", "s1", {"view": ("z",)}),
        ]
    )
    got = await a.products("r")
    assert sorted(got) == ["s1", "s2"] == await a.items("r")
    s1 = got["s1"]
    # The recorder keeps one mark per uid and step per batch but counts every event.
    assert dict(s1.uv) == {"view": 4, "click": 2, "order": 1, "paid": 1}
    assert dict(s1.counts) == {"view": 6, "click": 3, "order": 2, "order_fen": 600, "paid": 1,
                               "gmv_fen": 300}  # fmt: skip
    assert dict(got["s2"].uv) == {"view": 1, "click": 0, "order": 0, "paid": 0}
    assert dict((await a.products("other"))["s1"].uv)["view"] == 1
    # The room-level figures are untouched by product steps.
    assert dict((await a.read("r", M, M)).uv) == dict.fromkeys(SETS, 0)


async def test_a_room_counts_at_most_max_items_products(engine: Engine) -> None:
    a = engine.audience
    first = [_item_batch("r", f"s{i}", {"view": ("u",)}) for i in range(MAX_ITEMS)]
    await a.record(first)
    extra = _item_batch("r", "late", {"view": ("u", "v"), "click": ("u",)})
    await a.record([extra, _item_batch("r", "s0", {"view": ("v",)})])
    got = await a.products("r")
    assert len(got) == MAX_ITEMS and "late" not in got
    assert got["s0"].uv["view"] == 2  # a product already counted goes on being counted


async def test_unknown_product_steps_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="unknown product step"):
        await engine.audience.record([Batch("r", M, item_marks={"s1": {"nope": ("u",)}})])
    with pytest.raises(ValueError, match="bad product counter"):
        await engine.audience.record([Batch("r", M, item_counts={"s1": {"view": -1}})])
    assert await engine.audience.products("r") == {}
