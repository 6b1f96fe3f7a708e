"""Archiving on both engines: the jobs (waiting list and lease), the comment journal,
and the writer end to end over real stores (memory, and Redis)."""

from __future__ import annotations

import asyncio
import gzip
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from archive.jobs import ArchiveJobs
from archive.jobs_memory import MemoryArchiveJobs
from archive.jobs_redis import RedisArchiveJobs
from archive.keys import ArchiveKeys
from archive.records import split_lines, verify
from archive.store_local import LocalArchiveStore
from archive.writer import ArchiveWriter, LeaseLost
from interact.archive_setup import EngineSources
from interact.engine import Engine, connect_redis, memory_engine, redis_engine
from rooms.models import Room

HISTORY = 10
pytestmark = pytest.mark.parametrize("kind", ["memory", "redis"])


@pytest.fixture
async def engine(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    if kind == "memory":
        built = memory_engine(HISTORY, journal=True)
    else:
        url = request.getfixturevalue("redis_url")
        built = redis_engine(url, request.getfixturevalue("redis_prefix"), HISTORY, journal=True)
    await built.start()
    yield built
    await built.close()


@pytest.fixture
async def jobs(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[ArchiveJobs]:
    if kind == "memory":
        yield MemoryArchiveJobs()
        return
    client, pipe = connect_redis(request.getfixturevalue("redis_url"))
    yield RedisArchiveJobs(client, ArchiveKeys(request.getfixturevalue("redis_prefix")))  # type: ignore[arg-type]
    if pipe is not None:
        await pipe.close()
    await client.aclose()


# --- jobs -----------------------------------------------------------------------------


async def test_waiting_list(jobs: ArchiveJobs) -> None:
    await jobs.schedule("a", 300)
    await jobs.schedule("b", 100)
    await jobs.schedule("c", 200)
    await jobs.schedule("a", 500)  # a later time keeps the earlier one
    assert await jobs.due(250, 10) == ["b", "c"]
    assert await jobs.due(1000, 2) == ["b", "c"]
    await jobs.schedule("a", 50)  # an earlier one moves it forward
    assert await jobs.due(1000, 10) == ["a", "b", "c"]
    await jobs.done("b")
    await jobs.done("nope")
    assert await jobs.due(1000, 10) == ["a", "c"]
    assert await jobs.due(1000, 0) == []


async def test_lease_is_exclusive_and_only_its_holder_renews_or_drops_it(jobs: ArchiveJobs) -> None:
    assert await jobs.acquire("r", "t1", 10_000)
    assert not await jobs.acquire("r", "t2", 10_000)
    assert await jobs.acquire("other", "t2", 10_000)  # per room
    assert await jobs.renew("r", "t1", 10_000)
    assert not await jobs.renew("r", "t2", 10_000)
    await jobs.release("r", "t2")  # not the holder: nothing happens
    assert not await jobs.acquire("r", "t3", 10_000)
    await jobs.release("r", "t1")
    assert await jobs.acquire("r", "t3", 10_000)
    assert not await jobs.renew("r", "t1", 10_000)


async def test_a_lease_runs_out(jobs: ArchiveJobs) -> None:
    assert await jobs.acquire("r", "t1", 50)
    deadline = time.monotonic() + 3
    while not await jobs.acquire("r", "t2", 10_000):
        assert time.monotonic() < deadline, "the lease never ran out"
        await asyncio.sleep(0.01)
    assert not await jobs.renew("r", "t1", 10_000)  # the old holder lost it


# --- the journal ------------------------------------------------------------------------


async def live_room(engine: Engine, rid: str, started_at: int = 1_000) -> None:
    await engine.rooms.create(Room(id=rid, title="t", anchor="a1", created_at=500))
    await engine.rooms.transition(rid, "start", started_at)


def body(i: int, ts: int) -> dict[str, Any]:
    return {"uid": f"u{i % 4}", "nick": f"昵称{i}", "role": "viewer", "text": f"第{i}条 <&>",
            "color": 0xFFFFFF, "mode": "scroll", "ts": ts}  # fmt: skip


async def test_the_journal_keeps_every_comment_past_the_history_cap(engine: Engine) -> None:
    await live_room(engine, "rj")
    n = HISTORY * 3 + 1
    for i in range(1, n + 1):
        await engine.danmaku.append("rj", body(i, 1_000 + i))
    hist = await engine.danmaku.history("rj", None, None, 100)
    assert len(hist.items) == HISTORY  # the history is capped ...
    entries = [orjson.loads(e) for e in await engine.danmaku.journal("rj", 0, 1000)]
    assert [e["seq"] for e in entries] == list(range(1, n + 1))  # ... the journal is not
    assert entries[0]["text"] == "第1条 <&>"
    assert await engine.danmaku.journal("rj", 5, 3) == [
        orjson.dumps({"t": "dm", "seq": s, **body(s, 1_000 + s)}) for s in (6, 7, 8)
    ]
    assert await engine.danmaku.retract("rj", n)
    assert not await engine.danmaku.retract("rj", 1)  # out of the history: not retracted
    last = orjson.loads((await engine.danmaku.journal("rj", n, 10))[0])
    assert (last["t"], last["seq"]) == ("retract", n) and isinstance(last["ts"], int)
    assert len(await engine.danmaku.journal("rj", 0, 1000)) == n + 1
    assert await engine.danmaku.journal("rj", -1, 5) == []
    assert await engine.danmaku.journal("nobody", 0, 5) == []


async def test_without_journal_nothing_is_kept(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "memory":
        plain = memory_engine(HISTORY)
    else:
        url = request.getfixturevalue("redis_url")
        plain = redis_engine(url, request.getfixturevalue("redis_prefix"), HISTORY)
    await plain.start()
    try:
        await live_room(plain, "rn")
        await plain.danmaku.append("rn", body(1, 1))
        assert await plain.danmaku.retract("rn", 1)
        assert await plain.danmaku.journal("rn", 0, 10) == []
    finally:
        await plain.close()


async def test_stream_started_at_is_set_until_the_room_ends(engine: Engine) -> None:
    await live_room(engine, "rs")
    room = await engine.rooms.set_stream_start("rs", 4_321)
    assert room.stream_started_at == 4_321
    assert (await engine.rooms.get("rs")).stream_started_at == 4_321  # type: ignore[union-attr]
    assert (await engine.rooms.set_stream_start("rs", None)).stream_started_at is None
    await engine.rooms.set_stream_start("rs", 7_000)
    await engine.rooms.transition("rs", "end", 9_000)
    from interact.floor.errors import Conflict, NotFound

    with pytest.raises(Conflict):
        await engine.rooms.set_stream_start("rs", 1)
    with pytest.raises(NotFound):
        await engine.rooms.set_stream_start("nope", 1)
    assert (await engine.rooms.get("rs")).stream_started_at == 7_000  # type: ignore[union-attr]


# --- the writer -------------------------------------------------------------------------


async def ended_room(engine: Engine, rid: str, comments: int) -> None:
    await live_room(engine, rid)
    await engine.rooms.set_stream_start(rid, 2_000)
    for i in range(1, comments + 1):
        await engine.danmaku.append(rid, body(i, 2_000 + 1_000 * i))
    assert await engine.danmaku.retract(rid, comments)
    await engine.modlog.append(rid, {"who": "u1", "action": "retract", "by": "ops", "ts": 5})
    await engine.ledger.append(rid, {"type": "rp_created", "packet": f"{rid}.rpx", "ts": 6})
    await engine.rooms.transition(rid, "end", 10_000_000)


def writer(engine: Engine, directory: Path, jobs: ArchiveJobs, page: int = 7) -> ArchiveWriter:
    return ArchiveWriter(
        store=LocalArchiveStore(directory), jobs=jobs, sources=EngineSources(engine), page=page
    )


async def sealed_events(engine: Engine, rid: str) -> list[dict[str, str]]:
    return [
        e for _, e in await engine.ledger.read(rid, None, 1000) if e["type"] == "archive_sealed"
    ]


async def test_the_archive_holds_every_comment_and_verifies(
    engine: Engine, jobs: ArchiveJobs, tmp_path: Path
) -> None:
    n = HISTORY * 4 + 3
    await ended_room(engine, "rw", n)
    w = writer(engine, tmp_path, jobs)
    await w.room_ended("rw")
    sealed = await w.archive("rw")
    assert sealed is not None and sealed.comments == n
    data = gzip.decompress((tmp_path / "rw.jsonl.gz").read_bytes())
    lines = split_lines(data)
    report = verify(lines, sealed.head)
    assert report.ok, report.lines()
    recs = [orjson.loads(line) for line in lines[:-1]]
    head = recs[0]
    assert (head["k"], head["room"], head["origin"], head["origin_ms"]) == (
        "header", "rw", "stream_started_at", 2_000)  # fmt: skip
    dms = [r for r in recs if r["k"] == "dm"]
    assert [r["seq"] for r in dms] == list(range(1, n + 1))
    assert [r["offset_ms"] for r in dms] == [1_000 * i for i in range(1, n + 1)]
    assert dms[4]["text"] == "第5条 <&>" and dms[4]["nick"] == "昵称5"
    assert [r["seq"] for r in recs if r["k"] == "retract"] == [n]
    assert [r["event"]["action"] for r in recs if r["k"] == "mod"] == ["retract"]
    ledger_types = [r["event"]["type"] for r in recs if r["k"] == "ledger"]
    assert "rp_created" in ledger_types and "archive_sealed" not in ledger_types
    assert recs[-1]["k"] == "stats"
    sealed_ev = await sealed_events(engine, "rw")
    assert len(sealed_ev) == 1 and sealed_ev[0]["head"] == sealed.head
    assert sealed_ev[0]["comments"] == str(n)
    assert await jobs.due(2**62, 10) == []  # off the waiting list


async def test_a_second_writer_produces_the_same_file(
    engine: Engine, jobs: ArchiveJobs, tmp_path: Path
) -> None:
    await ended_room(engine, "ri", 23)
    w = writer(engine, tmp_path, jobs, page=5)
    await w.room_ended("ri")
    first = await w.archive("ri")
    path = tmp_path / "ri.jsonl.gz"
    original = path.read_bytes()
    # As if the first writer died after committing, before its bookkeeping: the archive
    # is kept as it is and sealed once.
    await w.room_ended("ri")
    again = await w.archive("ri")
    assert again == first and path.read_bytes() == original
    assert len(await sealed_events(engine, "ri")) == 1
    # As if it died before committing: a new writer (another page size) writes it anew.
    path.unlink()
    other = writer(engine, tmp_path, jobs, page=1000)
    await other.room_ended("ri")
    third = await other.archive("ri")
    assert third == first and path.read_bytes() == original
    assert len(await sealed_events(engine, "ri")) == 1


async def test_only_the_lease_holder_writes(
    engine: Engine, jobs: ArchiveJobs, tmp_path: Path
) -> None:
    await ended_room(engine, "rl", 3)
    w = writer(engine, tmp_path, jobs)
    await w.room_ended("rl")
    assert await jobs.acquire("rl", "someone-else", 60_000)
    assert await w.archive("rl") is None
    assert await w.sweep() == 0
    assert not (tmp_path / "rl.jsonl.gz").exists()
    await jobs.release("rl", "someone-else")
    assert await w.sweep() == 1
    assert (tmp_path / "rl.jsonl.gz").exists()


class Stealing(EngineSources):
    """Sources whose second journal page arrives after another process took the lease."""

    def __init__(self, engine: Engine, jobs: ArchiveJobs, room: str) -> None:
        super().__init__(engine)
        self.jobs, self.calls = jobs, 0

    async def journal(self, room_id: str, start: int, count: int) -> list[bytes]:
        self.calls += 1
        if self.calls == 2:
            # The writer's lease ran out while it was stalled, and another took it.
            await self.jobs.release(room_id, await _holder(self.jobs, room_id))
            assert await self.jobs.acquire(room_id, "thief", 60_000)
        return await super().journal(room_id, start, count)


async def _holder(jobs: ArchiveJobs, room_id: str) -> str:
    if isinstance(jobs, MemoryArchiveJobs):
        return jobs._leases[room_id][0]
    client = jobs._client  # type: ignore[attr-defined]
    return (await client.get(jobs._keys.lease(room_id))).decode()  # type: ignore[attr-defined]


async def test_a_writer_that_lost_its_lease_stops_without_a_file(
    engine: Engine, jobs: ArchiveJobs, tmp_path: Path
) -> None:
    await ended_room(engine, "rt", 30)
    w = ArchiveWriter(
        store=LocalArchiveStore(tmp_path), jobs=jobs, sources=Stealing(engine, jobs, "rt"), page=5
    )
    await w.room_ended("rt")
    with pytest.raises(LeaseLost):
        await w.archive("rt")
    assert os.listdir(tmp_path) == []  # no archive, and the part was removed
    assert await sealed_events(engine, "rt") == []
    assert await jobs.due(2**62, 10) == ["rt"]  # still waiting


async def test_rooms_not_ended_or_gone_leave_the_list(
    engine: Engine, jobs: ArchiveJobs, tmp_path: Path
) -> None:
    await live_room(engine, "rlive")
    w = writer(engine, tmp_path, jobs)
    await w.room_ended("rlive")
    await w.room_ended("rgone")
    assert await w.sweep() == 0
    assert await jobs.due(2**62, 10) == []
    assert os.listdir(tmp_path) == []
