"""Join: V viewers connecting to one room as fast as the server takes them.

The server (Interact, or a peer with ``--target``) is started and pinned as for
``fanout``: server on CPU 0, load on CPU 1. A live room is opened, every viewer gets its
own signed token (minted before the clock starts, so the server's token check is in
every handshake and the load's signing is not), and the viewers connect over ``--procs``
load processes with at most ``--connect-concurrency`` handshakes in flight in all: TCP
connect, the HTTP Upgrade, the token check and the join, up to the ``welcome`` (for
Socket.IO: the Engine.IO open and the namespace connect). ``--duration`` bounds the
phase: viewers not in by then are failures.

Reported: handshakes/s (viewers in ÷ time from the first connect to the last welcome),
the time until all are in, each handshake's time (p50/p90/p99/p99.9/max, HDR histogram),
the server's CPU over the phase and per handshake, its RSS before and after, and the
failures by reason (refused, reset, HTTP status, close code, timeout, not in by the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import compare, harness, load, report
from bench.hist import summary_row
from bench.load import PROTO, Viewers
from bench.report import pct
from bench.server import Server, cpu_busy, cpu_times

HELP = "V viewers connecting as fast as the server takes them: handshakes/s, time, failures"

PREFIX = "bench-join:"
VERSIONS = (
    "interact", "aiohttp", "orjson", "uvloop", "redis", "PyJWT", "hdrhistogram",
    "python-socketio",
)  # fmt: skip
FIGURES = (
    ("viewers in", ("connect", "connected")),
    ("handshakes/s", ("connect", "handshakes_per_s")),
    ("seconds until all in", ("connect", "seconds_until_all_in")),
    ("handshake p50 ms", ("connect", "handshake_ms", "p50")),
    ("handshake p99 ms", ("connect", "handshake_ms", "p99")),
    ("handshake max ms", ("connect", "handshake_ms", "max")),
    ("server CPU us per handshake", ("connect", "server_cpu_us_per_handshake")),
    ("server RSS per connection KB", ("rss_kb", "per_connection_kb")),
    ("failures", ("failures", "total")),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--viewers", type=int, default=5000, help="viewers (V)")
    p.add_argument("--duration", type=float, default=30.0, help="longest the phase may take, s")
    p.add_argument("--ping-interval", type=float, default=30.0, help="client ping, s")
    load.add_load_arguments(p, concurrency=200)
    harness.add_target_arguments(p, prefix=PREFIX, engine="memory", peers=True)


def main(ns: argparse.Namespace) -> int:
    return compare.main(ns, run, FIGURES)


def run(ns: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """One run against ``ns.target``: the JSON document and the exit status."""
    return crowd_run(ns, "join", _run, _print_report)


# -- what join and idle share ----------------------------------------------------------

Body = Callable[[argparse.Namespace, harness.Target, dict[str, Any]], Any]


def crowd_run(
    ns: argparse.Namespace, name: str, body: Body, show: Callable[[dict[str, Any]], None]
) -> tuple[dict[str, Any], int]:
    """Check the options, launch the target, run ``body`` and write the document."""
    if min(ns.viewers, ns.procs, ns.connect_concurrency) < 1 or ns.duration <= 0:
        print(f"{name}: viewers, procs, concurrency and duration must be positive",
              file=sys.stderr)  # fmt: skip
        return {}, 2
    try:
        target = harness.launch(
            ns, name=name, connections=ns.viewers, prefix=PREFIX, procs=ns.procs
        )
    except harness.UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return {}, 2
    result, loop_name = harness.run_load(target, lambda result: body(ns, target, result))
    params = {k: v for k, v in vars(ns).items() if k not in ("run", "json", "scenario")}
    doc = harness.document(name, ns, target, result, loop_name, params, VERSIONS)
    harness.emit(doc, ns, show)
    failed = doc.get("failures", {}).get("total", 1)
    return doc, 0 if "connect" in doc and failed == 0 else 1


class Phase:
    """The phase a crowd is in, for the progress line."""

    def __init__(self) -> None:
        self.name = "setup"


async def progress(
    phase: Phase, viewers: Viewers, server: Server, t0: float, timeline: list[dict[str, Any]]
) -> None:
    """Once a second: viewers in, handshakes/s, failures, CPU, server RSS."""
    prev_t = time.monotonic()
    prev = await viewers.snapshot()
    prev_srv, prev_load = server.cpu_seconds(), viewers.cpu_seconds()
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        dt = now - prev_t
        cur = await viewers.snapshot()
        srv, me = server.cpu_seconds(), viewers.cpu_seconds()
        entry = {
            "t": round(now - t0, 2),
            "phase": phase.name,
            "connected": cur["connected"],
            "in_flight": cur["in_flight"],
            "joined_per_s": (cur["connected"] - prev["connected"]) / dt,
            "failed": cur["failed"],
            "pings_sent_per_s": (cur["pings_sent"] - prev["pings_sent"]) / dt,
            "server_pings_per_s": (cur["pings"] - prev["pings"]) / dt,
            "server_cpu_pct": None if srv is None or prev_srv is None
            else 100 * (srv - prev_srv) / dt,
            "load_cpu_pct": None if me is None or prev_load is None
            else 100 * (me - prev_load) / dt,
            "server_rss_kb": server.rss_kb(),
        }  # fmt: skip
        timeline.append(entry)
        print(
            f"[{entry['t']:6.1f}s] {phase.name:<7} in {entry['connected']:>7,}  "
            f"in flight {entry['in_flight']:>5,}  joined/s {entry['joined_per_s']:>7,.0f}  "
            f"pings/s {entry['pings_sent_per_s'] + entry['server_pings_per_s']:>6,.0f}  "
            f"cpu server {pct(entry['server_cpu_pct'])} load {pct(entry['load_cpu_pct'])}  "
            f"rss {report.fmt(entry['server_rss_kb'])} KB  failures {entry['failed']}",
            flush=True,
        )
        prev_t, prev, prev_srv, prev_load = now, cur, srv, me


@contextlib.asynccontextmanager
async def crowd(
    ns: argparse.Namespace, target: harness.Target, result: dict[str, Any], uid_prefix: str,
    *, spread_pings: bool = False,
) -> Any:  # fmt: skip
    """A live room, its viewers (not yet connected) and the progress line, as
    ``(viewers, phase)``; everything is closed on the way out."""
    server = target.server
    t0 = time.monotonic()
    result["t0"] = time.time()
    timeline: list[dict[str, Any]] = []
    result["timeline"] = timeline
    async with harness.operator_session(target.secret) as http:
        room_id = await harness.open_room(http, server.base, f"bench {uid_prefix}", target.kind)
    result["room"] = room_id
    addrs, addr_line = load.source_addresses(server.host, ns.viewers, ns.source_addrs)
    print(addr_line)
    spec = load.GroupSpec(
        host=server.host, port=server.port, proto=PROTO[target.kind], room=room_id,
        secret=target.secret, uid_prefix=uid_prefix, first=0, count=ns.viewers,
        source_addrs=tuple(addrs), concurrency=ns.connect_concurrency,
        connect_timeout=ns.connect_timeout, ping_interval=ns.ping_interval,
        spread_pings=spread_pings,
    )  # fmt: skip
    viewers = Viewers(spec, ns.procs)
    result["load"] = {"source_addrs": addrs, "source_addrs_note": addr_line,
                      "child_pids": viewers.child_pids}  # fmt: skip
    phase = Phase()
    task: asyncio.Task[None] | None = None
    try:
        await viewers.start()  # child processes up, tokens minted
        task = asyncio.create_task(progress(phase, viewers, server, t0, timeline))
        yield viewers, phase
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await viewers.close()


def snapshot(server: Server, viewers: Viewers) -> dict[str, Any]:
    return {
        "mono": time.monotonic(),
        "server_cpu": server.cpu_seconds(),
        "server_user_sys": harness.user_sys(server.pid),
        "load_cpu": viewers.cpu_seconds(),
        "cpus": cpu_times(),
        "rss": server.rss_kb(),
    }


async def connect_all(
    ns: argparse.Namespace, server: Server, viewers: Viewers, phase: Phase
) -> dict[str, Any]:
    """Connect every viewer within ``--duration``; the figures of the phase."""
    phase.name = "connect"
    s0 = snapshot(server, viewers)
    conn = await viewers.connect(deadline_mono=s0["mono"] + ns.duration)
    s1 = snapshot(server, viewers)
    dt = s1["mono"] - s0["mono"]
    n = conn["connected"]
    span = (conn["last_ns"] - conn["first_ns"]) / 1e9 if conn["last_ns"] else None
    srv = harness.cpu_rate(s0, s1, "server_cpu", dt)
    return {
        "viewers": ns.viewers,
        "connected": n,
        "seconds": dt,
        "seconds_until_all_in": span if n == ns.viewers else None,
        "handshakes_per_s": n / span if span else None,
        "handshake_ms": conn["handshake_ms"],
        "concurrency": ns.connect_concurrency,
        "server_cpu_pct": srv,
        "server_user_sys_pct": harness.user_sys_pct(s0, s1, dt),
        "server_cpu_us_per_handshake": srv / 100 * dt / n * 1e6 if srv and n else None,
        "load_cpu_pct": harness.cpu_rate(s0, s1, "load_cpu", dt),
        "cpus": cpu_busy(s0["cpus"], s1["cpus"]),
        "failures": conn["failures"],
        "rss_before_kb": s0["rss"],
        "rss_after_kb": s1["rss"],
    }


def per_connection(before: int | None, after: int | None, n: int) -> float | None:
    """Server RSS growth per connection, KB."""
    return (after - before) / n if before and after and n else None


def failures(connect: dict[str, Any], fin: dict[str, Any]) -> dict[str, Any]:
    closed = fin["closed_or_failed"]
    return {
        "connect": connect["failures"],
        "closed_or_failed": closed,
        "total": sum(connect["failures"].values()) + sum(closed.values()),
    }


def connect_rows(c: dict[str, Any]) -> list[tuple[str, Any]]:
    h = c["handshake_ms"]
    return [
        ("viewers in", f"{c['connected']:,} of {c['viewers']:,}"),
        ("handshakes/s", c["handshakes_per_s"]),
        ("seconds until all in", c["seconds_until_all_in"]),
        ("handshake ms p50/p90/p99/p99.9/max", summary_row(h)),
        ("handshakes in flight at most", c["concurrency"]),
        ("server CPU % while connecting", c["server_cpu_pct"]),
        ("server CPU us per handshake", c["server_cpu_us_per_handshake"]),
        ("load CPU % while connecting", c["load_cpu_pct"]),
    ]  # fmt: skip


def cpu_row(cpus: dict[str, Any]) -> tuple[str, str]:
    return ("CPU busy / softirq / steal %", "  ".join(
        f"{k}: {c['busy_pct']}/{c['softirq_pct']}/{c['steal_pct']}" for k, c in sorted(cpus.items())
    ))  # fmt: skip


def tail_rows(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    f = doc["failures"]
    return [
        ("failures", f["total"] if not f["total"] else
         f"{f['total']}: connect {f['connect']}, closed {f['closed_or_failed']}"),
        ("server log warnings/errors", doc["server"].get("log_problems")),
    ]  # fmt: skip


def print_notes(doc: dict[str, Any]) -> None:
    for line in doc["server"].get("log_problem_lines", [])[:5]:
        print("  server log:", line[:300])
    for note in doc.get("notes", []):
        print("note:", note)


# -- join --------------------------------------------------------------------------


async def _run(ns: argparse.Namespace, target: harness.Target, result: dict[str, Any]) -> dict:
    server = target.server
    async with crowd(ns, target, result, "jv") as (viewers, phase):
        c = await connect_all(ns, server, viewers, phase)
        print(
            f"{c['connected']:,} of {ns.viewers:,} viewers in after {c['seconds']:.1f}s",
            flush=True,
        )
        await asyncio.sleep(0.5)  # the server settles its joins
        rss_after = server.rss_kb()
        phase.name = "close"
        fin = await viewers.finish()
    before = c["rss_before_kb"]
    result.update(
        connect=c,
        rss_kb={
            "before": before,
            "after_connect": rss_after,
            "per_connection_kb": per_connection(before, rss_after, c["connected"]),
        },
        failures=failures(c, fin),
    )
    return result


def _print_report(doc: dict[str, Any]) -> None:
    c = doc.get("connect")
    if c is None:
        print("\nno measurement: the run did not finish connecting")
        if doc.get("error"):
            print("error:", doc["error"])
        return
    p, rss = doc["params"], doc["rss_kb"]
    n_addrs = len(doc["load"].get("source_addrs") or []) or 1
    rows = [
        ("target / engine", f"{p['target']} / {p['engine']}"),
        ("load processes / source addrs", f"{p['procs']} / {n_addrs}"),
        *connect_rows(c),
        cpu_row(c["cpus"]),
        ("server RSS before / after KB", f"{rss['before']} / {rss['after_connect']}"),
        ("server RSS per connection KB", rss["per_connection_kb"]),
        *tail_rows(doc),
    ]  # fmt: skip
    print(f"\njoin results ({doc['target']})")
    print(report.table(rows))
    print_notes(doc)
