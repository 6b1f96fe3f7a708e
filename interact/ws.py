"""The ``/ws`` endpoint: handshake, welcome, and the read loop of one viewer."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, hdrs, web
from aiohttp.http_websocket import ws_ext_gen

from interact import tokens
from interact.context import Context
from interact.errors import Close, Code, InteractError
from interact.outbound import Out
from interact.protocol import (
    Codec,
    Dm,
    Enter,
    Grab,
    Like,
    Ping,
    ProtocolError,
    ack,
    error,
    parse_client_frame,
)
from interact.viewer import Viewer
from rooms.models import Room, valid_room_id
from rooms.service import Author, Held

log = logging.getLogger("interact.ws")


class SharedFrameResponse(web.WebSocketResponse):
    """A WebSocketResponse that always promises ``server_no_context_takeover``.

    The hub deflates each batch once with a fresh context and shares the bytes among
    viewers, which is exactly what that parameter announces.
    """

    def _handshake(self, request: web.BaseRequest) -> tuple[Any, str | None, int, bool]:
        headers, protocol, compress, _ = super()._handshake(request)
        if compress:
            headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = ws_ext_gen(
                compress=compress, isserver=True, server_notakeover=True
            )
        return headers, protocol, compress, True


def _query_int(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


async def ws_handler(request: web.Request) -> web.StreamResponse:
    ctx = request.app[Context.KEY]
    cfg = ctx.config
    # Parsed here, not through request.query, which stays cached on the request for the
    # life of the connection (the token in it too): most of a kilobyte per viewer.
    try:
        query = dict(parse_qsl(request.query_string, max_num_fields=16))
    except ValueError:
        raise web.HTTPBadRequest(text="too many query parameters") from None
    try:
        codec = Codec(query.get("codec", "json"))
    except ValueError:
        raise web.HTTPBadRequest(text="codec must be json or msgpack") from None
    room_id = query.get("room", "")

    # autoping off: a ping frame is activity too, and is answered in the read loop.
    ws = SharedFrameResponse(
        max_msg_size=cfg.max_frame_bytes, compress=cfg.compression, autoping=False
    )
    await ws.prepare(request)
    try:
        user = tokens.verify(cfg.secret, query.get("token", ""))
    except InteractError:
        ctx.metrics.handshakes.labels("unauthorized").inc()
        await ws.close(code=Close.UNAUTHORIZED, message=b"unauthorized")
        return ws
    if await ctx.moderation.banned(user.uid):
        ctx.metrics.handshakes.labels("banned").inc()
        await ws.close(code=Close.BANNED, message=b"banned")
        return ws
    room = await ctx.service.rooms.get(room_id) if valid_room_id(room_id) else None
    if room is None:
        ctx.metrics.handshakes.labels("room_not_found").inc()
        await ws.close(code=Close.ROOM_NOT_FOUND, message=b"room not found")
        return ws
    transport = request.transport
    if transport is None:
        return ws
    viewer = Viewer(ws, transport, user, room.id, codec, ws.compress if ws.compress else 0)
    joined = await _join(ctx, ws, viewer, room, _query_int(query.get("since")), query.get("epoch"))
    del query, room  # this frame lives as long as the connection: keep it small
    if not joined:
        return ws
    # The read loop, here and not in a function of its own: one coroutine frame less per
    # connection. Silence is timed by the hub's sweep (viewer.last_seen), not per read.
    frames_in = ctx.metrics.frames_in
    try:
        while True:
            msg = await ws.receive()
            viewer.last_seen = time.monotonic()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                frames_in.inc()
                reply = await _handle(ctx, viewer, msg.data)
                if reply is not None:
                    viewer.send([Out(reply)])
            elif kind is WSMsgType.PING:
                await ws.pong(msg.data)
            elif kind is not WSMsgType.PONG:
                # CLOSE, CLOSING, CLOSED or ERROR: aiohttp has already answered with the
                # right close code (1009 too big, 1007 bad UTF-8, 1002 protocol error).
                return ws
    finally:
        ctx.hub.leave(viewer)


async def _join(
    ctx: Context,
    ws: web.WebSocketResponse,
    viewer: Viewer,
    room: Room,
    since: int | None,
    epoch: str | None,
) -> bool:
    """Welcome the viewer into its room's fan-out; False (and closed) when that failed."""
    welcome = {"room": room.to_dict(), "user": viewer.user.to_dict()}
    try:
        await ctx.hub.join(viewer, since, epoch, welcome, snapshot=ctx.snapshot)
    except Exception:
        log.warning("join of room %s failed", viewer.room_id, exc_info=True)
        ctx.metrics.handshakes.labels("error").inc()
        await ws.close(code=Close.INTERNAL, message=b"temporarily unavailable")
        return False
    ctx.metrics.handshakes.labels("ok").inc()
    ctx.hub.count_join(viewer.room_id, viewer.user.uid)
    return True


async def _handle(ctx: Context, viewer: Viewer, data: str | bytes) -> dict[str, Any] | None:
    message = parse_client_frame(data, viewer.codec)
    if isinstance(message, ProtocolError):
        ctx.metrics.bad_frames.inc()
        if message.ref is not None:
            return ack(message.ref, False, message.code.value, msg=message.msg)
        return error(message.code.value, message.msg)
    try:
        if isinstance(message, Dm):
            user = viewer.user
            author = Author(user.uid, user.nick, user.role.value)
            appended = await ctx.service.comment(
                viewer.room_id, author, message.text, message.color, message.mode
            )
            if isinstance(appended, Held):
                ctx.metrics.comments.labels("held").inc()
                return ack(message.ref, True, held=True)
            ctx.metrics.comments.labels("accepted").inc()
            # Awaited before the ack: a password comment followed at once by a grab
            # must find the viewer eligible.
            await ctx.commerce.on_comment(viewer.room_id, user.uid, message.text)
            return ack(message.ref, True, seq=appended.seq)
        if isinstance(message, Like):
            ctx.hub.add_like(viewer.room_id, message.n)
            return ack(message.ref, True) if message.ref is not None else None
        if isinstance(message, Ping):
            reply: dict[str, Any] = {"t": "pong"}
            if message.ref is not None:
                reply["ref"] = message.ref
            return reply
        if isinstance(message, Grab | Enter):
            return await ctx.interactions(viewer, message)
    except InteractError as exc:
        if isinstance(message, Dm):
            ctx.metrics.comments.labels(exc.code.value).inc()
        return ack(message.ref, False, exc.code.value, msg=exc.message, **exc.extra)
    except Exception:  # the engine failed (Redis away): refuse, never guess, stay up
        log.warning("could not handle a %s", type(message).__name__, exc_info=True)
        return ack(message.ref, False, Code.OVERLOADED.value, msg="temporarily unavailable")
    return None
