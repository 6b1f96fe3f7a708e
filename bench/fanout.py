"""Fan-out of one room: V viewers, S senders commenting at a total rate C.

Starts ``python -m interact serve`` (memory engine by default, log level warning) on a
free loopback port pinned to CPU 0 while the load runs pinned to CPU 1 (``bench.harness``),
or a peer (``--target aiohttp|socketio``, ``bench.peers``) the same way, or all three in
turn (``--target all``), or targets a running server with ``--url``. It creates and
starts a room over REST with an operator token (a peer's room is just a name), connects
V viewers over ``--procs`` load processes (``bench.load``), then S senders (separate
connections that also receive), and has the senders comment at C comments/s in total
for a warm-up and then the measured window, evenly spaced (``--arrivals even``, the
default) or at random (``--arrivals poisson``: exponential gaps of mean 1/C drawn from a
generator seeded with ``--seed``, so that comments do not all land at one point of the
server's tick). Each comment's text is ``b<send time in ns>``; a sample of viewers
decodes every frame and records receive time - send time in an HDR histogram, the
others only count frames and comments.

Reported over the window: deliveries/s (comments received by the V viewers per second)
against the expected C x V, latency p50/p90/p99/p99.9/max, frames/s and bytes/s
received, server CPU and the load's CPU, server RSS per connection, the server's own
counters (dropped danmaku, slow-consumer skips and closes), and every failed or closed
viewer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

import aiohttp

from bench import compare, harness, load, report
from bench.client import INTERACT, Counters, WsClient, connect
from bench.load import PROTO, Viewers
from bench.report import pct
from bench.server import Server, cpu_busy, cpu_times, parse_prometheus

HELP = "one room, V viewers, S senders at C comments/s: deliveries/s, latency, RSS, CPU"

# Keys of the run's Redis (--engine redis) go under this prefix.
PREFIX = "bench-fanout:"
VERSIONS = ("interact", "aiohttp", "orjson", "uvloop", "redis", "hdrhistogram", "python-socketio")

ARRIVALS = ("even", "poisson")

# Figures of the side-by-side table of --target all: (label, path in the document).
FIGURES = (
    ("deliveries/s", ("window", "deliveries_per_s")),
    ("delivery ratio", ("window", "delivery_ratio")),
    ("latency p50 ms", ("latency_ms", "p50")),
    ("latency p99 ms", ("latency_ms", "p99")),
    ("latency p99.9 ms", ("latency_ms", "p99.9")),
    ("latency max ms", ("latency_ms", "max")),
    ("server CPU %", ("window", "server_cpu_pct")),
    ("server RSS per connection KB", ("rss_kb", "per_connection_kb")),
    ("handshakes/s", ("connect", "per_s")),
    ("failures", ("failures", "total")),
)

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
    p.add_argument(
        "--arrivals", choices=ARRIVALS, default="even",
        help="comment send times: evenly spaced, or a Poisson process of the same mean rate",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=1, help="seed of --arrivals poisson")
    p.add_argument("--sample", type=int, default=100, help="viewers that decode and time")
    p.add_argument("--drain", type=float, default=5.0, help="max wait for in-flight, s")
    p.add_argument("--ping-interval", type=float, default=30.0, help="idle client ping, s")
    load.add_load_arguments(p)
    harness.add_target_arguments(p, prefix=PREFIX, engine="memory", peers=True)


def main(ns: argparse.Namespace) -> int:
    return compare.main(ns, run, FIGURES)


def run(ns: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """One run against ``ns.target``: the JSON document and the exit status."""
    if min(ns.viewers, ns.senders, ns.procs) < 1 or ns.rate <= 0 or ns.duration <= 0:
        print("fanout: viewers, senders, procs, rate and duration must be positive",
              file=sys.stderr)  # fmt: skip
        return {}, 2
    ns.sample = min(ns.sample, ns.viewers)
    conns = ns.viewers + ns.senders
    try:
        target = harness.launch(ns, name="fanout", connections=conns, prefix=PREFIX, procs=ns.procs)
    except harness.UsageError as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return {}, 2
    result, loop_name = harness.run_load(target, lambda result: _run(ns, target, result))
    params = {
        "viewers": ns.viewers,
        "senders": ns.senders,
        "rate": ns.rate,
        "arrivals": ns.arrivals,
        "seed": ns.seed if ns.arrivals == "poisson" else None,
        "duration": ns.duration,
        "warmup": ns.warmup,
        "sample": ns.sample,
        "drain": ns.drain,
        "procs": ns.procs,
        "url": ns.url,
        "server_args": ns.server_arg,
        "codec": "json",
        "compression": False,
    }
    doc = harness.document("fanout", ns, target, result, loop_name, params, VERSIONS)
    harness.emit(doc, ns, _print_report)
    failed = doc.get("failures", {}).get("total", 1)
    return doc, 0 if "window" in doc and failed == 0 else 1


# -- the run --------------------------------------------------------------------


class Run:
    """Shared state of one run: the viewers, the senders, sends and acks."""

    def __init__(self, ns: argparse.Namespace, viewers: Viewers) -> None:
        self.ns = ns
        self.viewers = viewers
        self.sender_counters = Counters()
        self.senders: list[WsClient] = []
        self.connect_failures: Tally[str] = Tally()
        self.sent = 0
        self.acks: Tally[str] = Tally()
        self.phase = "setup"

    def on_sender(self, client: WsClient, batch: list[dict[str, Any]], now: int) -> None:
        for msg in batch:
            if msg.get("t") == "ack":
                self.acks["ok" if msg.get("ok") else str(msg.get("code"))] += 1

    def acked(self) -> int:
        return sum(self.acks.values())


async def _connect_many(
    run: Any,
    server: Server,
    qs: list[dict[str, str]],
    handlers: list[Any],
    counters: Counters,
    into: list[WsClient],
    proto: str = INTERACT,
) -> None:
    """Connect every query, at most ``--connect-concurrency`` handshakes at once; each
    client is appended to ``into`` once welcomed, each failure counted by reason in
    ``run.connect_failures``."""
    sem = asyncio.Semaphore(run.ns.connect_concurrency)

    async def one(i: int) -> None:
        async with sem:
            try:
                client = await connect(
                    server.host, server.port, qs[i], counters,
                    handler=handlers[i], deadline_s=run.ns.connect_timeout, proto=proto,
                )  # fmt: skip
            except (OSError, ConnectionError, TimeoutError) as exc:
                run.connect_failures[str(exc) or type(exc).__name__] += 1
            else:
                into.append(client)

    await asyncio.gather(*(one(i) for i in range(len(qs))))


async def _progress(run: Run, server: Server, t0: float, timeline: list[dict[str, Any]]) -> None:
    prev_t = time.monotonic()
    prev_v = await run.viewers.snapshot()
    prev_srv = server.cpu_seconds()
    prev_self = run.viewers.cpu_seconds()
    prev_sent = run.sent
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        dt = now - prev_t
        v = await run.viewers.snapshot()
        srv = server.cpu_seconds()
        me = run.viewers.cpu_seconds()
        entry = {
            "t": round(now - t0, 2),
            "phase": run.phase,
            "connected": v["connected"] + len(run.senders),
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
        failed = v["failed"] + sum(1 for c in run.senders if c.failure)
        print(
            f"[{entry['t']:6.1f}s] {run.phase:<8} conns {entry['connected']:>6,}  "
            f"deliveries/s {entry['deliveries_per_s']:>9,.0f}  "
            f"frames/s {entry['frames_per_s']:>7,.0f}  "
            f"recv {entry['bytes_per_s'] / 1e6:6.2f} MB/s  sent/s {entry['sent_per_s']:5.0f}  "
            f"cpu server {pct(entry['server_cpu_pct'])} load {pct(entry['load_cpu_pct'])}  "
            f"rss {report.fmt(entry['server_rss_kb'])} KB  "
            f"failures {failed}",
            flush=True,
        )
        prev_t, prev_v, prev_srv, prev_self, prev_sent = now, v, srv, me, run.sent


async def _pinger(run: Run) -> None:
    """Keep the senders under the server's idle timeout with a rare ping."""
    interval = run.ns.ping_interval
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        for c in run.senders:
            if now - c.last_sent >= interval and c.ok:
                c.send_json({"t": "ping"})


