"""Micro-benchmark of the fan-out's write: CPU per frame written to a loopback viewer.

The hub writes one frame per viewer per flush, and a hot room's pass is almost all of
that write. This splits its cost: V loopback connections, drained by a child process as
fast as it can (as viewers would), are each written a frame of S bytes per round, in
three ways taking turns:

- ``hub``: the hub's loop (``interact.hub.Hub._fanout``): the viewer's flags, the
  transport's ``is_closing`` and buffer size, then ``transport.write``;
- ``write``: ``transport.write`` alone;
- ``os.write``: the system call alone, from a Python loop over the file descriptors:
  what a compiled writer could approach at best, since the system call stays.

Each prints the server process's CPU per frame (``time.process_time``, so the drainer's
work is not counted; on loopback the receiver's TCP work runs in the sender's system call
and is), the median of the runs. Run ``python -m bench.write_micro``; ``--loop asyncio``
uses the standard loop instead of uvloop (which the server runs on).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import select
import socket
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import cast

HELP = "the fan-out's write alone: CPU per frame for the hub's loop, write(), os.write"


def drain(port: int, n: int, ready: Event) -> None:
    """Open ``n`` connections and read whatever arrives until they close."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    poller = select.epoll()
    by_fd = {}
    for s in socks:
        s.setblocking(False)
        poller.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    ready.set()
    open_ = n
    while open_:
        for fd, _ in poller.poll():
            try:
                if not by_fd[fd].recv(1 << 20):
                    poller.unregister(fd)
                    open_ -= 1
            except BlockingIOError:
                pass
            except OSError:
                poller.unregister(fd)
                open_ -= 1


class _Accept(asyncio.Protocol):
    def __init__(self, into: list[asyncio.Transport], want: int, all_in: asyncio.Event) -> None:
        self.into, self.want, self.all_in = into, want, all_in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports behave as asyncio.Transport without subclassing it.
        self.into.append(cast(asyncio.Transport, transport))
        if len(self.into) == self.want:
            self.all_in.set()


class _Flags:
    __slots__ = ("closing", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.closing = False
        self.transport = transport


def _writers(
    transports: list[asyncio.Transport], frame: bytes, soft: int
) -> dict[str, Callable[[], None]]:
    viewers = [_Flags(t) for t in transports]
    fds = [t.get_extra_info("socket").fileno() for t in transports]

    def hub() -> None:
        for v in viewers:
            transport = v.transport
            if v.closing or transport.is_closing():
                continue
            if transport.get_write_buffer_size() <= soft:
                transport.write(frame)

    def write() -> None:
        for t in transports:
            t.write(frame)

    def raw() -> None:
        w = os.write
        for fd in fds:
            w(fd, frame)

    return {"hub": hub, "write": write, "os.write": raw}


async def measure(ns: argparse.Namespace) -> dict[str, list[float]]:
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    all_in = asyncio.Event()
    server = await loop.create_server(
        lambda: _Accept(transports, ns.viewers, all_in), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=drain, args=(port, ns.viewers, ready), daemon=True)
    child.start()
    await all_in.wait()
    await loop.run_in_executor(None, ready.wait)
    frame = b"\x82\x7e" + ns.size.to_bytes(2, "big") + b"x" * ns.size
    writers = _writers(transports, frame, 64 * 1024)
    per_frame: dict[str, list[float]] = {name: [] for name in writers}
    try:
        for _ in range(ns.runs):
            for name, write in writers.items():
                spent = 0.0
                for _ in range(ns.rounds):
                    # The drainer catches up between rounds (about 10 us a read): each
                    # round finds empty buffers, as a flush does when its viewers keep up.
                    await asyncio.sleep(ns.gap)
                    t0 = time.process_time()
                    write()
                    spent += time.process_time() - t0
                per_frame[name].append(spent / (ns.rounds * ns.viewers) * 1e6)
    finally:
        for t in transports:
            t.close()
        server.close()
        child.join(10)
    return per_frame


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--viewers", type=int, default=2000, help="loopback connections")
    p.add_argument("--size", type=int, default=3000, help="frame payload bytes (126-65535)")
    p.add_argument("--rounds", type=int, default=20, help="frames to each viewer per run")
    p.add_argument("--runs", type=int, default=5, help="runs of each way, taking turns")
    p.add_argument("--gap", type=float, default=0.02, help="pause between rounds, s")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")


def main(ns: argparse.Namespace) -> int:
    if not 126 <= ns.size <= 65535:
        raise SystemExit("--size must be 126-65535")
    if ns.loop == "uvloop":
        import uvloop

        uvloop.install()
    result = asyncio.run(measure(ns))
    print(f"CPU per frame written, {ns.viewers} viewers, {ns.size} B, {ns.loop}: median (runs)")
    floor = statistics.median(result["os.write"])
    for name, runs in result.items():
        med = statistics.median(runs)
        shown = " ".join(f"{x:.2f}" for x in runs)
        print(f"  {name:9} {med:6.2f} us  x{med / floor:.2f} of os.write  ({shown})")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.write_micro", description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
