"""Builds a deployment's archive writer and reader from its config and engine."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archive.jobs import ArchiveJobs
from archive.reader import ArchiveReader
from archive.store import ArchiveStore
from archive.store_local import LocalArchiveStore
from archive.writer import ArchiveWriter
from commerce.lottery_store import LotteryStore
from commerce.models import LotteryStatus
from commerce.orders import order_body
from commerce.service import lottery_body, packet_body
from interact.config import Config
from interact.engine import Engine


async def _nothing() -> None:
    return None


@dataclass(slots=True)
class Archiving:
    writer: ArchiveWriter
    reader: ArchiveReader
    close: Callable[[], Awaitable[None]] = _nothing
    # Replays read a whole journal or archive: at most this many at once per process.
    replay_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))


class EngineSources:
    """What the writer reads (``archive.writer.Sources``), from the engine's stores."""

    def __init__(self, engine: Engine) -> None:
        self._e = engine

    async def room(self, room_id: str) -> dict[str, Any] | None:
        room = await self._e.rooms.get(room_id)
        return None if room is None else room.to_dict()

    async def journal(self, room_id: str, start: int, count: int) -> list[bytes]:
        return await self._e.danmaku.journal(room_id, start, count)

    async def moderation(
        self, room_id: str, after: str | None, count: int
    ) -> list[tuple[str, dict[str, str]]]:
        return await self._e.modlog.read(room_id, after, count)

    async def ledger(
        self, room_id: str, after: str | None, count: int
    ) -> list[tuple[str, dict[str, str]]]:
        return await self._e.ledger.read(room_id, after, count)

    async def append_ledger(self, room_id: str, event: Mapping[str, object]) -> str:
        return await self._e.ledger.append(room_id, event)

    async def orders(self, room_id: str, after: str | None, count: int) -> list[dict[str, Any]]:
        return [order_body(o) for o in await self._e.sales.orders_in_room(room_id, count, after)]

    async def packet(self, packet_id: str) -> dict[str, Any] | None:
        view = await self._e.packets.get(packet_id)
        return None if view is None else packet_body(view)

    async def lottery(self, lottery_id: str) -> dict[str, Any] | None:
        view = await self._e.lotteries.get(lottery_id)
        if view is None:
            return None
        out = lottery_body(view)
        # With the entrant list the archive holds every input of `interact verify-lottery`.
        out["entrants"] = await _entrants(self._e.lotteries, lottery_id, view.status)
        return out

    async def stats(self, room_id: str) -> dict[str, Any]:
        return dict(await self._e.stats.get(room_id))


async def _entrants(store: LotteryStore, lottery_id: str, status: LotteryStatus) -> list[str]:
    if status is not LotteryStatus.DRAWN:
        return []
    return sorted(await store.entrants(lottery_id))


def build_store(config: Config) -> ArchiveStore:
    """S3-compatible storage when a bucket is set (shared by every machine), else the
    local directory."""
    if config.archive_s3_bucket:
        from archive.store_s3 import S3ArchiveStore

        return S3ArchiveStore.connect(
            config.archive_s3_bucket,
            endpoint=config.archive_s3_endpoint,
            region=config.archive_s3_region,
            access_key=config.archive_s3_access_key,
            secret_key=config.archive_s3_secret_key,
            prefix=config.archive_s3_prefix,
            part_size=config.archive_s3_part_mb * 1024 * 1024,
        )
    return LocalArchiveStore(config.archive_dir)


def build_archiving(config: Config, engine: Engine) -> Archiving | None:
    """The writer and reader, or None when neither ``archive_s3_bucket`` nor
    ``archive_dir`` is set."""
    if not config.archiving:
        return None
    jobs: ArchiveJobs
    close = _nothing
    if config.redis_url:
        from archive.jobs_redis import RedisArchiveJobs
        from archive.keys import ArchiveKeys
        from interact.engine import connect_redis

        # A client of its own: archiving never holds a connection of the comment path.
        client, pipe = connect_redis(config.redis_url)
        jobs = RedisArchiveJobs(client, ArchiveKeys(config.redis_prefix))

        async def close() -> None:
            if pipe is not None:
                await pipe.close()
            await client.aclose()
    else:
        from archive.jobs_memory import MemoryArchiveJobs

        jobs = MemoryArchiveJobs()
    store = build_store(config)
    writer = ArchiveWriter(
        store=store,
        jobs=jobs,
        sources=EngineSources(engine),
        lease_ms=int(config.archive_lease * 1000),
        page=config.archive_page,
    )
    # Uid hashes in the XML and replay are keyed by the deployment's secret.
    key = hashlib.sha256(b"interact-archive-uid:" + config.secret.encode()).digest()
    reader = ArchiveReader(store, engine.danmaku.journal, key)
    return Archiving(writer=writer, reader=reader, close=close)
