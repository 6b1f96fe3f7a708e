"""Storm: red-packet grabs or lottery entries as fast as one server process answers them.

Starts ``python -m interact serve`` pinned to CPU 0 (by default) and, for
``--engine redis``, its own ``redis-server`` on a free loopback port (no persistence)
pinned to ``--redis-cpus``; this load process runs on ``--load-cpus``. Or it targets a
running server with ``--url``. It creates and starts a room over REST, connects N
grabbers (each its own uid) and runs a closed loop: each grabber has one request in
flight and sends the next as soon as the ack of the last one arrives.

``--kind grab``: packets of S shares (``--shares``, at most 2,000) are created over REST
ahead of the fastest grabber (``--ahead``). Each grabber grabs every packet once, in
order, and goes on to the next: min(N, S) of them win, the others are answered
``empty``. When a grabber has answered the newest packet and the next is not created
yet, it waits (counted as a stall), or with ``--regrab`` grabs the same packet again
(answered ``already_grabbed`` or ``empty``, counted separately).
``--kind enter``: the same with lotteries (condition ``enter``, a long duration); every
grabber enters every lottery once.
``--kind ping``: the baseline, the same closed loop of ``ping`` frames answered ``pong``:
the server's WebSocket request path (read, parse, answer, write) without commerce.

Reported over the window (after ``--warmup``): answered requests/s and successful
grabs (entries)/s, by answer; latency from send to ack (p50/p90/p99/p99.9/max); the
CPU of the server, of Redis and of this process and, per CPU, the busy share; Redis's
own figures (commands, usec per call); and the correctness of every packet or lottery,
read back over REST after the run (GET /api/v1/red-packets/{id}, /lotteries/{id}).
``--profile FILE`` also runs ``py-spy record --nonblocking`` on the server over the window
and prints its hottest functions (a profiled run is slower; do not quote its figures).
Non-blocking because py-spy's default, stopping the process for each sample, put a
sixth of the samples on syscall sites (``getpid`` in ``asyncio.get_running_loop``,
``write``) on the 2-vCPU VM of docs/benchmarks.md: the stop seems to land at the next
kernel exit. The price: many stacks are read half-way (upper frames lost), so the self
(leaf) shares are the ones to trust; the inclusive shares are undercounts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from array import array
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench import harness, report
from bench.client import Counters, WsClient
from bench.fanout import _connect_many
from bench.report import pct as _pct
from bench.server import (
    Server,
    cpu_busy,
    cpu_times,
    parse_prometheus,
    proc_cpu_seconds,
    proc_rss_kb,
)
from interact import tokens

HELP = "red-packet grabs or lottery entries/s through one server, closed loop: rate, latency"

# Keys of the run's Redis go under this prefix.
PREFIX = "bench-storm:"
# The server's limit on shares per packet (CommerceLimits.max_count).
MAX_SHARES = 2000
SERVER_COUNTERS = (
    "interact_frames_in_total",
    "interact_frames_out_total",
    "interact_bytes_out_total",
    "interact_bad_frames_total",
    "interact_connections",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kind", choices=("grab", "enter", "ping"), default="grab",
        help="what to storm; ping is the baseline: the same closed loop of `ping` frames "
        "(answered `pong`), the WebSocket request path without commerce",
    )  # fmt: skip
    p.add_argument("--grabbers", type=int, default=2000, help="connected viewers firing (N)")
    p.add_argument(
        "--shares", type=int, default=2000, help=f"shares per packet (S, max {MAX_SHARES})"
    )
    p.add_argument("--fen-per-share", type=int, default=100, help="packet total = S x this")
    p.add_argument("--duration", type=float, default=15.0, help="measured window, s (D)")
    p.add_argument("--warmup", type=float, default=3.0, help="firing before the window, s")
    p.add_argument("--ahead", type=int, default=4, help="packets/lotteries created ahead")
    p.add_argument(
        "--regrab", action="store_true",
        help="a grabber with no newer item fires at its last one again instead of waiting",
    )  # fmt: skip
    p.add_argument("--drain", type=float, default=10.0, help="max wait for in-flight, s")
    p.add_argument("--connect-concurrency", type=int, default=100, help="handshakes at once")
    p.add_argument("--connect-timeout", type=float, default=20.0, help="per viewer, s")
    harness.add_target_arguments(p, prefix=PREFIX)


# -- the command ------------------------------------------------------------------


def main(ns: argparse.Namespace) -> int:
    if ns.grabbers < 1 or ns.duration <= 0 or ns.ahead < 1:
        print("storm: grabbers, duration and ahead must be positive", file=sys.stderr)
        return 2
    if not 1 <= ns.shares <= MAX_SHARES:
        print(f"storm: --shares must be from 1 to {MAX_SHARES}", file=sys.stderr)
        return 2
    if ns.shares * ns.fen_per_share > 2_000_000 or ns.fen_per_share < 1:
        print("storm: shares x fen-per-share must be at most 2,000,000 fen", file=sys.stderr)
        return 2
    try:
        target = harness.launch(ns, name="storm", connections=ns.grabbers, prefix=PREFIX)
    except harness.UsageError as exc:
        print(f"storm: {exc}", file=sys.stderr)
        return 2
    server, secret, redis_url = target.server, target.secret, target.redis_url
    result, loop_name = harness.run_load(
        target, lambda result: _run(ns, server, secret, result, redis_url, target.redis_pid)
    )
    doc = {
        "scenario": "storm",
        "command": report.command_line(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.get("t0", 0))),
        "params": {
            "kind": ns.kind,
            "engine": target.engine,
            "grabbers": ns.grabbers,
            "shares": ns.shares if ns.kind == "grab" else None,
            "fen_per_share": ns.fen_per_share if ns.kind == "grab" else None,
            "duration": ns.duration,
            "warmup": ns.warmup,
            "ahead": ns.ahead,
            "regrab": ns.regrab,
            "drain": ns.drain,
            "url": ns.url,
            "server_args": ns.server_arg,
            "in_flight_per_connection": 1,
            "profile": ns.profile,
        },
        "load": {
            "cpus": target.affinity,
            "pinned": target.pin,
            "loop": loop_name,
            "nofile": list(target.nofile),
        },
        "machine": report.machine(),
        "versions": report.versions("interact", "aiohttp", "orjson", "uvloop", "redis"),
        "notes": target.notes + result.pop("notes", []),
        **result,
    }
    _print_report(doc)
    if ns.json:
        report.write_json(ns.json, doc)
        print(f"\nwrote {ns.json}")
    ok = "window" in doc and doc["failures"]["total"] == 0 and doc["correct"]["ok"]
    return 0 if ok else 1


# -- the run ----------------------------------------------------------------------


class Grabber:
    """One connection's closed loop: the item it fires at and its request in flight."""

    __slots__ = ("client", "cur", "idx", "inflight", "ref", "repeat", "sent_ns", "uid")

    def __init__(self, idx: int, uid: str) -> None:
        self.idx = idx
        self.uid = uid
        self.client: WsClient | None = None
        self.cur = 0  # index of the item of the request in flight (or next)
        self.ref = 0
        self.sent_ns = 0
        self.inflight = False
        self.repeat = False  # the request in flight re-fires at an answered item


