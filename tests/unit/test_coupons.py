"""Property tests of the coupon rules (``commerce.coupons``: discount, refusals, bounds)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commerce.coupons import (
    MAX_BPS,
    MAX_VALUE_FEN,
    CouponKind,
    CouponTerms,
    check_terms,
    discount_fen,
    new_batch_id,
    new_coupon_id,
    refusal,
    tag_of,
)

T0 = 1_700_000_000_000
amounts = st.integers(1, 10**12)


def fixed(value: int, **kw: object) -> CouponTerms:
    return CouponTerms(CouponKind.FIXED, value, 0, 0, T0, T0 + 1000, None, **kw)  # type: ignore[arg-type]


def percent(bps: int, cap: int) -> CouponTerms:
    return CouponTerms(CouponKind.PERCENT, bps, cap, 0, T0, T0 + 1000, None)


any_terms = st.one_of(
    st.builds(fixed, st.integers(1, MAX_VALUE_FEN)),
    st.builds(percent, st.integers(1, MAX_BPS), st.integers(1, MAX_VALUE_FEN)),
)


@given(any_terms, amounts)
def test_at_least_one_fen_is_paid_and_nothing_is_added(t: CouponTerms, original: int) -> None:
    d = discount_fen(t, original)
    assert 0 <= d <= max(original - 1, 0)
    assert original - d >= 1


@given(st.integers(1, MAX_VALUE_FEN), amounts)
def test_fixed_takes_its_amount_when_it_fits(value: int, original: int) -> None:
    assert discount_fen(fixed(value), original) == min(value, original - 1)


@given(st.integers(1, MAX_BPS), st.integers(1, MAX_VALUE_FEN), amounts)
def test_percent_is_the_floor_capped(bps: int, cap: int, original: int) -> None:
    d = discount_fen(percent(bps, cap), original)
    exact = original * bps // MAX_BPS
    assert d == min(exact, cap, original - 1)
    # floor: the discount never exceeds the exact fraction
    assert d * MAX_BPS <= original * bps


@given(any_terms, amounts, amounts)
def test_a_bigger_order_never_gets_less_off(t: CouponTerms, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert discount_fen(t, lo) <= discount_fen(t, hi)


def test_worked_examples() -> None:
    assert discount_fen(percent(1_250, 900), 10_000) == 900  # 1,250 capped
    assert discount_fen(percent(1_250, 5_000), 9_999) == 1_249  # 1,249.875 floored
    assert discount_fen(percent(1, 100), 9_999) == 0  # 0.9999 fen: nothing off
    assert discount_fen(fixed(500), 300) == 299  # 1 fen paid
    assert discount_fen(fixed(500), 1) == 0


@given(any_terms, amounts, st.integers(T0 - 10_000, T0 + 10_000))
def test_refusals(t: CouponTerms, original: int, now: int) -> None:
    why = refusal(t, room_id="r1", original_fen=original, now_ms=now)
    if not t.starts_at <= now < t.ends_at:
        assert why in ("not_started", "expired")
    elif discount_fen(t, original) == 0:
        assert why == "no_discount"
    else:
        assert why is None


def test_room_and_min_spend() -> None:
    t = CouponTerms(CouponKind.FIXED, 100, 0, 5_000, T0, T0 + 10, "r1")
    assert refusal(t, room_id="r2", original_fen=9_000, now_ms=T0) == "wrong_room"
    assert refusal(t, room_id="r1", original_fen=4_999, now_ms=T0) == "min_spend"
    assert refusal(t, room_id="r1", original_fen=5_000, now_ms=T0) is None


@pytest.mark.parametrize(
    "bad",
    [
        fixed(0),
        fixed(MAX_VALUE_FEN + 1),
        CouponTerms(CouponKind.FIXED, 10, 5, 0, T0, T0 + 1, None),  # a cap on a fixed one
        percent(0, 10),
        percent(MAX_BPS + 1, 10),
        percent(100, 0),
        CouponTerms(CouponKind.FIXED, 10, 0, -1, T0, T0 + 1, None),
        CouponTerms(CouponKind.FIXED, 10, 0, 0, T0, T0, None),
        CouponTerms(CouponKind.FIXED, 10, 0, 0, T0, T0 + 367 * 86_400_000, None),
        CouponTerms(CouponKind.FIXED, 10, 0, 0, T0, T0 + 1, "not a room"),
    ],
)
def test_terms_out_of_bounds(bad: CouponTerms) -> None:
    with pytest.raises(ValueError):
        check_terms(bad)


@given(st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)))
def test_ids_carry_their_scope(room: str | None) -> None:
    b = new_batch_id(room)
    assert tag_of(b) == (room or "~m")
    assert tag_of(new_coupon_id(b)) == tag_of(b)
