"""RoomStore contract (``rooms.room_store``), on every engine."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from interact.engine import Engine
from interact.floor.errors import Code, Conflict, NotFound
from rooms.keys import RoomKeys
from rooms.lifecycle import TRANSITIONS
from rooms.models import Room, RoomStatus

if TYPE_CHECKING:
    from tests.contract.conftest import MakeEngine, NewClient

S, L, P, E = RoomStatus.SCHEDULED, RoomStatus.LIVE, RoomStatus.PAUSED, RoomStatus.ENDED


def room(rid: str, created_at: int = 1_000, **kw: object) -> Room:
    return Room(id=rid, title=f"title {rid}", created_at=created_at, updated_at=created_at, **kw)


async def test_create_then_get_round_trips_every_field(engine: Engine) -> None:
    full = Room(
        id="r-1_A",
        title="春晚 直播 🎉",
        status=S,
        anchor="u42",
        created_at=1_700_000_000_123,
        started_at=None,
        ended_at=None,
        updated_at=1_700_000_000_124,
    )
    await engine.rooms.create(full)
    assert await engine.rooms.get("r-1_A") == full

    bare = room("bare")
    await engine.rooms.create(bare)
    got = await engine.rooms.get("bare")
    assert got == bare
    assert got is not None and got.anchor is None and got.started_at is None


async def test_get_unknown_is_none(engine: Engine) -> None:
    assert await engine.rooms.get("nope") is None


async def test_duplicate_id_is_conflict_and_keeps_the_first(engine: Engine) -> None:
    await engine.rooms.create(room("dup"))
    with pytest.raises(Conflict) as info:
        await engine.rooms.create(Room(id="dup", title="other", created_at=5))
    assert info.value.code is Code.CONFLICT
    got = await engine.rooms.get("dup")
    assert got is not None and got.title == "title dup"
    assert [r.id for r in await engine.rooms.list()] == ["dup"]


async def test_get_returns_a_copy(engine: Engine) -> None:
    await engine.rooms.create(room("c"))
    got = await engine.rooms.get("c")
    assert got is not None
    got.title = "changed"
    again = await engine.rooms.get("c")
    assert again is not None and again.title == "title c"


async def test_list_newest_first_ties_by_id_descending(engine: Engine) -> None:
    for rid, ts in [("a", 100), ("b", 300), ("c", 200), ("d", 300), ("e", 100)]:
        await engine.rooms.create(room(rid, created_at=ts))
    assert [r.id for r in await engine.rooms.list()] == ["d", "b", "c", "e", "a"]
    assert [r.id for r in await engine.rooms.list(limit=2)] == ["d", "b"]
    assert [r.id for r in await engine.rooms.list(limit=2, offset=2)] == ["c", "e"]
    assert [r.id for r in await engine.rooms.list(offset=4)] == ["a"]
    assert await engine.rooms.list(offset=5) == []
    assert await engine.rooms.list(limit=0) == []


async def test_list_filters_by_status_before_paging(engine: Engine) -> None:
    statuses = [S, L, S, E, L, S, P, L]
    for i, st in enumerate(statuses):
        await engine.rooms.create(room(f"r{i}", created_at=1_000 + i, status=st))
    live = await engine.rooms.list(status=L)
    assert [r.id for r in live] == ["r7", "r4", "r1"]
    assert all(r.status is L for r in live)
    assert [r.id for r in await engine.rooms.list(status=S, limit=2)] == ["r5", "r2"]
    assert [r.id for r in await engine.rooms.list(status=S, limit=2, offset=2)] == ["r0"]
    assert [r.id for r in await engine.rooms.list(status=P)] == ["r6"]
    assert [r.id for r in await engine.rooms.list(status=E, offset=1)] == []
    await engine.rooms.transition("r0", "start", 9_000)
    assert [r.id for r in await engine.rooms.list(status=L)] == ["r7", "r4", "r1", "r0"]


async def test_list_many_rooms_with_a_sparse_filter(engine: Engine) -> None:
    # More rooms than one index page of the Redis store, few of them matching.
    for i in range(450):
        st = L if i % 100 == 0 else S
        await engine.rooms.create(room(f"m{i:03d}", created_at=i, status=st))
    assert [r.id for r in await engine.rooms.list(status=L)] == [
        "m400",
        "m300",
        "m200",
        "m100",
        "m000",
    ]
    assert [r.id for r in await engine.rooms.list(status=L, limit=2, offset=3)] == ["m100", "m000"]
    assert len(await engine.rooms.list(limit=1_000)) == 450


ALL_CASES = [(action, st) for action in TRANSITIONS for st in RoomStatus]


@pytest.mark.parametrize(("action", "start"), ALL_CASES, ids=[f"{a}-{s}" for a, s in ALL_CASES])
async def test_every_transition_allowed_or_refused(
    engine: Engine, action: str, start: RoomStatus
) -> None:
    allowed, target, stamp = TRANSITIONS[action]
    before = room("t", created_at=10, status=start)
    await engine.rooms.create(before)
    if start in allowed:
        after = await engine.rooms.transition("t", action, 777)
        assert after.status is target
        assert after.updated_at == 777
        if stamp is not None:
            assert getattr(after, stamp) == 777
        assert after.created_at == 10
        for field in ("started_at", "ended_at"):
            if field != stamp:
                assert getattr(after, field) is None
        assert await engine.rooms.get("t") == after
    else:
        with pytest.raises(Conflict) as info:
            await engine.rooms.transition("t", action, 777)
        assert info.value.code is Code.CONFLICT
        assert start.value in info.value.message
        assert await engine.rooms.get("t") == before


@pytest.mark.parametrize("action", list(TRANSITIONS))
async def test_transition_of_unknown_room_is_not_found(engine: Engine, action: str) -> None:
    with pytest.raises(NotFound) as info:
        await engine.rooms.transition("ghost", action, 1)
    assert info.value.code is Code.NOT_FOUND
    assert await engine.rooms.get("ghost") is None


async def test_full_lifecycle_stamps_times(engine: Engine) -> None:
    await engine.rooms.create(room("life", created_at=1))
    r = await engine.rooms.transition("life", "start", 10)
    assert (r.status, r.started_at, r.ended_at, r.updated_at) == (L, 10, None, 10)
    r = await engine.rooms.transition("life", "pause", 20)
    assert (r.status, r.started_at, r.updated_at) == (P, 10, 20)
    r = await engine.rooms.transition("life", "resume", 30)
    assert (r.status, r.started_at, r.updated_at) == (L, 10, 30)
    r = await engine.rooms.transition("life", "end", 40)
    assert (r.status, r.started_at, r.ended_at, r.updated_at) == (E, 10, 40, 40)
    for action in TRANSITIONS:
        with pytest.raises(Conflict):
            await engine.rooms.transition("life", action, 50)
    assert await engine.rooms.get("life") == r


async def test_unknown_action_is_a_key_error(engine: Engine) -> None:
    await engine.rooms.create(room("k"))
    with pytest.raises(KeyError):
        await engine.rooms.transition("k", "explode", 1)


async def test_concurrent_starts_succeed_exactly_once(engine: Engine) -> None:
    await engine.rooms.create(room("race"))
    results = await asyncio.gather(
        *(engine.rooms.transition("race", "start", i) for i in range(20)), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, Room)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 19


@pytest.mark.parametrize("kind", ["redis"])
async def test_concurrent_starts_from_two_processes(make_engine: MakeEngine) -> None:
    a, b = await make_engine(), await make_engine()
    await a.rooms.create(room("race2"))
    results = await asyncio.gather(
        *(e.rooms.transition("race2", "start", i) for i in range(10) for e in (a, b)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Room) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 19
    got = await b.rooms.get("race2")
    assert got is not None and got.status is L


# -- rooms per anchor, and rooms that never start ------------------------------------------


def anchored(rid: str, anchor: str = "anc", **kw: object) -> Room:
    return room(rid, anchor=anchor, **kw)


async def test_quota_counts_open_rooms_of_the_anchor(engine: Engine) -> None:
    for i in range(3):
        await engine.rooms.create(anchored(f"q{i}"), quota=3)
    with pytest.raises(Conflict) as info:
        await engine.rooms.create(anchored("q3"), quota=3)
    assert info.value.code is Code.LIMIT_REACHED and info.value.extra == {"limit": 3}
    assert await engine.rooms.get("q3") is None
    assert [r.id for r in await engine.rooms.list()] == ["q2", "q1", "q0"]
    # Another anchor, and rooms without one, are not affected.
    await engine.rooms.create(anchored("other", anchor="anc2"), quota=3)
    await engine.rooms.create(room("nobody"), quota=3)
    assert await engine.rooms.open_rooms("anc") == 3
    assert await engine.rooms.open_rooms("anc2") == 1
    # Quota 0 (an operator's create) is no cap, but the room counts.
    await engine.rooms.create(anchored("ops"), quota=0)
    assert await engine.rooms.open_rooms("anc") == 4
    # Live and paused rooms stay counted; ending one frees a place.
    await engine.rooms.transition("q0", "start", 2_000)
    await engine.rooms.transition("q0", "pause", 2_001)
    assert await engine.rooms.open_rooms("anc") == 4
    for rid in ("q0", "q1"):
        await engine.rooms.transition(rid, "end", 2_002)
    assert await engine.rooms.open_rooms("anc") == 2
    await engine.rooms.create(anchored("q4"), quota=3)
    with pytest.raises(Conflict):
        await engine.rooms.create(anchored("q5"), quota=3)


async def test_a_duplicate_id_takes_no_place(engine: Engine) -> None:
    await engine.rooms.create(anchored("d", anchor="x"), quota=2)
    with pytest.raises(Conflict) as info:
        await engine.rooms.create(anchored("d", anchor="y"), quota=2)
    assert info.value.code is Code.CONFLICT
    assert await engine.rooms.open_rooms("y") == 0
    assert await engine.rooms.open_rooms("x") == 1


async def test_concurrent_creates_never_pass_the_quota(engine: Engine) -> None:
    results = await asyncio.gather(
        *(engine.rooms.create(anchored(f"c{i:02d}"), quota=10) for i in range(60)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 10
    assert all(r is None or isinstance(r, Conflict) for r in results), results
    assert await engine.rooms.open_rooms("anc") == 10
    assert len(await engine.rooms.list(limit=100)) == 10


@pytest.mark.parametrize("kind", ["redis"])
async def test_concurrent_creates_from_two_processes_never_pass_the_quota(
    make_engine: MakeEngine,
) -> None:
    a, b = await make_engine(), await make_engine()
    results = await asyncio.gather(
        *(e.rooms.create(anchored(f"p{i:03d}-{n}"), quota=25)
          for i in range(100) for n, e in enumerate((a, b))),
        return_exceptions=True,
    )  # fmt: skip
    assert sum(r is None for r in results) == 25
    assert await a.rooms.open_rooms("anc") == 25
    assert len(await b.rooms.list(limit=500)) == 25


async def eventually_gone(engine: Engine, rid: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await engine.rooms.get(rid) is not None:
        assert asyncio.get_running_loop().time() < deadline, f"{rid} never expired"
        await asyncio.sleep(0.02)


async def test_a_room_that_never_starts_is_forgotten(engine: Engine) -> None:
    await engine.rooms.create(anchored("idle"), quota=2, unstarted_ttl_ms=300)
    await engine.rooms.create(anchored("starts"), quota=2, unstarted_ttl_ms=300)
    await engine.rooms.transition("starts", "start", 5_000)
    with pytest.raises(Conflict):
        await engine.rooms.create(anchored("full"), quota=2, unstarted_ttl_ms=300)
    await eventually_gone(engine, "idle")
    assert [r.id for r in await engine.rooms.list()] == ["starts"]
    assert await engine.rooms.open_rooms("anc") == 1
    with pytest.raises(NotFound):
        await engine.rooms.transition("idle", "start", 6_000)
    # Its place is free again; the started room outlived the deadline.
    await engine.rooms.create(anchored("next"), quota=2, unstarted_ttl_ms=300)
    got = await engine.rooms.get("starts")
    assert got is not None and got.status is L


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_keys_of_an_unstarted_room_carry_a_ttl_until_it_starts(
    make_engine: MakeEngine, new_redis_client: NewClient, redis_prefix: str
) -> None:
    engine = await make_engine()
    client = new_redis_client()
    keys = RoomKeys(redis_prefix)
    week = 7 * 24 * 3600 * 1000
    await engine.rooms.create(anchored("k1"), quota=5, unstarted_ttl_ms=week)
    await engine.rooms.create(anchored("k2"), quota=5, unstarted_ttl_ms=week)
    for key in (keys.room("k1"), keys.anchor_rooms("anc")):
        assert 0 < await client.pttl(key) <= week, key
    await engine.rooms.transition("k1", "start", 5_000)
    assert await client.pttl(keys.room("k1")) == -1
    assert await client.pttl(keys.anchor_rooms("anc")) == -1  # holds a started room
    assert 0 < await client.pttl(keys.room("k2")) <= week
    await engine.rooms.transition("k1", "end", 6_000)
    assert 0 < await client.pttl(keys.anchor_rooms("anc")) <= week  # only k2 is left
    # An expired room leaves the index at a later create.
    await engine.rooms.create(anchored("short"), quota=5, unstarted_ttl_ms=100)
    await eventually_gone(engine, "short")
    assert await client.zscore(keys.index(), "short") is not None
    await engine.rooms.create(room("later"), unstarted_ttl_ms=week)
    assert await client.zscore(keys.index(), "short") is None
    assert await client.zscore(keys.index(), "k2") is not None


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_an_ended_room_left_counted_is_dropped_when_the_quota_refuses(
    make_engine: MakeEngine, new_redis_client: NewClient, redis_prefix: str
) -> None:
    engine = await make_engine()
    client = new_redis_client()
    await engine.rooms.create(anchored("e1"), quota=1)
    await engine.rooms.transition("e1", "start", 1_000)
    await engine.rooms.transition("e1", "end", 2_000)
    # What a start's bookkeeping arriving after the end (or a crash) leaves behind.
    await client.zadd(RoomKeys(redis_prefix).anchor_rooms("anc"), {"e1": float("inf")})
    await engine.rooms.create(anchored("e2"), quota=1)
    assert await engine.rooms.open_rooms("anc") == 1
