"""commerce.split: red-packet shares sum exactly, are ≥ 1 fen and keep the double-mean bound."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce.split import (
    MAX_COUNT,
    MAX_TOTAL_FEN,
    SplitError,
    SplitReason,
    double_mean_bound,
    split_equal,
    split_random,
    validate_packet,
)
from interact.floor.errors import BadRequest, Code


@st.composite
def packets(draw: st.DrawFn, max_count: int = MAX_COUNT) -> tuple[int, int]:
    """A valid (total_fen, count), biased towards the tight edges (total close to count)."""
    count = draw(st.integers(1, max_count))
    total = draw(
        st.one_of(
            st.integers(count, min(count + 3, MAX_TOTAL_FEN)),
            st.integers(count, MAX_TOTAL_FEN),
            st.just(MAX_TOTAL_FEN),
        )
    )
    return total, count


seeds = st.integers(0, 2**64 - 1)


def assert_double_mean(shares: list[int], total: int) -> None:
    remaining = total
    for step, share in enumerate(shares[:-1]):
        left = len(shares) - step
        assert 1 <= share <= 2 * remaining // left, (step, share, remaining, left)
        assert share <= remaining - (left - 1), "a later share would get < 1 fen"
        remaining -= share
    assert shares[-1] == remaining


# --- split_random ------------------------------------------------------------------------


@settings(max_examples=300)
@given(packets(), seeds)
def test_random_split_properties(packet: tuple[int, int], seed: int) -> None:
    total, count = packet
    shares = split_random(total, count, random.Random(seed))
    assert len(shares) == count
    assert sum(shares) == total
    assert all(isinstance(share, int) and share >= 1 for share in shares)
    assert_double_mean(shares, total)


@given(packets(max_count=50), seeds)
def test_random_split_is_reproducible_with_a_seed(packet: tuple[int, int], seed: int) -> None:
    total, count = packet
    assert split_random(total, count, random.Random(seed)) == split_random(
        total, count, random.Random(seed)
    )


def test_default_randomness_is_the_system_csprng() -> None:
    shares = split_random(10_000, 100)
    assert sum(shares) == 10_000 and len(shares) == 100 and min(shares) >= 1
    assert_double_mean(shares, 10_000)


@pytest.mark.parametrize(("total", "count"), [(1, 1), (5, 5), (2000, 2000), (7, 1)])
def test_forced_splits(total: int, count: int) -> None:
    # One share takes everything; total == count leaves exactly 1 fen each.
    shares = split_random(total, count, random.Random(0))
    assert shares == ([total] if count == 1 else [1] * count)


def test_random_split_reaches_both_ends_of_the_range() -> None:
    # 100 fen in 2 shares: the first is uniform in [1, min(100, 99)] = [1, 99].
    rng = random.Random(20240601)
    firsts = {split_random(100, 2, rng)[0] for _ in range(5000)}
    assert firsts == set(range(1, 100))


@pytest.mark.parametrize(
    ("remaining", "left", "bound"),
    [
        (100, 10, 20),  # 2 × mean
        (101, 10, 20),  # floored to whole fen
        (100, 2, 99),  # capped so the last share keeps 1 fen
        (10, 10, 1),  # every share must be exactly 1 fen
        (11, 10, 2),
        (3, 2, 2),
    ],
)
def test_double_mean_bound(remaining: int, left: int, bound: int) -> None:
    assert double_mean_bound(remaining, left) == bound


# --- split_equal -------------------------------------------------------------------------


@settings(max_examples=300)
@given(packets())
def test_equal_split_properties(packet: tuple[int, int]) -> None:
    total, count = packet
    shares = split_equal(total, count)
    assert len(shares) == count
    assert sum(shares) == total
    assert min(shares) >= 1
    assert max(shares) - min(shares) <= 1
    # The extra fen go to the front: the list never increases.
    assert shares == sorted(shares, reverse=True)
    assert shares.count(total // count + 1) == total % count


def test_equal_split_example() -> None:
    assert split_equal(10, 3) == [4, 3, 3]
    assert split_equal(9, 3) == [3, 3, 3]
    assert split_equal(MAX_TOTAL_FEN, MAX_COUNT) == [1000] * MAX_COUNT


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "count", "reason"),
    [
        (100.0, 3, SplitReason.NOT_INT),
        (100, 3.0, SplitReason.NOT_INT),
        (1.5, 1, SplitReason.NOT_INT),
        (True, 1, SplitReason.NOT_INT),
        (100, True, SplitReason.NOT_INT),
        ("100", 3, SplitReason.NOT_INT),
        (None, 3, SplitReason.NOT_INT),
        (100, None, SplitReason.NOT_INT),
        (float("nan"), 1, SplitReason.NOT_INT),
        (float("inf"), 1, SplitReason.NOT_INT),
        (0, 1, SplitReason.TOTAL_TOO_SMALL),
        (-100, 1, SplitReason.TOTAL_TOO_SMALL),
        (100, 0, SplitReason.COUNT_TOO_SMALL),
        (100, -1, SplitReason.COUNT_TOO_SMALL),
        (MAX_TOTAL_FEN, MAX_COUNT + 1, SplitReason.COUNT_TOO_LARGE),
        (100, 10**18, SplitReason.COUNT_TOO_LARGE),
        (MAX_TOTAL_FEN + 1, 1, SplitReason.TOTAL_TOO_LARGE),
        (10**30, 1, SplitReason.TOTAL_TOO_LARGE),
        (2, 3, SplitReason.TOTAL_BELOW_COUNT),
        (1999, 2000, SplitReason.TOTAL_BELOW_COUNT),
    ],
)
def test_refusals(total: Any, count: Any, reason: SplitReason) -> None:
    for call in (
        lambda: validate_packet(total, count),
        lambda: split_random(total, count, random.Random(0)),
        lambda: split_equal(total, count),
    ):
        with pytest.raises(SplitError) as info:
            call()
        assert info.value.reason is reason
        assert info.value.code is Code.BAD_REQUEST
        assert info.value.extra == {"reason": reason.value}


def test_split_error_is_a_value_error_and_a_bad_request() -> None:
    with pytest.raises(SplitError) as info:
        validate_packet(0, 1)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, BadRequest)
    assert info.value.status == 400
    assert info.value.message == "total_fen must be at least 1"


@pytest.mark.parametrize(
    ("total", "count", "message"),
    [
        (1.5, 1, "total_fen must be an integer, not float"),
        (100, "3", "count must be an integer, not str"),
        (0, 1, "total_fen must be at least 1"),
        (100, 0, "count must be at least 1"),
        (MAX_TOTAL_FEN, MAX_COUNT + 1, f"count must be at most {MAX_COUNT}"),
        (MAX_TOTAL_FEN + 1, 1, f"total_fen must be at most {MAX_TOTAL_FEN}"),
        (2, 3, "total_fen 2 cannot give 3 shares at least 1 fen each"),
    ],
)
def test_refusal_messages_name_the_field_and_the_limit(
    total: Any, count: Any, message: str
) -> None:
    # The message is the 400 body's ``error.message``: the client's only hint what to fix.
    with pytest.raises(SplitError) as info:
        validate_packet(total, count)
    assert info.value.message == message


def test_limits_are_configurable() -> None:
    validate_packet(500, 50, max_total_fen=500, max_count=50)
    with pytest.raises(SplitError) as info:
        split_equal(501, 50, max_total_fen=500, max_count=50)
    assert info.value.reason is SplitReason.TOTAL_TOO_LARGE
    for split in (split_random, split_equal):
        with pytest.raises(SplitError) as info:
            split(500, 51, max_total_fen=500, max_count=50)
        assert info.value.reason is SplitReason.COUNT_TOO_LARGE
    assert sum(split_random(10**9, 3, max_total_fen=10**9)) == 10**9


non_ints = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def bad_packets(draw: st.DrawFn) -> tuple[Any, Any]:
    """A (total, count) that breaks at least one rule."""
    kind = draw(st.sampled_from(["type", "total", "count", "below"]))
    if kind == "type":
        good = draw(st.integers(1, 100))
        bad = draw(non_ints)
        return draw(st.sampled_from([(bad, good), (good, bad), (bad, bad)]))
    if kind == "total":
        total = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_TOTAL_FEN + 1)))
        return total, draw(st.integers(1, MAX_COUNT))
    if kind == "count":
        count = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_COUNT + 1)))
        return draw(st.integers(1, MAX_TOTAL_FEN)), count
    count = draw(st.integers(2, MAX_COUNT))
    return draw(st.integers(1, count - 1)), count


@settings(max_examples=300)
@given(bad_packets(), seeds)
def test_invalid_packets_never_split(packet: tuple[Any, Any], seed: int) -> None:
    total, count = packet
    with pytest.raises(SplitError):
        validate_packet(total, count)
    with pytest.raises(SplitError):
        split_random(total, count, random.Random(seed))
    with pytest.raises(SplitError):
        split_equal(total, count)
