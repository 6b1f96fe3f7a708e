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
