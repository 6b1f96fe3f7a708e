"""``/rooms/{id}/archive``, ``archive.xml`` and ``replay``: a room's comments after the
fact (docs/archive.md); ``PUT /rooms/{id}/stream-start`` sets when its recorded stream
began, from which their offsets count."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from aiohttp import web

from archive.store import READ_CHUNK
from interact.api.access import staff_room
from interact.api.common import body, caller, ctx, json_response, query_int
from interact.archive_setup import Archiving
from interact.floor.errors import BadRequest, Conflict, NotFound, RateLimited
from rooms.models import RoomStatus

routes = web.RouteTableDef()

# Replays per user and room (every process): a burst while seeking, then a steady rate.
REPLAY_PER_S = 2.0
REPLAY_BURST = 20
MAX_SEGMENT = 100_000  # 10,000 hours: anything larger is a malformed request
MAX_STREAM_MS = 2**53 - 1
CACHE_SEALED = "private, max-age=86400"
CACHE_LIVE = "private, no-cache"


def _archiving(request: web.Request) -> Archiving:
    archiving = ctx(request).archiving
    if archiving is None:
        raise NotFound(
            "archiving is not configured on this server (archive_s3_bucket or archive_dir)"
        )
    return archiving


def _not_sealed(status: RoomStatus) -> Conflict:
    if status is not RoomStatus.ENDED:
        return Conflict("the room has not ended: it is archived when it ends")
    return Conflict("the room's archive is not sealed yet: try again shortly")


@routes.get("/rooms/{room_id}/archive")
async def download(request: web.Request) -> web.StreamResponse:
    _, room = await staff_room(request)
    chunks = await _archiving(request).reader.store.read(room.id)
    if chunks is None:
        raise _not_sealed(room.status)
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/gzip",
            "Content-Disposition": f'attachment; filename="{room.id}.jsonl.gz"',
            "Cache-Control": CACHE_SEALED,
        }
    )
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/rooms/{room_id}/archive.xml")
async def download_xml(request: web.Request) -> web.StreamResponse:
    _, room = await staff_room(request)
    pieces = await _archiving(request).reader.xml(room.id)
    if pieces is None:
        raise _not_sealed(room.status)
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/xml; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{room.id}.xml"',
            "Cache-Control": CACHE_SEALED,
        }
    )
    await response.prepare(request)
    pending = b""
    async for piece in pieces:
        pending += piece
        if len(pending) >= READ_CHUNK:
            await response.write(pending)
            pending = b""
    await response.write(pending)
    await response.write_eof()
    return response


@routes.get("/rooms/{room_id}/replay")
async def replay(request: web.Request) -> web.Response:
    user = caller(request)
    if "segment" not in request.query:
        raise BadRequest("'segment' is required (0 for the first 6 minutes)")
    n = query_int(request, "segment", lo=0, hi=MAX_SEGMENT, default=0)
    c = ctx(request)
    archiving = _archiving(request)
    room = await c.service.get(request.match_info["room_id"])
    if room.status is RoomStatus.SCHEDULED:
        raise Conflict("the room has not started: nothing to replay yet")
    now = int(time.time() * 1000)
    decision = await c.engine.limiter.rate_limit(
        room.id, f"replay:{user.uid}", now, REPLAY_PER_S, REPLAY_BURST
    )
    if not decision.allowed:
        raise RateLimited(
            f"too many replay requests: at most {REPLAY_PER_S:g} a second per user and room "
            f"(bursts of {REPLAY_BURST})",
            retry_after_ms=decision.retry_after_ms,
        )
    async with archiving.replay_gate:
        reader = archiving.reader
        source, count, records = await reader.segment_source(room.to_dict(), now)
        if n >= count:
            raise NotFound(f"no segment {n}: the room has {count} (0 to {count - 1})")
        answer = await reader.segment(room.id, source, count, records, n)
    payload = orjson.dumps(answer)
    etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_SEALED if source == "archive" else CACHE_LIVE}
    if etag in _tags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=payload, content_type="application/json", headers=headers)


def _tags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


@routes.put("/rooms/{room_id}/stream-start")
async def put_stream_start(request: web.Request) -> web.Response:
    user, room = await staff_room(request)
    c = ctx(request)
    data = await body(request)
    if set(data) != {"stream_started_at"}:
        raise BadRequest('the body is {"stream_started_at": Unix ms or null}')
    ms = stream_started_at(data)
    decision = await c.engine.limiter.rate_limit(
        room.id, f"stream-start:{user.uid}", int(time.time() * 1000), 1.0, 10
    )
    if not decision.allowed:
        raise RateLimited(
            "too many changes: at most 1 a second per user and room (bursts of 10)",
            retry_after_ms=decision.retry_after_ms,
        )
    updated = await c.service.rooms.set_stream_start(room.id, ms)
    return json_response(updated.to_dict())


def stream_started_at(data: dict[str, Any]) -> int | None:
    """The body's ``stream_started_at``: Unix ms, or null to count from the room's start."""
    value = data.get("stream_started_at")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_STREAM_MS:
        raise BadRequest(f"'stream_started_at' must be Unix ms from 0 to {MAX_STREAM_MS}, or null")
    return value
