"""The ``/ws`` endpoint: handshake, welcome, and the read loop of one viewer."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import HttpVersion11, WSCloseCode, WSMsgType, hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_protocol import RequestHandler

from growth.invites import valid_token as valid_share_token
from interact import tokens
from interact.client_frames import WsClose, close_payload
from interact.context import Context
from interact.floor.errors import Close, Code, InteractError
from interact.floor.numbers import ascii_int
from interact.handshake import VERSION as HANDSHAKE_VERSION
from interact.handshake import deflate_answer, refusal
from interact.outbound import Out
from interact.protocol import (
    Codec,
    Dm,
    Enter,
    Grab,
    Like,
    Ping,
    ProtocolError,
    Report,
    ack,
    error,
    parse_client_frame,
)
from interact.viewer import CLOSE_TIMEOUT_S, Viewer, close_socket, linger
from moderation.reports import parse_report
from rooms.audience import is_staff
from rooms.models import Room, valid_room_id
from rooms.service import Author, Held

log = logging.getLogger("interact.ws")


class SharedFrameResponse(web.WebSocketResponse):
    """A WebSocketResponse with the handshake rules of the direct path
    (``interact.handshake``), that always promises ``server_no_context_takeover``.

    The hub deflates each batch once with a fresh context and shares the bytes among
    viewers, which is exactly what that parameter announces. A refusal closes the
    connection: after an upgrade request aiohttp's parser reads no further request.
    """

    def _handshake(self, request: web.BaseRequest) -> tuple[Any, str | None, int, bool]:
        refused = refusal(request.version >= HttpVersion11, request.headers)
        try:
            if refused is not None:
                status, text = refused
                if status == 426:
                    raise web.HTTPUpgradeRequired(
                        text=text, headers={"Sec-WebSocket-Version": HANDSHAKE_VERSION}
                    )
                raise web.HTTPBadRequest(text=text)
            headers, protocol, _, _ = super()._handshake(request)
        except web.HTTPException as exc:
            exc.force_close()
            raise
        headers.pop(hdrs.SEC_WEBSOCKET_EXTENSIONS, None)
        deflate = None
        if self.compress:  # before prepare: whether compression is allowed at all
            deflate = deflate_answer(request.headers.get(hdrs.SEC_WEBSOCKET_EXTENSIONS))
        if deflate is None:
            return headers, protocol, 0, False
        headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = deflate[1]
        return headers, protocol, deflate[0], True


def _since(value: str | None) -> int | None:
    """The ``since`` of a reconnect; one that is not plain ASCII digits is ignored."""
    if value is None:
        return None  # a first join: no exception raised and caught per handshake
    try:
        return ascii_int(value)
    except ValueError:
        return None


class Refused(Exception):
    """The viewer may not join: close with ``code``; ``outcome`` labels the metric."""

    def __init__(self, code: int, message: bytes, outcome: str) -> None:
        super().__init__(outcome)
        self.code = code
        self.message = message
        self.outcome = outcome


def parse_query(query_string: str) -> tuple[dict[str, str], Codec]:
    """The handshake's query and codec; ``ValueError`` (with the 400's text) if bad.

    Parsed here, not through aiohttp's request.query, which stays cached on the request
    for the life of the connection (the token in it too): most of a kilobyte per viewer.
    """
    try:
        query = dict(parse_qsl(query_string, max_num_fields=16))
    except ValueError:
        raise ValueError("too many query parameters") from None
    inv = query.get("inv")
    if inv is not None and not valid_share_token(inv):
        # A share path the client mangled: refused like a bad codec, on both paths.
        raise ValueError("inv must be a share token (16 characters: A-Z a-z 0-9 - _)")
    try:
        return query, Codec(query.get("codec", "json"))
    except ValueError:
        raise ValueError("codec must be json or msgpack") from None


async def admit(ctx: Context, query: dict[str, str]) -> tuple[tokens.User, Room]:
    """The viewer's user and room, or ``Refused`` (forged token, banned, no such room)."""
    try:
        user = tokens.verify(ctx.config.secret, query.get("token", ""))
    except InteractError:
        raise Refused(Close.UNAUTHORIZED, b"unauthorized", "unauthorized") from None
    if await ctx.moderation.banned(user.uid):
        raise Refused(Close.BANNED, b"banned", "banned")
    room_id = query.get("room", "")
    room = await ctx.service.rooms.get(room_id) if valid_room_id(room_id) else None
    if room is None:
        raise Refused(Close.ROOM_NOT_FOUND, b"room not found", "room_not_found")
    return user, room


