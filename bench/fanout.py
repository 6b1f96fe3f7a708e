"""Fan-out of one room: V viewers, S senders commenting at a total rate C.

Starts ``python -m interact serve`` (memory engine, log level warning) on a free
loopback port pinned to CPU 0 while this load process runs pinned to CPU 1, or targets
a running server with ``--url``. It creates and starts a room over REST with an operator
token, connects V viewers, then S senders (separate connections that also receive), and
has the senders comment at C comments/s in total for a warm-up and then the measured
window. Each comment's text is ``b<send time in ns>``; a sample of viewers decodes every
frame and records receive time - send time, the others only count frames and comments.

Reported over the window: deliveries/s (comments received by the V viewers per second)
against the expected C x V, latency percentiles, frames/s and bytes/s received, server
CPU and this process's CPU, server RSS per connection, the server's own counters
(dropped danmaku, slow-consumer skips and closes), and every failed or closed viewer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
import traceback
from array import array
from collections import Counter as Tally
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bench import report
from bench.client import Counters, WsClient, connect
from bench.server import (
    Server,
    cpu_busy,
    cpu_times,
    proc_cpu_seconds,
    raise_nofile,
)
from bench.server import start as start_server
from interact import tokens

HELP = "one room, V viewers, S senders at C comments/s: deliveries/s, latency, RSS, CPU"

SERVER_COUNTERS = (
    "interact_danmaku_dropped_total",
    "interact_slow_closed_total",
    "interact_slow_skipped_total",
    'interact_comments_total{outcome="accepted"}',
    "interact_frames_out_total",
    "interact_bytes_out_total",
    "interact_connections",
    'interact_handshakes_total{outcome="ok"}',
    "interact_comment_latency_seconds_sum",
    "interact_comment_latency_seconds_count",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--viewers", type=int, default=2000, help="viewers (V)")
    p.add_argument("--senders", type=int, default=10, help="senders (S), also receiving")
    p.add_argument("--rate", type=float, default=200.0, help="comments/s, all senders (C)")
    p.add_argument("--duration", type=float, default=20.0, help="measured window, s (D)")
    p.add_argument("--warmup", type=float, default=3.0, help="sending before the window, s")
    p.add_argument("--sample", type=int, default=100, help="viewers that decode and time")
    p.add_argument("--drain", type=float, default=5.0, help="max wait for in-flight, s")
    p.add_argument("--url", help="target a running server (http://host:port) instead")
    p.add_argument("--secret", help="its token key with --url [env INTERACT_SECRET]")
    p.add_argument("--server-pid", type=int, help="with --url: its pid, for RSS and CPU")
    p.add_argument("--server-cpus", default="0", help="taskset CPU list of the server")
    p.add_argument("--load-cpus", default="1", help="CPU list of this load process")
    p.add_argument("--no-pin", action="store_true", help="pin neither process")
    p.add_argument(
        "--server-arg", action="append", default=[], metavar="ARG",
        help="extra argument for `interact serve` (repeat), e.g. --server-arg=--tick-ms=50",
    )  # fmt: skip
    p.add_argument("--server-log", help="server log file [default: next to --json, or temp]")
    p.add_argument("--connect-concurrency", type=int, default=100, help="handshakes at once")
    p.add_argument("--connect-timeout", type=float, default=20.0, help="per viewer, s")
    p.add_argument("--ping-interval", type=float, default=30.0, help="idle client ping, s")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")


def _cpus(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def main(ns: argparse.Namespace) -> int:
    if min(ns.viewers, ns.senders) < 1 or ns.rate <= 0 or ns.duration <= 0:
        print("fanout: viewers, senders, rate and duration must be positive", file=sys.stderr)
        return 2
    ns.sample = min(ns.sample, ns.viewers)
    conns = ns.viewers + ns.senders
    notes: list[str] = []

    # File descriptors: this process holds V+S sockets, a local server as many again.
    wanted = 2 * ns.viewers + ns.senders + 100
    soft, hard = raise_nofile(wanted)
    print(f"RLIMIT_NOFILE of the load process: {soft} (hard {hard})")
    if soft < conns + 50:
        print(
            f"fanout: RLIMIT_NOFILE is {soft}, too low for {conns} connections; raise the "
            f"hard limit (ulimit -Hn) to at least {wanted}",
            file=sys.stderr,
        )
        return 2
    if soft < 2 * ns.viewers + 100:
        notes.append(
            f"RLIMIT_NOFILE {soft} < 2xV+100 = {2 * ns.viewers + 100}: enough for this "
            "process, but a server under the same limit could run out of descriptors"
        )

    # Pinning: the server on one CPU, this load generator on another.
    pin = not ns.no_pin and (os.cpu_count() or 1) >= 2
    server_cpus = ns.server_cpus if pin else None
    if pin:
        os.sched_setaffinity(0, _cpus(ns.load_cpus))
    affinity = sorted(os.sched_getaffinity(0))
    if ns.no_pin:
        notes.append("not pinned (--no-pin): server and load generator share the CPUs")
    elif not pin:
        notes.append("one CPU only: server and load generator share it, figures are skewed")

    secret = ns.secret or os.environ.get("INTERACT_SECRET") or ""
    server: Server
    if ns.url:
        if not secret:
            print("fanout: --url needs --secret or INTERACT_SECRET", file=sys.stderr)
            return 2
        u = urlsplit(ns.url)
        server = Server(u.hostname or "127.0.0.1", u.port or 80, pid=ns.server_pid)
        print(f"target: {server.base} (not started here); load process on CPUs {affinity}")
    else:
        secret = secret or secrets.token_urlsafe(32)
        if ns.server_log:
            log_path = Path(ns.server_log)
        elif ns.json:
            log_path = Path(ns.json).with_suffix(".server.log")
        else:
            log_path = Path(tempfile.mkstemp(prefix="interact-bench-", suffix=".log")[1])
        server = start_server(
            secret=secret,
            cpus=server_cpus,
            nofile=2 * ns.viewers + 1000,
            log_path=log_path,
            extra_args=ns.server_arg,
        )
        srv_soft = server.nofile[0] if server.nofile else None
        print(
            f"server: pid {server.pid} on {server.base}, memory engine, log level warning, "
            f"RLIMIT_NOFILE {srv_soft}, log {log_path}"
        )
        if srv_soft is not None and srv_soft < conns + 100:
            notes.append(f"server RLIMIT_NOFILE {srv_soft} < {conns + 100} needed")
    if pin:
        print(
            f"pinning: server on CPU {server_cpus} (taskset -c {server_cpus}), "
            f"load generator on CPU {ns.load_cpus} (sched_setaffinity)"
        )
    for note in notes:
        print("note:", note)

    loop_name = "asyncio"
    try:
        import uvloop

        runner = uvloop.run
        loop_name = "uvloop"
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    result: dict[str, Any] = {}
    try:
        result = runner(_run(ns, server, secret, result))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        result["error"] = "interrupted"
    except Exception as exc:
        traceback.print_exc()
        result["error"] = repr(exc)
    finally:
        exit_code = server.stop()
    problems = server.log_problems()
    result.setdefault("server", {}).update(
        exit_code=exit_code,
        log=str(server.log_path) if server.log_path else None,
        log_problems=len(problems) if server.log_path else None,
        log_problem_lines=problems[:20],
        argv=server.argv,
        cpus=server_cpus,
        nofile=server.nofile,
    )
    doc = {
        "scenario": "fanout",
        "command": report.command_line(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.get("t0", 0))),
        "params": {
            "viewers": ns.viewers,
            "senders": ns.senders,
            "rate": ns.rate,
            "duration": ns.duration,
            "warmup": ns.warmup,
            "sample": ns.sample,
            "drain": ns.drain,
            "url": ns.url,
            "server_args": ns.server_arg,
            "codec": "json",
            "compression": False,
        },
        "load": {
            "cpus": affinity,
            "pinned": pin,
            "loop": loop_name,
            "nofile": [soft, hard],
            "processes": 1,
        },
        "machine": report.machine(),
        "versions": report.versions("interact", "aiohttp", "orjson", "uvloop"),
        "notes": notes + result.pop("notes", []),
        **result,
    }
    _print_report(doc)
    if ns.json:
        report.write_json(ns.json, doc)
        print(f"\nwrote {ns.json}")
    failed = doc.get("failures", {}).get("total", 1)
    return 0 if "window" in doc and failed == 0 else 1


# -- the run --------------------------------------------------------------------


class Run:
    """Shared state of one run: clients, counters, samples, sends and acks."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.viewer_counters = Counters()
        self.sender_counters = Counters()
        self.viewers: list[WsClient] = []
        self.senders: list[WsClient] = []
        self.connect_failures: Tally[str] = Tally()
        self.lat_sent = array("q")  # send time of each sampled receipt, ns
        self.lat_ns = array("q")  # its latency, ns
        self.sent = 0
        self.acks: Tally[str] = Tally()
        self.phase = "setup"

    def on_sample(self, client: WsClient, batch: list[dict[str, Any]], now: int) -> None:
        for msg in batch:
            if msg.get("t") == "dm":
                text = msg.get("text")
                if isinstance(text, str) and text.startswith("b"):
                    sent = int(text[1:])
                    self.lat_sent.append(sent)
                    self.lat_ns.append(now - sent)

    def on_sender(self, client: WsClient, batch: list[dict[str, Any]], now: int) -> None:
        for msg in batch:
            if msg.get("t") == "ack":
                self.acks["ok" if msg.get("ok") else str(msg.get("code"))] += 1

    def clients(self) -> list[WsClient]:
        return self.viewers + self.senders

    def acked(self) -> int:
        return sum(self.acks.values())


