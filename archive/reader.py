"""Reading a room's comments back: the sealed archive, or the journal before it is sealed.

Replay answers one 6-minute segment at a time (``render.segment_of``): from the archive
once it is sealed, from the room's journal while the room is live or waiting to be
archived. Either way the comments are the ``dm`` records the archive has (or will have),
less the retracted ones, each with its offset from the room's origin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import orjson

from archive.reading import alines_of
from archive.records import SEGMENT_MS, journal_record, origin_of
from archive.render import replay_item, segment_count, segment_of, visible, xml_document
from archive.store import ArchiveStore

# Comments answered per segment at most: a segment of a room flooded with comments is cut
# (``truncated``) rather than answered with an unbounded body.
MAX_SEGMENT_COMMENTS = 20_000
JOURNAL_PAGE = 1000


class Journal(Protocol):
    async def __call__(self, room_id: str, start: int, count: int) -> list[bytes]: ...


class ArchiveReader:
    def __init__(self, store: ArchiveStore, journal: Journal, key: bytes) -> None:
        self.store = store
        self.journal = journal
        self.key = key  # keys the uid hashes

    async def records(self, room_id: str) -> AsyncIterator[dict[str, Any]] | None:
        """The sealed archive's records (the seal line left out), or None before it."""
        chunks = await self.store.read(room_id)
        if chunks is None:
            return None
        return _records(alines_of(chunks))

    async def _journal_records(self, room: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        _, origin = origin_of(room)
        start = 0
        while True:
            page = await self.journal(str(room["id"]), start, JOURNAL_PAGE)
            for raw in page:
                rec = journal_record(orjson.loads(raw), origin)
                if rec is not None:
                    yield rec
            start += len(page)
            if len(page) < JOURNAL_PAGE:
                return

    async def segment_source(
        self, room: Mapping[str, Any], now_ms: int
    ) -> tuple[str, int, AsyncIterator[dict[str, Any]]]:
        """Where a replay reads from ("archive" or "live"), the room's segment count, and
        the records."""
        archived = await self.records(str(room["id"]))
        if archived is not None:
            first = await anext(archived)
            end = first.get("ended_at") or now_ms
            count = segment_count(int(first["origin_ms"]), int(end))
            return "archive", count, archived
        _, origin = origin_of(room)
        end = room.get("ended_at") or now_ms
        return "live", segment_count(origin, int(end)), self._journal_records(room)

    async def segment(
        self, room_id: str, source: str, count: int, records: AsyncIterator[dict[str, Any]], n: int
    ) -> dict[str, Any]:
        """Segment ``n`` (0-based, below ``count``) of the room's comments."""
        picked: list[dict[str, Any]] = []
        retracted: set[int] = set()
        truncated = False
        async for rec in records:
            kind = rec.get("k")
            if kind == "retract" and isinstance(rec.get("seq"), int):
                retracted.add(rec["seq"])
            elif kind == "dm":
                offset = rec.get("offset_ms")
                if segment_of(offset if isinstance(offset, int) else 0, count) == n:
                    if len(picked) < MAX_SEGMENT_COMMENTS:
                        picked.append(rec)
                    else:
                        truncated = True
        return {
            "room": room_id,
            "segment": n,
            "segments": count,
            "segment_ms": SEGMENT_MS,
            "from_ms": n * SEGMENT_MS,
            "to_ms": (n + 1) * SEGMENT_MS,
            "source": source,
            "truncated": truncated,
            "comments": [replay_item(self.key, room_id, r) for r in visible(picked, retracted)],
        }

    async def xml(self, room_id: str) -> AsyncIterator[bytes] | None:
        """The sealed archive as Bilibili danmaku XML (read twice: the retractions come
        after the comments they retract); None before it is sealed."""
        first = await self.records(room_id)
        if first is None:
            return None
        retracted: set[int] = set()
        header: dict[str, Any] | None = None
        async for rec in first:
            if header is None:
                header = rec
            if rec.get("k") == "retract" and isinstance(rec.get("seq"), int):
                retracted.add(rec["seq"])
        assert header is not None
        return self._xml(room_id, header, retracted)

    async def _xml(
        self, room_id: str, header: dict[str, Any], retracted: set[int]
    ) -> AsyncIterator[bytes]:
        second = await self.records(room_id)
        if second is None:
            return
        pieces = xml_document(self.key, header, [])
        yield next(pieces)  # the prologue
        batch: list[dict[str, Any]] = []
        async for rec in second:
            batch.append(rec)
            if len(batch) >= 500:
                yield _d_batch(self.key, header, batch, retracted)
                batch.clear()
        if batch:
            yield _d_batch(self.key, header, batch, retracted)
        yield b"</i>\n"


def _d_batch(
    key: bytes, header: dict[str, Any], batch: list[dict[str, Any]], retracted: set[int]
) -> bytes:
    pieces = list(xml_document(key, header, visible(batch, retracted)))
    return b"".join(pieces[1:-1])


async def _records(lines: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    async for line in lines:
        obj = orjson.loads(line)
        if isinstance(obj, dict) and obj.get("k") != "seal":
            yield obj