class LingeringResponse(SharedFrameResponse):
    """A ``SharedFrameResponse`` whose close lingers as the direct path's does
    (``interact.viewer.linger``, docs/protocol.md §7).

    aiohttp closes the transport as soon as its close frame is out (at once after a frame
    that breaks the protocol) and again when the handler returns, with whatever the client
    is still sending left unread. So when a close begins, aiohttp's request handler lets go
    of the transport: aiohttp closes, pauses and resumes only the transport its handler
    holds. Its close still writes the close frame and, while its reader stands, reads
    (dropping every message) until the client's close frame; then ``linger`` takes the
    transport over until the client's EOF or the deadline.
    """

    # Marked closing when the close begins: the hub writes nothing after the close frame.
    viewer: Viewer | None = None
    _http: RequestHandler | None = None

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter:
        self._http = request.protocol
        return await super().prepare(request)

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        http = self._http
        transport = None if http is None else http.transport
        if http is None or transport is None or transport.is_closing() or self.closed:
            return await super().close(code=code, message=message, drain=drain)
        viewer, self.viewer = self.viewer, None  # and no cycle left between the two
        if viewer is not None:
            viewer.closing = True
        http.transport = None
        transport.resume_reading()  # aiohttp may have paused it, and now cannot resume it
        try:
            closed = await super().close(code=code, message=message, drain=drain)
        except BaseException:
            linger(transport)
            raise
        await linger(transport)
        return closed


async def ws_handler(request: web.Request) -> web.StreamResponse:
    """``/ws`` through aiohttp: the in-process app, and any upgrade ``interact serve``'s
    own upgrade path (``interact.upgrade``) hands over because it is not a plain one."""
    ctx = request.app[Context.KEY]
    cfg = ctx.config
    try:
        query, codec = parse_query(request.query_string)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None

    # autoping off: a ping frame is activity too, and is answered in the read loop.
    # autoclose off: the client's close code is checked and echoed here, as on the
    # direct path. aiohttp refuses a message of exactly max_msg_size bytes; ours is the
    # largest allowed one, hence the + 1 (and _too_big for the inflated case).
    ws = LingeringResponse(
        max_msg_size=cfg.max_frame_bytes + 1,
        compress=cfg.compression,
        autoping=False,
        autoclose=False,
        timeout=CLOSE_TIMEOUT_S,
    )
    writer = await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    # Past the soft limit the writer pauses and the read loop below waits for it to drain.
    transport.set_write_buffer_limits(high=cfg.soft_buffer_bytes)
    try:
        # Admission and join wait on the engine: a connection is not held longer than
        # this unwelcomed (docs/protocol.md, close 1011).
        async with asyncio.timeout(cfg.welcome_timeout):
            user, room = await admit(ctx, query)
            viewer = ws.viewer = Viewer(ws, transport, user, room.id, codec, ws.compress or 0)
            joined = await join(ctx, viewer, room, query)
    except Refused as refused:
        ctx.metrics.handshakes.labels(refused.outcome).inc()
        await close_socket(ws, transport, refused.code, refused.message)
        return ws
    except TimeoutError:
        ctx.metrics.handshakes.labels("timeout").inc()
        await close_socket(ws, transport, Close.INTERNAL, b"welcome timed out, try again")
        return ws
    except Exception:  # the engine failed (Redis away) during admission
        log.warning("admission failed", exc_info=True)
        ctx.metrics.handshakes.labels("error").inc()
        await close_socket(ws, transport, Close.INTERNAL, b"temporarily unavailable")
        return ws
    del query, room  # this frame lives as long as the connection: keep it small
    if not joined:
        return ws
    # The read loop, here and not in a function of its own: one coroutine frame less per
    # connection. Silence is timed by the hub's sweep (viewer.last_seen), not per read.
    try:
        while True:
            if transport.get_write_buffer_size() > cfg.soft_buffer_bytes:
                # The peer does not read what it is sent: stop reading what it sends
                # (aiohttp stops reading the socket once its queue is full) until it does.
                ctx.metrics.reads_paused.inc()
                await writer.drain()
            msg = await ws.receive()
            viewer.last_seen = time.monotonic()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                if _too_big(msg.data, cfg.max_frame_bytes):
                    await close_socket(ws, transport, Close.TOO_BIG, b"message too big")
                    return ws
                await handle(ctx, viewer, msg.data)
            elif kind is WSMsgType.PING:
                await ws.pong(msg.data)
            elif kind is WSMsgType.CLOSE:
                code, reason = close_answer(msg.data, msg.extra or "")
                if code == Close.SUSPENDED:
                    ctx.hub.suspend(viewer)  # before the echo: no await between the two
                await close_socket(ws, transport, code, reason)
                return ws
            elif kind is not WSMsgType.PONG:
                # CLOSING, CLOSED or ERROR: aiohttp has already answered with the right
                # close code (1009 too big, 1007 bad UTF-8, 1002 protocol error).
                return ws
    except ConnectionError:  # lost while waiting for the peer to read
        return ws
    finally:
        ctx.hub.leave(viewer)
        ws.viewer = None  # the viewer refers to ws: a cycle would wait for the collector
        # Whoever closes the transport (the linger, or aiohttp when no close began) waits
        # for a buffer the peer may never read, or for its EOF: bound that wait.
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.abort)