@dataclass
class Item:
    """A packet or lottery and what the grabbers were answered for it (first answers)."""

    id: str
    created_mono: float
    total_fen: int = 0
    answers: Tally[str] = field(default_factory=Tally)
    wins: dict[str, int] = field(default_factory=dict)  # uid -> amount_fen (grab) or entries


class Run:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.grab = ns.kind == "grab"
        self.ping = ns.kind == "ping"
        self.counters = Counters()
        self.clients: list[WsClient] = []
        self.grabbers: list[Grabber] = []
        self.connect_failures: Tally[str] = Tally()
        self.items: list[Item] = []
        self.parked: list[Grabber] = []
        self.firing = False
        self.phase = "setup"
        self.max_cur = 0
        self.need_item = asyncio.Event()
        # Every answer, by its code ("ok" for a success), and the repeats among them.
        self.answers: Tally[str] = Tally()
        self.repeats: Tally[str] = Tally()
        self.answered = 0
        self.ok = 0
        self.sent = 0
        self.stalls = 0  # a grabber that had to wait for the next item
        self.broadcasts: Tally[str] = Tally()
        self.errors: Tally[str] = Tally()
        self.lat_sent = array("q")  # send time (time_ns) of every answered request
        self.lat_ns = array("q")

    # A grabber's next request, at once (called from the protocol's read callback).
    def fire(self, g: Grabber) -> None:
        g.ref += 1
        c = g.client
        assert c is not None
        if self.ping:
            msg: dict[str, Any] = {"t": "ping", "ref": g.ref}
        else:
            msg = {"t": "grab" if self.grab else "enter", "id": self.items[g.cur].id, "ref": g.ref}
        g.sent_ns = time.time_ns()
        g.inflight = True
        c.send_frame(1, orjson.dumps(msg))
        self.sent += 1

    def advance(self, g: Grabber) -> None:
        """After an answer: the next item, the same again (--regrab) or wait for one."""
        if not self.firing:
            return
        if self.ping:
            self.fire(g)
            return
        nxt = g.cur + 1
        if nxt < len(self.items):
            g.cur = nxt
            g.repeat = False
            if nxt > self.max_cur:
                self.max_cur = nxt
            if nxt + self.ns.ahead >= len(self.items):
                self.need_item.set()
            self.fire(g)
        elif self.ns.regrab:
            g.repeat = True
            self.need_item.set()
            self.fire(g)
        else:
            self.stalls += 1
            g.cur = nxt
            if nxt > self.max_cur:
                self.max_cur = nxt
            self.parked.append(g)
            self.need_item.set()

    def on_frame(self, client: WsClient, batch: list[dict[str, Any]], now: int) -> None:
        for msg in batch:
            t = msg.get("t")
            if t != "ack" and not (t == "pong" and self.ping):
                self.broadcasts[str(t)] += 1
                continue
            g: Grabber = client.grabber  # type: ignore[attr-defined]
            if not g.inflight or msg.get("ref") != g.ref:
                self.errors[f"unexpected ack ref {msg.get('ref')!r}"] += 1
                continue
            g.inflight = False
            self.lat_sent.append(g.sent_ns)
            self.lat_ns.append(now - g.sent_ns)
            self.answered += 1
            if msg.get("ok") or t == "pong":
                code = "ok"
                self.ok += 1
            else:
                code = str(msg.get("code"))
            self.answers[code] += 1
            if self.ping:
                self.advance(g)
                continue
            item = self.items[g.cur]
            if g.repeat:
                self.repeats[code] += 1
            else:
                item.answers[code] += 1
                if code == "ok":
                    won = msg.get("amount_fen") if self.grab else msg.get("entries")
                    item.wins[g.uid] = won if isinstance(won, int) else -1
            self.advance(g)

    def resume_parked(self) -> None:
        parked, self.parked = self.parked, []
        for g in parked:
            if g.cur < len(self.items):
                self.fire(g)
            else:
                self.parked.append(g)

    def snapshot(self, server: Server, redis_pid: int | None) -> dict[str, Any]:
        return {
            "mono": time.monotonic(),
            "wall_ns": time.time_ns(),
            "answered": self.answered,
            "ok": self.ok,
            "sent": self.sent,
            "answers": dict(self.answers),
            "repeats": dict(self.repeats),
            "stalls": self.stalls,
            "items": len(self.items),
            "broadcasts": dict(self.broadcasts),
            "frames": self.counters.frames,
            "bytes": self.counters.bytes,
            "server_cpu": server.cpu_seconds(),
            "server_user_sys": harness.user_sys(server.pid),
            "redis_cpu": proc_cpu_seconds(redis_pid) if redis_pid else None,
            "load_cpu": proc_cpu_seconds("self"),
            "cpus": cpu_times(),
        }


