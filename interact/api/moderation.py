"""Moderation over REST: mutes, bans, slow mode, the word list, the review queue, the log."""

from __future__ import annotations

import orjson
from aiohttp import web

from interact.api.access import staff_room
from interact.api.auth import UID_RE
from interact.api.common import (
    MAX_ANY_BODY_BYTES,
    body,
    caller,
    ctx,
    field_int,
    field_str,
    json_response,
    query_int,
)
from interact.floor.errors import BadRequest, Conflict, NotFound
from interact.moderation_setup import parse_word_list, word_list_json
from interact.tokens import Role

routes = web.RouteTableDef()


def _uid(value: str | None) -> str:
    if not value or not UID_RE.match(value):
        raise BadRequest("'uid' must be 1-64 letters, digits or _.:@-")
    return value


@routes.post("/rooms/{room_id}/mutes")
async def mute(request: web.Request) -> web.Response:
    user, room = await staff_room(request)
    data = await body(request)
    uid = _uid(field_str(data, "uid", max_len=64))
    seconds = field_int(data, "seconds", lo=1, hi=30 * 24 * 3600)
    reason = field_str(data, "reason", required=False, max_len=200) or ""
    done = await ctx(request).moderation.mute(room.id, uid, seconds, user.uid, reason)
    return json_response({"uid": done.uid, "until": done.until_ms}, status=201)


@routes.delete("/rooms/{room_id}/mutes/{uid}")
async def unmute(request: web.Request) -> web.Response:
    user, room = await staff_room(request)
    if not await ctx(request).moderation.unmute(room.id, request.match_info["uid"], user.uid):
        raise NotFound("that user is not muted here")
    return web.Response(status=204)


@routes.get("/rooms/{room_id}/mutes")
async def list_mutes(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    mod = ctx(request).moderation
    mutes = await mod.mutes.list_mutes(room.id, mod.clock())
    return json_response(
        {"mutes": [{"uid": m.uid, "until": m.until_ms, "by": m.by, "reason": m.reason}
                   for m in mutes]}
    )  # fmt: skip


@routes.post("/rooms/{room_id}/slow-mode")
async def slow_mode(request: web.Request) -> web.Response:
    user, room = await staff_room(request)
    data = await body(request)
    seconds = field_int(data, "seconds", lo=0, hi=3600)
    mode = await ctx(request).moderation.set_slow_mode(room.id, seconds, user.uid)
    return json_response({**room.to_dict(), "slow_mode": mode.seconds})


@routes.get("/rooms/{room_id}/slow-mode")
async def read_slow_mode(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    mode = await ctx(request).moderation.slow_mode(room.id)
    return json_response(
        {"room": room.id, "seconds": mode.seconds, "until": mode.until_ms, "by": mode.by or None}
    )


@routes.post("/moderation/bans")
async def ban(request: web.Request) -> web.Response:
    user = caller(request, Role.OPERATOR)
    data = await body(request)
    uid = _uid(field_str(data, "uid", max_len=64))
    seconds = data.get("seconds")
    if seconds is not None:
        seconds = field_int(data, "seconds", lo=1, hi=10 * 365 * 24 * 3600)
    reason = field_str(data, "reason", required=False, max_len=200) or ""
    done = await ctx(request).moderation.ban(uid, seconds, user.uid, reason)
    return json_response({"uid": done.uid, "until": done.until_ms}, status=201)


@routes.delete("/moderation/bans/{uid}")
async def unban(request: web.Request) -> web.Response:
    caller(request, Role.OPERATOR)
    if not await ctx(request).moderation.unban(request.match_info["uid"]):
        raise NotFound("that user is not banned")
    return web.Response(status=204)


@routes.get("/moderation/bans")
async def list_bans(request: web.Request) -> web.Response:
    caller(request, Role.OPERATOR)
    mod = ctx(request).moderation
    bans = await mod.mutes.list_bans(mod.clock())
    return json_response(
        {"bans": [{"uid": b.uid, "until": b.until_ms, "by": b.by, "reason": b.reason}
                  for b in bans]}
    )  # fmt: skip


@routes.put("/moderation/words")
async def put_words(request: web.Request) -> web.Response:
    caller(request, Role.OPERATOR)
    words = parse_word_list(await body(request, MAX_ANY_BODY_BYTES))
    version = await ctx(request).words_sync.publish(words)
    return json_response({"words": len(words.rules), "allow": len(words.allow),
                          "version": version})  # fmt: skip


@routes.get("/moderation/words")
async def get_words(request: web.Request) -> web.Response:
    caller(request, Role.OPERATOR)
    c = ctx(request)
    return json_response({**word_list_json(c.moderation.words), "version": c.words_sync.version})


@routes.get("/rooms/{room_id}/moderation/events")
async def events(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    count = query_int(request, "count", lo=1, hi=1000, default=100)
    try:
        found = await ctx(request).moderation.log.read(room.id, request.query.get("after"), count)
    except ValueError:
        raise BadRequest("'after' must be an id from a previous page") from None
    return json_response(
        {"events": [{"id": event_id, **event} for event_id, event in found],
         "next": found[-1][0] if found else request.query.get("after")}
    )  # fmt: skip


@routes.get("/rooms/{room_id}/moderation/review")
async def review_list(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    try:
        items = await ctx(request).moderation.review.list(
            room.id, limit, after=request.query.get("after")
        )
    except ValueError:
        raise BadRequest("'after' must be an item id from a previous page") from None
    return json_response({"items": [{"id": item_id, **item} for item_id, item in items]})


async def _take(request: web.Request, action: str) -> tuple[str, dict[str, object]]:
    user, room = await staff_room(request)
    item = await ctx(request).moderation.take_review(
        room.id, request.match_info["item_id"], user.uid, action
    )
    if item is None:
        raise Conflict("that comment was already released or dropped, or never held")
    return room.id, item


@routes.post("/rooms/{room_id}/moderation/review/{item_id}/release")
async def review_release(request: web.Request) -> web.Response:
    room_id, item = await _take(request, "release")
    comment = item.get("comment")
    if not isinstance(comment, dict) or "text" not in comment:
        raise Conflict("the held item carries no comment")
    body_ = {k: comment[k] for k in ("uid", "nick", "role", "text", "color", "mode")
             if k in comment}  # fmt: skip
    appended = await ctx(request).service.release(room_id, body_)
    return json_response({"seq": appended.seq, "comment": orjson.loads(appended.payload)})


@routes.post("/rooms/{room_id}/moderation/review/{item_id}/drop")
async def review_drop(request: web.Request) -> web.Response:
    await _take(request, "drop")
    return web.Response(status=204)
