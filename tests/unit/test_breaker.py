"""CircuitBreaker and RateBudget: pure state machines, property-tested without a loop."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from interact.floor.breaker import BreakerState, CircuitBreaker, RateBudget

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


# --- examples ----------------------------------------------------------------------


def test_defaults() -> None:
    breaker = CircuitBreaker()
    assert (breaker.failures, breaker.cooldown, breaker.state) == (5, 30.0, CLOSED)
    assert RateBudget().per_minute == 4000


def test_full_cycle() -> None:
    breaker = CircuitBreaker(failures=2, cooldown=10.0)
    breaker.record_failure(0.0)
    assert breaker.state == "closed"
    breaker.record_failure(1.0)
    assert breaker.state == "open"
    assert not breaker.allow(10.9)
    assert breaker.allow(11.0)
    assert breaker.state == "half_open"
    assert not breaker.allow(11.1)  # one probe at a time
    breaker.record_failure(12.0)  # the probe failed: open, cooldown again from 12
    assert breaker.state == "open"
    assert not breaker.allow(21.9)
    assert breaker.allow(22.0)
    breaker.record_success(22.5)
    assert breaker.state == "closed"
    assert breaker.allow(22.6) and breaker.allow(22.6)


def test_results_while_open_are_ignored() -> None:
    breaker = CircuitBreaker(failures=1, cooldown=5.0)
    breaker.record_failure(0.0)
    breaker.record_success(1.0)  # a call from before the breaker opened
    assert breaker.state == "open"
    breaker.record_failure(4.0)  # must not push the cooldown back
    assert breaker.allow(5.0)


@pytest.mark.parametrize("kwargs", [{"failures": 0}, {"cooldown": -1.0}])
def test_bad_breaker_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**kwargs)


def test_budget_window_slides() -> None:
    budget = RateBudget(per_minute=2)
    assert budget.take(0.0) and budget.take(30.0)
    assert not budget.take(59.9)
    assert budget.remaining(59.9) == 0
    assert budget.take(60.0)  # the take at 0.0 left the window
    assert not budget.take(89.9)
    assert budget.take(90.0)


def test_zero_budget_never_takes() -> None:
    budget = RateBudget(per_minute=0)
    assert not budget.take(0.0)
    assert not budget.take(1e9)


# --- properties --------------------------------------------------------------------


class BreakerMachine(RuleBasedStateMachine):
    """Random interleavings of allow / success / failure / time passing.

    Calls that were let through are kept as outstanding and finished in any order, the
    way concurrent checks finish.
    """

    @initialize(
        failures=st.integers(min_value=1, max_value=6),
        cooldown=st.sampled_from([0.0, 0.5, 3.0, 30.0]),
    )
    def setup(self, failures: int, cooldown: float) -> None:
        self.breaker = CircuitBreaker(failures=failures, cooldown=cooldown)
        self.now = 0.0
        self.outstanding = 0
        self.opened_at: float | None = None
        self.probes_this_half_open = 0
        self.failures_in_a_row = 0  # recorded while closed, since the last success

    def _observe(self, before: BreakerState) -> None:
        after = self.breaker.state
        if after != before:
            if after is OPEN:
                self.opened_at = self.now
            if after is HALF_OPEN:
                self.probes_this_half_open = 0

    @rule(dt=st.floats(min_value=0.0, max_value=40.0, allow_nan=False))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def allow(self) -> None:
        before = self.breaker.state
        allowed = self.breaker.allow(self.now)
        self._observe(before)
        if before is OPEN:
            assert self.opened_at is not None
            cooled = self.now - self.opened_at >= self.breaker.cooldown
            # Closed until the cooldown is over; then the next caller is the probe.
            assert allowed == cooled
            assert self.breaker.state == (HALF_OPEN if cooled else OPEN)
        if before is CLOSED:
            assert allowed
        if allowed:
            self.outstanding += 1
            if self.breaker.state is HALF_OPEN:
                self.probes_this_half_open += 1
        assert self.probes_this_half_open <= 1

    @precondition(lambda self: self.outstanding > 0)
    @rule(ok=st.booleans())
    def finish(self, ok: bool) -> None:
        self.outstanding -= 1
        before = self.breaker.state
        run = 0
        if before is CLOSED:
            # A success resets the count; `failures` failures in a row open.
            run = 0 if ok else self.failures_in_a_row + 1
            expected = OPEN if run >= self.breaker.failures else CLOSED
        elif before is HALF_OPEN:
            expected = CLOSED if ok else OPEN
        else:
            expected = OPEN  # late results of calls made before opening change nothing
        if ok:
            self.breaker.record_success(self.now)
        else:
            self.breaker.record_failure(self.now)
        assert self.breaker.state is expected
        self.failures_in_a_row = run if expected is CLOSED else 0
        self._observe(before)

    @invariant()
    def count_matches(self) -> None:
        if self.breaker.state is CLOSED:
            assert self.breaker.consecutive_failures == self.failures_in_a_row
            assert self.failures_in_a_row < self.breaker.failures


BreakerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60)
TestBreakerMachine = BreakerMachine.TestCase


@given(
    failures=st.integers(min_value=1, max_value=8),
    events=st.lists(st.booleans(), max_size=40),
)
def test_failures_in_a_row_open_and_success_resets(failures: int, events: list[bool]) -> None:
    breaker = CircuitBreaker(failures=failures, cooldown=1e9)
    run = 0
    for ok in events:
        if breaker.state is OPEN:
            break
        if ok:
            breaker.record_success(0.0)
            run = 0
        else:
            breaker.record_failure(0.0)
            run += 1
        assert breaker.state is (OPEN if run >= failures else CLOSED)


@given(
    failures=st.integers(min_value=1, max_value=5),
    callers=st.integers(min_value=2, max_value=20),
)
def test_half_open_lets_one_of_many_callers_through(failures: int, callers: int) -> None:
    breaker = CircuitBreaker(failures=failures, cooldown=1.0)
    for _ in range(failures):
        breaker.record_failure(0.0)
    granted = [breaker.allow(1.0 + i * 1e-3) for i in range(callers)]
    assert granted.count(True) == 1
    assert granted[0]


@given(
    per_minute=st.integers(min_value=0, max_value=10),
    gaps=st.lists(st.floats(min_value=0.0, max_value=25.0, allow_nan=False), max_size=80),
)
def test_budget_is_exact_over_any_sliding_minute(per_minute: int, gaps: list[float]) -> None:
    budget = RateBudget(per_minute)
    now = 0.0
    granted: list[float] = []
    for gap in gaps:
        now += gap
        in_window = sum(1 for t in granted if t > now - 60.0)
        took = budget.take(now)
        assert took == (in_window < per_minute)
        if took:
            granted.append(now)
        assert sum(1 for t in granted if t > now - 60.0) <= per_minute
