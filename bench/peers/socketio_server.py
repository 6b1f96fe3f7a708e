"""A python-socketio live room on aiohttp: the Socket.IO way to write it.

``python -m bench.peers.socketio_server --port P``: Socket.IO at ``/socket.io/`` with the
room and token in the connect query (``?room=…&token=…``); a bad token refuses the
connection. A comment event ``dm`` (``{"t":"dm","text",…,"ref"}``) is acked to its sender
with an ``ack`` event and broadcast to the room with ``sio.emit("dm", msg, room=…)`` as the
``dm`` message Interact sends; a ``ping`` event is answered with ``pong``. Engine.IO's
own heartbeat (server ping every 25 s) is left at python-socketio's defaults.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import socketio
from aiohttp import web

from bench.peers.common import Viewer, dm_message, parse_args, serve, viewer


def build(secret: str) -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=None)
    app = web.Application()
    sio.attach(app)
    who: dict[str, tuple[Viewer, str]] = {}
    seq = [0]

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        q = parse_qs(environ.get("QUERY_STRING", ""))
        room = (q.get("room") or [""])[0]
        v = viewer(secret, (q.get("token") or [None])[0], len(who))
        if v is None or not room:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        who[sid] = (v, room)
        await sio.enter_room(sid, room)

    @sio.event
    async def disconnect(sid: str, *_: Any) -> None:
        who.pop(sid, None)

    @sio.on("dm")
    async def dm(sid: str, msg: dict[str, Any]) -> None:
        v, room = who[sid]
        seq[0] += 1
        await sio.emit("ack", {"t": "ack", "ref": msg.get("ref"), "ok": True, "seq": seq[0]},
                       to=sid)  # fmt: skip
        await sio.emit("dm", dm_message(seq[0], v, msg), room=room)

    @sio.on("ping")
    async def ping(sid: str, msg: Any = None) -> None:
        await sio.emit("pong", {"t": "pong"}, to=sid)

    return app


def main() -> None:
    ns = parse_args("python -m bench.peers.socketio_server", __doc__)
    serve(build(ns.secret), ns.host, ns.port)


if __name__ == "__main__":
    main()
