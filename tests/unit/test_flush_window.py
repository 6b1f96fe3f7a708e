"""The window rule (``interact.flush_window``): a room writes at most its share of the
time, flushes a clump of a small room's items a pass apart, and batches per tick (or
whole ticks) once it is busy or large."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from interact.flush_window import ENTER_BATCHING, Fit, Windowing, fit_window

W = Windowing(tick_ms=50, share=0.5, min_window_ms=0.0, max_window_ms=150)


def test_a_small_quiet_room_flushes_a_clump_a_pass_apart() -> None:
    # 1,000 viewers: a 7 ms pass; a clump of comments, a flush every 8 ms.
    window, credit, batching = fit_window(W, 0.007, 20, math.inf, math.inf, False)
    assert window == 0.0 and credit == pytest.approx(0.025 - 0.007) and not batching
    at_once = 1
    while window == 0.0:
        before = credit
        window, credit, _ = fit_window(W, 0.007, 20, credit, 0.008, False)
        assert credit == pytest.approx(before + 0.004 - 0.007)
        at_once += window == 0.0
    # A tick's budget paid for six flushes at once; the seventh waits until the share has
    # paid for it (a few ms), not a window of the tick.
    assert at_once == 7
    assert window == pytest.approx(-credit / 0.5) and 0 < window < 0.01


def test_the_minimum_window_holds() -> None:
    w = Windowing(tick_ms=50, share=0.5, min_window_ms=5.0, max_window_ms=150)
    assert fit_window(w, 0.0001, 1, math.inf, math.inf, False).window == 0.005


def test_a_busy_room_keeps_the_tick() -> None:
    # 2,000 viewers at 200 comments/s: a flush per comment would take 2.8 x the share.
    assert fit_window(W, 0.014, 200, math.inf, 1.0, False) == Fit(0.05, 0.0, True)


def test_batching_has_hysteresis_around_the_share() -> None:
    """A room whose rate hovers near the line keeps its mode: it starts batching past
    ENTER_BATCHING x the share and stops once flushing each item fits the share."""
    spent = 0.008  # 1,000 viewers
    near = 0.5 / spent * 1.1  # 10 % over the share: a random clump of arrivals
    assert not fit_window(W, spent, near, 0.01, 0.02, False).batching
    over = 0.5 / spent * ENTER_BATCHING * 1.01
    assert fit_window(W, spent, over, 0.01, 0.02, False).batching
    assert fit_window(W, spent, near, 0.0, 0.05, True).batching  # still over the share
    fit = fit_window(W, spent, 0.5 / spent * 0.99, 0.0, 0.05, True)
    assert not fit.batching and fit.window < 0.05


@pytest.mark.parametrize(("spent", "window"), [(0.03, 0.1), (0.075, 0.15), (0.4, 0.15)])
def test_a_large_room_flushes_every_few_ticks(spent: float, window: float) -> None:
    fit = fit_window(W, spent, 200, math.inf, 1.0, False)
    assert fit.window == pytest.approx(window) and fit.batching


@settings(max_examples=1000)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 0.03),  # the pass
            st.floats(0.0, 0.1),  # how much later than allowed the next flush starts
            st.floats(0.0, 400.0),  # the room's rate
        ),
        min_size=1,
        max_size=200,
    ),
    st.sampled_from([0.25, 0.5, 0.8]),
    st.sampled_from([0.0, 5.0]),
)
# Found by CI: the second pass overdraws the credit the first left (the check is at a
# flush's start, not after its pass).
@example(flushes=[(0.015625, 0.0, 0.0), (0.0234375, 0.0, 0.0)], share=0.5, min_ms=0.0)
def test_writing_never_takes_more_than_the_share(
    flushes: list[tuple[float, float, float]], share: float, min_ms: float
) -> None:
    """Over any run of flushes that keep their windows, when a flush of a room that is not
    batching begins, the passes of the flushes before it (since the room last batched)
    sum to at most the share of the time since plus one tick's budget: a flush may start
    only with credit left, and a pass may overdraw it, which the next window pays back."""
    w = Windowing(tick_ms=50, share=share, min_window_ms=min_ms, max_window_ms=150)
    t, last, credit, batching = 0.0, -math.inf, math.inf, False
    spent_before = 0.0
    first = 0.0
    for spent, late, rate in flushes:
        assert spent_before <= share * (t - first) + w.budget + 1e-9
        window, credit, batching = fit_window(w, spent, rate, credit, t - last, batching)
        assert window >= min_ms / 1000 and window >= 0
        assert window <= 0.15 + 1e-9
        if batching:
            spent_before, first = 0.0, t  # its credit starts again from 0 at this flush
        else:
            assert window < 0.05
            spent_before += spent
        last, t = t, t + max(window, spent) + late
