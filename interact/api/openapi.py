"""The OpenAPI 3.1 description of the REST surface (kept beside the routes it describes)."""

from __future__ import annotations

from typing import Any

from interact import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def _op(
    summary: str, roles: str = "", body: dict[str, Any] | None = None, ok: int = 200
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary + (f" ({roles})" if roles else ""),
        "responses": {
            str(ok): {"description": "success"},
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "properties": body}}},
        }
    return op


_S = {"type": "string"}
_I = {"type": "integer"}
_O = {"type": "object"}
_B = {"type": "boolean"}


def document() -> dict[str, Any]:
    room_path = "/api/v1/rooms/{room_id}"
    paths: dict[str, Any] = {
        "/api/v1/auth/dev": {
            "post": _op(
                "Token for a dev login", "dev login on", {"uid": _S, "nick": _S, "role": _S}
            )
        },
        "/api/v1/auth/wechat": {
            "post": _op("Token for a mini-program login code", "", {"code": _S, "nick": _S})
        },
        "/api/v1/rooms": {
            "post": _op("Create a room", "operator, anchor", {"title": _S, "anchor": _S}, 201),
            "get": _op("List rooms, newest first"),
        },
        room_path: {"get": _op("One room")},
        f"{room_path}/stats": {"get": _op("Room statistics", "operator, the room's anchor")},
        f"{room_path}/notices": {
            "post": _op(
                "Send a notice", "operator, the room's anchor", {"text": _S, "level": _S}, 202
            )
        },
        f"{room_path}/messages": {"post": _op("Publish a message", "operator", {"text": _S}, 201)},
        f"{room_path}/messages/{{seq}}": {
            "delete": _op("Retract a comment", "operator, the room's anchor", ok=204)
        },
        f"{room_path}/red-packets": {
            "post": _op(
                "Send a red packet",
                "operator, the room's anchor",
                {
                    "total_fen": _I,
                    "count": _I,
                    "split": _S,
                    "expires_in": _I,
                    "opens_in": _I,
                    "condition": _O,
                },
                201,
            )
        },
        "/api/v1/red-packets/{packet_id}": {"get": _op("A red packet and its claims")},
        "/api/v1/red-packets/{packet_id}/grab": {"post": _op("Grab a share")},
        f"{room_path}/lotteries": {
            "post": _op(
                "Open a lottery",
                "operator, the room's anchor",
                {"prize": _O, "winners": _I, "condition": _O, "duration": _I, "new_first": _B},
                201,
            )
        },
        "/api/v1/lotteries/{lottery_id}": {"get": _op("A lottery, and its result once drawn")},
        "/api/v1/lotteries/{lottery_id}/entries": {
            "post": _op("Enter a lottery", ok=201),
            "get": _op("The entrant uids, once drawn (to re-run the draw)"),
        },
        "/api/v1/lotteries/{lottery_id}/draw": {
            "post": _op("Draw now", "operator, the room's anchor")
        },
        f"{room_path}/ledger": {
            "get": _op(
                "The room's money events (claims, refunds, draws)", "operator, the room's anchor"
            )
        },
        f"{room_path}/mutes": {
            "post": _op(
                "Mute a viewer in the room",
                "operator, the room's anchor",
                {"uid": _S, "seconds": _I, "reason": _S},
                201,
            ),
            "get": _op("Mutes in force", "operator, the room's anchor"),
        },
        f"{room_path}/mutes/{{uid}}": {
            "delete": _op("Lift a mute", "operator, the room's anchor", ok=204)
        },
        f"{room_path}/slow-mode": {
            "post": _op("Set slow mode (0 = off)", "operator, the room's anchor", {"seconds": _I})
        },
        "/api/v1/moderation/bans": {
            "post": _op(
                "Ban a user everywhere", "operator", {"uid": _S, "seconds": _I, "reason": _S}, 201
            ),
            "get": _op("Bans in force", "operator"),
        },
        "/api/v1/moderation/bans/{uid}": {"delete": _op("Lift a ban", "operator", ok=204)},
        "/api/v1/moderation/words": {
            "put": _op("Replace the word list", "operator", {"words": _O, "allow": _O}),
            "get": _op("The word list", "operator"),
        },
        f"{room_path}/moderation/events": {
            "get": _op("The room's moderation log", "operator, the room's anchor")
        },
        f"{room_path}/moderation/review": {
            "get": _op("Comments held for review", "operator, the room's anchor")
        },
        f"{room_path}/moderation/review/{{item_id}}/release": {
            "post": _op("Publish a held comment", "operator, the room's anchor")
        },
        f"{room_path}/moderation/review/{{item_id}}/drop": {
            "post": _op("Drop a held comment", "operator, the room's anchor", ok=204)
        },
        f"{room_path}/sales": {
            "post": _op(
                "Put a flash sale on the shelf",
                "operator, the room's anchor",
                {
                    "title": _S,
                    "sku": _S,
                    "price_fen": _I,
                    "stock": _I,
                    "limit": _I,
                    "starts_at": _I,
                    "ends_at": _I,
                    "reserve_seconds": _I,
                },
                201,
            )
        },
        "/api/v1/sales/{sale_id}": {"get": _op("A sale and its stock")},
        "/api/v1/sales/{sale_id}/orders": {
            "post": _op("Reserve (Idempotency-Key header)", "any user", {"qty": _I}, 201)
        },
        "/api/v1/orders/{order_id}": {"get": _op("An order", "its buyer, operators")},
        f"{room_path}/orders": {"get": _op("The room's orders", "operator, the room's anchor")},
        "/api/v1/orders/{order_id}/pay": {"post": _op("wx.requestPayment parameters", "buyer")},
        "/api/v1/orders/{order_id}/cancel": {"post": _op("Cancel", "buyer, operators")},
        "/api/v1/orders/{order_id}/refund": {
            "post": _op("Refund", "operator, the room's anchor", {"restock": _B, "reason": _S})
        },
        "/api/v1/pay/dev/{order_id}/confirm": {
            "post": _op("Dev provider: stands in for the payment notification", "buyer")
        },
        "/api/v1/pay/wechat/notify": {
            "post": _op("WeChat Pay notification (signed; no bearer token)", ok=204)
        },
        "/healthz": {"get": _op("Process is up")},
        "/readyz": {"get": _op("Engine reachable")},
        "/metrics": {"get": _op("Prometheus metrics")},
    }
    for action in ("start", "pause", "resume", "end"):
        paths[f"{room_path}/{action}"] = {
            "post": _op(f"{action.capitalize()} the room", "operator, the room's anchor")
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Interact", "version": __version__},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "object", "properties": {"code": _S, "message": _S}}
                    },
                }
            },
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
