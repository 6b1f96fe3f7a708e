"""Error codes and close codes of the wire contract (DESIGN.md §4), in one place.

Exception tree::

    InteractError            -- carries a wire ``code``, a message and an HTTP status
     ├── BadRequest          -- bad_request, too_long (400)
     ├── Unauthorized        -- unauthorized (401)
     ├── Forbidden           -- forbidden (403)
     ├── NotFound            -- not_found (404)
     ├── Conflict            -- conflict, room_not_live, ... (409)
     ├── RateLimited         -- rate_limited (429)
     └── Unavailable         -- overloaded (503)
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any


class Code(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    ROOM_NOT_LIVE = "room_not_live"
    MUTED = "muted"
    RATE_LIMITED = "rate_limited"
    REJECTED = "rejected"
    TOO_LONG = "too_long"
    ALREADY_GRABBED = "already_grabbed"
    EMPTY = "empty"
    EXPIRED = "expired"
    SOLD_OUT = "sold_out"
    LIMIT_REACHED = "limit_reached"
    CONFLICT = "conflict"
    OVERLOADED = "overloaded"


class Close(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_DATA = 1007
    TOO_BIG = 1009
    INTERNAL = 1011
    UNAUTHORIZED = 4001
    BANNED = 4003
    ROOM_NOT_FOUND = 4004
    IDLE = 4008
    TOO_SLOW = 4029
    # From the client: it goes to the background and will be back (docs/protocol.md §7).
    SUSPENDED = 4100


class InteractError(Exception):
    """An error with a wire code; ``extra`` fields travel with it in acks and bodies."""

    status = 400
    default_code = Code.BAD_REQUEST

    def __init__(self, message: str, code: Code | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.extra = extra


class BadRequest(InteractError):
    status = 400
    default_code = Code.BAD_REQUEST


class Unauthorized(InteractError):
    status = 401
    default_code = Code.UNAUTHORIZED


class Forbidden(InteractError):
    status = 403
    default_code = Code.FORBIDDEN


class NotFound(InteractError):
    status = 404
    default_code = Code.NOT_FOUND


class Conflict(InteractError):
    status = 409
    default_code = Code.CONFLICT


class RateLimited(InteractError):
    status = 429
    default_code = Code.RATE_LIMITED


class Unavailable(InteractError):
    status = 503
    default_code = Code.OVERLOADED
