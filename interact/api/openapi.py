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
        "/api/v1/auth/console": {
            "get": _op("What the console's sign-in offers (dev login, password sign-in)"),
            "post": _op(
                "Token for a console account (rate-limited)", "", {"username": _S, "password": _S}
            ),
        },
        "/api/v1/auth/ticket": {
            "post": _op("A one-minute token to open a WebSocket with", "operator, anchor")
        },
        "/api/v1/rooms": {
            "post": _op(
                "Create a room",
                "operator, anchor",
                {"title": _S, "anchor": _S, "scheduled_at": _I},
                201,
            ),
            "get": _op("List rooms, newest first (?status, ?anchor=me|uid, ?limit, ?offset)"),
        },
        room_path: {"get": _op("One room")},
        f"{room_path}/stats": {"get": _op("Room statistics", "operator, the room's anchor")},
        f"{room_path}/analytics": {
            "get": _op("Live dashboard figures (docs/analytics.md)", "operator, the room's anchor")
        },
        f"{room_path}/analytics/series": {
            "get": _op(
                "Per-minute series (?metric, ?from, ?to; ?format=csv or Accept: text/csv)",
                "operator, the room's anchor",
            )
        },
        f"{room_path}/alerts": {
            "get": _op(
                "The room's alerts, newest first (?limit, ?active=1)", "operator, the room's anchor"
            )
        },
        f"{room_path}/alerts/rules": {
            "get": _op(
                "The room's alert overrides and effective rules", "operator, the room's anchor"
            ),
            "put": _op(
                "Replace the room's alert overrides (docs/analytics.md §6)",
                "operator, the room's anchor",
                {
                    "uv_drop": {"type": "number"},
                    "hold_s": _I,
                    "disabled": {"type": "array", "items": _S},
                },
            ),
        },
        f"{room_path}/events": {
            "post": _op(
                "Client events: exposure, product_view, product_click, share_open",
                "any signed-in user",
                {"events": {"type": "array", "items": _O}},
                202,
            )
        },
        f"{room_path}/share-tokens": {
            "post": _op("A share token for the room's share path (docs/growth.md)", "", ok=201)
        },
        f"{room_path}/invites": {
            "get": _op("Invite figures of the room (docs/growth.md)", "operator, the room's anchor")
        },
        "/api/v1/me/invites": {"get": _op("How many the caller brought into ?room=")},
        f"{room_path}/schedule": {
            "put": _op(
                "Set or clear the announced start",
                "operator, the room's anchor",
                {"scheduled_at": _I},
            )
        },
        f"{room_path}/subscriptions": {
            "post": _op(
                "Credit pre-live reminders: the template ids wx.requestSubscribeMessage accepted",
                "",
                {"templates": {"type": "array", "items": _S}},
                201,
            )
        },
        "/api/v1/coupons/batches": {
            "post": _op(
                "Create a coupon batch (docs/growth.md §7)",
                "operator; a room's batch: also the room's anchor",
                {"kind": _S, "value": _I, "room": _S, "total": _I, "per_user": _I},
                201,
            ),
            "get": _op("List coupon batches (?room=)", "operator; ?room: also its anchor"),
        },
        "/api/v1/coupons/batches/{batch_id}/issue": {
            "post": _op(
                "Issue a coupon of the batch to a user",
                "operator; a room's batch: also the room's anchor",
                {"uid": _S},
                201,
            )
        },
        "/api/v1/me/coupons": {"get": _op("The caller's coupons")},
        f"{room_path}/invite-rewards": {
            "get": _op("The room's invite reward rules", "operator, the room's anchor"),
            "put": _op(
                "Set the room's invite reward rules (docs/growth.md §8)",
                "operator, the room's anchor",
                {"rules": {"type": "array", "items": _O}},
            ),
        },
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
            "post": _op("Set slow mode (0 = off)", "operator, the room's anchor", {"seconds": _I}),
            "get": _op("The slow mode in force", "operator, the room's anchor"),
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
        f"{room_path}/archive": {
            "get": _op("The room's sealed archive (gzip JSON Lines)", "operator, the room's anchor")
        },
        f"{room_path}/archive.xml": {
            "get": _op(
                "The archive's comments as Bilibili danmaku XML", "operator, the room's anchor"
            )
        },
        f"{room_path}/replay": {
            "get": _op("One 6-minute segment of the room's comments (?segment=N)")
        },
        f"{room_path}/stream-start": {
            "put": _op(
                "When the recorded stream began (offsets count from it)",
                "operator, the room's anchor",
                {"stream_started_at": _I},
            )
        },
        f"{room_path}/reports": {
            "post": _op(
                "Report a comment (seq) or a user (uid) with a reason (docs/moderation.md)",
                "any signed-in user",
                {"seq": _I, "uid": _S, "reason": _S, "note": _S},
                201,
            ),
            "get": _op("Open viewer reports with their age", "operator, the room's anchor"),
        },
        f"{room_path}/reports/{{report_id}}/resolve": {
            "post": _op(
                "Resolve a report once: retract, mute, ban or dismiss",
                "operator, the room's anchor (ban: operator)",
                {"action": _S, "seconds": _I},
            )
        },
        "/api/v1/reports/reasons": {"get": _op("The reasons a report may give")},
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
        "/api/v1/webhooks": {
            "post": _op(
                "Register a webhook endpoint (answers its secret)",
                "operator",
                {"url": _S, "events": {"type": "array", "items": _S}, "room": _S},
                201,
            ),
            "get": _op("Webhook endpoints", "operator"),
        },
        "/api/v1/webhooks/{webhook_id}": {
            "get": _op("A webhook endpoint", "operator"),
            "delete": _op("Delete a webhook endpoint", "operator", ok=204),
        },
        "/api/v1/webhooks/{webhook_id}/rotate": {
            "post": _op("Rotate the secret (the old one signs too for the overlap)", "operator")
        },
        "/api/v1/webhooks/{webhook_id}/enable": {
            "post": _op("Enable a disabled endpoint again", "operator")
        },
        "/api/v1/webhooks/{webhook_id}/deliveries": {
            "get": _op("Deliveries and their attempts, newest first", "operator")
        },
        "/api/v1/webhooks/{webhook_id}/deliveries/{event_id}/replay": {
            "post": _op("Deliver one event again", "operator", ok=202)
        },
        "/api/v1/webhooks/{webhook_id}/replay": {
            "post": _op(
                "Deliver the dead-lettered events since a time", "operator", {"since": _I}, 202
            )
        },
        "/api/v1/webhooks/{webhook_id}/test": {
            "post": _op("Send a webhook.test event", "operator", ok=202)
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
