"""``/sales``, ``/orders`` and the payment endpoints."""

from __future__ import annotations

from aiohttp import web

from commerce.orders import NotifyAnswer, order_body, sale_body
from interact.api.access import not_banned, staff_of, staff_room
from interact.api.common import body, caller, ctx, json_response, query_int
from interact.floor.errors import BadRequest, Forbidden, InteractError
from interact.tokens import Role

routes = web.RouteTableDef()


@routes.post("/rooms/{room_id}/sales")
async def create_sale(request: web.Request) -> web.Response:
    _, room = await staff_room(request, open_only=True)
    view = await ctx(request).orders.create_sale(room.id, await body(request))
    return json_response(sale_body(view), status=201)


@routes.get("/sales/{sale_id}")
async def get_sale(request: web.Request) -> web.Response:
    caller(request)
    return json_response(
        sale_body(await ctx(request).orders.get_sale(request.match_info["sale_id"]))
    )


@routes.post("/sales/{sale_id}/orders")
async def reserve(request: web.Request) -> web.Response:
    user = await not_banned(request)
    c = ctx(request)
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        raise BadRequest("an Idempotency-Key header is required")
    data = await body(request)
    order, replayed = await c.orders.reserve(
        request.match_info["sale_id"], user.uid, data.get("qty", 1), key, data.get("coupon")
    )
    response = json_response(order_body(order), status=201)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@routes.get("/orders/{order_id}")
async def get_order(request: web.Request) -> web.Response:
    user = caller(request)
    order = await ctx(request).orders.get_order(request.match_info["order_id"])
    if user.role is not Role.OPERATOR and order.uid != user.uid:
        raise Forbidden("this is someone else's order")
    return json_response(order_body(order))


@routes.get("/rooms/{room_id}/orders")
async def room_orders(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    orders = await ctx(request).orders.store.orders_in_room(
        room.id, limit, request.query.get("after")
    )
    return json_response(
        {"orders": [order_body(o) for o in orders], "next": orders[-1].id if orders else None}
    )


@routes.post("/orders/{order_id}/pay")
async def pay(request: web.Request) -> web.Response:
    user = caller(request)
    return json_response(await ctx(request).orders.pay(request.match_info["order_id"], user.uid))


@routes.post("/orders/{order_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    user = caller(request)
    owner = None if user.role is Role.OPERATOR else user.uid
    order = await ctx(request).orders.cancel(request.match_info["order_id"], owner)
    return json_response(order_body(order))


@routes.post("/orders/{order_id}/refund")
async def refund(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    await staff_of(request, order_id)
    data = await body(request)
    restock = data.get("restock", False)
    if not isinstance(restock, bool):
        raise BadRequest("restock must be true or false")
    reason = data.get("reason", "refund")
    # WeChat Pay counts bytes ("不得超过80个字节"): 26 Chinese characters fit, 27 do not.
    # Refused here, before WeChat is asked, rather than a 409 with the order still paid.
    if not isinstance(reason, str) or _utf8_bytes(reason) > 80:
        raise BadRequest(
            "reason must be a string of at most 80 bytes of UTF-8 (26 Chinese characters)"
        )
    order = await ctx(request).orders.refund(order_id, restock=restock, reason=reason)
    return json_response(order_body(order))


def _utf8_bytes(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): not text
        return 1 << 30


@routes.post("/pay/dev/{order_id}/confirm")
async def dev_confirm(request: web.Request) -> web.Response:
    user = caller(request)
    order = await ctx(request).orders.confirm_dev(request.match_info["order_id"], user.uid)
    return json_response(order_body(order))


@routes.post("/pay/wechat/notify")
async def wechat_notify(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        answer = await ctx(request).orders.notify(request.headers, raw)
    except InteractError as exc:  # e.g. the refund of a late payment could not be placed
        answer = NotifyAnswer(exc.status, exc.message)
    if answer.status == 204:
        return web.Response(status=204)
    # WeChat's format for a refusal; it retries later (for about 24 h).
    return json_response({"code": "FAIL", "message": answer.message}, status=answer.status)