async def _create_item(run: Run, http: aiohttp.ClientSession, base: str, room: str) -> None:
    ns = run.ns
    if run.grab:
        total = ns.shares * ns.fen_per_share
        url = f"{base}/api/v1/rooms/{room}/red-packets"
        body: dict[str, Any] = {"total_fen": total, "count": ns.shares, "expires_in": 3600}
    else:
        total = 0
        url = f"{base}/api/v1/rooms/{room}/lotteries"
        body = {
            "prize": {"title": "bench prize", "kind": "goods"},
            "winners": 10,
            "condition": {"kind": "enter"},
            "duration": 3600,
        }
    async with http.post(url, json=body) as r:
        data = await r.json()
        if r.status != 201:
            raise RuntimeError(f"create {run.ns.kind} item: {r.status} {data}")
    run.items.append(Item(data["id"], time.monotonic(), int(data.get("total_fen") or total)))


async def _progress(run: Run, server: Server, redis_pid: int | None, t0: float,
                    timeline: list[dict[str, Any]]) -> None:  # fmt: skip
    prev = run.snapshot(server, redis_pid)
    while True:
        await asyncio.sleep(1.0)
        cur = run.snapshot(server, redis_pid)
        dt = cur["mono"] - prev["mono"]

        def pct(key: str, c: dict[str, Any] = cur, p: dict[str, Any] = prev,
                dt: float = dt) -> float | None:  # fmt: skip
            a, b = p[key], c[key]
            return None if a is None or b is None else 100 * (b - a) / dt

        entry = {
            "t": round(cur["mono"] - t0, 2),
            "phase": run.phase,
            "connected": len(run.clients),
            "answered_per_s": (cur["answered"] - prev["answered"]) / dt,
            "ok_per_s": (cur["ok"] - prev["ok"]) / dt,
            "items": cur["items"],
            "stalls": cur["stalls"],
            "server_cpu_pct": pct("server_cpu"),
            "redis_cpu_pct": pct("redis_cpu"),
            "load_cpu_pct": pct("load_cpu"),
            "server_rss_kb": server.rss_kb(),
        }
        timeline.append(entry)
        failed = sum(1 for c in run.clients if c.failure) + sum(run.connect_failures.values())
        print(
            f"[{entry['t']:6.1f}s] {run.phase:<8} conns {entry['connected']:>5,}  "
            f"answered/s {entry['answered_per_s']:>7,.0f}  ok/s {entry['ok_per_s']:>7,.0f}  "
            f"items {entry['items']:>4}  stalls {entry['stalls']:>5,}  "
            f"cpu server {_pct(entry['server_cpu_pct'])} redis {_pct(entry['redis_cpu_pct'])} "
            f"load {_pct(entry['load_cpu_pct'])}  failures {failed}",
            flush=True,
        )
        prev = cur


