"""Webhooks: paid orders delivered to a merchant's receiver, and the delivery lag.

The server (``interact serve`` on the Redis engine, with webhooks allowed to loopback)
and its own ``redis-server`` are started and pinned as for ``sale`` (``bench.harness``).
This process runs the merchant's receiver (aiohttp on 127.0.0.1, every delivery's
``webhook-signature`` checked with HMAC-SHA256 as Standard Webhooks specifies, then
deduplicated by ``webhook-id``), registers it over REST for ``order.paid``, opens
``--rooms`` live rooms, and writes ``order_paid`` entries into the rooms' ledger streams
at ``--rate`` a minute, evenly paced, round robin over the rooms: the same ``XADD`` that
``commerce/lua/order_confirm.lua`` makes when a payment is confirmed, so the webhook
path (consumer group, fan-out, queue, signed POST) is measured without the payment path
in front of it.

The *delivery lag* of an event is the receiver's clock when the first copy arrives minus
the millisecond of its ledger entry's stream id (Redis's clock; the same machine). Over
the entries written in the window: p50/p90/p99/p99.9/max, delivered/s, duplicates (the
at-least-once copies; 0 expected without a crash), and the CPU of the server, Redis and
this process. After the window the writer stops and the run waits (``--drain``) until
every entry written has arrived: ``missing`` must be 0.

Baseline, in the same run before the server is loaded (``--baseline-seconds``): the same
receiver driven directly by this process, 8 POSTs in flight: its capacity in POSTs/s and
the round trip of one POST, the floor under any delivery lag.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import harness, report
from bench.server import cpu_busy, cpu_times, proc_rss_kb

HELP = "paid orders/minute through the ledger to a webhook receiver: delivery lag p99"

PREFIX = "bench-webhooks:"
POINTS = (50, 90, 99, 99.9)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=int, default=10_000, help="paid orders a minute")
    p.add_argument("--duration", type=float, default=60.0, help="measured window, s")
    p.add_argument("--warmup", type=float, default=5.0, help="writing before the window, s")
    p.add_argument("--rooms", type=int, default=10, help="rooms the orders are spread over")
    p.add_argument("--drain", type=float, default=30.0, help="max wait for the last, s")
    p.add_argument(
        "--receiver-ms",
        type=float,
        default=0.0,
        help="time the receiver takes per delivery (an ERP doing work), ms",
    )
    p.add_argument(
        "--baseline-seconds",
        type=float,
        default=3.0,
        help="drive the receiver directly for this long first (0: skip)",
    )
    harness.add_target_arguments(p, prefix=PREFIX)


class Receiver:
    """The merchant's endpoint: verify, deduplicate, note the arrival time."""

    def __init__(self, delay_s: float) -> None:
        self.keys: list[bytes] = []
        self.delay_s = delay_s
        self.first: dict[str, float] = {}  # webhook-id -> ms of the first copy
        self.posts = 0
        self.bad = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time() * 1000
        self.posts += 1
        h = request.headers
        msg_id, ts = h.get("webhook-id", ""), h.get("webhook-timestamp", "")
        signed = f"{msg_id}.{ts}.".encode() + body
        wanted = {
            base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode()
            for k in self.keys
        }
        got = {s.partition(",")[2] for s in h.get("webhook-signature", "").split(" ")}
        if not wanted & got:
            self.bad += 1
            return web.Response(status=401)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.first.setdefault(msg_id, now)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def main(ns: argparse.Namespace) -> int:
    problems = []
    if ns.rate < 1 or ns.rooms < 1 or ns.duration <= 0 or ns.warmup < 0 or ns.drain <= 0:
        problems.append("rate, rooms, duration and drain must be positive")
    if ns.engine != "redis" or ns.url:
        problems.append("the outbox is the Redis ledger: --engine redis, no --url")
    if problems:
        for line in problems:
            print(f"webhooks: {line}", file=sys.stderr)
        return 2
    server_args = ["--webhook-allow-http", "on", "--webhook-allow-private", "on"]
    try:
        target = harness.launch(
            ns, name="webhooks", connections=64, prefix=PREFIX, server_args=server_args
        )
    except harness.UsageError as exc:
        print(f"webhooks: {exc}", file=sys.stderr)
        return 2
    git = report.git_state(Path(__file__).resolve().parent.parent)
    result, loop_name = harness.run_load(target, lambda result: _run(ns, target, result))
    result["git"] = git
    params = {k: getattr(ns, k) for k in ("rate", "duration", "warmup", "rooms", "drain")}
    params |= {"receiver_ms": ns.receiver_ms, "baseline_seconds": ns.baseline_seconds}
    doc = harness.document(
        "webhooks",
        ns,
        target,
        result,
        loop_name,
        params,
        ("interact", "aiohttp", "uvloop", "httpx", "redis"),
    )
    harness.emit(doc, ns, _print_report)
    return 0 if "error" not in result and not doc["failures"]["total"] else 1


