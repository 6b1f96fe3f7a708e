"""What every REST handler needs: the JSON body, typed fields, the caller, the answer."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from interact import tokens
from interact.context import Context
from interact.floor.errors import BadRequest, Forbidden, Unauthorized
from interact.floor.numbers import ascii_int
from interact.tokens import Role, User

MAX_BODY_BYTES = 64 * 1024
# The largest body any route takes (a word list); aiohttp refuses bigger ones itself.
MAX_ANY_BODY_BYTES = 4 * 1024 * 1024


def ctx(request: web.Request) -> Context:
    return request.app[Context.KEY]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def body(request: web.Request, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object, or ``BadRequest`` (408 when it comes slower than
    ``body_timeout``)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadRequest("request body too large")
    try:
        # A body trickled slower than this holds a handler and a connection: cut it.
        async with asyncio.timeout(ctx(request).config.body_timeout):
            raw = await request.read()
    except TimeoutError:
        # aiohttp closes a connection whose body was not read to its end.
        raise web.HTTPRequestTimeout(text="request body not received in time") from None
    if len(raw) > max_bytes:
        raise BadRequest("request body too large")
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def field_str(
    data: dict[str, Any], name: str, *, required: bool = True, max_len: int = 1000
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise BadRequest(f"'{name}' is required")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise BadRequest(f"'{name}' must be a string of at most {max_len} characters")
    return value


def field_int(
    data: dict[str, Any], name: str, *, lo: int, hi: int, default: int | None = None
) -> int:
    value = data.get(name, default)
    if value is None:
        raise BadRequest(f"'{name}' is required")
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadRequest(f"'{name}' must be an integer from {lo} to {hi}")
    return value


def query_int(request: web.Request, name: str, *, lo: int, hi: int, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return ascii_int(raw, lo=lo, hi=hi)
    except ValueError:
        raise BadRequest(f"'{name}' must be an integer from {lo} to {hi}") from None


def caller(request: web.Request, *roles: Role) -> User:
    """The authenticated user; ``Forbidden`` unless their role is one of ``roles``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    user = tokens.verify(ctx(request).config.secret, token.strip())
    if roles and user.role not in roles:
        raise Forbidden(f"needs role {' or '.join(r.value for r in roles)}")
    return user