async def _server_counters(http: aiohttp.ClientSession, server: Server) -> dict[str, float]:
    try:
        async with http.get(server.base + "/metrics") as r:
            text = await r.text()
    except aiohttp.ClientError as exc:
        return {"error": str(exc)}  # type: ignore[dict-item]
    values = parse_prometheus(text)
    return {k: values[k] for k in SERVER_COUNTERS if k in values}


async def _run(
    ns: argparse.Namespace,
    server: Server,
    secret: str,
    result: dict[str, Any],
    redis_url: str | None,
    redis_pid: int | None,
) -> dict[str, Any]:
    run = Run(ns)
    t0 = time.monotonic()
    result["t0"] = time.time()
    timeline: list[dict[str, Any]] = []
    result["timeline"] = timeline
    op = tokens.issue(secret, tokens.User("bench-op", "bench-op", tokens.Role.OPERATOR), 3600)
    auth = {"Authorization": f"Bearer {op}"}
    profiler = None
    async with aiohttp.ClientSession(headers=auth) as http:
        room_id = await harness.open_room(http, server.base, "bench storm")
        result["room"] = room_id

        def query(uid: str) -> dict[str, str]:
            user = tokens.User(uid, uid, tokens.Role.VIEWER)
            return {"room": room_id, "token": tokens.issue(secret, user, 3600), "codec": "json"}

        progress = asyncio.create_task(_progress(run, server, redis_pid, t0, timeline))
        creator: asyncio.Task[None] | None = None
        try:
            # -- connect ---------------------------------------------------------
            run.phase = "connect"
            t_conn = time.monotonic()
            n = ns.grabbers
            qs = [query(f"sg{i}") for i in range(n)]
            handlers = [run.on_frame] * n
            await _connect_many(run, server, qs, handlers, run.counters, run.clients)  # type: ignore[arg-type]
            connect_s = time.monotonic() - t_conn
            if not run.clients:
                raise RuntimeError("no grabber could connect")
            for i, c in enumerate(run.clients):
                g = Grabber(i, str(c.welcomed.result()["user"]["uid"]))
                g.client = c
                c.grabber = g  # type: ignore[attr-defined]
                run.grabbers.append(g)
            print(
                f"connected {len(run.clients):,} grabbers in {connect_s:.1f}s; "
                f"server RSS {report.fmt(server.rss_kb())} KB",
                flush=True,
            )
            await asyncio.sleep(0.5)

            # -- fire: warm-up, then the window ----------------------------------
            if not run.ping:
                for _ in range(ns.ahead + 1):
                    await _create_item(run, http, server.base, room_id)
            run.phase = "warmup"
            run.firing = True
            if not run.ping:
                creator = asyncio.create_task(harness.keep_ahead(
                    run, lambda: _create_item(run, http, server.base, room_id),
                    lambda: len(run.items), run.need_item,
                ))  # fmt: skip
            t_start = time.monotonic()
            for g in run.grabbers:
                run.fire(g)
            await asyncio.sleep(ns.warmup)
            run.phase = "window"
            w0 = run.snapshot(server, redis_pid)
            r0 = await harness.redis_info(redis_url)
            m0 = await _server_counters(http, server)
            profiler = harness.start_profile(
                ns, server.pid, ns.load_cpus if not ns.no_pin else None
            )
            await asyncio.sleep(max(0.0, t_start + ns.warmup + ns.duration - time.monotonic()))
            w1 = run.snapshot(server, redis_pid)
            r1 = await harness.redis_info(redis_url)
            m1 = await _server_counters(http, server)
            run.phase = "drain"
            run.firing = False
            run.need_item.set()

            # -- drain: the requests still in flight -----------------------------
            t_drain = time.monotonic()
            while time.monotonic() - t_drain < ns.drain:
                if not any(g.inflight for g in run.grabbers):
                    break
                await asyncio.sleep(0.02)
            drain_s = time.monotonic() - t_drain
            in_flight_left = sum(1 for g in run.grabbers if g.inflight)
            await asyncio.sleep(0.3)  # the last rp_done broadcasts
            rss_end = server.rss_kb()
        finally:
            run.firing = False
            run.need_item.set()
            progress.cancel()
            tasks = [progress] + ([creator] if creator else [])
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            failures_open = Tally(c.failure for c in run.clients if c.failure)
            for c in run.clients:
                c.close()
            await asyncio.sleep(0.2)

        # -- read back and check every item -------------------------------------
        correct = await _check(run, http, server.base, len(run.grabbers), in_flight_left)

    profile = None
    if profiler is not None:
        profile = await asyncio.to_thread(harness.finish_profile, profiler, ns)

    # -- figures -----------------------------------------------------------------
    dt = w1["mono"] - w0["mono"]
    lo, hi = w0["wall_ns"], w1["wall_ns"]
    lat_ms = [lat / 1e6 for s, lat in zip(run.lat_sent, run.lat_ns, strict=True) if lo <= s < hi]
    pct = report.percentiles(lat_ms, (50, 90, 99, 99.9))

    def rate(key: str) -> float | None:
        a, b = w0[key], w1[key]
        return None if a is None or b is None else 100 * (b - a) / dt

    answers = {k: w1["answers"].get(k, 0) - w0["answers"].get(k, 0) for k in w1["answers"]}
    repeats = {k: w1["repeats"].get(k, 0) - w0["repeats"].get(k, 0) for k in w1["repeats"]}
    bcast = {k: w1["broadcasts"].get(k, 0) - w0["broadcasts"].get(k, 0) for k in w1["broadcasts"]}
    answered = w1["answered"] - w0["answered"]
    ok = w1["ok"] - w0["ok"]
    load_cpu = rate("load_cpu")
    server_cpu = rate("server_cpu")
    notes: list[str] = []
    if load_cpu is not None and load_cpu > 90:
        notes.append(f"the load generator used {load_cpu:.0f}% of a CPU: it may limit the rate")
    if server_cpu is not None and server_cpu > 90:
        notes.append(f"the server used {server_cpu:.0f}% of its CPU: it is saturated")
    failures = {
        "connect": dict(run.connect_failures),
        "closed_or_failed": dict(failures_open),
        "protocol": dict(run.errors),
        "in_flight_after_drain": in_flight_left,
        "total": sum(run.connect_failures.values()) + sum(failures_open.values())
        + sum(run.errors.values()) + in_flight_left,
    }  # fmt: skip
    result.update(
        {
            "window": {
                "seconds": dt,
                "answered": answered,
                "answered_per_s": answered / dt,
                "ok": ok,
                "ok_per_s": ok / dt,
                "answers": answers,
                "answers_per_s": {k: v / dt for k, v in answers.items()},
                "repeats": repeats,
                "stalls": w1["stalls"] - w0["stalls"],
                "items_created": w1["items"] - w0["items"],
                "broadcast_messages": bcast,
                "frames_received_per_s": (w1["frames"] - w0["frames"]) / dt,
                "bytes_received_per_s": (w1["bytes"] - w0["bytes"]) / dt,
                "server_cpu_pct": server_cpu,
                "server_user_sys_pct": harness.user_sys_pct(w0, w1, dt),
                "redis_cpu_pct": rate("redis_cpu"),
                "load_cpu_pct": load_cpu,
                "server_cpu_us_per_answer": (
                    server_cpu / 100 * dt / answered * 1e6 if server_cpu and answered else None
                ),
                "cpus": cpu_busy(w0["cpus"], w1["cpus"]),
            },
            "latency_ms": {**pct, "samples": len(lat_ms)},
            "run": {
                "sent": run.sent,
                "answered": run.answered,
                "answers": dict(run.answers),
                "repeats": dict(run.repeats),
                "stalls": run.stalls,
                "items": len(run.items),
                "drain_s": drain_s,
                "broadcast_messages": dict(run.broadcasts),
            },
            "connect": {"grabbers": len(run.grabbers), "seconds": connect_s},
            "rss_kb": {"end": rss_end},
            "server_counters": {
                "window_start": m0,
                "window_end": m1,
                "window_delta": {k: m1[k] - m0[k] for k in m1 if k in m0},
            },
            "redis": {
                "url": redis_url,
                "pid": redis_pid,
                "rss_kb_end": proc_rss_kb(redis_pid) if redis_pid else None,
                "window": harness.redis_delta(r0, r1, dt),
            },
            "correct": correct,
            "profile": profile,
            "failures": failures,
            "notes": notes,
        }
    )
    return result


