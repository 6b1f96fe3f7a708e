"""Growth: share tokens and invite figures, scheduled starts and reminder subscriptions,
coupon batches and a user's coupons, invite reward rules.

docs/growth.md has the rules; ``growth.service`` the logic.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from commerce.coupon_service import CouponService
from commerce.coupons import MERCHANT_TAG, batch_body, coupon_body
from growth.rewards import parse_rules
from interact.api.access import not_banned, staff_room
from interact.api.common import body, caller, ctx, json_response
from interact.context import Context
from interact.floor.errors import BadRequest, Conflict, Forbidden, RateLimited, Unavailable
from interact.growth_setup import Growth
from interact.identity import valid_uid
from interact.tokens import Role, User
from rooms.models import RoomStatus, valid_room_id

routes = web.RouteTableDef()

# A scheduled start lies at least this far ahead, and at most this far.
MIN_LEAD_MS = 60_000
MAX_AHEAD_MS = 90 * 24 * 3600 * 1000
# Per user and room, over every process (the moderation GCRA on the engine).
SHARE_TOKENS_PER_S = 0.5
SHARE_TOKENS_BURST = 10
SUBSCRIBE_PER_S = 0.5
SUBSCRIBE_BURST = 10
SCHEDULE_PER_S = 1.0
SCHEDULE_BURST = 10


def _growth(c: Context) -> Growth:
    if c.growth is None:
        raise Unavailable("growth is not set up")
    return c.growth


def parse_scheduled_at(data: dict[str, Any], now_ms: int) -> int | None:
    """``scheduled_at`` of a body (Unix ms, or null/absent), or ``BadRequest``."""
    value = data.get("scheduled_at")
    if value is None:
        return None
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not now_ms + MIN_LEAD_MS <= value <= now_ms + MAX_AHEAD_MS
    ):
        raise BadRequest("'scheduled_at' must be Unix ms from a minute to 90 days ahead, or null")
    return value


async def _paced(c: Context, room_id: str, key: str, per_s: float, burst: int) -> None:
    decision = await c.engine.limiter.rate_limit(
        room_id, key, int(time.time() * 1000), per_s, burst
    )
    if not decision.allowed:
        raise RateLimited(
            f"too many requests: at most {per_s:g} a second per user and room (bursts of {burst})",
            retry_after_ms=decision.retry_after_ms,
        )


@routes.post("/rooms/{room_id}/share-tokens")
async def share_token(request: web.Request) -> web.Response:
    user = await not_banned(request)
    c = ctx(request)
    room = await c.service.get(request.match_info["room_id"])
    if room.status is RoomStatus.ENDED:
        raise Conflict("the room has ended")
    await _paced(c, room.id, f"share:{user.uid}", SHARE_TOKENS_PER_S, SHARE_TOKENS_BURST)
    token, new = await _growth(c).invites.share_token(room.id, user.uid)
    return json_response({"token": token, "new": new}, status=201 if new else 200)


@routes.get("/rooms/{room_id}/invites")
async def room_invites(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    return json_response(await _growth(ctx(request)).invites.report(room.id))


@routes.get("/me/invites")
async def my_invites(request: web.Request) -> web.Response:
    user = caller(request)
    room_id = request.query.get("room", "")
    if not valid_room_id(room_id):
        raise BadRequest("'room' must be a room id")
    return json_response(await _growth(ctx(request)).invites.mine(room_id, user.uid))


@routes.put("/rooms/{room_id}/schedule")
async def put_schedule(request: web.Request) -> web.Response:
    user, room = await staff_room(request)
    c = ctx(request)
    data = await body(request)
    if set(data) != {"scheduled_at"}:
        raise BadRequest('the body is {"scheduled_at": Unix ms or null}')
    at = parse_scheduled_at(data, int(time.time() * 1000))
    await _paced(c, room.id, f"schedule:{user.uid}", SCHEDULE_PER_S, SCHEDULE_BURST)
    reminders = _growth(c).reminders
    # New jobs first, the old ones last: a crash in between leaves a job too many (the
    # worker drops a job whose start is not the room's), never one missing.
    await reminders.plan(room.id, at, None)
    updated = await c.service.rooms.set_schedule(room.id, at)
    if room.scheduled_at != at:
        await reminders.plan(room.id, None, room.scheduled_at)
    return json_response(updated.to_dict())


@routes.post("/rooms/{room_id}/subscriptions")
async def subscribe(request: web.Request) -> web.Response:
    user = await not_banned(request)
    c = ctx(request)
    reminders = _growth(c).reminders
    if not reminders.enabled:
        raise Unavailable("pre-live reminders are not configured")
    data = await body(request)
    extra = set(data) - {"templates"}
    if extra:
        raise BadRequest(f"unknown field '{sorted(extra)[0][:40]}'")
    templates = reminders.check_templates(data.get("templates"))
    room = await c.service.get(request.match_info["room_id"])
    await _paced(c, room.id, f"subscribe:{user.uid}", SUBSCRIBE_PER_S, SUBSCRIBE_BURST)
    added, credits = await reminders.subscribe(room.id, user.uid, templates)
    return json_response(
        {"room": room.id, "added": added, "credits": credits}, status=201 if added else 200
    )


# --- coupons (commerce.coupons; docs/growth.md §7)

COUPON_BATCH_PER_S = 1.0
COUPON_BATCH_BURST = 10
COUPON_ISSUE_PER_S = 20.0
COUPON_ISSUE_BURST = 100
MY_COUPONS_PER_S = 2.0
MY_COUPONS_BURST = 20


def _coupons(c: Context) -> CouponService:
    return _growth(c).coupons


async def _coupon_staff(request: web.Request, room_id: str | None) -> User:
    """An operator; for a room's batch also the room's anchor."""
    if room_id is None:
        return caller(request, Role.OPERATOR)
    user = caller(request, Role.OPERATOR, Role.ANCHOR)
    room = await ctx(request).service.get(room_id)
    if user.role is not Role.OPERATOR and room.anchor != user.uid:
        raise Forbidden("only an operator or the room's anchor may do this")
    return user


@routes.post("/coupons/batches")
async def create_coupon_batch(request: web.Request) -> web.Response:
    data = await body(request)
    room = data.get("room")
    if room is not None and (not isinstance(room, str) or not valid_room_id(room)):
        raise BadRequest("'room' must be a room id or null (merchant-wide)")
    user = await _coupon_staff(request, room)
    c = ctx(request)
    await _paced(c, room or MERCHANT_TAG, f"cpb:{user.uid}", COUPON_BATCH_PER_S,
                 COUPON_BATCH_BURST)  # fmt: skip
    view = await _coupons(c).create_batch(data)
    return json_response(batch_body(view), status=201)


@routes.get("/coupons/batches")
async def list_coupon_batches(request: web.Request) -> web.Response:
    room = request.query.get("room") or None
    if room is not None and not valid_room_id(room):
        raise BadRequest("'room' must be a room id (none: the merchant-wide batches)")
    await _coupon_staff(request, room)
    views = await _coupons(ctx(request)).store.batches(room)
    return json_response({"room": room, "batches": [batch_body(v) for v in views]})


@routes.post("/coupons/batches/{batch_id}/issue")
async def issue_coupon(request: web.Request) -> web.Response:
    c = ctx(request)
    view = await _coupons(c).batch(request.match_info["batch_id"])
    user = await _coupon_staff(request, view.batch.terms.room_id)
    data = await body(request)
    uid = data.get("uid")
    if set(data) != {"uid"} or not isinstance(uid, str) or not valid_uid(uid):
        raise BadRequest('the body is {"uid": a user id}')
    await _paced(c, view.batch.terms.room_id or MERCHANT_TAG, f"cpi:{user.uid}",
                 COUPON_ISSUE_PER_S, COUPON_ISSUE_BURST)  # fmt: skip
    coupon = await _coupons(c).issue_or_raise(view.batch.id, uid)
    return json_response(coupon_body(coupon, int(time.time() * 1000)), status=201)


@routes.get("/me/coupons")
async def my_coupons(request: web.Request) -> web.Response:
    user = caller(request)
    c = ctx(request)
    await _paced(c, MERCHANT_TAG, f"mycp:{user.uid}", MY_COUPONS_PER_S, MY_COUPONS_BURST)
    now = int(time.time() * 1000)
    coupons = await _coupons(c).wallet(user.uid)
    return json_response({"coupons": [coupon_body(x, now) for x in coupons]})


# --- invite rewards (growth.rewards)


@routes.get("/rooms/{room_id}/invite-rewards")
async def get_invite_rewards(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    rules = await _growth(ctx(request)).rewards.rules(room.id)
    return json_response({"room": room.id, "rules": [r.to_dict() for r in rules]})


@routes.put("/rooms/{room_id}/invite-rewards")
async def put_invite_rewards(request: web.Request) -> web.Response:
    user, room = await staff_room(request, open_only=True)
    c = ctx(request)
    data = await body(request)
    if set(data) != {"rules"}:
        raise BadRequest('the body is {"rules": [...]}')
    g = _growth(c)
    # Its ledger event goes to this room: a batch of this room, or merchant-wide.
    known = {v.batch.id for v in await g.coupons.store.batches(room.id)}
    known |= {v.batch.id for v in await g.coupons.store.batches(None)}
    rules = parse_rules(data["rules"], known.__contains__)
    await _paced(c, room.id, f"rewards:{user.uid}", SCHEDULE_PER_S, SCHEDULE_BURST)
    await g.rewards.set_rules(room.id, rules)
    return json_response({"room": room.id, "rules": [r.to_dict() for r in rules]})
