"""The load side of the viewer scenarios: viewers in groups, in this process or spread
over child processes (``--procs N``), from many loopback source addresses.

A *group* holds a share of the V viewers: it mints each viewer's own signed token,
connects them (at most its share of ``--connect-concurrency`` handshakes at once),
times each handshake, keeps them alive with pings at the protocol's interval, counts what
they receive (the sampled ones decode and time every ``dm``), and reports counters,
HDR histograms and failures by reason. ``Group`` runs in this process; ``RemoteGroup``
runs one in a child process and talks to it over a pipe, with the same async methods,
so a scenario reads the same whatever ``--procs`` is. Histograms travel encoded and are
merged by the parent; every clock read is ``time.time_ns`` or ``CLOCK_MONOTONIC``,
which all processes of the machine share.

Past ~28,000 connections one source address runs out of ephemeral ports (one port per
connection to one server address). Against a loopback target the clients bind to
127.0.0.1, 127.0.0.2, … 127.0.0.k round-robin (``--source-addrs``; auto by default),
which Linux routes to the loopback interface without any set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import multiprocessing
import os
import time
from array import array
from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.client import INTERACT, SOCKETIO, Counters, WsClient, connect
from bench.hist import Latency
from bench.server import proc_cpu_seconds, raise_nofile
from interact import tokens

# Ports a source address leaves for us: the ephemeral range, less some for the rest.
PORT_MARGIN = 1000
# File descriptors a load process keeps for itself (pipes, logs, the REST session).
FD_MARGIN = 100


def add_load_arguments(p: argparse.ArgumentParser, *, concurrency: int = 100) -> None:
    """The options of the viewers' load: processes, source addresses, connecting."""
    p.add_argument("--procs", type=int, default=1, help="load processes sharing the viewers")
    p.add_argument(
        "--source-addrs", type=int, default=0, metavar="K",
        help="bind viewers to 127.0.0.1..K round-robin (loopback targets only); "
        "0 = as many as the viewers need past the ephemeral port range",
    )  # fmt: skip
    p.add_argument(
        "--connect-concurrency", type=int, default=concurrency, help="handshakes at once"
    )
    p.add_argument("--connect-timeout", type=float, default=20.0, help="per viewer, s")


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """What a group needs to run its share of the viewers (picklable for a child)."""

    host: str
    port: int
    proto: str  # INTERACT (Interact and the aiohttp peer) or SOCKETIO
    room: str
    secret: str
    uid_prefix: str
    first: int  # global index of its first viewer
    count: int
    sampled: frozenset[int] = frozenset()  # global indices that decode and time
    source_addrs: tuple[str, ...] = ()
    concurrency: int = 100
    connect_timeout: float = 20.0
    ping_interval: float = 30.0
    spread_pings: bool = False  # first pings spread evenly over one interval
    codec: str = "json"


@dataclass
class ConnectResult:
    connected: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    first_ns: int = 0  # time_ns of the first handshake start / last welcome
    last_ns: int = 0
    handshakes: bytes = b""  # encoded Latency, connect start -> welcome


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 120 else text[:117] + "..."


