"""Running the server: one process, or N workers sharing the port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time

from aiohttp import web

from interact.app import build_app
from interact.config import Config
from interact.context import Context
from interact.upgrade import dispatch_factory

log = logging.getLogger("interact")


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is optional on platforms without it
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# Allocations between young collections. Every connection leaves a few dozen long-lived
# objects; with the default 700 the collector ran every few handshakes and rescanned the
# growing middle generation: 457-498 us of server CPU per handshake at 6,000 viewers
# became 388-423 us (python -m bench join --viewers 6000 --procs 2).
GC_YOUNG_THRESHOLD = 20_000
# Seconds an idle HTTP keep-alive connection is kept open.
KEEPALIVE_TIMEOUT_S = 75.0


def tune_gc() -> None:
    """Freeze what start-up built (word lists, scripts, modules) out of the collector's
    sight, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


async def serve(config: Config, *, reuse_port: bool = False) -> None:
    """Serve until SIGTERM or SIGINT, then drain: stop accepting, close viewers with 1001."""
    app = build_app(config)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=config.shutdown_grace,
        # aiohttp's default (3,630 s) would let idle keep-alive connections hold places
        # under max_unwelcomed for an hour; a console or API client reconnects in a blink.
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
    )
    await runner.setup()
    ctx = app[Context.KEY]
    loop = asyncio.get_running_loop()
    aiohttp_protocol = runner.server
    assert aiohttp_protocol is not None
    # Dispatch in front of every connection: admission and deadlines on both paths.
    listener = await loop.create_server(
        dispatch_factory(ctx, aiohttp_protocol),
        config.host,
        config.port,
        reuse_port=reuse_port or None,
        backlog=4096,
    )
    tune_gc()
    log.info(
        "serving",
        extra={
            "address": f"{config.host}:{config.port}",
            "engine": config.engine,
            "node": ctx.node_id,
        },
    )
    if config.engine == "memory":
        log.warning("engine is memory: all state lives in this process and is lost on restart")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    listener.close()  # no new connections; the open ones are closed below
    await ctx.hub.shutdown()
    await runner.cleanup()
    log.info("stopped")


def run(config: Config) -> int:
    if config.workers == 1:
        install_uvloop()
        asyncio.run(serve(config))
        return 0
    return _supervise(config)


def _supervise(config: Config) -> int:
    """Fork the workers, restart any that dies unexpectedly, pass SIGTERM/SIGINT on."""
    children: dict[int, int] = {}
    stopping = False

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                install_uvloop()
                asyncio.run(serve(config, reuse_port=True))
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                os._exit(code)
        children[pid] = slot

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for slot in range(config.workers):
        spawn(slot)
    log.info("supervising workers", extra={"workers": list(children)})
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        slot = children.pop(pid, None)
        if slot is None or stopping:
            continue
        log.error("worker exited unexpectedly; restarting", extra={"pid": pid, "status": status})
        time.sleep(0.5)
        spawn(slot)
    return 0