def close_answer(code: int, reason: str) -> tuple[int, bytes]:
    """The close (code, reason) that answers a client's close as aiohttp parsed it
    (``code`` 0: an empty payload): its own code echoed, 1000 for none, or the code of
    its violation (1002 for a code the RFC reserves or leaves unassigned), exactly as
    ``interact.client_frames.close_payload`` judges it on the direct path."""
    payload = code.to_bytes(2, "big") + reason.encode() if code else b""
    try:
        echoed = close_payload(payload)
    except WsClose as exc:
        return exc.code, exc.reason.encode()
    return echoed or Close.NORMAL, b""


def _too_big(data: str | bytes, limit: int) -> bool:
    """More than ``limit`` bytes: aiohttp lets an inflated message of limit + 1 through."""
    if isinstance(data, str):
        return len(data) * 4 > limit and len(data.encode()) > limit
    return len(data) > limit


async def join(ctx: Context, viewer: Viewer, room: Room, query: dict[str, str]) -> bool:
    """Welcome the viewer into its room's fan-out; False (and closed) when that failed."""
    welcome = {"room": room.to_dict(), "user": viewer.user.to_dict()}
    since, epoch = _since(query.get("since")), query.get("epoch")
    # Staff (an operator, the room's own anchor) get the room but are not its audience.
    staff = is_staff(viewer.user.role.value, viewer.user.uid, room.anchor)
    try:
        await ctx.hub.join(viewer, since, epoch, welcome, snapshot=ctx.snapshot, staff=staff)
    except Exception:
        log.warning("join of room %s failed", viewer.room_id, exc_info=True)
        ctx.metrics.handshakes.labels("error").inc()
        await close_socket(viewer.ws, viewer.transport, Close.INTERNAL, b"temporarily unavailable")
        return False
    ctx.edge.welcomed(viewer.transport)
    ctx.metrics.handshakes.labels("ok").inc()
    if not staff:
        ctx.hub.count_join(viewer.room_id, viewer.user.uid)
    inv = query.get("inv")
    if inv is not None and ctx.growth is not None:
        # Attribution after the welcome, beside it: the join never waits on it.
        ctx.spawn(ctx.growth.invites.open(viewer.room_id, viewer.user.uid, inv))
    return True


async def handle(ctx: Context, viewer: Viewer, data: str | bytes) -> None:
    """One client message (either upgrade path): counted, acted on, answered."""
    ctx.metrics.frames_in.inc()
    reply = await _reply_to(ctx, viewer, data)
    if reply is not None:
        viewer.send([Out(reply)])


async def _reply_to(ctx: Context, viewer: Viewer, data: str | bytes) -> dict[str, Any] | None:
    """One client message: its ack or reply, or None."""
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
            ctx.hub.add_like(viewer.room_id, viewer.user.uid, message.n)
            return ack(message.ref, True) if message.ref is not None else None
        if isinstance(message, Ping):
            reply: dict[str, Any] = {"t": "pong"}
            if message.ref is not None:
                reply["ref"] = message.ref
            return reply
        if isinstance(message, Grab | Enter):
            return await ctx.interactions(viewer, message)
        if isinstance(message, Report):
            return await report(ctx, viewer, message)
    except InteractError as exc:
        if isinstance(message, Dm):
            ctx.metrics.comments.labels(exc.code.value).inc()
        return ack(message.ref, False, exc.code.value, msg=exc.message, **exc.extra)
    except Exception:  # the engine failed (Redis away): refuse, never guess, stay up
        log.warning("could not handle a %s", type(message).__name__, exc_info=True)
        return ack(message.ref, False, Code.OVERLOADED.value, msg="temporarily unavailable")
    return None


async def report(ctx: Context, viewer: Viewer, message: Report) -> dict[str, Any]:
    """A viewer's report (docs/protocol.md ``report``): acked with its id."""
    if ctx.reports is None:
        return ack(message.ref, False, Code.NOT_FOUND.value, msg="reports are off")
    target, reason, note = parse_report(message.fields)
    filed = await ctx.reports.report(viewer.room_id, viewer.user.uid, target, reason, note)
    return ack(message.ref, True, **filed)
