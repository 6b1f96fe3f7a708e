"""The archive writer: one process seals a room's archive after it ends.

``room_ended`` puts the room on the waiting list (``ArchiveJobs``); ``archive`` (right away
in the process that ended the room, and from ``sweep`` in every process) takes the room's
lease, streams the records to an upload in pages, renewing the lease after each, commits
the upload (never half-visible), writes ``archive_sealed`` with the head to the ledger and
takes the room off the list. A writer that dies leaves an uncommitted part and its lease
runs out; the next sweep anywhere starts the archive again from the beginning. Every
record comes from stored data (no clock, no randomness) and the gzip stream has no time
stamp, so a second writer produces the same bytes as the first would have. An archive
already committed is not rewritten: the writer only finishes the bookkeeping after it.
"""

from __future__ import annotations

import logging
import secrets
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from archive.jobs import ArchiveJobs
from archive.reading import ArchiveFormatError, alines_of
from archive.records import (
    Chain,
    Verifier,
    event_record,
    header,
    journal_record,
    moderation_record,
    origin_of,
)
from archive.store import ArchiveStore

log = logging.getLogger("interact.archive")

SEALED = "archive_sealed"
# The gzip level is part of what makes two writers' bytes equal: never vary it per run.
GZIP_LEVEL = 6


def wall_ms() -> int:
    return int(time.time() * 1000)


class LeaseLost(RuntimeError):
    """Another process took the room's archive over (this one was too slow)."""


