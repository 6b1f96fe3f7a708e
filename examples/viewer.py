"""A small Interact viewer: log in, watch a room, comment, ping, reconnect with since/epoch.

    python examples/viewer.py --room ROOM                      # comments typed on stdin
    python examples/viewer.py --operator --for 10 "大家好" 666   # open a room, send two comments

Needs only aiohttp and a server with dev login on. Protocol: docs/protocol.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading

import aiohttp


class Refused(Exception):
    """The server refused the login or the room set-up."""


async def setup(http: aiohttp.ClientSession, args: argparse.Namespace) -> tuple[str, str]:
    """Log in via dev login; as operator, also create and start a room. -> (token, room)"""
    role = "operator" if args.operator else "viewer"
    async with http.post(f"{args.base}/api/v1/auth/dev", json={"uid": args.uid, "role": role}) as r:
        if r.status != 200:
            raise Refused(f"login failed: {await r.text()}")
        token = (await r.json())["token"]
    if args.room:
        return token, args.room
    auth = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{args.base}/api/v1/rooms", json={"title": "demo"}, headers=auth) as r:
        if r.status != 201:
            raise Refused(f"cannot create a room: {await r.text()}")
        room = (await r.json())["id"]
    async with http.post(f"{args.base}/api/v1/rooms/{room}/start", headers=auth) as r:
        if r.status != 200:
            raise Refused(f"cannot start the room: {await r.text()}")
    print(f"-- room {room} is live", flush=True)
    return token, room


def read_stdin(loop: asyncio.AbstractEventLoop, outbox: asyncio.Queue[str]) -> None:
    for line in sys.stdin:  # in a daemon thread: works for a terminal, a pipe or a file
        if line.strip():
            loop.call_soon_threadsafe(outbox.put_nowait, line.strip())


async def talk(
    ws: aiohttp.ClientWebSocketResponse, outbox: asyncio.Queue[str], every: float
) -> None:
    """Send queued comments, and a ping after every `every` seconds without one.

    The server closes a connection that has sent nothing for 70 s (close code 4008).
    """
    ref = 0
    while True:
        try:
            text = await asyncio.wait_for(outbox.get(), every)
        except TimeoutError:
            await ws.send_str('{"t":"ping"}')
            continue
        ref += 1
        await ws.send_str(json.dumps({"t": "dm", "text": text, "ref": ref}, ensure_ascii=False))


async def watch(http, args, token, room, state, outbox) -> int | None:
    """One connection: print every message until it closes; returns the close code."""
    params = {"room": room, "token": token}
    if state["epoch"] is not None:  # resume where we left off
        params |= {"since": str(state["seq"]), "epoch": state["epoch"]}
    async with http.ws_connect(f"{args.base}/ws", params=params, compress=15) as ws:
        talker = None
        try:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    break
                for msg in json.loads(frame.data):  # every server frame is an array
                    print(json.dumps(msg, ensure_ascii=False), flush=True)
                    if msg["t"] == "welcome":
                        state.update(epoch=msg["epoch"], seq=msg["seq"], attempt=0)
                        talker = asyncio.create_task(talk(ws, outbox, args.ping))
                    elif msg["t"] == "dm":  # never advance seq from our own acks
                        state["seq"] = max(state["seq"], msg["seq"])
        finally:
            if talker is not None:
                talker.cancel()
        return ws.close_code


async def main(args: argparse.Namespace) -> None:
    outbox: asyncio.Queue[str] = asyncio.Queue()
    for text in args.text:
        outbox.put_nowait(text)
    if not args.text:  # one comment per line typed on stdin
        loop = asyncio.get_running_loop()
        threading.Thread(target=read_stdin, args=(loop, outbox), daemon=True).start()
    state = {"epoch": None, "seq": 0, "attempt": 0}
    async with aiohttp.ClientSession() as http:
        token, room = await setup(http, args)
        while True:
            try:
                code = await watch(http, args, token, room, state, outbox)
                print(f"-- closed with {code}", flush=True)
                if code in (4001, 4003, 4004):  # bad token, banned, no such room: give up
                    return
            except aiohttp.ClientError as exc:
                print(f"-- cannot connect: {exc!r}", flush=True)
            # jittered exponential backoff: 0.5 s, 1 s, 2 s, … up to 30 s, times 0.5-1
            delay = min(30.0, 0.5 * 2 ** state["attempt"]) * random.uniform(0.5, 1.0)
            state["attempt"] += 1
            print(f"-- reconnecting in {delay:.1f}s, since={state['seq']}", flush=True)
            await asyncio.sleep(delay)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Watch an Interact room and comment in it.")
    p.add_argument("text", nargs="*", help="comments to send (default: lines from stdin)")
    p.add_argument("--base", default="http://127.0.0.1:8080", help="server URL")
    p.add_argument("--uid", default=f"viewer{random.randint(1000, 9999)}")
    p.add_argument("--room", help="room id to join")
    p.add_argument("--operator", action="store_true", help="log in as operator; open a room")
    p.add_argument("--ping", type=float, default=30.0, help="seconds of silence before a ping")
    p.add_argument("--for", dest="seconds", type=float, help="exit after this many seconds")
    ns = p.parse_args()
    if not (ns.room or ns.operator):
        p.error("give --room ROOM, or --operator to create and start one")
    try:
        asyncio.run(asyncio.wait_for(main(ns), ns.seconds))
    except (TimeoutError, KeyboardInterrupt):
        pass
    except (Refused, aiohttp.ClientError) as exc:  # at start-up: nothing to resume yet
        sys.exit(str(exc))
