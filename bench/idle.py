"""Idle: V viewers held in one room for ``--duration``, doing nothing but the heartbeat.

The server (Interact, or a peer with ``--target``) is started and pinned as for
``fanout``. Its RSS is read from ``/proc`` (the server pid and any worker processes
below it) before a viewer connects; then the viewers connect as in ``join`` (each with
its own signed token; at most ``--duration`` for it) and are held for ``--duration``
seconds. They keep the protocol's heartbeat: on Interact and the aiohttp peer each sends
``{"t":"ping"}`` every ``--ping-interval`` (30 s, the interval docs/protocol.md asks of
clients), the first pings spread evenly over one interval as a steady crowd's would be;
a Socket.IO client answers the server's Engine.IO pings (every 25 s by default).

Reported: server RSS per connection (after connecting and at the end of the hold, less
the baseline, ÷ viewers), the server's CPU while the crowd is idle (whole-core %, and per
1,000 viewers), heartbeats sent and answered, and the failures by reason (a viewer the
server closed, e.g. for the idle timeout, counts).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench import compare, harness, load, report
from bench.join import (
    VERSIONS,
    connect_all,
    connect_rows,
    cpu_row,
    crowd,
    crowd_run,
    failures,
    per_connection,
    print_notes,
    snapshot,
    tail_rows,
)

HELP = "V idle viewers held for D s with heartbeats: server RSS per connection, idle CPU"

FIGURES = (
    ("viewers held", ("hold", "viewers")),
    ("server RSS per connection KB", ("rss_kb", "per_connection_kb")),
    ("... at the end of the hold KB", ("rss_kb", "per_connection_end_kb")),
    ("server CPU % while idle", ("hold", "server_cpu_pct")),
    ("server CPU % per 1,000 viewers", ("hold", "server_cpu_pct_per_1000")),
    ("handshakes/s", ("connect", "handshakes_per_s")),
    ("failures", ("failures", "total")),
)

__all__ = ["VERSIONS", "add_arguments", "main", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--viewers", type=int, default=5000, help="viewers (V)")
    p.add_argument("--duration", type=float, default=30.0, help="hold, s (D)")
    p.add_argument(
        "--ping-interval", type=float, default=30.0,
        help="each viewer's ping, s (Interact's protocol: 30)",
    )  # fmt: skip
    p.add_argument("--settle", type=float, default=1.0, help="wait after connecting, s")
    load.add_load_arguments(p, concurrency=200)
    harness.add_target_arguments(p, prefix="bench-idle:", engine="memory", peers=True)


def main(ns: argparse.Namespace) -> int:
    return compare.main(ns, run, FIGURES)


def run(ns: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """One run against ``ns.target``: the JSON document and the exit status."""
    return crowd_run(ns, "idle", _run, _print_report)


async def _run(ns: argparse.Namespace, target: harness.Target, result: dict[str, Any]) -> dict:
    server = target.server
    async with crowd(ns, target, result, "iv", spread_pings=True) as (viewers, phase):
        c = await connect_all(ns, server, viewers, phase)
        print(f"{c['connected']:,} of {ns.viewers:,} viewers in after {c['seconds']:.1f}s; "
              f"holding them for {ns.duration:g}s", flush=True)  # fmt: skip
        phase.name = "settle"
        await asyncio.sleep(ns.settle)
        phase.name = "hold"
        v0 = await viewers.snapshot()
        s0 = snapshot(server, viewers)
        await asyncio.sleep(ns.duration)
        s1 = snapshot(server, viewers)
        v1 = await viewers.snapshot()
        phase.name = "close"
        fin = await viewers.finish()
    dt = s1["mono"] - s0["mono"]
    n = c["connected"]
    srv = harness.cpu_rate(s0, s1, "server_cpu", dt)
    before = c["rss_before_kb"]
    result.update(
        connect=c,
        hold={
            "seconds": dt,
            "viewers": v1["connected"],
            "server_cpu_pct": srv,
            "server_user_sys_pct": harness.user_sys_pct(s0, s1, dt),
            "server_cpu_pct_per_1000": srv * 1000 / n if srv is not None and n else None,
            "load_cpu_pct": harness.cpu_rate(s0, s1, "load_cpu", dt),
            "cpus": cpu_busy_of(s0, s1),
            "pings_sent": v1["pings_sent"] - v0["pings_sent"],
            "server_pings": v1["pings"] - v0["pings"],
            "frames_received": v1["frames"] - v0["frames"],
            "bytes_received": v1["bytes"] - v0["bytes"],
        },
        rss_kb={
            "before": before,
            "after_connect": s0["rss"],
            "end": s1["rss"],
            "per_connection_kb": per_connection(before, s0["rss"], n),
            "per_connection_end_kb": per_connection(before, s1["rss"], n),
            "read_from": "VmRSS of the server pid and its worker processes (/proc)",
        },
        failures=failures(c, fin),
    )
    return result


def cpu_busy_of(s0: dict[str, Any], s1: dict[str, Any]) -> dict[str, Any]:
    from bench.server import cpu_busy

    return cpu_busy(s0["cpus"], s1["cpus"])


def _print_report(doc: dict[str, Any]) -> None:
    h = doc.get("hold")
    if h is None:
        print("\nno measurement: the run did not reach the end of its hold")
        if doc.get("error"):
            print("error:", doc["error"])
        return
    p, rss, c = doc["params"], doc["rss_kb"], doc["connect"]
    rows = [
        ("target / engine", f"{p['target']} / {p['engine']}"),
        ("load processes", p["procs"]),
        *connect_rows(c),
        ("hold", f"{h['seconds']:.1f} s, {h['viewers']:,} viewers"),
        ("server RSS before / after / end KB",
         f"{rss['before']} / {rss['after_connect']} / {rss['end']}"),
        ("server RSS per connection KB", rss["per_connection_kb"]),
        ("... at the end of the hold KB", rss["per_connection_end_kb"]),
        ("server CPU % while idle", h["server_cpu_pct"]),
        ("server CPU % per 1,000 viewers", h["server_cpu_pct_per_1000"]),
        ("server CPU user / sys %", " / ".join(map(str, h["server_user_sys_pct"] or ["-"]))),
        ("load CPU % while idle", h["load_cpu_pct"]),
        cpu_row(h["cpus"]),
        ("heartbeats: pings sent / server pings", f"{h['pings_sent']:,} / {h['server_pings']:,}"),
        ("frames received while idle", h["frames_received"]),
        *tail_rows(doc),
    ]  # fmt: skip
    print(f"\nidle results ({doc['target']})")
    print(report.table(rows))
    print_notes(doc)
