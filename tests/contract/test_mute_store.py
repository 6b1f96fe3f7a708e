"""MuteStore contract (``moderation.mute_store``), on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from moderation.keys import ModerationKeys
from moderation.mute_store import REFUSALS_CAP, Ban, Mute, MuteStore
from moderation.mute_store_memory import MemoryMuteStore
from moderation.mute_store_redis import RedisMuteStore
from tests.contract.conftest import NewClient

NOW = 1_700_000_000_000
MIN = 60_000
TEN_YEARS = 10 * 365 * 24 * 3_600_000

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
def store(backend: Backend) -> MuteStore:
    return MemoryMuteStore() if backend is None else RedisMuteStore(*backend)


# --- mutes


async def test_a_mute_lasts_until_its_end(store: MuteStore) -> None:
    mute = await store.mute("r", "u1", NOW + 10 * MIN, "op", "spam", now_ms=NOW)
    assert mute == Mute(uid="u1", until_ms=NOW + 10 * MIN, by="op", reason="spam", at_ms=NOW)
    assert await store.muted_until("r", "u1", NOW) == NOW + 10 * MIN
    assert await store.muted_until("r", "u1", NOW + 10 * MIN - 1) == NOW + 10 * MIN
    assert await store.muted_until("r", "u1", NOW + 10 * MIN) is None
    # Only in its room, only for its user.
    assert await store.muted_until("other", "u1", NOW) is None
    assert await store.muted_until("r", "u2", NOW) is None


async def test_list_mutes_in_force_soonest_first(store: MuteStore) -> None:
    await store.mute("r", "late", NOW + 30 * MIN, "op1", "abuse 辱骂", now_ms=NOW)
    await store.mute("r", "b", NOW + 10 * MIN, "system", "escalation", now_ms=NOW + 1)
    await store.mute("r", "a", NOW + 10 * MIN, "system", "escalation", now_ms=NOW + 2)
    await store.mute("r", "brief", NOW + MIN, "op2", "", now_ms=NOW)
    await store.mute("elsewhere", "x", NOW + MIN, "op", "", now_ms=NOW)
    assert await store.list_mutes("r", NOW) == [
        Mute("brief", NOW + MIN, "op2", "", NOW),
        Mute("a", NOW + 10 * MIN, "system", "escalation", NOW + 2),
        Mute("b", NOW + 10 * MIN, "system", "escalation", NOW + 1),
        Mute("late", NOW + 30 * MIN, "op1", "abuse 辱骂", NOW),
    ]
    assert [m.uid for m in await store.list_mutes("r", NOW + MIN)] == ["a", "b", "late"]
    assert [m.uid for m in await store.list_mutes("r", NOW + 10 * MIN)] == ["late"]
    assert await store.list_mutes("r", NOW + 30 * MIN) == []
    assert await store.list_mutes("ghost", NOW) == []


async def test_a_new_mute_replaces_the_old_one(store: MuteStore) -> None:
    await store.mute("r", "u", NOW + 24 * 60 * MIN, "op", "first", now_ms=NOW)
    await store.mute("r", "u", NOW + 10 * MIN, "system", "second", now_ms=NOW + 5)
    assert await store.muted_until("r", "u", NOW + 5) == NOW + 10 * MIN
    assert await store.list_mutes("r", NOW + 5) == [
        Mute("u", NOW + 10 * MIN, "system", "second", NOW + 5)
    ]


async def test_unmute(store: MuteStore) -> None:
    await store.mute("r", "u", NOW + MIN, "op", "", now_ms=NOW)
    await store.mute("r", "v", NOW + MIN, "op", "", now_ms=NOW)
    assert await store.unmute("r", "u", now_ms=NOW + 1) is True
    assert await store.muted_until("r", "u", NOW + 1) is None
    assert await store.unmute("r", "u", now_ms=NOW + 1) is False
    assert await store.unmute("r", "never", now_ms=NOW + 1) is False
    assert [m.uid for m in await store.list_mutes("r", NOW + 1)] == ["v"]
    # A mute that has lapsed is not lifted: there was nothing in force.
    assert await store.unmute("r", "v", now_ms=NOW + MIN) is False
    assert await store.list_mutes("r", NOW) == []


async def test_muting_again_after_a_lapse(store: MuteStore) -> None:
    await store.mute("r", "u", NOW + MIN, "op", "one", now_ms=NOW)
    await store.mute("r", "u", NOW + 3 * MIN, "op", "two", now_ms=NOW + 2 * MIN)
    assert await store.muted_until("r", "u", NOW + 2 * MIN) == NOW + 3 * MIN


@pytest.mark.parametrize(("uid", "until"), [("u", NOW), ("u", NOW - 1), ("", NOW + MIN)])
async def test_bad_mutes_are_value_errors(store: MuteStore, uid: str, until: int) -> None:
    with pytest.raises(ValueError):
        await store.mute("r", uid, until, "op", "", now_ms=NOW)
    assert await store.list_mutes("r", NOW - 10) == []


# --- bans


async def test_bans_are_global_and_may_be_forever(store: MuteStore) -> None:
    forever = await store.ban("troll", None, "op", "fraud", now_ms=NOW)
    assert forever == Ban(uid="troll", until_ms=None, by="op", reason="fraud", at_ms=NOW)
    await store.ban("brief", NOW + MIN, "system", "escalation", now_ms=NOW)
    assert await store.banned("troll", NOW + TEN_YEARS) is True
    assert await store.banned("brief", NOW + MIN - 1) is True
    assert await store.banned("brief", NOW + MIN) is False
    assert await store.banned("nobody", NOW) is False
    assert await store.list_bans(NOW) == [
        Ban("brief", NOW + MIN, "system", "escalation", NOW),
        Ban("troll", None, "op", "fraud", NOW),
    ]
    assert await store.list_bans(NOW + MIN) == [Ban("troll", None, "op", "fraud", NOW)]
    # A ban is not a mute.
    assert await store.muted_until("r", "troll", NOW) is None


async def test_unban_and_ban_replacement(store: MuteStore) -> None:
    await store.ban("u", None, "op", "", now_ms=NOW)
    await store.ban("u", NOW + MIN, "op2", "reduced", now_ms=NOW + 1)
    assert await store.list_bans(NOW + 1) == [Ban("u", NOW + MIN, "op2", "reduced", NOW + 1)]
    assert await store.unban("u", now_ms=NOW + 2) is True
    assert await store.banned("u", NOW + 2) is False
    assert await store.unban("u", now_ms=NOW + 2) is False
    await store.ban("v", NOW + MIN, "op", "", now_ms=NOW)
    assert await store.unban("v", now_ms=NOW + MIN) is False
    assert await store.list_bans(NOW) == []


async def test_a_ban_in_the_past_is_a_value_error(store: MuteStore) -> None:
    with pytest.raises(ValueError):
        await store.ban("u", NOW, "op", "", now_ms=NOW)
    assert await store.banned("u", NOW - 1) is False


# --- refusals


async def test_refusals_count_in_a_sliding_window(store: MuteStore) -> None:
    window = 10 * MIN
    assert await store.record_refusal("r", "u", NOW, window) == 1
    assert await store.record_refusal("r", "u", NOW + 1000, window) == 2
    assert await store.record_refusal("r", "u", NOW + 2000, window) == 3
    # Refusals at exactly now - window have left it.
    assert await store.record_refusal("r", "u", NOW + window, window) == 3
    assert await store.record_refusal("r", "u", NOW + window + 1500, window) == 3
    assert await store.record_refusal("r", "u", NOW + 3 * window, window) == 1
    # Per user and room.
    assert await store.record_refusal("r", "v", NOW, window) == 1
    assert await store.record_refusal("r2", "u", NOW, window) == 1


async def test_refusals_in_the_same_ms_count_apart(store: MuteStore) -> None:
    counts = [await store.record_refusal("r", "u", NOW, MIN) for _ in range(5)]
    assert counts == [1, 2, 3, 4, 5]


async def test_concurrent_refusals_each_count_once(store: MuteStore) -> None:
    counts = await asyncio.gather(
        *(store.record_refusal("r", "u", NOW, 10 * MIN) for _ in range(200))
    )
    assert sorted(counts) == list(range(1, 201))
    assert await store.record_refusal("r", "u", NOW + 1, 10 * MIN) == 201


async def test_refusal_count_saturates_at_the_cap(store: MuteStore) -> None:
    await asyncio.gather(
        *(store.record_refusal("r", "u", NOW + i, 10 * MIN) for i in range(REFUSALS_CAP))
    )
    assert await store.record_refusal("r", "u", NOW + REFUSALS_CAP, 10 * MIN) == REFUSALS_CAP
    # Kept: NOW+1 .. NOW+1000. Those up to NOW+500 leave the window; 500 stay, and this one.
    assert await store.record_refusal("r", "u", NOW + 10 * MIN + 500, 10 * MIN) == 501


@pytest.mark.parametrize("window", [0, -1])
async def test_refusal_window_must_be_positive(store: MuteStore, window: int) -> None:
    with pytest.raises(ValueError):
        await store.record_refusal("r", "u", NOW, window)


# --- Redis keys


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_room_keys_lapse_with_the_last_mute(store: MuteStore, backend: Backend) -> None:
    assert backend is not None
    client, keys = backend
    await store.mute("r", "u", NOW + 2 * MIN, "op", "", now_ms=NOW)
    await store.mute("r", "v", NOW + MIN, "op", "", now_ms=NOW)
    for key in (keys.mutes("r"), keys.mute_info("r")):
        assert 2 * MIN - 1000 < await client.pttl(key) <= 2 * MIN
    assert await store.record_refusal("r", "u", NOW, 5000) == 1
    assert 4000 < await client.pttl(keys.refusals("r", "u")) <= 5000
    await store.ban("u", None, "op", "", now_ms=NOW)
    assert await client.pttl(keys.bans()) == -1  # bans stay
    names = {k.decode() async for k in client.scan_iter(match=f"{keys.prefix}*")}
    assert names == {
        keys.mutes("r"),
        keys.mute_info("r"),
        keys.refusals("r", "u"),
        keys.bans(),
        keys.ban_info(),
    }
    assert all("{r}" in n for n in names - {keys.bans(), keys.ban_info()})
    # A short mute's keys go by themselves.
    await store.mute("brief", "u", NOW + 50, "op", "", now_ms=NOW)
    await asyncio.sleep(0.1)
    assert not await client.exists(keys.mutes("brief"), keys.mute_info("brief"))