async def _baseline(receiver: Receiver, seconds: float) -> dict[str, Any]:
    """The receiver alone: 8 signed POSTs in flight from this process."""
    key = b"k" * 32
    receiver.keys.append(key)
    round_trips: list[float] = []
    stop = time.monotonic() + seconds
    url = f"http://127.0.0.1:{receiver.port}/hook"
    n = 0

    async def worker(session: aiohttp.ClientSession, w: int) -> None:
        nonlocal n
        while time.monotonic() < stop:
            n += 1
            msg_id, ts = f"base_{w}_{n}", str(int(time.time()))
            body = b'{"type":"order.paid","data":{}}'
            sig = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
            headers = {
                "webhook-id": msg_id,
                "webhook-timestamp": ts,
                "webhook-signature": "v1," + base64.b64encode(sig).decode(),
            }
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
            round_trips.append((time.perf_counter() - t0) * 1000)

    t0 = time.monotonic()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session, w) for w in range(8)))
    took = time.monotonic() - t0
    receiver.keys.remove(key)
    receiver.first.clear()
    receiver.posts = 0
    return {
        "receiver_posts_per_s": round(len(round_trips) / took, 1) if took else None,
        "direct_post_ms": _rounded(report.percentiles(round_trips, POINTS)),
    }


async def _run(ns: argparse.Namespace, target: harness.Target, result: dict[str, Any]) -> dict:
    import redis.asyncio as aioredis

    result["t0"] = time.time()
    failures: dict[str, int] = {"total": 0}
    result["failures"] = failures
    receiver = Receiver(ns.receiver_ms / 1000)
    await receiver.start()
    if ns.baseline_seconds > 0:
        result["baseline"] = await _baseline(receiver, ns.baseline_seconds)
    base = target.server.base
    client = aioredis.Redis.from_url(target.redis_url or "")
    prefix = PREFIX  # the harness gives the server this prefix last, so it wins
    try:
        async with harness.operator_session(target.secret) as http:
            rooms = [await harness.open_room(http, base, f"webhooks {i}") for i in range(ns.rooms)]
            hook = {"url": f"http://127.0.0.1:{receiver.port}/hook", "events": ["order.paid"]}
            async with http.post(base + "/api/v1/webhooks", json=hook) as r:
                endpoint = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"register: {r.status} {endpoint}")
            receiver.keys.append(base64.b64decode(endpoint["secret"].removeprefix("whsec_")))
            # The server follows new rooms within a second (its room list's refresh).
            await asyncio.sleep(1.5)
            written: dict[str, float] = {}  # webhook-id -> ms of the ledger entry
            window: list[float] = [0.0, 0.0]
            per_s = ns.rate / 60
            t_start = time.monotonic()
            total_s = ns.warmup + ns.duration
            n = 0
            w0: dict[str, Any] = {}
            while True:
                elapsed = time.monotonic() - t_start
                if elapsed >= total_s:
                    break
                if not w0 and elapsed >= ns.warmup:
                    window[0] = time.time() * 1000
                    w0 = _snapshot(target)
                due = int(per_s * elapsed) + 1 - n
                if due > 0:
                    async with client.pipeline(transaction=False) as pipe:
                        for _ in range(due):
                            room = rooms[n % len(rooms)]
                            pipe.xadd(
                                f"{prefix}ledger:{{{room}}}",
                                _paid(room, n),
                                maxlen=100_000,
                                approximate=True,
                            )
                            n += 1
                        ids = await pipe.execute()
                    for k, entry_id in enumerate(ids):
                        entry = entry_id.decode()
                        room = rooms[(n - len(ids) + k) % len(rooms)]
                        written[f"evt_{room}_{entry}"] = float(entry.partition("-")[0])
                await asyncio.sleep(0.005)
            window[1] = time.time() * 1000
            w1 = _snapshot(target)
            dt = (window[1] - window[0]) / 1000
            deadline = time.monotonic() + ns.drain
            while time.monotonic() < deadline and not written.keys() <= receiver.first.keys():  # noqa: ASYNC110 - the receiver is fed by another process
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()
        await receiver.stop()
    in_window = [
        receiver.first[i] - ms
        for i, ms in written.items()
        if window[0] <= ms <= window[1] and i in receiver.first
    ]
    got_in_window = sum(1 for ms in receiver.first.values() if window[0] <= ms <= window[1])
    missing = len(written.keys() - receiver.first.keys())
    failures["missing"] = missing
    failures["bad_signature"] = receiver.bad
    failures["total"] = missing + receiver.bad
    result["window"] = {
        "seconds": round(dt, 2),
        "written_per_min": round(
            sum(window[0] <= ms <= window[1] for ms in written.values()) / dt * 60, 1
        )
        if dt
        else None,
        "delivered_per_min": round(got_in_window / dt * 60, 1) if dt else None,
        "server_cpu_pct": _round(harness.cpu_rate(w0, w1, "server_cpu", dt)),
        "redis_cpu_pct": _round(harness.cpu_rate(w0, w1, "redis_cpu", dt)),
        "load_cpu_pct": _round(harness.cpu_rate(w0, w1, "load_cpu", dt)),
        "cpus": cpu_busy(w0["cpus"], w1["cpus"]),
    }
    result["lag_ms"] = {
        **_rounded(report.percentiles(in_window, POINTS)),
        "samples": len(in_window),
    }
    result["run"] = {
        "written": len(written),
        "delivered": len(receiver.first),
        "posts": receiver.posts,
        "duplicates": receiver.posts - len(receiver.first) - receiver.bad,
        "missing": missing,
        "server_rss_kb": proc_rss_kb(target.server.pid) if target.server.pid else None,
    }
    return result


