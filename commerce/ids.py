"""Red packet and lottery ids, which embed their room so its hash tag needs no lookup."""

from __future__ import annotations

import re
import secrets

from rooms.models import valid_room_id

# What follows the room: "rp" or "lt" and hex from new_*_id, but any short safe token is
# accepted so ids stay printable, URL-safe and free of "{", "}" and ".".
_LOCAL_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def new_packet_id(room_id: str) -> str:
    """A fresh red packet id of ``room_id``: ``"<room>.rp<10 hex>"``."""
    return f"{room_id}.rp{secrets.token_hex(5)}"


def new_lottery_id(room_id: str) -> str:
    """A fresh lottery id of ``room_id``: ``"<room>.lt<10 hex>"``."""
    return f"{room_id}.lt{secrets.token_hex(5)}"


def room_of(entity_id: str) -> str | None:
    """The room a packet or lottery id belongs to, or None when the id is malformed."""
    if not isinstance(entity_id, str):
        return None
    room, dot, local = entity_id.rpartition(".")
    if not dot or not valid_room_id(room) or not _LOCAL_RE.fullmatch(local):
        return None
    return room


def new_sale_id(room_id: str) -> str:
    """A fresh flash sale id of ``room_id``: ``"<room>.sl<10 hex>"``."""
    return f"{room_id}.sl{secrets.token_hex(5)}"


def new_order_id(room_id: str) -> str:
    """A fresh order id of ``room_id``: ``"<room>.od<16 hex>"`` (a room may take millions)."""
    return f"{room_id}.od{secrets.token_hex(8)}"
