"""DanmakuLog contract (``rooms.danmaku_log``), on every engine."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from interact.engine import Engine
from interact.floor.errors import Code, Conflict, NotFound
from rooms.models import Room, RoomStatus
from tests.contract.conftest import HISTORY_SIZE

if TYPE_CHECKING:
    from tests.conftest import Eventually
    from tests.contract.conftest import MakeEngine

SIZE = HISTORY_SIZE


async def live_room(engine: Engine, rid: str = "r", status: RoomStatus = RoomStatus.LIVE) -> str:
    await engine.rooms.create(Room(id=rid, title=rid, status=status, created_at=1))
    return rid


def body(i: int) -> dict[str, Any]:
    return {
        "uid": f"u{i}",
        "nick": "观众",
        "text": f"hello {i}",
        "color": 0xFFFFFF,
        "mode": "scroll",
        "ts": i,
    }


def seqs(items: list[bytes]) -> list[int]:
    return [orjson.loads(p)["seq"] for p in items]


async def fill(engine: Engine, rid: str, n: int) -> None:
    for i in range(n):
        await engine.danmaku.append(rid, body(i))


async def test_append_numbers_from_one_and_payload_is_dm_json(engine: Engine) -> None:
    rid = await live_room(engine)
    first = await engine.danmaku.append(rid, body(1))
    second = await engine.danmaku.append(rid, body(2))
    assert (first.seq, second.seq) == (1, 2)
    assert first.epoch == second.epoch and first.epoch
    decoded = orjson.loads(first.payload)
    assert decoded == {"t": "dm", "seq": 1, **body(1)}
    assert list(decoded)[:2] == ["t", "seq"]
    assert orjson.loads(second.payload) == {"t": "dm", "seq": 2, **body(2)}
    # The exact bytes orjson would write, so both engines put the same frames on the wire.
    assert second.payload == orjson.dumps({"t": "dm", "seq": 2, **body(2)})


async def test_append_with_empty_and_nested_bodies(engine: Engine) -> None:
    rid = await live_room(engine)
    empty = await engine.danmaku.append(rid, {})
    assert orjson.loads(empty.payload) == {"t": "dm", "seq": 1}
    nested = {"text": 'quote " and \\ and \n', "extra": {"a": [1, 2, {"b": None}]}, "ok": True}
    got = await engine.danmaku.append(rid, nested)
    assert orjson.loads(got.payload) == {"t": "dm", "seq": 2, **nested}


@pytest.mark.parametrize("status", [RoomStatus.SCHEDULED, RoomStatus.PAUSED, RoomStatus.ENDED])
async def test_require_live_refuses_other_states(engine: Engine, status: RoomStatus) -> None:
    rid = await live_room(engine, status=status)
    with pytest.raises(Conflict) as info:
        await engine.danmaku.append(rid, body(1))
    assert info.value.code is Code.ROOM_NOT_LIVE
    assert status.value in info.value.message
    # Refusing consumes no seq.
    ok = await engine.danmaku.append(rid, body(1), require_live=False)
    assert ok.seq == 1


async def test_require_live_false_appends_to_a_room_that_is_not_live(engine: Engine) -> None:
    rid = await live_room(engine, status=RoomStatus.ENDED)
    got = await engine.danmaku.append(rid, {"text": "system"}, require_live=False)
    assert got.seq == 1
    hist = await engine.danmaku.history(rid, None, None, 10)
    assert hist.items == [got.payload]


@pytest.mark.parametrize("require_live", [True, False])
async def test_unknown_room_is_not_found(engine: Engine, require_live: bool) -> None:
    with pytest.raises(NotFound) as info:
        await engine.danmaku.append("ghost", body(1), require_live=require_live)
    assert info.value.code is Code.NOT_FOUND


async def test_live_check_follows_the_room_state(engine: Engine) -> None:
    rid = await live_room(engine, status=RoomStatus.SCHEDULED)
    await engine.rooms.transition(rid, "start", 2)
    assert (await engine.danmaku.append(rid, body(1))).seq == 1
    await engine.rooms.transition(rid, "pause", 3)
    with pytest.raises(Conflict):
        await engine.danmaku.append(rid, body(2))
    await engine.rooms.transition(rid, "resume", 4)
    assert (await engine.danmaku.append(rid, body(3))).seq == 2


async def test_empty_log_has_a_stable_epoch(engine: Engine) -> None:
    rid = await live_room(engine)
    one = await engine.danmaku.history(rid, None, None, 10)
    two = await engine.danmaku.history(rid, 0, one.epoch, 10)
    assert one.epoch and one.epoch == two.epoch
    assert (one.seq, one.recovered, one.items) == (0, False, [])
    # since=0 in the current epoch of an empty log is inside the window.
    assert (two.seq, two.recovered, two.items) == (0, True, [])
    appended = await engine.danmaku.append(rid, body(1))
    assert appended.epoch == one.epoch


async def test_rooms_have_separate_numbering(engine: Engine) -> None:
    a, b = await live_room(engine, "a"), await live_room(engine, "b")
    assert (await engine.danmaku.append(a, body(1))).seq == 1
    assert (await engine.danmaku.append(a, body(2))).seq == 2
    assert (await engine.danmaku.append(b, body(3))).seq == 1
    assert seqs((await engine.danmaku.history(b, None, None, 10)).items) == [1]


async def test_history_recovers_exactly_the_missed_items(engine: Engine) -> None:
    rid = await live_room(engine)
    await fill(engine, rid, 25)  # window is (15, 25]
    epoch = (await engine.danmaku.history(rid, None, None, 1)).epoch
    for since, expected in [(20, [21, 22, 23, 24, 25]), (25, []), (15, list(range(16, 26)))]:
        hist = await engine.danmaku.history(rid, since, epoch, 3)
        assert (hist.seq, hist.epoch, hist.recovered) == (25, epoch, True), since
        assert seqs(hist.items) == expected, since
        assert [orjson.loads(p) for p in hist.items] == [
            {"t": "dm", "seq": s, **body(s - 1)} for s in expected
        ]


@pytest.mark.parametrize(
    ("since", "epoch_ok"),
    [(14, True), (0, True), (26, True), (-1, True), (20, False), (None, True)],
    ids=["too-old", "zero-after-trim", "ahead-of-head", "negative", "wrong-epoch", "none"],
)
async def test_history_outside_the_window_gives_the_latest(
    engine: Engine, since: int | None, epoch_ok: bool
) -> None:
    rid = await live_room(engine)
    await fill(engine, rid, 25)
    cur = (await engine.danmaku.history(rid, None, None, 1)).epoch
    epoch = cur if epoch_ok else "not-" + cur
    hist = await engine.danmaku.history(rid, since, epoch, 4)
    assert (hist.seq, hist.epoch, hist.recovered) == (25, cur, False)
    assert seqs(hist.items) == [22, 23, 24, 25]
    assert seqs((await engine.danmaku.history(rid, since, epoch, 100)).items) == list(range(16, 26))
    assert (await engine.danmaku.history(rid, since, epoch, 0)).items == []


async def test_history_with_no_epoch_is_not_recovered(engine: Engine) -> None:
    rid = await live_room(engine)
    await fill(engine, rid, 3)
    hist = await engine.danmaku.history(rid, 1, None, 10)
    assert not hist.recovered and seqs(hist.items) == [1, 2, 3]


async def test_trimming_keeps_exactly_size_seqs(make_engine: MakeEngine) -> None:
    for size in (1, 3, 7):
        engine = await make_engine(history_size=size)
        rid = await live_room(engine, f"trim{size}")
        for n in range(1, 3 * size + 2):
            await engine.danmaku.append(rid, body(n))
            hist = await engine.danmaku.history(rid, None, None, 1_000)
            assert seqs(hist.items) == list(range(max(1, n - size + 1), n + 1))


async def test_retract_removes_once(engine: Engine) -> None:
    rid = await live_room(engine)
    await fill(engine, rid, 5)
    assert await engine.danmaku.retract(rid, 3) is True
    assert await engine.danmaku.retract(rid, 3) is False
    assert await engine.danmaku.retract(rid, 99) is False
    assert await engine.danmaku.retract("ghost", 1) is False
    hist = await engine.danmaku.history(rid, None, None, 10)
    assert seqs(hist.items) == [1, 2, 4, 5]
    epoch = hist.epoch
    assert seqs((await engine.danmaku.history(rid, 1, epoch, 10)).items) == [2, 4, 5]
    # Numbering goes on past a retraction.
    assert (await engine.danmaku.append(rid, body(6))).seq == 6


async def test_200_concurrent_appends_no_gaps_and_delivered_in_order(
    engine: Engine, eventually: Eventually
) -> None:
    rid = await live_room(engine)
    got: list[int] = []
    engine.broker.set_handler(lambda room, payload: got.append(orjson.loads(payload)["seq"]))
    await engine.broker.subscribe(rid)
    results = await asyncio.gather(*(engine.danmaku.append(rid, body(i)) for i in range(200)))
    assert sorted(r.seq for r in results) == list(range(1, 201))
    assert len({r.epoch for r in results}) == 1
    await eventually(lambda: len(got) >= 200, within=5)
    assert got == list(range(1, 201))
    hist = await engine.danmaku.history(rid, None, None, 1_000)
    assert seqs(hist.items) == list(range(201 - SIZE, 201))


@pytest.mark.parametrize("kind", ["redis"])
async def test_two_processes_append_concurrently(
    make_engine: MakeEngine, eventually: Eventually
) -> None:
    a, b = await make_engine(), await make_engine()
    rid = await live_room(a)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for name, eng in (("a", a), ("b", b)):
        eng.broker.set_handler(lambda room, p, name=name: seen[name].append(orjson.loads(p)["seq"]))
        await eng.broker.subscribe(rid)
    results = await asyncio.gather(
        *(eng.danmaku.append(rid, body(i)) for i in range(100) for eng in (a, b))
    )
    assert sorted(r.seq for r in results) == list(range(1, 201))
    assert len({r.epoch for r in results}) == 1
    await eventually(lambda: min(map(len, seen.values())) >= 200, within=5)
    assert seen["a"] == list(range(1, 201))
    assert seen["b"] == list(range(1, 201))
    ha = await a.danmaku.history(rid, None, None, 100)
    hb = await b.danmaku.history(rid, None, None, 100)
    assert ha == hb and ha.seq == 200


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_keys_carry_the_room_hash_tag(
    make_engine: MakeEngine, redis_prefix: str
) -> None:
    engine = await make_engine()
    rid = await live_room(engine, "tagged")
    await engine.danmaku.append(rid, body(1))
    await engine.presence.report(rid, "n1", 3, 10_000)
    await engine.stats.joined(rid, ["u1"])
    await engine.stats.commented(rid, "u1")
    await engine.stats.observe_online(rid, 3)
    await engine.danmaku.history(rid, None, None, 10)
    client = engine.danmaku._client  # type: ignore[attr-defined]
    keys = sorted([k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")])
    per_room = [k for k in keys if k != f"{redis_prefix}rooms"]
    assert len(per_room) == 7, keys
    assert all("{tagged}" in k for k in per_room), keys