async def _connect_many(
    run: Run,
    server: Server,
    qs: list[dict[str, str]],
    handlers: list[Any],
    counters: Counters,
    into: list[WsClient],
) -> None:
    """Connect every query, at most ``--connect-concurrency`` handshakes at once; each
    client is appended to ``into`` once welcomed, each failure counted by reason."""
    sem = asyncio.Semaphore(run.ns.connect_concurrency)

    async def one(i: int) -> None:
        async with sem:
            try:
                client = await connect(
                    server.host, server.port, qs[i], counters,
                    handler=handlers[i], deadline_s=run.ns.connect_timeout,
                )  # fmt: skip
            except (OSError, ConnectionError, TimeoutError) as exc:
                run.connect_failures[str(exc) or type(exc).__name__] += 1
            else:
                into.append(client)

    await asyncio.gather(*(one(i) for i in range(len(qs))))


async def _progress(run: Run, server: Server, t0: float, timeline: list[dict[str, Any]]) -> None:
    prev_t = time.monotonic()
    prev_v = run.viewer_counters.snapshot()
    prev_srv = server.cpu_seconds()
    prev_self = proc_cpu_seconds("self")
    prev_sent = run.sent
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        dt = now - prev_t
        v = run.viewer_counters.snapshot()
        srv = server.cpu_seconds()
        me = proc_cpu_seconds("self")
        entry = {
            "t": round(now - t0, 2),
            "phase": run.phase,
            "connected": len(run.viewers) + len(run.senders),
            "deliveries_per_s": (v["dms"] - prev_v["dms"]) / dt,
            "frames_per_s": (v["frames"] - prev_v["frames"]) / dt,
            "bytes_per_s": (v["bytes"] - prev_v["bytes"]) / dt,
            "sent_per_s": (run.sent - prev_sent) / dt,
            "server_cpu_pct": None if srv is None or prev_srv is None
            else 100 * (srv - prev_srv) / dt,
            "load_cpu_pct": None if me is None or prev_self is None
            else 100 * (me - prev_self) / dt,
            "server_rss_kb": server.rss_kb(),
        }  # fmt: skip
        timeline.append(entry)
        failed = sum(1 for c in run.clients() if c.failure) + sum(run.connect_failures.values())
        srv_pct = _pct(entry["server_cpu_pct"])
        print(
            f"[{entry['t']:6.1f}s] {run.phase:<8} conns {entry['connected']:>6,}  "
            f"deliveries/s {entry['deliveries_per_s']:>9,.0f}  "
            f"frames/s {entry['frames_per_s']:>7,.0f}  "
            f"recv {entry['bytes_per_s'] / 1e6:6.2f} MB/s  sent/s {entry['sent_per_s']:5.0f}  "
            f"cpu server {srv_pct} load {_pct(entry['load_cpu_pct'])}  "
            f"rss {report.fmt(entry['server_rss_kb'])} KB  "
            f"failures {failed}",
            flush=True,
        )
        prev_t, prev_v, prev_srv, prev_self, prev_sent = now, v, srv, me, run.sent


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:3.0f}%"


