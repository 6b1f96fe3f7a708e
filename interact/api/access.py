"""Who may act on what: staff of a room (operators, or the room's own anchor), bans."""

from __future__ import annotations

from aiohttp import web

from commerce.ids import room_of
from interact.api.common import caller, ctx
from interact.floor.errors import Conflict, Forbidden, NotFound
from interact.tokens import Role, User
from rooms.models import Room, RoomStatus

STAFF = (Role.OPERATOR, Role.ANCHOR)


async def staff_room(request: web.Request, *, open_only: bool = False) -> tuple[User, Room]:
    """The caller and the room in the path, if the caller is an operator or its anchor;
    with ``open_only`` an ended room is refused (nobody is left to take part)."""
    user = caller(request, *STAFF)
    room = await _staff_check(request, user, request.match_info["room_id"])
    if open_only and room.status is RoomStatus.ENDED:
        raise Conflict("the room has ended")
    return user, room


async def staff_of(request: web.Request, entity_id: str) -> tuple[User, Room]:
    """The caller, if staff of the room a packet, lottery or order id belongs to."""
    user = caller(request, *STAFF)
    room_id = room_of(entity_id)
    if room_id is None:
        raise NotFound(f"no such item {entity_id[:80]}")
    return user, await _staff_check(request, user, room_id)


async def not_banned(request: web.Request) -> User:
    """The caller, refused when banned (connections are closed on a ban; REST asks here)."""
    user = caller(request)
    if await ctx(request).moderation.banned(user.uid):
        raise Forbidden("you are banned")
    return user


async def _staff_check(request: web.Request, user: User, room_id: str) -> Room:
    room = await ctx(request).service.get(room_id)
    if user.role is not Role.OPERATOR and room.anchor != user.uid:
        raise Forbidden("only an operator or the room's anchor may do this")
    return room