async def _check(
    run: Run, http: aiohttp.ClientSession, base: str, n: int, in_flight_left: int
) -> dict[str, Any]:
    """Read every item back over REST and hold it against what the grabbers were told.

    A *complete* item got a first answer from all N grabbers: then exactly min(N, S)
    grabbed (N entered), every other grabber was answered ``empty``, the server's claims
    are the grabbers' wins uid by uid, and with S <= N the amounts add up to the total.
    An item the run stopped in the middle of must still match uid by uid.
    """
    problems: list[str] = []
    complete = partial = 0
    claims_total = 0
    sem = asyncio.Semaphore(8)
    kind = "red-packets" if run.grab else "lotteries"

    async def one(item: Item) -> None:
        nonlocal complete, partial, claims_total
        async with sem, http.get(f"{base}/api/v1/{kind}/{item.id}") as r:
            data = await r.json()
            if r.status != 200:
                problems.append(f"{item.id}: GET {r.status} {data}")
                return
        answered = sum(item.answers.values())
        full = answered == n
        complete += full
        partial += 0 < answered < n
        oks = item.answers.get("ok", 0)
        if run.grab:
            shares = run.ns.shares
            claims = {c["uid"]: c["amount_fen"] for c in data["claims"]}
            claims_total += len(claims)
            if len(claims) != len(data["claims"]):
                problems.append(f"{item.id}: a uid claimed twice")
            if claims != item.wins:
                missing = len(set(item.wins) ^ set(claims))
                problems.append(
                    f"{item.id}: server claims differ from the acks "
                    f"({len(claims)} vs {len(item.wins)}, {missing} uids differ)"
                )
            if any(a < 1 for a in claims.values()):
                problems.append(f"{item.id}: a claim below 1 fen")
            if data["claimed_fen"] != sum(claims.values()):
                problems.append(f"{item.id}: claimed_fen {data['claimed_fen']} != sum of claims")
            if data["left"] != shares - len(claims):
                problems.append(f"{item.id}: left {data['left']} != {shares} - {len(claims)}")
            if full:
                want = min(n, shares)
                if oks != want or len(claims) != want:
                    problems.append(f"{item.id}: {oks} acks ok, {len(claims)} claims, want {want}")
                if item.answers.get("empty", 0) != n - want:
                    problems.append(f"{item.id}: losers answered {dict(item.answers)}")
                if shares <= n:
                    if (
                        sum(claims.values()) != item.total_fen
                        or data["total_fen"] != item.total_fen
                    ):
                        problems.append(
                            f"{item.id}: claims add up to {sum(claims.values())}, "
                            f"total {item.total_fen}"
                        )
                    if data["status"] != "done":
                        problems.append(f"{item.id}: status {data['status']} after all shares")
            elif oks > shares:
                problems.append(f"{item.id}: {oks} grabs of {shares} shares")
        else:
            claims_total += data["entries"]
            if data["entries"] != oks or data["entries"] != len(item.wins):
                problems.append(f"{item.id}: entries {data['entries']} != {oks} accepted enters")
            if full and oks != n:
                problems.append(f"{item.id}: {oks} of {n} entered; answers {dict(item.answers)}")
            if data["status"] != "open":
                problems.append(f"{item.id}: status {data['status']}")
            if item.wins and max(item.wins.values()) != data["entries"]:
                problems.append(
                    f"{item.id}: largest acked entries {max(item.wins.values())} "
                    f"!= {data['entries']}"
                )

    await asyncio.gather(*(one(item) for item in run.items))
    bad_repeats = {
        k: v for k, v in run.repeats.items()
        if k not in (("already_grabbed", "empty") if run.grab else ("conflict",))
    }  # fmt: skip
    if bad_repeats:
        problems.append(f"repeated requests answered {bad_repeats}")
    if in_flight_left:
        problems.append(f"{in_flight_left} requests unanswered after the drain")
    return {
        "ok": not problems,
        "items": len(run.items),
        "complete": complete,
        "partial": partial,
        "untouched": len(run.items) - complete - partial,
        "claims_or_entries_read_back": claims_total,
        "answered_ok_total": run.answers.get("ok", 0),
        "problems": problems[:50],
        "problem_count": len(problems),
    }


