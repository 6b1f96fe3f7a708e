"""A plain aiohttp live room, the baseline a hand-written server sets.

``python -m bench.peers.aiohttp_plain --port P``: WebSocket at ``/ws?room=…&token=…``;
a viewer gets a ``welcome`` first; each comment ``{"t":"dm","text",…,"ref"}`` is acked to
its sender and then sent to every viewer of the room, one ``await ws.send_str(...)``
after another, as the frame Interact sends (``[{"t":"dm",…}]``); ``{"t":"ping"}`` is
answered ``[{"t":"pong"}]``. No batching, no shared encoding beyond the one string.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

import orjson
from aiohttp import WSMsgType, web

from bench.peers.common import dm_message, dumps, parse_args, serve, viewer, welcome_message

ROOMS = web.AppKey("rooms", dict)
SECRET = web.AppKey("secret", str)
SEQ = web.AppKey("seq", list)


async def ws_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    room = request.query.get("room", "")
    rooms: dict[str, set[web.WebSocketResponse]] = app[ROOMS]
    who = viewer(app[SECRET], request.query.get("token"), len(rooms[room]))
    if who is None or not room:
        raise web.HTTPUnauthorized(text="bad token or room")
    ws = web.WebSocketResponse(max_msg_size=4096)
    await ws.prepare(request)
    members = rooms[room]
    seq: list[int] = app[SEQ]
    await ws.send_str(dumps([welcome_message(room, who, seq[0], len(members) + 1)]))
    members.add(ws)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                obj = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                continue
            t = obj.get("t") if isinstance(obj, dict) else None
            if t == "dm":
                seq[0] += 1
                await ws.send_str(dumps([{"t": "ack", "ref": obj.get("ref"), "ok": True,
                                          "seq": seq[0]}]))  # fmt: skip
                frame = dumps([dm_message(seq[0], who, obj)])
                for other in list(members):
                    with contextlib.suppress(ConnectionError):
                        await other.send_str(frame)
            elif t == "ping":
                await ws.send_str('[{"t":"pong"}]')
    finally:
        members.discard(ws)
    return ws


def app(secret: str) -> web.Application:
    a = web.Application()
    a[ROOMS] = defaultdict(set)
    a[SECRET] = secret
    a[SEQ] = [0]
    a.router.add_get("/ws", ws_handler)
    return a


def main() -> None:
    ns = parse_args("python -m bench.peers.aiohttp_plain", __doc__)
    serve(app(ns.secret), ns.host, ns.port)


if __name__ == "__main__":
    main()
