"""The per-viewer like limiter (interact.likes): a token bucket per (room, uid)."""

from __future__ import annotations

from interact.likes import BURST_SECONDS, LikeLimiter


def test_a_burst_passes_then_the_rate_applies() -> None:
    lim = LikeLimiter(20)
    burst = int(20 * BURST_SECONDS)
    assert lim.take("r", "u", 100, now=0.0) == burst
    assert lim.take("r", "u", 100, now=0.0) == 0
    assert lim.take("r", "u", 100, now=0.5) == 10
    assert lim.take("r", "u", 1, now=0.5) == 0
    # Ten seconds of flooding add up to the burst plus 20 a second, never more.
    total = sum(lim.take("r", "u", 100, now=0.5 + i / 100) for i in range(1, 1001))
    assert total == 200


def test_rooms_and_users_have_their_own_buckets() -> None:
    lim = LikeLimiter(1)
    assert lim.take("r1", "u", 10, now=0.0) == 3
    assert lim.take("r2", "u", 10, now=0.0) == 3
    assert lim.take("r1", "v", 10, now=0.0) == 3
    assert lim.take("r1", "u", 10, now=0.0) == 0


def test_a_bucket_refills_to_the_burst_only() -> None:
    lim = LikeLimiter(2)
    assert lim.take("r", "u", 6, now=0.0) == 6
    assert lim.take("r", "u", 100, now=1_000.0) == 6


def test_zero_is_no_limit() -> None:
    lim = LikeLimiter(0)
    assert lim.take("r", "u", 100, now=0.0) == 100
    assert lim.take("r", "u", 100, now=0.0) == 100
    assert len(lim) == 0


def test_the_table_forgets_idle_viewers() -> None:
    lim = LikeLimiter(20)
    for i in range(10_000):
        lim.take("r", f"u{i}", 1, now=0.0)
    assert len(lim) == 10_000
    # Once their buckets are full again, the next like sweeps them all away.
    lim.take("r", "late", 1, now=BURST_SECONDS + 0.01)
    assert len(lim) == 1
    # A steady liker is kept, an idle one is not; the table stays at the active few.
    for step in range(1, 200):
        now = BURST_SECONDS + step * 0.1
        lim.take("r", "steady", 1, now=now)
        lim.take("r", f"once{step}", 1, now=now)
        assert len(lim) <= 2 + 2 * int(2 * BURST_SECONDS / 0.1)
    assert ("r", "steady") in lim
