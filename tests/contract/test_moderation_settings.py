"""ModerationSettings contract (``moderation.room_settings``), on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from moderation.keys import ModerationKeys
from moderation.room_settings import (
    SLOW_MODE_OFF,
    ModerationSettings,
    SlowMode,
    VerdictCounts,
)
from moderation.room_settings_memory import MemoryModerationSettings
from moderation.room_settings_redis import RedisModerationSettings
from tests.contract.conftest import NewClient

NOW = 1_700_000_000_000  # a whole second
WINDOW = 30_000

Backend = tuple[aioredis.Redis, ModerationKeys] | None


@pytest.fixture
async def backend(
    kind: str, request: pytest.FixtureRequest, new_redis_client: NewClient
) -> AsyncIterator[Backend]:
    """None on memory; on redis a client of its own and this test's key layout."""
    if kind == "memory":
        yield None
        return
    prefix = request.getfixturevalue("redis_prefix")
    client = new_redis_client()
    yield client, ModerationKeys(prefix)
    await client.aclose()


@pytest.fixture
def settings(backend: Backend) -> ModerationSettings:
    return MemoryModerationSettings() if backend is None else RedisModerationSettings(*backend)


# --- slow mode


async def test_slow_mode_is_off_by_default(settings: ModerationSettings) -> None:
    assert await settings.slow_mode("r", NOW) == SLOW_MODE_OFF == (0, None, "")


async def test_manual_slow_mode_stays_until_turned_off(settings: ModerationSettings) -> None:
    await settings.set_slow_mode("r", 10, None, "op1")
    mode = await settings.slow_mode("r", NOW)
    assert mode == SlowMode(10, None, "op1")
    seconds, until, by = mode
    assert (seconds, until, by) == (10, None, "op1")
    assert await settings.slow_mode("r", NOW + 10**9) == mode
    assert await settings.slow_mode("other", NOW) == SLOW_MODE_OFF
    await settings.set_slow_mode("r", 0, None, "op2")
    assert await settings.slow_mode("r", NOW) == SLOW_MODE_OFF


async def test_automatic_slow_mode_lifts_itself(settings: ModerationSettings) -> None:
    await settings.set_slow_mode("r", 5, NOW + 60_000, "system")
    assert await settings.slow_mode("r", NOW) == SlowMode(5, NOW + 60_000, "system")
    assert await settings.slow_mode("r", NOW + 59_999) == SlowMode(5, NOW + 60_000, "system")
    assert await settings.slow_mode("r", NOW + 60_000) == SLOW_MODE_OFF


async def test_the_last_setting_wins(settings: ModerationSettings) -> None:
    await settings.set_slow_mode("r", 5, NOW + 60_000, "system")
    await settings.set_slow_mode("r", 30, None, "op")
    assert await settings.slow_mode("r", NOW + 120_000) == SlowMode(30, None, "op")
    await settings.set_slow_mode("r", 3, NOW + 1000, "system")
    assert await settings.slow_mode("r", NOW) == SlowMode(3, NOW + 1000, "system")
    assert await settings.slow_mode("r", NOW + 1000) == SLOW_MODE_OFF


async def test_negative_seconds_are_a_value_error(settings: ModerationSettings) -> None:
    with pytest.raises(ValueError):
        await settings.set_slow_mode("r", -1, None, "op")


# --- verdict counts


async def test_verdicts_count_over_the_window(settings: ModerationSettings) -> None:
    assert await settings.record_verdict("r", False, NOW, WINDOW) == VerdictCounts(1, 0)
    assert await settings.record_verdict("r", True, NOW + 10, WINDOW) == (2, 1)
    assert await settings.record_verdict("r", True, NOW + 5_000, WINDOW) == (3, 2)
    assert await settings.record_verdict("r", False, NOW + 29_999, WINDOW) == (4, 2)
    # The window is 30 whole seconds: the first second (NOW..NOW+999) leaves at NOW+30 s.
    assert await settings.record_verdict("r", False, NOW + 30_000, WINDOW) == (3, 1)
    assert await settings.record_verdict("r", False, NOW + 35_000, WINDOW) == (3, 0)
    counts = await settings.record_verdict("r", True, NOW + 100_000, WINDOW)
    assert counts == (1, 1)
    assert counts.refused_share == 1.0
    assert await settings.record_verdict("other", False, NOW, WINDOW) == (1, 0)


async def test_refused_share(settings: ModerationSettings) -> None:
    for i in range(8):
        await settings.record_verdict("r", False, NOW + i, WINDOW)
    counts = await settings.record_verdict("r", True, NOW + 8, WINDOW)
    counts = await settings.record_verdict("r", True, NOW + 9, WINDOW)
    assert counts == (10, 2)
    assert counts.refused_share == pytest.approx(0.2)
    assert VerdictCounts(0, 0).refused_share == 0.0


async def test_a_window_under_a_second_is_the_current_second(
    settings: ModerationSettings,
) -> None:
    assert await settings.record_verdict("r", True, NOW + 900, 100) == (1, 1)
    assert await settings.record_verdict("r", False, NOW + 950, 100) == (2, 1)
    assert await settings.record_verdict("r", False, NOW + 1000, 100) == (1, 0)


@pytest.mark.parametrize("window", [0, -5])
async def test_the_window_must_be_positive(settings: ModerationSettings, window: int) -> None:
    with pytest.raises(ValueError):
        await settings.record_verdict("r", False, NOW, window)


async def test_concurrent_verdicts_each_count_once(settings: ModerationSettings) -> None:
    results = await asyncio.gather(
        *(settings.record_verdict("r", i % 4 == 0, NOW + i, WINDOW) for i in range(200))
    )
    assert sorted(c.total for c in results) == list(range(1, 201))
    assert await settings.record_verdict("r", False, NOW + 500, WINDOW) == (201, 50)


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_verdict_key_lapses_and_keys_carry_the_room_tag(
    settings: ModerationSettings, backend: Backend
) -> None:
    assert backend is not None
    client, keys = backend
    await settings.record_verdict("r", True, NOW, WINDOW)
    await settings.set_slow_mode("r", 5, None, "op")
    assert WINDOW - 1000 < await client.pttl(keys.verdicts("r")) <= WINDOW
    names = {k.decode() async for k in client.scan_iter(match=f"{keys.prefix}*")}
    assert names == {keys.verdicts("r"), keys.settings("r")}
    assert all("{r}" in name for name in names)
    # Buckets that left the window are gone from the hash, not only from the sums.
    await settings.record_verdict("r", False, NOW + 2 * WINDOW, WINDOW)
    assert await client.hlen(keys.verdicts("r")) == 1
    # A window under a second is one bucket, kept a second.
    await settings.record_verdict("brief", False, NOW, 50)
    assert 0 < await client.pttl(keys.verdicts("brief")) <= 1000