def send_times(arrivals: str, rate: float, seed: int) -> Iterator[float]:
    """Offsets (s) of the comments from the start of sending: n/C for ``even``; for
    ``poisson`` the sums of exponential gaps of mean 1/C, the same for the same seed."""
    if arrivals == "even":
        n = 0
        while True:
            yield n / rate
            n += 1
    rng = random.Random(seed)
    t = 0.0
    while True:
        yield t
        t += rng.expovariate(rate)


async def _send(run: Run, t_start: float, t_stop: float) -> None:
    """Round-robin over the senders on an absolute schedule (``send_times``), so a late
    wake-up does not shift the comments after it."""
    senders = run.senders
    n = 0
    for offset in send_times(run.ns.arrivals, run.ns.rate, run.ns.seed):
        due = t_start + offset
        if due >= t_stop:
            return
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        s = senders[n % len(senders)]
        s.send_json({"t": "dm", "text": f"b{time.time_ns()}", "ref": n})
        run.sent += 1
        n += 1


async def _snapshot(run: Run, server: Server) -> dict[str, Any]:
    viewers = await run.viewers.snapshot()
    return {
        "mono": time.monotonic(),
        "mono_ns": time.monotonic_ns(),
        "wall_ns": time.time_ns(),
        "viewers": viewers,
        "senders": run.sender_counters.snapshot(),
        "sent": run.sent,
        "server_cpu": server.cpu_seconds(),
        "load_cpu": run.viewers.cpu_seconds(),
        "cpus": cpu_times(),
    }


