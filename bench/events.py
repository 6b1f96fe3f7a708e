"""Client events: ``POST /rooms/{id}/events`` ingest, events/s per server process.

The server (``interact serve`` on the Redis engine by default) and its own
``redis-server`` are started and pinned as for ``sale`` (``bench.harness``). This process
opens one live room and signs ``--users`` viewer tokens; ``--clients`` concurrent HTTP
clients (keep-alive connections) then post batches of ``--batch`` events (exposure,
product_view, product_click in turn, each with a fresh id) for ``--duration`` seconds
after ``--warmup``, each request as the next user in rotation, so that every user stays
under the endpoint's per-user rate (20 events/s, bursts of 200) and the server, not the
limit, is what is measured. Every event passes the real path: the token, the JSON
bounds, the per-user rate limit (Redis), the dedupe claim of its id (Redis), the
in-memory recorder, and the hub's per-tick batch into the audience store (Redis).

Figures: accepted events/s in the window, requests/s, request latency p50/p99, the CPU
of the server and of Redis. Check: once the load stops, the room's ``exposure_pv +
product_view_pv + product_click_pv`` (``GET /analytics``) must equal every event the
server acknowledged (none lost, none counted twice), and no request may fail.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import harness, report
from bench.server import cpu_busy, cpu_times, proc_cpu_seconds
from interact import tokens

HELP = "client events through POST /rooms/{id}/events: events/s per process"
PREFIX = "bench-events:"
KINDS = ("exposure", "product_view", "product_click")
POINTS = (50, 90, 99)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients")
    p.add_argument("--users", type=int, default=10_000, help="users the requests rotate over")
    p.add_argument("--batch", type=int, default=100, help="events per request (max 100)")
    p.add_argument("--duration", type=float, default=20.0, help="measured window, s")
    p.add_argument("--warmup", type=float, default=3.0, help="load before the window, s")
    harness.add_target_arguments(p, prefix=PREFIX)


def main(ns: argparse.Namespace) -> int:
    if not (ns.clients >= 1 and ns.users >= 1 and 1 <= ns.batch <= 100 and ns.duration > 0):
        print("events: clients, users, duration positive; batch 1 to 100", file=sys.stderr)
        return 2
    try:
        target = harness.launch(ns, name="events", connections=ns.clients + 16, prefix=PREFIX)
    except harness.UsageError as exc:
        print(f"events: {exc}", file=sys.stderr)
        return 2
    git = report.git_state(Path(__file__).resolve().parent.parent)
    result, loop_name = harness.run_load(target, lambda result: _run(ns, target, result))
    result["git"] = git
    params = {k: getattr(ns, k) for k in ("clients", "users", "batch", "duration", "warmup")}
    doc = harness.document(
        "events", ns, target, result, loop_name, params, ("interact", "aiohttp", "uvloop", "redis")
    )
    harness.emit(doc, ns, _print_report)
    ok = "error" not in result and not doc["failures"]["total"] and doc["correct"]["ok"]
    return 0 if ok else 1


async def _run(ns: argparse.Namespace, target: harness.Target, result: dict[str, Any]) -> dict:
    result["t0"] = time.time()
    failures: dict[str, int] = {"total": 0}
    result["failures"] = failures
    base = target.server.base
    async with harness.operator_session(target.secret) as http:
        room = await harness.open_room(http, base, "bench events")
    auth = [
        "Bearer "
        + tokens.issue(target.secret, tokens.User(f"u{i}", f"u{i}", tokens.Role.VIEWER), 24 * 3600)
        for i in range(ns.users)
    ]
    url = f"{base}/api/v1/rooms/{room}/events"
    users = itertools.cycle(range(ns.users))
    seq = itertools.count()
    kinds = itertools.cycle(KINDS)
    accepted = [0]
    window = {"accepted": 0, "requests": 0}
    latencies: list[float] = []
    measuring = [False]
    stop_at = time.monotonic() + ns.warmup + ns.duration

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            user = next(users)
            events = [{"id": f"e{next(seq)}", "type": next(kinds)} for _ in range(ns.batch)]
            data = orjson.dumps({"events": events})
            headers = {"Authorization": auth[user], "Content-Type": "application/json"}
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=data, headers=headers) as r:
                    body = await r.json()
                    if r.status != 202:
                        failures["total"] += 1
                        failures[str(r.status)] = failures.get(str(r.status), 0) + 1
                        continue
            except (aiohttp.ClientError, TimeoutError):
                failures["total"] += 1
                failures["network"] = failures.get("network", 0) + 1
                continue
            accepted[0] += body["accepted"]
            if measuring[0]:
                window["accepted"] += body["accepted"]
                window["requests"] += 1
                latencies.append((time.perf_counter() - t0) * 1000)

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(client(session)) for _ in range(ns.clients)]
        await asyncio.sleep(ns.warmup)
        measuring[0] = True
        pid = target.server.pid
        c0, r0 = proc_cpu_seconds(pid) if pid else None, await harness.redis_info(target.redis_url)
        j0 = cpu_times()
        rp = target.redis_pid
        rc0 = proc_cpu_seconds(rp) if rp else None
        t0 = time.monotonic()
        await asyncio.sleep(ns.duration)
        measuring[0] = False
        dt = time.monotonic() - t0
        c1, r1 = proc_cpu_seconds(pid) if pid else None, await harness.redis_info(target.redis_url)
        j1 = cpu_times()
        rc1 = proc_cpu_seconds(rp) if rp else None
        await asyncio.gather(*tasks)
    server_cpu = None
    if c0 is not None and c1 is not None:
        server_cpu = round((c1 - c0) / dt * 100, 1)
    result["window"] = {
        "seconds": round(dt, 2),
        "events_per_s": round(window["accepted"] / dt),
        "requests_per_s": round(window["requests"] / dt, 1),
        "latency_ms": report.percentiles(latencies, POINTS),
        "server_cpu_pct": server_cpu,
        "redis_cpu_pct": None if rc0 is None or rc1 is None else round((rc1 - rc0) / dt * 100, 1),
        "redis": harness.redis_delta(r0, r1, dt),
        "cpus": cpu_busy(j0, j1),
    }
    # Every acknowledged event shows in the room's counters once the hub has flushed.
    counted = -1
    deadline = time.monotonic() + 15
    async with harness.operator_session(target.secret) as http:
        while time.monotonic() < deadline:
            async with http.get(f"{base}/api/v1/rooms/{room}/analytics") as r:
                f = await r.json()
            counted = f["exposure_pv"] + f["product_view_pv"] + f["product_click_pv"]
            if counted == accepted[0]:
                break
            await asyncio.sleep(0.2)
    problems = [] if counted == accepted[0] else [f"counted {counted} of {accepted[0]} accepted"]
    result["run"] = {"accepted": accepted[0], "counted": counted}
    result["correct"] = {"ok": not problems, "problems": problems}
    return result


def _print_report(doc: dict[str, Any]) -> None:
    w = doc.get("window") or {}
    lat = w.get("latency_ms") or {}
    print(
        report.table(
            [
                ("events/s (accepted, window)", w.get("events_per_s")),
                ("requests/s", w.get("requests_per_s")),
                ("latency p50 ms", lat.get("p50")),
                ("latency p99 ms", lat.get("p99")),
                ("server CPU %", w.get("server_cpu_pct")),
                ("accepted / counted", f"{doc['run']['accepted']} / {doc['run']['counted']}"
                 if "run" in doc else "-"),
                ("failures", doc["failures"]["total"]),
            ]
        )
    )  # fmt: skip