class Sources(Protocol):
    """What the writer reads, handed in by the application (``interact.archive_setup``)."""

    async def room(self, room_id: str) -> dict[str, Any] | None: ...

    async def journal(self, room_id: str, start: int, count: int) -> list[bytes]: ...

    async def moderation(
        self, room_id: str, after: str | None, count: int
    ) -> list[tuple[str, dict[str, str]]]: ...

    async def ledger(
        self, room_id: str, after: str | None, count: int
    ) -> list[tuple[str, dict[str, str]]]: ...

    async def append_ledger(self, room_id: str, event: Mapping[str, object]) -> str: ...

    async def orders(self, room_id: str, after: str | None, count: int) -> list[dict[str, Any]]: ...

    async def packet(self, packet_id: str) -> dict[str, Any] | None: ...

    async def lottery(self, lottery_id: str) -> dict[str, Any] | None: ...

    async def stats(self, room_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Sealed:
    room_id: str
    head: str
    records: int
    comments: int


class ArchiveWriter:
    def __init__(
        self,
        *,
        store: ArchiveStore,
        jobs: ArchiveJobs,
        sources: Sources,
        lease_ms: int = 60_000,
        page: int = 1000,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        if page < 1 or lease_ms < 1:
            raise ValueError("archive: page and lease_ms must be positive")
        self.store = store
        self.jobs = jobs
        self.sources = sources
        self.lease_ms = lease_ms
        self.page = page
        self.clock = clock

    async def room_ended(self, room_id: str) -> None:
        """Put an ended room on the waiting list (idempotent)."""
        await self.jobs.schedule(room_id, self.clock())

    async def sweep(self, limit: int = 10) -> int:
        """Archive the waiting rooms whose time has come; how many this call sealed."""
        sealed = 0
        for room_id in await self.jobs.due(self.clock(), limit):
            try:
                if await self.archive(room_id) is not None:
                    sealed += 1
            except LeaseLost:
                log.warning("archive of %s taken over by another process", room_id)
            except Exception:  # one room's failure must not stop the others
                log.exception("archive of %s failed; retried next sweep", room_id)
        return sealed

    async def archive(self, room_id: str) -> Sealed | None:
        """Seal the room's archive; None when another process holds its lease, or the
        room is gone or not ended (then it leaves the waiting list)."""
        token = secrets.token_hex(8)
        if not await self.jobs.acquire(room_id, token, self.lease_ms):
            return None
        try:
            room = await self.sources.room(room_id)
            if room is None or room.get("status") != "ended":
                await self.jobs.done(room_id)
                return None
            if await self.store.exists(room_id):
                sealed = await self._read_sealed(room_id)
                if sealed is None:
                    await self.jobs.done(room_id)
                    return None
            else:
                sealed = await self._write(room, token)
            await self._renew(room_id, token)
            await self._record(sealed)
            await self.jobs.done(room_id)
            return sealed
        finally:
            await self.jobs.release(room_id, token)

    async def _renew(self, room_id: str, token: str) -> None:
        if not await self.jobs.renew(room_id, token, self.lease_ms):
            raise LeaseLost(room_id)

    async def _write(self, room: dict[str, Any], token: str) -> Sealed:
        room_id = str(room["id"])
        _, origin = origin_of(room)
        upload = await self.store.begin(room_id)
        # wbits 31: a gzip member whose header carries no name and no time stamp.
        gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        chain = Chain()
        pending: list[bytes] = []

        async def flush() -> None:
            data = gz.compress(b"".join(pending))
            pending.clear()
            if data:
                await upload.write(data)
            await self._renew(room_id, token)

        try:
            pending.append(chain.add(header(room)))
            start = 0
            while True:
                items = await self.sources.journal(room_id, start, self.page)
                for raw in items:
                    rec = journal_record(orjson.loads(raw), origin)
                    if rec is not None:
                        pending.append(chain.add(rec))
                start += len(items)
                await flush()
                if len(items) < self.page:
                    break
            after: str | None = None
            while page := await self.sources.moderation(room_id, after, self.page):
                pending.extend(chain.add(moderation_record(i, ev)) for i, ev in page)
                after = page[-1][0]
                await flush()
            packets: list[str] = []
            lotteries: list[str] = []
            after = None
            while page := await self.sources.ledger(room_id, after, self.page):
                for entry_id, event in page:
                    kind = event.get("type")
                    if kind == SEALED:
                        continue  # written after the archive: not part of it
                    if kind == "rp_created" and event.get("packet"):
                        packets.append(event["packet"])
                    if kind == "lot_created" and event.get("lottery"):
                        lotteries.append(event["lottery"])
                    pending.append(chain.add(event_record("ledger", entry_id, event)))
                after = page[-1][0]
                await flush()
            after = None
            while orders := await self.sources.orders(room_id, after, self.page):
                pending.extend(chain.add({"k": "order", "order": o}) for o in orders)
                after = str(orders[-1]["id"])
                await flush()
            for packet_id in dict.fromkeys(packets):
                packet = await self.sources.packet(packet_id)
                if packet is not None:
                    pending.append(chain.add({"k": "packet", "packet": packet}))
            for lottery_id in dict.fromkeys(lotteries):
                lottery = await self.sources.lottery(lottery_id)
                if lottery is not None:
                    pending.append(chain.add({"k": "lottery", "lottery": lottery}))
            stats = await self.sources.stats(room_id)
            pending.append(chain.add({"k": "stats", "stats": stats}))
            pending.append(chain.seal())
            await flush()
            tail = gz.flush()
            await upload.write(tail)
            await self._renew(room_id, token)
            await upload.commit()
        except BaseException:
            await upload.abort()
            raise
        return Sealed(room_id, chain.head, chain.records, chain.counts.get("dm", 0))

    async def _read_sealed(self, room_id: str) -> Sealed | None:
        """The head of an archive committed earlier (its writer died before finishing)."""
        chunks = await self.store.read(room_id)
        verifier = Verifier()
        if chunks is not None:
            try:
                async for line in alines_of(chunks):
                    verifier.feed(line)
            except ArchiveFormatError as exc:
                verifier.cut(str(exc))
        report = verifier.finish()
        if not report.ok or report.head is None:
            # Never overwritten: a broken archive may be the evidence someone looks for.
            log.error("archive of %s does not verify: %s", room_id, "; ".join(report.lines()))
            return None
        return Sealed(room_id, report.head, report.records, report.counts.get("dm", 0))

    async def _record(self, sealed: Sealed) -> None:
        """``archive_sealed`` in the ledger, once per head."""
        after: str | None = None
        while page := await self.sources.ledger(sealed.room_id, after, self.page):
            for _, event in page:
                if event.get("type") == SEALED and event.get("head") == sealed.head:
                    return
            after = page[-1][0]
        await self.sources.append_ledger(
            sealed.room_id,
            {
                "type": SEALED,
                "head": sealed.head,
                "records": sealed.records,
                "comments": sealed.comments,
                "ts": self.clock(),
            },
        )
