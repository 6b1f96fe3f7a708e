"""``/red-packets``, ``/lotteries`` and the room's money ledger."""

from __future__ import annotations

from aiohttp import web

from commerce.service import lottery_body, packet_body
from interact.api.access import not_banned, staff_of, staff_room
from interact.api.common import body, caller, ctx, json_response, query_int
from interact.floor.errors import BadRequest

routes = web.RouteTableDef()


@routes.post("/rooms/{room_id}/red-packets")
async def create_packet(request: web.Request) -> web.Response:
    user, room = await staff_room(request, open_only=True)
    data = await body(request)
    view = await ctx(request).commerce.create_packet(
        room.id,
        user.uid,
        total_fen=data.get("total_fen"),
        count=data.get("count"),
        split=data.get("split", "random"),
        expires_in=data.get("expires_in", 24 * 3600),
        opens_in=data.get("opens_in", 0),
        condition=data.get("condition"),
    )
    return json_response(packet_body(view), status=201)


@routes.get("/red-packets/{packet_id}")
async def get_packet(request: web.Request) -> web.Response:
    caller(request)
    view = await ctx(request).commerce.get_packet(request.match_info["packet_id"])
    return json_response(packet_body(view))


@routes.post("/red-packets/{packet_id}/grab")
async def grab_packet(request: web.Request) -> web.Response:
    user = await not_banned(request)
    packet_id = request.match_info["packet_id"]
    result = await ctx(request).commerce.grab(packet_id, user.uid)
    return json_response({"id": packet_id, "amount_fen": result.amount_fen, "left": result.left})


@routes.post("/rooms/{room_id}/lotteries")
async def create_lottery(request: web.Request) -> web.Response:
    _, room = await staff_room(request, open_only=True)
    data = await body(request)
    view = await ctx(request).commerce.create_lottery(
        room.id,
        prize=data.get("prize"),
        winners=data.get("winners"),
        condition=data.get("condition"),
        duration=data.get("duration"),
        new_first=data.get("new_first", False),
    )
    return json_response(lottery_body(view), status=201)


@routes.get("/lotteries/{lottery_id}")
async def get_lottery(request: web.Request) -> web.Response:
    caller(request)
    view = await ctx(request).commerce.get_lottery(request.match_info["lottery_id"])
    return json_response(lottery_body(view))


@routes.post("/lotteries/{lottery_id}/entries")
async def enter_lottery(request: web.Request) -> web.Response:
    user = await not_banned(request)
    lottery_id = request.match_info["lottery_id"]
    entries = await ctx(request).commerce.enter(lottery_id, user.uid)
    return json_response({"id": lottery_id, "entries": entries}, status=201)


@routes.get("/lotteries/{lottery_id}/entries")
async def lottery_entrants(request: web.Request) -> web.Response:
    caller(request)
    lottery_id = request.match_info["lottery_id"]
    uids = await ctx(request).commerce.entrants(lottery_id)
    return json_response({"id": lottery_id, "entrants": uids})


@routes.post("/lotteries/{lottery_id}/draw")
async def draw_lottery(request: web.Request) -> web.Response:
    lottery_id = request.match_info["lottery_id"]
    await staff_of(request, lottery_id)
    view = await ctx(request).commerce.draw_now(lottery_id)
    return json_response(lottery_body(view))


@routes.get("/rooms/{room_id}/ledger")
async def read_ledger(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    after = request.query.get("after")
    count = query_int(request, "count", lo=1, hi=1000, default=100)
    try:
        events = await ctx(request).engine.ledger.read(room.id, after, count)
    except ValueError:
        raise BadRequest("'after' must be an id from a previous page") from None
    return json_response(
        {
            "events": [{"id": event_id, **event} for event_id, event in events],
            "next": events[-1][0] if events else after,
        }
    )
