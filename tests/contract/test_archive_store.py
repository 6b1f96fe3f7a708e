"""ArchiveStore contract (``archive.store``) on both stores: a local directory, and
S3-compatible storage served by a real moto server process over HTTP. The writer is run
over each too: the same archive, byte for byte."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.jobs_memory import MemoryArchiveJobs
from archive.reading import alines_of
from archive.records import verify
from archive.store import ArchiveStore
from archive.store_local import LocalArchiveStore
from archive.store_s3 import MIN_PART, S3ArchiveStore
from archive.writer import ArchiveWriter, LeaseLost
from interact.archive_setup import EngineSources
from interact.engine import memory_engine
from rooms.models import Room
from tests.s3_server import ACCESS_KEY, SECRET_KEY, s3_server

pytestmark = pytest.mark.parametrize("store_kind", ["local", "s3"])


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with s3_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> ArchiveStore:
    if store_kind == "local":
        return LocalArchiveStore(tmp_path / "archive")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"archive-{secrets.token_hex(6)}"
    s3 = S3ArchiveStore.connect(
        bucket, endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
        prefix="rooms/", part_size=MIN_PART,
    )  # fmt: skip
    s3.client.create_bucket(Bucket=bucket)
    return s3


async def read_all(store: ArchiveStore, room_id: str) -> bytes | None:
    chunks = await store.read(room_id)
    if chunks is None:
        return None
    return b"".join([c async for c in chunks])


def leftovers(store: ArchiveStore) -> list[str]:
    """Unfinished uploads (S3) or part files (local) still kept."""
    if isinstance(store, S3ArchiveStore):
        listed = store.client.list_multipart_uploads(Bucket=store.bucket)
        return [u["Key"] for u in listed.get("Uploads", [])]
    assert isinstance(store, LocalArchiveStore)
    return sorted(p.name for p in store.directory.glob(".*.part"))


def visible(store: ArchiveStore) -> list[str]:
    if isinstance(store, S3ArchiveStore):
        listed = store.client.list_objects_v2(Bucket=store.bucket)
        return [o["Key"] for o in listed.get("Contents", [])]
    assert isinstance(store, LocalArchiveStore)
    return sorted(p.name for p in store.directory.iterdir() if not p.name.startswith("."))


async def test_nothing_there(store: ArchiveStore) -> None:
    assert not await store.exists("room1")
    assert await store.read("room1") is None


async def test_a_small_archive(store: ArchiveStore) -> None:
    upload = await store.begin("room1")
    await upload.write(b"first ")
    await upload.write(b"second")
    assert not await store.exists("room1")
    await upload.commit()
    assert await store.exists("room1")
    assert await read_all(store, "room1") == b"first second"
    assert not await store.exists("room2")
    with pytest.raises(ValueError):
        await upload.write(b"more")


async def test_a_large_archive_is_invisible_until_committed_then_whole(
    store: ArchiveStore,
) -> None:
    data = os.urandom(2 * MIN_PART + 12345)  # three parts on S3
    upload = await store.begin("big")
    for i in range(0, len(data), 1 << 20):
        await upload.write(data[i : i + (1 << 20)])
        assert not await store.exists("big")
        assert await store.read("big") is None
    assert visible(store) == []
    await upload.commit()
    assert await read_all(store, "big") == data
    assert leftovers(store) == []


async def test_abort_leaves_nothing(store: ArchiveStore) -> None:
    upload = await store.begin("room1")
    await upload.write(os.urandom(MIN_PART + 1))
    await upload.abort()
    assert not await store.exists("room1")
    assert visible(store) == [] and leftovers(store) == []


async def test_a_commit_replaces_and_clears_dead_writers(store: ArchiveStore) -> None:
    old = await store.begin("room1")
    await old.write(b"old")
    await old.commit()
    dead = await store.begin("room1")
    await dead.write(os.urandom(MIN_PART + 1))  # a part sent, then its writer dies
    assert len(leftovers(store)) == 1
    assert await read_all(store, "room1") == b"old"
    new = await store.begin("room1")
    await new.write(b"new")
    await new.commit()
    assert await read_all(store, "room1") == b"new"
    assert leftovers(store) == []
    await dead.abort()  # what the dead process held (an open file) goes with it


async def test_a_reader_keeps_the_object_it_opened(store: ArchiveStore) -> None:
    first = await store.begin("room1")
    await first.write(b"A" * 200_000)
    await first.commit()
    chunks = await store.read("room1")
    assert chunks is not None
    second = await store.begin("room1")
    await second.write(b"B" * 200_000)
    await second.commit()
    assert b"".join([c async for c in chunks]) == b"A" * 200_000


@pytest.mark.parametrize("room_id", ["", "../x", "a/b", "x" * 65, "ä"])
async def test_bad_room_ids(store: ArchiveStore, room_id: str) -> None:
    with pytest.raises(ValueError):
        await store.begin(room_id)
    with pytest.raises(ValueError):
        await store.exists(room_id)


@pytest.fixture
async def ended_room() -> AsyncIterator[Any]:
    engine = memory_engine(10, journal=True)
    await engine.start()
    await engine.rooms.create(Room(id="sealed", title="t", anchor="a", created_at=1_000))
    await engine.rooms.transition("sealed", "start", 2_000)
    for i in range(1, 40):
        body = {"uid": f"u{i % 3}", "nick": "n", "role": "viewer", "text": f"第{i}条",
                "color": 0xFFFFFF, "mode": "scroll", "ts": 2_000 + i}  # fmt: skip
        await engine.danmaku.append("sealed", body)
    await engine.danmaku.retract("sealed", 39)
    await engine.rooms.transition("sealed", "end", 9_000)
    yield engine
    await engine.close()


async def test_the_writer_seals_the_same_archive_on_every_store(
    store: ArchiveStore, ended_room: Any, tmp_path: Path
) -> None:
    def writer(on: ArchiveStore) -> ArchiveWriter:
        return ArchiveWriter(store=on, jobs=MemoryArchiveJobs(), sources=EngineSources(ended_room),
                             page=7)  # fmt: skip

    sealed = await writer(store).archive("sealed")
    assert sealed is not None and sealed.comments == 39
    chunks = await store.read("sealed")
    assert chunks is not None
    lines = [line async for line in alines_of(chunks)]
    report = verify(lines, sealed.head)
    assert report.ok and report.counts["dm"] == 39 and report.counts["retract"] == 1
    reference = LocalArchiveStore(tmp_path / "reference")
    await writer(reference).archive("sealed")
    assert await read_all(store, "sealed") == await read_all(reference, "sealed")


async def test_a_writer_that_lost_its_lease_leaves_nothing_visible(
    store: ArchiveStore, ended_room: Any
) -> None:
    from tests.contract.test_archive import Stealing

    jobs = MemoryArchiveJobs()
    # Pages of one comment and one-byte parts would be slow on S3: a small part size
    # still sends parts before the lease is lost.
    if isinstance(store, S3ArchiveStore):
        store.part_size = 64
    w = ArchiveWriter(store=store, jobs=jobs, sources=Stealing(ended_room, jobs, "sealed"),
                      page=5)  # fmt: skip
    await w.room_ended("sealed")
    with pytest.raises(LeaseLost):
        await w.archive("sealed")
    assert not await store.exists("sealed")
    assert visible(store) == [] and leftovers(store) == []