class Group:
    """A share of the viewers, run in this process's event loop."""

    def __init__(self, spec: GroupSpec) -> None:
        self.spec = spec
        self.counters = Counters()
        self.clients: list[WsClient] = []
        self.connect_failures: Tally[str] = Tally()
        self.handshake = Latency()
        self.lat_sent = array("q")  # send time of each sampled receipt, ns
        self.lat_ns = array("q")
        self.connecting = 0
        self.pings_sent = 0
        self._pinger: asyncio.Task[None] | None = None
        self._queries = [self._query(spec.first + i) for i in range(spec.count)]

    def _query(self, i: int) -> dict[str, str]:
        s = self.spec
        uid = f"{s.uid_prefix}{i}"
        q = {"room": s.room, "codec": s.codec}
        if s.secret:
            q["token"] = tokens.issue(s.secret, tokens.User(uid, uid, tokens.Role.VIEWER), 86400)
        return q

    def on_sample(self, client: WsClient, batch: list[dict[str, Any]], now: int) -> None:
        for msg in batch:
            if msg.get("t") == "dm":
                text = msg.get("text")
                if isinstance(text, str) and text.startswith("b"):
                    sent = int(text[1:])
                    self.lat_sent.append(sent)
                    self.lat_ns.append(now - sent)

    async def connect(self, deadline_mono: float | None = None) -> ConnectResult:
        """Connect every viewer; those not in by ``deadline_mono`` count as failures."""
        s = self.spec
        sem = asyncio.Semaphore(max(1, s.concurrency))
        res = ConnectResult(first_ns=time.time_ns())
        addrs = s.source_addrs

        async def one(i: int) -> None:
            g = s.first + i
            async with sem:
                t = time.monotonic_ns()
                self.connecting += 1
                try:
                    client = await connect(
                        s.host, s.port, self._queries[i], self.counters,
                        handler=self.on_sample if g in s.sampled else None,
                        deadline_s=s.connect_timeout, proto=s.proto,
                        local_addr=addrs[g % len(addrs)] if addrs else None,
                    )  # fmt: skip
                except (OSError, ConnectionError, TimeoutError) as exc:
                    self.connect_failures[_short(exc)] += 1
                else:
                    self.handshake.record_ns(time.monotonic_ns() - t)
                    self.clients.append(client)
                    res.last_ns = time.time_ns()
                finally:
                    self.connecting -= 1

        tasks = [asyncio.ensure_future(one(i)) for i in range(s.count)]
        timeout = None if deadline_mono is None else max(0.0, deadline_mono - time.monotonic())
        _, pending = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            self.connect_failures["not in by the end of --duration"] += len(pending)
        if self._pinger is None:
            self._pinger = asyncio.create_task(self._ping())
        res.connected = len(self.clients)
        res.failures = dict(self.connect_failures)
        res.handshakes = self.handshake.encode()
        return res

    async def _ping(self) -> None:
        """A ``ping`` after ``ping_interval`` of a client's silence (Interact's protocol;
        Socket.IO clients answer the server's pings instead). With ``spread_pings``, the
        first pings are spread evenly over one interval, as a steady crowd's would be."""
        s = self.spec
        if s.proto == SOCKETIO:
            return
        interval = s.ping_interval
        if s.spread_pings:
            now = time.monotonic()
            n = max(1, len(self.clients))
            for k, c in enumerate(self.clients):
                c.last_sent = now - interval * k / n
        step = min(1.0, interval / 10)
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            for c in self.clients:
                if now - c.last_sent >= interval and c.ok:
                    c.send_json({"t": "ping"})
                    self.pings_sent += 1

    async def snapshot(self) -> dict[str, Any]:
        return {
            **self.counters.snapshot(),
            "connected": sum(1 for c in self.clients if c.ok),
            "in_flight": self.connecting,
            "pings_sent": self.pings_sent,
            "failed": sum(1 for c in self.clients if c.failure)
            + sum(self.connect_failures.values()),
            "cpu": proc_cpu_seconds("self"),
        }

    async def finish(
        self, window_ns: tuple[int, int] | None = None,
        mono_ns: tuple[int, int] | None = None, expected: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Latency of the sampled receipts sent in ``window_ns`` (time_ns), the tick
        bursts begun in ``mono_ns``, each viewer's count against ``expected``, and the
        failures by reason; the clients stay open."""
        lat = Latency()
        if window_ns is not None:
            lo, hi = window_ns
            lat.record_many_ns(d for s, d in zip(self.lat_sent, self.lat_ns, strict=True)
                               if lo <= s < hi)  # fmt: skip
        bursts = self.counters.burst_lengths(*mono_ns) if mono_ns else []
        per_viewer = [c.dms for c in self.clients]
        return {
            "latency": lat.encode(),
            "bursts": bursts,
            "per_viewer_min": min(per_viewer, default=None),
            "per_viewer_max": max(per_viewer, default=None),
            "incomplete": None if expected is None else sum(1 for n in per_viewer if n != expected),
            "closed_or_failed": dict(Tally(c.failure for c in self.clients if c.failure)),
            "connect_failures": dict(self.connect_failures),
            "counters": self.counters.snapshot(),
        }

    async def close(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        for c in self.clients:
            c.close()
        await asyncio.sleep(0.1)


# -- a group in a child process ------------------------------------------------------


def _child_main(conn: Connection, spec: GroupSpec) -> None:
    """A child load process: one group, commands from the parent over ``conn``."""
    try:
        import uvloop

        uvloop.run(_child(conn, spec))
    except ImportError:  # pragma: no cover
        asyncio.run(_child(conn, spec))


async def _child(conn: Connection, spec: GroupSpec) -> None:
    loop = asyncio.get_running_loop()
    group = Group(spec)
    conn.send((0, "ready"))
    tasks: set[asyncio.Task[None]] = set()

    async def serve(rid: int, cmd: str, args: tuple[Any, ...]) -> None:
        try:
            result = await getattr(group, cmd)(*args)
        except Exception as exc:  # sent back and raised in the parent
            result = RuntimeError(f"load process {os.getpid()}: {cmd}: {exc!r}")
        conn.send((rid, result))

    while True:
        try:
            rid, cmd, args = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):
            break
        task = asyncio.create_task(serve(rid, cmd, args))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if cmd == "close":
            await task
            break
    for c in group.clients:
        c.close()


class RemoteGroup:
    """A group run by a child process; the same async methods as ``Group``."""

    def __init__(self, spec: GroupSpec) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.spec = spec
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_child_main, args=(child, spec), daemon=True)
        self.proc.start()
        child.close()
        self._next = 1
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[Any] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._waiting[0] = self._ready
        self._reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self._ready, 60)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                rid, result = await loop.run_in_executor(None, self._conn.recv)
            except (EOFError, OSError):
                break
            fut = self._waiting.pop(rid, None)
            if fut is not None and not fut.done():
                if isinstance(result, Exception):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"load process {self.pid} exited"))

    async def _call(self, cmd: str, *args: Any) -> Any:
        rid = self._next
        self._next += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        self._conn.send((rid, cmd, args))
        return await fut

    async def connect(self, deadline_mono: float | None = None) -> ConnectResult:
        return await self._call("connect", deadline_mono)  # type: ignore[no-any-return]

    async def snapshot(self) -> dict[str, Any]:
        return await self._call("snapshot")  # type: ignore[no-any-return]

    async def finish(
        self, window_ns: tuple[int, int] | None = None,
        mono_ns: tuple[int, int] | None = None, expected: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return await self._call("finish", window_ns, mono_ns, expected)  # type: ignore[no-any-return]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._call("close"), 10)
        await asyncio.to_thread(self.proc.join, 10)
        if self.proc.is_alive():
            self.proc.kill()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._conn.close()


AnyGroup = Group | RemoteGroup


class Viewers:
    """All the viewers of a run over ``procs`` groups: one in this process when
    ``procs`` is 1, else one child process each."""

    def __init__(self, spec: GroupSpec, procs: int, sampled: Iterable[int] = ()) -> None:
        n = spec.count
        procs = max(1, min(procs, n))
        share = [n // procs + (1 if k < n % procs else 0) for k in range(procs)]
        conc = [max(1, spec.concurrency // procs)] * procs
        sampled_set = frozenset(sampled)
        specs = []
        first = spec.first
        for k in range(procs):
            specs.append(_replace(spec, first=first, count=share[k], concurrency=conc[k],
                                  sampled=sampled_set))  # fmt: skip
            first += share[k]
        self.groups: list[AnyGroup] = (
            [Group(specs[0])] if procs == 1 else [RemoteGroup(s) for s in specs]
        )
        self.procs = procs

    @property
    def child_pids(self) -> list[int]:
        return [g.pid for g in self.groups if isinstance(g, RemoteGroup) and g.pid]

    def cpu_seconds(self) -> float | None:
        """CPU seconds of the load: this process and its child load processes."""
        values = [proc_cpu_seconds("self"), *(proc_cpu_seconds(p) for p in self.child_pids)]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    async def start(self) -> None:
        await asyncio.gather(*(g.start() for g in self.groups if isinstance(g, RemoteGroup)))

    async def connect(self, deadline_mono: float | None = None) -> dict[str, Any]:
        results = await asyncio.gather(*(g.connect(deadline_mono) for g in self.groups))
        failures: Tally[str] = Tally()
        for r in results:
            failures.update(r.failures)
        firsts = [r.first_ns for r in results if r.first_ns]
        lasts = [r.last_ns for r in results if r.last_ns]
        return {
            "connected": sum(r.connected for r in results),
            "failures": dict(failures),
            "first_ns": min(firsts, default=0),
            "last_ns": max(lasts, default=0),
            "handshake_ms": Latency.merged(r.handshakes for r in results).summary_ms(),
        }

    async def snapshot(self) -> dict[str, Any]:
        snaps = await asyncio.gather(*(g.snapshot() for g in self.groups))
        out: dict[str, Any] = {}
        for s in snaps:
            for k, v in s.items():
                if k != "cpu":
                    out[k] = out.get(k, 0) + v
        return out

    async def finish(
        self, window_ns: tuple[int, int] | None = None,
        mono_ns: tuple[int, int] | None = None, expected: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        parts = await asyncio.gather(*(g.finish(window_ns, mono_ns, expected)
                                       for g in self.groups))  # fmt: skip
        closed: Tally[str] = Tally()
        conn_f: Tally[str] = Tally()
        for p in parts:
            closed.update(p["closed_or_failed"])
            conn_f.update(p["connect_failures"])
        mins = [p["per_viewer_min"] for p in parts if p["per_viewer_min"] is not None]
        maxs = [p["per_viewer_max"] for p in parts if p["per_viewer_max"] is not None]
        return {
            "latency_ms": Latency.merged(p["latency"] for p in parts).summary_ms(),
            "bursts": [b for p in parts for b in p["bursts"]],
            "per_viewer_min": min(mins, default=None),
            "per_viewer_max": max(maxs, default=None),
            "incomplete": None if expected is None else sum(p["incomplete"] for p in parts),
            "closed_or_failed": dict(closed),
            "connect_failures": dict(conn_f),
        }

    async def close(self) -> None:
        await asyncio.gather(*(g.close() for g in self.groups), return_exceptions=True)


def _replace(spec: GroupSpec, **changes: Any) -> GroupSpec:
    from dataclasses import replace

    return replace(spec, **changes)


# -- capacity: ports and file descriptors -------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ephemeral_ports() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            lo, hi = (int(x) for x in fh.read().split())
        return hi - lo + 1
    except (OSError, ValueError):
        return 28_000


def source_addresses(host: str, connections: int, wanted: int) -> tuple[list[str], str]:
    """The source addresses to bind to, and a line saying why."""
    ports = max(1000, ephemeral_ports() - PORT_MARGIN)
    if not is_loopback(host):
        if wanted > 1:
            return [], f"--source-addrs ignored: {host} is not a loopback address"
        return [], f"one source address: up to about {ports:,} connections to {host}"
    k = wanted or math.ceil(connections / ports)
    k = max(1, min(k, 254))
    if k == 1 and not wanted:
        return [], f"one source address (127.0.0.1): up to about {ports:,} connections"
    addrs = [f"127.0.0.{x}" for x in range(1, k + 1)]
    return addrs, (
        f"source addresses 127.0.0.1..127.0.0.{k} round-robin: up to about "
        f"{k * ports:,} connections ({ports:,} ephemeral ports each)"
    )


def file_limit(connections: int, procs: int, server_here: bool) -> tuple[int, int, str | None]:
    """Raise RLIMIT_NOFILE for this process (children inherit it); the limit and, when
    it is too low for ``connections`` over ``procs`` processes, what to do about it."""
    per_proc = math.ceil(connections / max(1, procs)) + FD_MARGIN
    soft, hard = raise_nofile(per_proc + (connections if server_here else 0) + FD_MARGIN)
    if soft >= per_proc:
        return soft, hard, None
    fits = (soft - FD_MARGIN) * procs
    return (
        soft,
        hard,
        (
            f"RLIMIT_NOFILE is {soft} (hard {hard}): {procs} load process(es) can hold about "
            f"{max(0, fits):,} connections, not {connections:,}. Raise the hard limit "
            f"(`ulimit -Hn {per_proc + connections}` as root, or LimitNOFILE= in systemd) or "
            f"use more --procs"
        ),
    )


PROTO = {"interact": INTERACT, "aiohttp": INTERACT, "socketio": SOCKETIO}
