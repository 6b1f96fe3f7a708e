"""``/rooms``: lifecycle, stats, notices, server messages and retractions."""

from __future__ import annotations

import time

from aiohttp import web

from interact.api.access import STAFF, staff_room
from interact.api.common import (
    body,
    caller,
    ctx,
    field_str,
    json_response,
    query_int,
)
from interact.api.growth import parse_scheduled_at
from interact.floor.errors import BadRequest, Forbidden
from interact.floor.numbers import ascii_int
from interact.identity import UID_RULE, valid_uid
from interact.tokens import Role
from rooms.lifecycle import TRANSITIONS
from rooms.models import RoomStatus
from rooms.service import Author

routes = web.RouteTableDef()


@routes.post("/rooms")
async def create_room(request: web.Request) -> web.Response:
    user = caller(request, *STAFF)
    data = await body(request)
    title = field_str(data, "title", max_len=200) or ""
    anchor = field_str(data, "anchor", required=False, max_len=64)
    if user.role is Role.ANCHOR:
        if anchor not in (None, user.uid):
            raise Forbidden("an anchor creates rooms for themself")
        anchor = user.uid
    elif anchor is not None and not valid_uid(anchor):
        raise BadRequest(f"'anchor' must be a user id ({UID_RULE})")
    # Operators are not capped: they set up rooms for anchors, and clean up after them.
    capped = user.role is not Role.OPERATOR
    # The announced start (docs/growth.md): subscribers are reminded before it.
    scheduled_at = parse_scheduled_at(data, int(time.time() * 1000))
    room = await ctx(request).service.create(
        title, anchor, capped=capped, scheduled_at=scheduled_at
    )
    return json_response(room.to_dict(), status=201)


# ``?anchor=`` filters the newest rooms this many deep: the stores index rooms by time,
# not by anchor, so the filter reads them; a bound keeps one request's cost fixed.
ANCHOR_SCAN = 10_000


@routes.get("/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    user = caller(request)
    raw_status = request.query.get("status")
    try:
        status = RoomStatus(raw_status) if raw_status else None
    except ValueError:
        raise BadRequest("status must be scheduled, live, paused or ended") from None
    limit = query_int(request, "limit", lo=1, hi=200, default=50)
    offset = query_int(request, "offset", lo=0, hi=100_000, default=0)
    anchor = request.query.get("anchor")
    if anchor is None:
        rooms = await ctx(request).service.list(status, limit, offset)
    else:
        if anchor == "me":
            anchor = user.uid
        elif not valid_uid(anchor):
            raise BadRequest(f"anchor must be 'me' or a user id ({UID_RULE})")
        newest = await ctx(request).service.list(status, ANCHOR_SCAN, 0)
        rooms = [r for r in newest if r.anchor == anchor][offset : offset + limit]
    return json_response({"rooms": [r.to_dict() for r in rooms]})


@routes.get("/rooms/{room_id}")
async def get_room(request: web.Request) -> web.Response:
    caller(request)
    room = await ctx(request).service.get(request.match_info["room_id"])
    return json_response(room.to_dict())


async def _act(request: web.Request, action: str) -> web.Response:
    _, room = await staff_room(request)
    room = await ctx(request).service.act(room.id, action)
    if room.status is RoomStatus.ENDED:
        # A sale does not outlive its room: nobody is left to watch it.
        await ctx(request).orders.close_room(room.id)
        archiving = ctx(request).archiving
        if archiving is not None:
            # On the waiting list before writing starts: should this process die while
            # writing, any process's sweep takes the archive over (docs/archive.md).
            await archiving.writer.room_ended(room.id)
            ctx(request).spawn(archiving.writer.archive(room.id))
    return json_response(room.to_dict())


for _action in TRANSITIONS:

    async def _handler(request: web.Request, _a: str = _action) -> web.Response:
        return await _act(request, _a)

    routes.post(f"/rooms/{{room_id}}/{_action}")(_handler)


@routes.get("/rooms/{room_id}/stats")
async def room_stats(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    c = ctx(request)
    stats = await c.service.room_stats(room.id)
    # uv and participants are the exact audience sets of /analytics (watch, comment), not
    # the HyperLogLog estimates (about 1 % off on Redis) the stats store keeps.
    minute = int(time.time() * 1000) // 60_000
    exact = (await c.engine.audience.read(room.id, minute, minute)).uv
    uv, participants = int(exact.get("watch", 0)), int(exact.get("comment", 0))
    stats.update(
        uv=uv,
        participants=participants,
        participation=round(participants / uv, 4) if uv else 0.0,
    )
    return json_response(stats)


@routes.post("/rooms/{room_id}/notices")
async def post_notice(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    data = await body(request)
    text = field_str(data, "text", max_len=1000) or ""
    level = field_str(data, "level", required=False, max_len=16) or "info"
    await ctx(request).service.notice(room.id, text, level)
    return json_response({"room": room.id, "text": text.strip(), "level": level}, status=202)


@routes.post("/rooms/{room_id}/messages")
async def post_message(request: web.Request) -> web.Response:
    user = caller(request, Role.OPERATOR)
    data = await body(request)
    text = field_str(data, "text", max_len=1000) or ""
    author = Author(user.uid, user.nick, user.role.value)
    appended = await ctx(request).service.server_message(
        request.match_info["room_id"], author, text
    )
    return json_response({"seq": appended.seq, "epoch": appended.epoch}, status=201)


@routes.delete("/rooms/{room_id}/messages/{seq}")
async def retract_message(request: web.Request) -> web.Response:
    user, room = await staff_room(request)
    try:
        seq = ascii_int(request.match_info["seq"], lo=1)
    except ValueError:
        raise BadRequest("seq must be a positive integer") from None
    c = ctx(request)
    await c.service.retract(room.id, seq)
    await c.moderation.record(room.id, c.moderation.clock(), action="retract", by=user.uid,
                              category="operator", seq=seq)  # fmt: skip
    return web.Response(status=204)