def _print_report(doc: dict[str, Any]) -> None:
    w = doc.get("window")
    if w is None:
        print("\nno measurement: the run did not reach the end of its window")
        if doc.get("error"):
            print("error:", doc["error"])
        return
    p, lat, cor = doc["params"], doc["latency_ms"], doc["correct"]
    verb = {"grab": "grabs", "enter": "entries", "ping": "pongs"}[p["kind"]]
    fails = doc["failures"]
    rd = (doc.get("redis") or {}).get("window") or {}
    top_cmds = harness.top_commands(rd)
    if p["kind"] == "grab":
        shape = f"{p['grabbers']:,} grabbers, packets of {p['shares']:,} shares"
    elif p["kind"] == "enter":
        shape = f"{p['grabbers']:,} entrants, lotteries (condition enter)"
    else:
        shape = f"{p['grabbers']:,} connections sending ping (baseline, no commerce)"
    rows = [
        ("kind / engine", f"{p['kind']} / {p['engine']}"),
        ("shape", shape + (", regrab" if p["regrab"] else "")),
        ("window", f"{w['seconds']:.1f} s after {p['warmup']:g} s warm-up"),
        (f"successful {verb}/s", w["ok_per_s"]),
        ("answered requests/s", w["answered_per_s"]),
        ("answers in window", ", ".join(f"{k} {v:,}" for k, v in sorted(w["answers"].items()))),
        ("repeats (--regrab) in window", ", ".join(f"{k} {v:,}" for k, v in w["repeats"].items())
         or "0"),
        ("stalls (waited for an item)", w["stalls"]),
        ("items created in window", w["items_created"]),
        ("latency p50 ms", lat["p50"]),
        ("latency p90 ms", lat["p90"]),
        ("latency p99 ms", lat["p99"]),
        ("latency p99.9 ms", lat["p99.9"]),
        ("latency max ms", lat["max"]),
        ("latency samples", lat["samples"]),
        ("server CPU % (1 core = 100)", w["server_cpu_pct"]),
        ("server CPU us per answer", w["server_cpu_us_per_answer"]),
        ("server CPU user / sys %", " / ".join(map(str, w.get("server_user_sys_pct") or ["-"]))),
        ("redis-server CPU %", w["redis_cpu_pct"]),
        ("redis commands in window", top_cmds or "-"),
        ("load CPU %", w["load_cpu_pct"]),
        ("others on the server's CPU %", w.get("others_on_server_cpu_pct")),
        ("CPU busy / softirq / steal %", "  ".join(
            f"{k}: {c['busy_pct']}/{c['softirq_pct']}/{c['steal_pct']}"
            for k, c in sorted(w["cpus"].items()))),
        ("broadcasts received in window", ", ".join(
            f"{k} {v:,}" for k, v in sorted(w["broadcast_messages"].items())) or "0"),
        ("frames received/s", w["frames_received_per_s"]),
        ("correct", "yes" if cor["ok"] else f"NO ({cor['problem_count']} problems)"),
        ("items checked", f"{cor['items']} ({cor['complete']} complete, {cor['partial']} "
         f"partial, {cor['untouched']} untouched)"),
        ("claims/entries read back", cor["claims_or_entries_read_back"]),
        ("failures", fails["total"] if not fails["total"] else
         f"{fails['total']}: connect {fails['connect']}, closed {fails['closed_or_failed']}, "
         f"protocol {fails['protocol']}, in flight {fails['in_flight_after_drain']}"),
        ("server log warnings/errors", doc["server"].get("log_problems")),
    ]  # fmt: skip
    print(f"\nstorm results ({verb})")
    print(report.table(rows))
    for line in cor["problems"][:10]:
        print("  problem:", line)
    for line in doc["server"].get("log_problem_lines", [])[:5]:
        print("  server log:", line[:300])
    harness.print_profile(doc.get("profile"))
    for note in doc.get("notes", []):
        print("note:", note)
