"""What both peers share: options, token check, the messages, running an aiohttp app."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from aiohttp import web

log = logging.getLogger("bench.peer")


@dataclass(frozen=True, slots=True)
class Viewer:
    uid: str
    nick: str
    role: str


def parse_args(prog: str, doc: str | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=doc)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument(
        "--secret", default=os.environ.get("INTERACT_SECRET", ""),
        help="token key (HS256); empty accepts any viewer [env INTERACT_SECRET]",
    )  # fmt: skip
    return p.parse_args()


def viewer(secret: str, token: str | None, index: int) -> Viewer | None:
    """The viewer a token names; None for a bad token. Without a secret, anyone."""
    if not secret:
        return Viewer(f"anon{index}", f"anon{index}", "viewer")
    if not token:
        return None
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    uid = str(claims.get("sub", ""))
    return Viewer(uid, str(claims.get("nick") or uid), str(claims.get("role", "viewer")))


def dm_message(seq: int, who: Viewer, msg: dict[str, Any]) -> dict[str, Any]:
    """The ``dm`` Interact sends for a comment (DESIGN.md §4), the text as sent."""
    return {
        "t": "dm",
        "seq": seq,
        "uid": who.uid,
        "nick": who.nick,
        "role": who.role,
        "text": str(msg.get("text", "")),
        "color": msg.get("color", 16777215),
        "mode": msg.get("mode", "scroll"),
        "ts": int(time.time() * 1000),
    }


def welcome_message(room: str, who: Viewer, seq: int, online: int) -> dict[str, Any]:
    return {
        "t": "welcome",
        "room": {"id": room, "status": "live"},
        "user": {"uid": who.uid, "nick": who.nick, "role": who.role},
        "seq": seq,
        "epoch": "peer",
        "online": online,
        "recovered": False,
        "history": [],
    }


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


async def ready(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def serve(app: web.Application, host: str, port: int) -> None:
    """Run ``app`` on uvloop (as Interact runs) until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.WARNING)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/healthz", ready)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=4096)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover
        asyncio.run(main())