async def server_counters(
    http: aiohttp.ClientSession, server: Server, names: tuple[str, ...] = SERVER_COUNTERS
) -> dict[str, float]:
    """The server's own counters from ``/metrics`` (none for a peer)."""
    try:
        async with http.get(server.base + "/metrics") as r:
            if r.status != 200:
                return {}
            text = await r.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        # A saturated peer may not answer at all; its figures come from the clients.
        return {"error": str(exc) or type(exc).__name__}  # type: ignore[dict-item]
    values = parse_prometheus(text)
    return {k: values[k] for k in names if k in values}


async def _run(ns: argparse.Namespace, target: harness.Target, result: dict[str, Any]) -> dict:
    server, secret = target.server, target.secret
    t0 = time.monotonic()
    result["t0"] = time.time()
    timeline: list[dict[str, Any]] = []
    result["timeline"] = timeline
    async with harness.operator_session(secret) as http:
        room_id = await harness.open_room(http, server.base, "bench fanout", target.kind)
        result["room"] = room_id
        proto = PROTO[target.kind]
        addrs, addr_line = load.source_addresses(server.host, ns.viewers + ns.senders,
                                                 ns.source_addrs)  # fmt: skip
        print(addr_line)
        step = ns.viewers / ns.sample
        spec = load.GroupSpec(
            host=server.host, port=server.port, proto=proto, room=room_id, secret=secret,
            uid_prefix="bv", first=0, count=ns.viewers, source_addrs=tuple(addrs),
            concurrency=ns.connect_concurrency, connect_timeout=ns.connect_timeout,
            ping_interval=ns.ping_interval,
        )  # fmt: skip
        viewers = Viewers(spec, ns.procs, sampled=(int(i * step) for i in range(ns.sample)))
        result["load"] = {"source_addrs": addrs, "source_addrs_note": addr_line,
                          "child_pids": viewers.child_pids}  # fmt: skip
        run = Run(ns, viewers)
        await viewers.start()
        progress = asyncio.create_task(_progress(run, server, t0, timeline))
        pinger = asyncio.create_task(_pinger(run))
        try:
            # -- connect ---------------------------------------------------------
            rss_before = server.rss_kb()
            run.phase = "connect"
            t_conn = time.monotonic()
            conn = await viewers.connect()
            connect_s = time.monotonic() - t_conn
            await asyncio.sleep(0.5)  # let the server settle its joins
            rss_after = server.rss_kb()
            sq = [harness.viewer_query(secret, room_id, f"bs{i}") for i in range(ns.senders)]
            handlers = [run.on_sender] * ns.senders
            await _connect_many(run, server, sq, handlers, run.sender_counters, run.senders,
                                proto)  # fmt: skip
            if not run.senders:
                raise RuntimeError(f"no sender could connect: {dict(run.connect_failures)}")
            n_viewers = conn["connected"]
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
            w0 = await _snapshot(run, server)
            m0 = await server_counters(http, server) if target.kind == "interact" else {}
            await asyncio.sleep(max(0.0, t_stop - time.monotonic()))
            w1 = await _snapshot(run, server)
            await sender
            run.phase = "drain"
            m1 = await server_counters(http, server) if target.kind == "interact" else {}

            # -- drain: wait for acks and deliveries still in flight --------------
            t_drain = time.monotonic()
            while time.monotonic() - t_drain < ns.drain:
                ok = run.acks["ok"]
                got = (await viewers.snapshot())["dms"]
                if (
                    run.acked() >= run.sent
                    and got >= ok * n_viewers
                    and run.sender_counters.dms >= ok * len(run.senders)
                ):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            drain_s = time.monotonic() - t_drain
            rss_end = server.rss_kb()
            m_end = await server_counters(http, server) if target.kind == "interact" else {}
            v_end = await viewers.snapshot()
            fin = await viewers.finish(
                (w0["wall_ns"], w1["wall_ns"]), (w0["mono_ns"], w1["mono_ns"]), run.acks["ok"]
            )
        finally:
            progress.cancel()
            pinger.cancel()
            for task in (progress, pinger):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            senders_failed = Tally(c.failure for c in run.senders if c.failure)
            for c in run.senders:
                c.close()
            await viewers.close()

    # -- figures -------------------------------------------------------------------
    dt = w1["mono"] - w0["mono"]
    dv = {k: w1["viewers"][k] - w0["viewers"][k] for k in ("dms", "frames", "bytes")}
    ds = {k: w1["senders"][k] - w0["senders"][k] for k in w1["senders"]}
    sent_win = w1["sent"] - w0["sent"]
    spread = report.percentiles([b / 1e6 for b in fin["bursts"]], (50, 90, 99))

    def rate(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else 100 * (b - a) / dt

    ok = run.acks["ok"]
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
    if load_cpu is not None and load_cpu > 90 * ns.procs:
        notes.append(
            f"the load generator used {load_cpu:.0f}% of a CPU in the window: it may be what "
            "limits deliveries/s (run it over more processes: --procs)"
        )
    closed = Tally(fin["closed_or_failed"]) + senders_failed
    connect_failures = Tally(fin["connect_failures"]) + run.connect_failures
    failures = {
        "connect": dict(connect_failures),
        "closed_or_failed": dict(closed),
        "total": sum(connect_failures.values()) + sum(closed.values()),
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
            "latency_ms": {
                **fin["latency_ms"],
                "sampled_viewers": ns.sample,
                "histogram": "hdrhistogram, 1 us to 1 h, 3 digits",
            },
            "burst_ms": {**spread, "bursts": len(fin["bursts"])},
            "run": {
                "comments_sent": run.sent,
                "acks": dict(run.acks),
                "viewer_deliveries": v_end["dms"],
                "expected_viewer_deliveries": ok * n_viewers,
                "missing_viewer_deliveries": ok * n_viewers - v_end["dms"],
                "viewers_incomplete": fin["incomplete"],
                "per_viewer_min": fin["per_viewer_min"],
                "per_viewer_max": fin["per_viewer_max"],
                "sender_deliveries": run.sender_counters.dms,
                "expected_sender_deliveries": ok * len(run.senders),
                "pings_from_server": v_end["pings"] + run.sender_counters.pings,
                "drain_s": drain_s,
            },
            "connect": {
                "viewers": n_viewers,
                "senders": len(run.senders),
                "seconds": connect_s,
                "per_s": n_viewers / connect_s if connect_s else None,
                "handshake_ms": conn["handshake_ms"],
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
        if doc.get("error"):
            print("error:", doc["error"])
        return
    p, lat, rss, run = doc["params"], doc["latency_ms"], doc["rss_kb"], doc["run"]
    end = doc["server_counters"]["end"]
    delta = doc["server_counters"]["window_delta"]
    burst = doc["burst_ms"]
    n_lat = delta.get("interact_comment_latency_seconds_count")
    srv_lat = 1000 * delta["interact_comment_latency_seconds_sum"] / n_lat if n_lat else None
    fails = doc["failures"]
    rows = [
        ("target / engine", f"{p['target']} / {p['engine']}"),
        ("viewers / senders / rate", f"{p['viewers']:,} / {p['senders']} / {p['rate']:g}/s"),
        ("arrivals", p.get("arrivals", "even")),
        ("load processes", p["procs"]),
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
        ("latency p99.9 ms", lat["p99.9"]),
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
    print(f"\nfanout results ({doc['target']})")
    print(report.table(rows))
    for line in doc["server"].get("log_problem_lines", [])[:5]:
        print("  server log:", line[:300])
    for note in doc.get("notes", []):
        print("note:", note)
