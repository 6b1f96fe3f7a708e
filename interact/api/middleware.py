"""Turns every failure into ``{"error": {"code", "message"}}`` with a fitting status."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from interact.api.common import json_response
from interact.floor.errors import Code, InteractError

log = logging.getLogger("interact.api")

_HTTP_CODES = {
    400: Code.BAD_REQUEST,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.BAD_REQUEST,
    409: Code.CONFLICT,
    413: Code.BAD_REQUEST,
    429: Code.RATE_LIMITED,
}


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InteractError as exc:
        return json_response(error_body(exc.code.value, exc.message, **exc.extra), exc.status)
    except web.HTTPException as exc:
        if exc.status < 400 or request.path == "/ws":
            raise
        code = _HTTP_CODES.get(exc.status, Code.BAD_REQUEST)
        return json_response(error_body(code.value, exc.reason), exc.status)
    except (RedisError, OSError, TimeoutError):
        log.warning("engine unavailable on %s %s", request.method, request.path, exc_info=True)
        return json_response(error_body(Code.OVERLOADED.value, "temporarily unavailable"), 503)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(error_body("internal", "internal error"), 500)
