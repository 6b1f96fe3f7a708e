"""The pure parts of ``rooms.audience``: the per-tick recorder, windows and formulas."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.audience import (
    COUNTERS,
    ITEM_STEPS,
    MINUTE_MS,
    SETS,
    AudienceRecorder,
    ItemSnapshot,
    Snapshot,
    analytics,
    div_round,
    minute_of,
    new_key,
    products_view,
    ratio,
    window_ranges,
    window_sum,
)

T0 = 29_000_000 * MINUTE_MS

steps = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2"]),
        st.one_of(
            st.tuples(
                st.just("mark"), st.sampled_from(SETS), st.sampled_from(["a", "b", "c", "d"])
            ),
            st.tuples(st.just("add"), st.sampled_from(COUNTERS), st.integers(0, 1000)),
        ),
        st.integers(0, 5 * MINUTE_MS),
    ),
    max_size=60,
)


@given(steps, st.integers(0, 59))
def test_the_recorder_hands_over_exactly_what_it_was_given(
    ops: list[tuple[str, tuple[str, str, object], int]], cut: int
) -> None:
    rec = AudienceRecorder(clock=lambda: T0)
    batches = []
    counts: Counter[tuple[str, int, str]] = Counter()
    marks: dict[tuple[str, int, str], set[str]] = {}
    for i, (room, (what, name, value), at) in enumerate(ops):
        if i == cut:
            batches += rec.take()  # a tick in the middle changes nothing
        minute = minute_of(T0 + at)
        if what == "mark":
            rec.mark(room, name, str(value), at_ms=T0 + at)
            marks.setdefault((room, minute, name), set()).add(str(value))
        else:
            rec.add(room, name, int(value), at_ms=T0 + at)  # type: ignore[call-overload]
            counts[(room, minute, name)] += int(value)  # type: ignore[call-overload]
    batches += rec.take()
    assert rec.take() == [] and len(rec) == 0
    got_counts: Counter[tuple[str, int, str]] = Counter()
    got_marks: dict[tuple[str, int, str], set[str]] = {}
    for b in batches:
        assert b.marks or b.counts  # no empty batch is handed over
        for name, n in b.counts.items():
            got_counts[(b.room_id, b.minute, name)] += n
        for name, uids in b.marks.items():
            assert len(set(uids)) == len(uids)  # deduplicated within a batch
            got_marks.setdefault((b.room_id, b.minute, name), set()).update(uids)
    assert +got_counts == +counts
    assert got_marks == marks


def test_the_recorder_refuses_unknown_names_and_negative_counts() -> None:
    rec = AudienceRecorder()
    with pytest.raises(ValueError):
        rec.mark("r", "nope", "u")
    with pytest.raises(ValueError):
        rec.add("r", "nope")
    with pytest.raises(ValueError):
        rec.add("r", "likes", -1)
    assert len(rec) == 0


@given(st.integers(0, 10**8), st.integers(1, 60))
def test_windows_are_consecutive_and_end_now(now: int, size: int) -> None:
    current, previous = window_ranges(now, size)
    assert len(current) == len(previous) == size
    assert current[-1] == now and previous[-1] + 1 == current[0]


@given(
    st.dictionaries(
        st.integers(0, 40), st.dictionaries(st.sampled_from(COUNTERS), st.integers(0, 10**6))
    ),
    st.integers(0, 40),
)
def test_a_window_sum_splits_into_its_halves(minutes: dict[int, dict[str, int]], now: int) -> None:
    current, previous = window_ranges(now, 5)
    whole = window_sum(minutes, range(previous.start, current.stop))
    a, b = window_sum(minutes, current), window_sum(minutes, previous)
    assert whole == {k: a[k] + b[k] for k in whole}


@given(st.integers(0, 10**12), st.integers(0, 10**9))
def test_money_divisions_round_half_up(a: int, b: int) -> None:
    if b == 0:
        assert div_round(a, b) == 0
        return
    exact = Fraction(a, b)
    assert abs(Fraction(div_round(a, b)) - exact) <= Fraction(1, 2)
    assert div_round(a, b) == int(exact + Fraction(1, 2))


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_rates_are_shares(part: int, extra: int) -> None:
    whole = part + extra
    r = ratio(part, whole)
    assert 0.0 <= r <= 1.0
    assert r == (round(part / whole, 4) if whole else 0.0)


@given(
    st.integers(0, 10**6),
    st.integers(1, 10**5),
    st.integers(1, 10**5),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
)
def test_the_dashboard_formulas(gmv: int, pv: int, uv: int, watch_ms: int, now: int) -> None:
    snap = Snapshot(
        totals={"gmv_fen": gmv, "watch_pv": pv, "watch_ms": watch_ms},
        uv={"watch": uv, "comment": min(uv, 3)},
        pairs={},
        minutes={now: {"watch_pv": pv, "gmv_fen": gmv, new_key("watch"): uv}},
    )
    f = analytics(snap, online=2, pcu=5, now_minute=now)
    assert f["gpm_fen"] == div_round(gmv * 1000, pv)
    assert f["uv_value_fen"] == div_round(gmv, uv)
    assert f["avg_watch_seconds"] == round(watch_ms / 1000 / uv, 1)
    assert f["comment_rate"] == ratio(min(uv, 3), uv)
    cur = f["last_10_min"]["current"]
    assert (cur["watch_pv"], cur["gmv_fen"], cur["new_watch_uv"]) == (pv, gmv, uv)
    assert cur["gpm_fen"] == f["gpm_fen"]
    assert f["last_10_min"]["change"]["watch_pv"] is None  # nothing the ten before


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s1", "s2"]),
            st.sampled_from(ITEM_STEPS),
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 500),
        ),
        max_size=40,
    )
)
def test_the_recorder_hands_over_every_product_step(
    ops: list[tuple[str, str, str, int]],
) -> None:
    rec = AudienceRecorder(clock=lambda: T0)
    want: Counter[tuple[str, str]] = Counter()
    members: dict[tuple[str, str], set[str]] = {}
    for item, step, uid, fen in ops:
        rec.item("r", item, step, uid, fen)
        want[(item, step)] += 1
        money = {"order": "order_fen", "paid": "gmv_fen"}.get(step)
        if money:
            want[(item, money)] += fen
        members.setdefault((item, step), set()).add(uid)
    batches = rec.take()
    assert len(batches) == (1 if ops else 0)
    got: Counter[tuple[str, str]] = Counter()
    got_members: dict[tuple[str, str], set[str]] = {}
    for b in batches:
        assert not b.marks and not b.counts  # the room-level figures are not touched
        for item, counts in b.item_counts.items():
            got.update({(item, name): n for name, n in counts.items()})
        for item, steps in b.item_marks.items():
            for step, uids in steps.items():
                got_members[(item, step)] = set(uids)
    assert +got == +want
    assert got_members == members


def test_the_recorder_refuses_unknown_product_steps_and_negative_money() -> None:
    rec = AudienceRecorder()
    with pytest.raises(ValueError, match="unknown product step"):
        rec.item("r", "s1", "nope", "u")
    with pytest.raises(ValueError, match="must not go down"):
        rec.item("r", "s1", "paid", "u", -1)
    assert rec.take() == []


def test_each_product_s_funnel_and_its_order() -> None:
    products = {
        "s1": ItemSnapshot(
            {"view": 9, "click": 4, "order": 3, "order_fen": 900, "paid": 2, "gmv_fen": 600},
            {"view": 8, "click": 4, "order": 2, "paid": 1},
        ),
        "s0": ItemSnapshot({"view": 1}, {"view": 1}),
        "s2": ItemSnapshot({"paid": 1, "gmv_fen": 5000}, {"paid": 1}),
    }
    views = products_view(products)
    assert [v["item"] for v in views] == ["s2", "s1", "s0"]  # GMV first, then the id
    s1 = views[1]
    assert (s1["view_pv"], s1["view_uv"], s1["click_uv"], s1["click_rate"]) == (9, 8, 4, 0.5)
    assert (s1["orders"], s1["order_uv"], s1["order_fen"], s1["click_order_rate"]) == (
        3, 2, 900, 0.5,
    )  # fmt: skip
    assert (s1["paid_orders"], s1["buyer_uv"], s1["gmv_fen"], s1["order_pay_rate"]) == (
        2, 1, 600, 0.5,
    )  # fmt: skip
    assert views[2]["click_rate"] == 0.0 and views[0]["order_pay_rate"] == 0.0
    snap = Snapshot(totals={}, uv={}, pairs={}, minutes={})
    assert analytics(snap, online=0, pcu=0, now_minute=1, products=products)["products"] == views
    assert analytics(snap, online=0, pcu=0, now_minute=1)["products"] == []