def _paid(room: str, n: int) -> dict[str, str]:
    """The fields ``order_confirm.lua`` writes for a confirmed payment."""
    order = f"{room}.od{n:016x}"
    return {
        "type": "order_paid",
        "order": order,
        "sale": f"{room}.slbench00001",
        "uid": f"b{n}",
        "qty": "1",
        "amount_fen": "9900",
        "transaction_id": f"bench-{n}",
        "ts": str(time.time_ns() // 1_000_000),
    }


def _snapshot(target: harness.Target) -> dict[str, Any]:
    return {**harness.process_cpu(target.server, target.redis_pid), "cpus": cpu_times()}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _rounded(d: dict[str, float | None]) -> dict[str, float | None]:
    return {k: _round(v) for k, v in d.items()}


def _print_report(doc: dict[str, Any]) -> None:
    w, lag, run = doc.get("window", {}), doc.get("lag_ms", {}), doc.get("run", {})
    rows: list[tuple[str, Any]] = [
        ("written / min (window)", w.get("written_per_min")),
        ("delivered / min (window)", w.get("delivered_per_min")),
        ("lag p50 / p99 / max, ms", f"{lag.get('p50')} / {lag.get('p99')} / {lag.get('max')}"),
        ("lag p99.9, ms", lag.get("p99.9")),
        (
            "written, delivered, missing",
            f"{run.get('written')}, {run.get('delivered')}, {run.get('missing')}",
        ),
        ("duplicates", run.get("duplicates")),
        (
            "server / redis / load CPU %",
            f"{w.get('server_cpu_pct')} / {w.get('redis_cpu_pct')} / {w.get('load_cpu_pct')}",
        ),
    ]
    base = doc.get("baseline")
    if base:
        rows.append(("baseline: receiver POSTs/s", base["receiver_posts_per_s"]))
        d = base["direct_post_ms"]
        rows.append(("baseline: direct POST p50 / p99, ms", f"{d.get('p50')} / {d.get('p99')}"))
    if doc.get("error"):
        rows.append(("error", doc["error"]))
    print()
    print(report.table(rows))
