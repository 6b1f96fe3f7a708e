"""The reference: aiohttp's WebSocketResponse as an echo server on ``/ws`` that greets.

``python -m tests.conformance.echo_server --port N --max-msg-size M``. The runner
compares Interact's protocol-level outcomes with its own (tests/conformance/outcome.py).

It sends one text frame as soon as the connection is open, as Interact sends its
welcome, then echoes every message. Without that greeting the suite's client would act
differently on the two servers: many cases close as soon as their first message is not
their echo (9.*, 12.*, 13.*) and the others wait a second longer before closing with
1001 instead of 1000, so the reference would answer other closes to other messages.
"""

from __future__ import annotations

import argparse

from aiohttp import WSMsgType, web

GREETING = '[{"t":"welcome"}]'


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=request.app[MAX_MSG_SIZE], compress=True, autoping=True)
    await ws.prepare(request)
    await ws.send_str(GREETING)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ready")


MAX_MSG_SIZE = web.AppKey("max_msg_size", int)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-msg-size", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[MAX_MSG_SIZE] = args.max_msg_size
    app.router.add_get("/ws", echo)
    app.router.add_get("/ready", ready)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
