"""``/webhooks``: merchant webhook endpoints, their deliveries, replays and tests
(operators only; docs/webhooks.md)."""

from __future__ import annotations

from aiohttp import web

from interact.api.common import body, caller, ctx, json_response, query_int
from interact.floor.errors import BadRequest, Unavailable
from interact.tokens import Role
from rooms.models import valid_room_id
from webhooks.service import WebhookService

routes = web.RouteTableDef()

# A registration is a URL, a list of types and a room: a few KB at most.
MAX_WEBHOOK_BODY_BYTES = 4096


def _service(request: web.Request) -> WebhookService:
    caller(request, Role.OPERATOR)
    service = ctx(request).webhooks
    if service is None:
        raise Unavailable("webhooks are not running")
    return service


@routes.post("/webhooks")
async def register(request: web.Request) -> web.Response:
    service = _service(request)
    data = await body(request, MAX_WEBHOOK_BODY_BYTES)
    room = data.get("room")
    if room is not None:
        if not isinstance(room, str) or not valid_room_id(room):
            raise BadRequest("'room' must be a room id")
        await ctx(request).service.get(room)  # 404 for no such room
    endpoint = await service.register(data.get("url"), data.get("events"), room)
    return json_response({**endpoint.public(), "secret": endpoint.secrets[0].value}, 201)


@routes.get("/webhooks")
async def list_endpoints(request: web.Request) -> web.Response:
    service = _service(request)
    endpoints = await service.store.list_endpoints()
    return json_response({"webhooks": [e.public() for e in endpoints]})


@routes.get("/webhooks/{webhook_id}")
async def get_endpoint(request: web.Request) -> web.Response:
    service = _service(request)
    return json_response((await service.endpoint(request.match_info["webhook_id"])).public())


@routes.delete("/webhooks/{webhook_id}")
async def delete_endpoint(request: web.Request) -> web.Response:
    await _service(request).delete(request.match_info["webhook_id"])
    return web.Response(status=204)


@routes.post("/webhooks/{webhook_id}/rotate")
async def rotate(request: web.Request) -> web.Response:
    endpoint, secret = await _service(request).rotate(request.match_info["webhook_id"])
    return json_response({**endpoint.public(), "secret": secret})


@routes.post("/webhooks/{webhook_id}/enable")
async def enable(request: web.Request) -> web.Response:
    endpoint = await _service(request).enable(request.match_info["webhook_id"])
    return json_response(endpoint.public())


@routes.get("/webhooks/{webhook_id}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    service = _service(request)
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    found = await service.deliveries(request.match_info["webhook_id"], limit)
    return json_response({"deliveries": [d.public() for d in found]})


@routes.post("/webhooks/{webhook_id}/deliveries/{event_id}/replay")
async def replay_one(request: web.Request) -> web.Response:
    await _service(request).replay(request.match_info["webhook_id"], request.match_info["event_id"])
    return json_response({"replayed": 1}, 202)


@routes.post("/webhooks/{webhook_id}/replay")
async def replay_dead(request: web.Request) -> web.Response:
    service = _service(request)
    data = await body(request, MAX_WEBHOOK_BODY_BYTES)
    since = data.get("since")
    if not isinstance(since, int) or isinstance(since, bool) or not 0 <= since < 2**53:
        raise BadRequest("'since' must be a time in Unix milliseconds")
    n = await service.replay_dead(request.match_info["webhook_id"], since)
    return json_response({"replayed": n}, 202)


@routes.post("/webhooks/{webhook_id}/test")
async def send_test(request: web.Request) -> web.Response:
    event_id = await _service(request).send_test(request.match_info["webhook_id"])
    return json_response({"id": event_id}, 202)