async def _pinger(run: Run) -> None:
    """Keep idle connections under the server's idle timeout with a rare ping."""
    interval = run.ns.ping_interval
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        for c in run.clients():
            if now - c.last_sent >= interval and c.ok:
                c.send_json({"t": "ping"})


async def _send(run: Run, t_start: float, t_stop: float) -> None:
    """Round-robin over the senders on an absolute schedule: comment n at t_start + n/C."""
    interval = 1.0 / run.ns.rate
    senders = run.senders
    n = 0
    while True:
        due = t_start + n * interval
        if due >= t_stop:
            return
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        s = senders[n % len(senders)]
        s.send_json({"t": "dm", "text": f"b{time.time_ns()}", "ref": n})
        run.sent += 1
        n += 1


def _snapshot(run: Run, server: Server) -> dict[str, Any]:
    return {
        "mono": time.monotonic(),
        "mono_ns": time.monotonic_ns(),
        "wall_ns": time.time_ns(),
        "viewers": run.viewer_counters.snapshot(),
        "senders": run.sender_counters.snapshot(),
        "sent": run.sent,
        "server_cpu": server.cpu_seconds(),
        "load_cpu": proc_cpu_seconds("self"),
        "cpus": cpu_times(),
    }


async def _server_counters(http: aiohttp.ClientSession, server: Server) -> dict[str, float]:
    from bench.server import parse_prometheus

    try:
        async with http.get(server.base + "/metrics") as r:
            text = await r.text()
    except aiohttp.ClientError as exc:
        return {"error": str(exc)}  # type: ignore[dict-item]
    values = parse_prometheus(text)
    return {k: values[k] for k in SERVER_COUNTERS if k in values}


async def _run(
    ns: argparse.Namespace, server: Server, secret: str, result: dict[str, Any]
) -> dict[str, Any]:
    run = Run(ns)
    t0 = time.monotonic()
    result["t0"] = time.time()
    timeline: list[dict[str, Any]] = []
    result["timeline"] = timeline
    op = tokens.issue(secret, tokens.User("bench-op", "bench-op", tokens.Role.OPERATOR), 3600)
    auth = {"Authorization": f"Bearer {op}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(server.base + "/api/v1/rooms", json={"title": "bench fanout"}) as r:
            room = await r.json()
            if r.status != 201:
                raise RuntimeError(f"create room: {r.status} {room}")
        async with http.post(f"{server.base}/api/v1/rooms/{room['id']}/start") as r:
            if r.status != 200:
                raise RuntimeError(f"start room: {r.status} {await r.text()}")
        room_id = room["id"]
        result["room"] = room_id

        def query(uid: str) -> dict[str, str]:
            user = tokens.User(uid, uid, tokens.Role.VIEWER)
            return {"room": room_id, "token": tokens.issue(secret, user, 3600), "codec": "json"}

        v = ns.viewers
        step = v / ns.sample
        sampled = {int(i * step) for i in range(ns.sample)}
        progress = asyncio.create_task(_progress(run, server, t0, timeline))
        pinger = asyncio.create_task(_pinger(run))
        try:
            # -- connect ---------------------------------------------------------
            rss_before = server.rss_kb()
            run.phase = "connect"
            t_conn = time.monotonic()
            qs = [query(f"bv{i}") for i in range(v)]
            handlers = [run.on_sample if i in sampled else None for i in range(v)]
            await _connect_many(run, server, qs, handlers, run.viewer_counters, run.viewers)
            connect_s = time.monotonic() - t_conn
            await asyncio.sleep(0.5)  # let the server settle its joins
            rss_after = server.rss_kb()
            sq = [query(f"bs{i}") for i in range(ns.senders)]
            handlers = [run.on_sender] * ns.senders
            await _connect_many(run, server, sq, handlers, run.sender_counters, run.senders)
            if not run.senders:
                raise RuntimeError("no sender could connect")
            n_viewers = len(run.viewers)
            print(
                f"connected {n_viewers:,} viewers in {connect_s:.1f}s "
                f"({n_viewers / connect_s:,.0f}/s) and {len(run.senders)} senders; "
                f"server RSS {report.fmt(rss_before)} -> {report.fmt(rss_after)} KB",
                flush=True,
            )

            # -- send: warm-up, then the window ---------------------------------
            run.phase = "warmup"
            t_start = time.monotonic()
            t_win = t_start + ns.warmup
            t_stop = t_win + ns.duration
            sender = asyncio.create_task(_send(run, t_start, t_stop))
            await asyncio.sleep(max(0.0, t_win - time.monotonic()))
            run.phase = "window"
            w0 = _snapshot(run, server)
            m0 = await _server_counters(http, server)
            await asyncio.sleep(max(0.0, t_stop - time.monotonic()))
            w1 = _snapshot(run, server)
            await sender
            run.phase = "drain"
            m1 = await _server_counters(http, server)

            # -- drain: wait for acks and deliveries still in flight --------------
            t_drain = time.monotonic()
            while time.monotonic() - t_drain < ns.drain:
                ok = run.acks["ok"]
                if (
                    run.acked() >= run.sent
                    and run.viewer_counters.dms >= ok * n_viewers
                    and run.sender_counters.dms >= ok * len(run.senders)
                ):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            drain_s = time.monotonic() - t_drain
            rss_end = server.rss_kb()
            m_end = await _server_counters(http, server)
        finally:
            progress.cancel()
            pinger.cancel()
            for task in (progress, pinger):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            failures_open = Tally(c.failure for c in run.clients() if c.failure)
            for c in run.clients():
                c.close()
            await asyncio.sleep(0.2)

    # -- figures -------------------------------------------------------------------
    dt = w1["mono"] - w0["mono"]
    dv = {k: w1["viewers"][k] - w0["viewers"][k] for k in w1["viewers"]}
    ds = {k: w1["senders"][k] - w0["senders"][k] for k in w1["senders"]}
    sent_win = w1["sent"] - w0["sent"]
    lo, hi = w0["wall_ns"], w1["wall_ns"]
    lat_ms = [lat / 1e6 for s, lat in zip(run.lat_sent, run.lat_ns, strict=True) if lo <= s < hi]
    pct = report.percentiles(lat_ms, (50, 90, 99, 99.9))
    bursts = run.viewer_counters.burst_lengths(w0["mono_ns"], w1["mono_ns"])
    spread = report.percentiles([b / 1e6 for b in bursts], (50, 90, 99))

    def rate(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else 100 * (b - a) / dt

    ok = run.acks["ok"]
    per_viewer = [c.dms for c in run.viewers]
    incomplete = sum(1 for n in per_viewer if n != ok)
    conn_total = n_viewers + len(run.senders)
    rss_per_conn = (
        (rss_after - rss_before) / n_viewers if rss_before and rss_after and n_viewers else None
    )
    srv_counters = {
        "window_start": m0,
        "window_end": m1,
        "end": m_end,
        "window_delta": {k: m1[k] - m0[k] for k in m1 if k in m0 and isinstance(m1[k], float)},
    }
    load_cpu = rate(w0["load_cpu"], w1["load_cpu"])
    notes = []
    if load_cpu is not None and load_cpu > 90:
        notes.append(
            f"the load generator used {load_cpu:.0f}% of a CPU in the window: it may be what "
            "limits deliveries/s (run it over more processes)"
        )
    failures = {
        "connect": dict(run.connect_failures),
        "closed_or_failed": dict(failures_open),
        "total": sum(run.connect_failures.values()) + sum(failures_open.values()),
    }
    result.update(
        {
            "window": {
                "seconds": dt,
                "comments_sent": sent_win,
                "send_rate": sent_win / dt,
                "deliveries_per_s": dv["dms"] / dt,
                "expected_deliveries_per_s": ns.rate * n_viewers,
                "expected_from_sent_per_s": sent_win / dt * n_viewers,
                "delivery_ratio": (dv["dms"] / dt) / (ns.rate * n_viewers) if n_viewers else None,
                "frames_per_s": dv["frames"] / dt,
                "bytes_per_s": dv["bytes"] / dt,
                "dms_per_frame": dv["dms"] / dv["frames"] if dv["frames"] else None,
                "sender_deliveries_per_s": ds["dms"] / dt,
                "server_cpu_pct": rate(w0["server_cpu"], w1["server_cpu"]),
                "load_cpu_pct": load_cpu,
                "cpus": cpu_busy(w0["cpus"], w1["cpus"]),
            },
            "latency_ms": {**pct, "samples": len(lat_ms), "sampled_viewers": ns.sample},
            "burst_ms": {**spread, "bursts": len(bursts)},
            "run": {
                "comments_sent": run.sent,
                "acks": dict(run.acks),
                "viewer_deliveries": run.viewer_counters.dms,
                "expected_viewer_deliveries": ok * n_viewers,
                "missing_viewer_deliveries": ok * n_viewers - run.viewer_counters.dms,
                "viewers_incomplete": incomplete,
                "per_viewer_min": min(per_viewer, default=None),
                "per_viewer_max": max(per_viewer, default=None),
                "sender_deliveries": run.sender_counters.dms,
                "expected_sender_deliveries": ok * len(run.senders),
                "pings_from_server": run.viewer_counters.pings + run.sender_counters.pings,
                "drain_s": drain_s,
            },
            "connect": {
                "viewers": n_viewers,
                "senders": len(run.senders),
                "seconds": connect_s,
                "per_s": n_viewers / connect_s if connect_s else None,
            },
            "rss_kb": {
                "before": rss_before,
                "after_connect": rss_after,
                "end": rss_end,
                "per_connection_kb": rss_per_conn,
                "connections": conn_total,
            },
            "server_counters": srv_counters,
            "failures": failures,
            "notes": notes,
        }
    )
    return result


def _print_report(doc: dict[str, Any]) -> None:
    w = doc.get("window")
    if w is None:
        print("\nno measurement: the run did not reach the end of its window")
        return
    p, lat, rss, run = doc["params"], doc["latency_ms"], doc["rss_kb"], doc["run"]
    end = doc["server_counters"]["end"]
    delta = doc["server_counters"]["window_delta"]
    burst = doc["burst_ms"]
    n_lat = delta.get("interact_comment_latency_seconds_count")
    srv_lat = 1000 * delta["interact_comment_latency_seconds_sum"] / n_lat if n_lat else None
    fails = doc["failures"]
    rows = [
        ("viewers / senders / rate", f"{p['viewers']:,} / {p['senders']} / {p['rate']:g}/s"),
        ("window", f"{w['seconds']:.1f} s after {p['warmup']:g} s warm-up"),
        ("comments sent in window", f"{w['comments_sent']:,} ({w['send_rate']:.1f}/s)"),
        ("deliveries/s (viewers)", w["deliveries_per_s"]),
        ("expected (rate x viewers)", w["expected_deliveries_per_s"]),
        ("delivery ratio", f"{w['delivery_ratio']:.4f}" if w["delivery_ratio"] else None),
        ("frames/s received", w["frames_per_s"]),
        ("bytes/s received", f"{w['bytes_per_s'] / 1e6:.2f} MB/s"),
        ("comments per frame", w["dms_per_frame"]),
        ("latency p50 ms", lat["p50"]),
        ("latency p90 ms", lat["p90"]),
        ("latency p99 ms", lat["p99"]),
        ("latency max ms", lat["max"]),
        ("latency samples", f"{lat['samples']:,} from {lat['sampled_viewers']} viewers"),
        ("server accept->write mean ms", srv_lat),
        ("tick burst p50/p99/max ms", f"{report.fmt(burst['p50'])} / "
         f"{report.fmt(burst['p99'])} / {report.fmt(burst['max'])} ({burst['bursts']} bursts)"),
        ("server CPU % (1 core = 100)", w["server_cpu_pct"]),
        ("load CPU % (1 core = 100)", w["load_cpu_pct"]),
        (
            "CPU busy / softirq / steal %",
            "  ".join(
                f"{k}: {c['busy_pct']}/{c['softirq_pct']}/{c['steal_pct']}"
                for k, c in sorted(w["cpus"].items())
            ),
        ),
        ("server RSS before / after KB", f"{rss['before']} / {rss['after_connect']}"),
        ("server RSS per connection KB", rss["per_connection_kb"]),
        ("server RSS at end KB", rss["end"]),
        ("all comments delivered", f"{run['viewer_deliveries']:,} of "
         f"{run['expected_viewer_deliveries']:,}; viewers incomplete {run['viewers_incomplete']}"),
        ("acks", ", ".join(f"{k} {v:,}" for k, v in run["acks"].items())),
        ("danmaku dropped (server)", end.get("interact_danmaku_dropped_total")),
        ("slow skipped (server)", end.get("interact_slow_skipped_total")),
        ("slow closed (server)", end.get("interact_slow_closed_total")),
        ("failures", fails["total"] if not fails["total"] else
         f"{fails['total']}: connect {fails['connect']}, closed {fails['closed_or_failed']}"),
        ("server log warnings/errors", doc["server"].get("log_problems")),
    ]  # fmt: skip
    print("\nfanout results")
    print(report.table(rows))
    for line in doc["server"].get("log_problem_lines", [])[:5]:
        print("  server log:", line[:300])
    for note in doc.get("notes", []):
        print("note:", note)
