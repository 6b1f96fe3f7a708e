"""Sale: flash-sale reservations over REST as fast as one server process answers them.

The server, its own ``redis-server`` (``--engine redis``) and this load process are
started and pinned as for ``storm`` (``bench.harness``): server on CPU 0, Redis and load
on CPU 1 by default; or ``--url`` targets a running server. The script creates and
starts a room over REST with an operator token, then opens one keep-alive HTTP/1.1
connection per buyer (N buyers, each its own uid ``sb0``... with its own viewer token)
with the lean client of ``bench/httpclient.py``, and runs a closed loop: each buyer has
one request in flight and sends the next from the read callback as soon as the answer
arrives.

A *reservation attempt* is ``POST /api/v1/sales/{id}/orders`` with ``{"qty": Q}`` and a
fresh ``Idempotency-Key`` (``uid-n``). Sales are created over REST ahead of the furthest
buyer (``--ahead``), each with ``--stock`` units, a per-buyer ``--limit`` and a long
``--reserve-seconds`` (no order expires during a run). Every buyer walks the sales in
order: it reserves on its sale until it holds as many units as the limit allows, or is
answered ``sold_out`` (or ``limit_reached``), then moves to the next sale. With the
default stock (100,000) and limit (2) a sale takes N × 2 units and every attempt
succeeds; with a small ``--stock`` (a contention run) the first answers take the stock
and every other buyer is answered ``sold_out`` once per sale.

``--pay-ratio R`` confirms that share of the reserved orders (deterministically, every
1/R-th) through the dev payment URL, ``POST /api/v1/pay/dev/{order}/confirm`` with the
buyer's token, as the buyer's next request; on Redis the server is started with
``--pay-provider dev`` for it.

Two modes: ``--duration D`` (a warm-up, then a D-second window) or ``--orders N`` (run
until N reservation attempts are answered; the window is the whole run).

Reported: attempts/s, reservations/s (201s), answers by code (sold_out, limit_reached),
confirmations/s, latency from send to answer (p50/p90/p99/p99.9/max), the CPU of the
server (and per attempt), of Redis and of this process, Redis's own command figures,
failures; and the CORRECTNESS read back after the run: for every sale
``GET /api/v1/sales/{id}`` holds ``left + reserved + paid + refunded == stock``,
``reserved + paid`` equals the units the 201 answers acknowledged and ``paid`` the units
confirmed; no buyer holds more than the limit of a sale; and (unless ``--no-scan``)
every order the server lists for the room (``GET /api/v1/rooms/{room}/orders``) is one
that was acknowledged, with the same buyer, sale, qty and status, and none is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from array import array
from collections import Counter as Tally
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import harness, httpclient, report
from bench.report import pct as _pct
from bench.server import Server, cpu_busy, cpu_times, proc_rss_kb
from interact import tokens

HELP = "flash-sale reservation attempts/s through one server over REST: rate, latency, correctness"

# Keys of the run's Redis go under this prefix.
PREFIX = "bench-sale:"
# The server's bounds (commerce.orders): stock, per-buyer limit, reservation hold.
MAX_STOCK = 10_000_000
MAX_LIMIT = 10_000
MAX_RESERVE_S = 24 * 3600
# Orders per page when the room's orders are read back.
SCAN_PAGE = 500

RESERVE, PAY, WARM = 1, 2, 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--buyers", type=int, default=2000, help="buyers (N), one connection each")
    p.add_argument("--duration", type=float, default=15.0, help="measured window, s (D)")
    p.add_argument("--warmup", type=float, default=3.0, help="firing before the window, s")
    p.add_argument(
        "--orders", type=int, default=0, metavar="N",
        help="instead of --duration: run until N reservation attempts are answered "
        "(the window is the whole run, no warm-up)",
    )  # fmt: skip
    p.add_argument("--stock", type=int, default=100_000, help="units per sale (S)")
    p.add_argument("--limit", type=int, default=2, help="units per buyer per sale (L)")
    p.add_argument("--qty", type=int, default=1, help="units per reservation (Q)")
    p.add_argument("--price-fen", type=int, default=100, help="price per unit, fen")
    p.add_argument(
        "--reserve-seconds", type=int, default=MAX_RESERVE_S,
        help="how long an unpaid order holds its units (no expiry during a run)",
    )  # fmt: skip
    p.add_argument(
        "--pay-ratio", type=float, default=0.0,
        help="share of reserved orders the buyer confirms (dev payment URL), 0 to 1",
    )  # fmt: skip
    p.add_argument("--ahead", type=int, default=4, help="sales created ahead of the buyers")
    p.add_argument("--drain", type=float, default=10.0, help="max wait for in-flight, s")
    p.add_argument(
        "--no-scan", action="store_true",
        help="skip reading back every order of the room (the sales are still checked)",
    )  # fmt: skip
    p.add_argument("--connect-concurrency", type=int, default=200, help="connects at once")
    harness.add_target_arguments(p, prefix=PREFIX)


# -- the command ------------------------------------------------------------------


def main(ns: argparse.Namespace) -> int:
    problems = []
    if ns.buyers < 1 or ns.ahead < 1 or ns.orders < 0:
        problems.append("buyers and ahead must be positive, orders not negative")
    if not ns.orders and ns.duration <= 0:
        problems.append("duration must be positive")
    if not 1 <= ns.stock <= MAX_STOCK or not 1 <= ns.limit <= MAX_LIMIT:
        problems.append(f"stock must be 1..{MAX_STOCK:,}, limit 1..{MAX_LIMIT:,}")
    if not 1 <= ns.qty <= ns.limit:
        problems.append("qty must be from 1 to the limit")
    if not 1 <= ns.reserve_seconds <= MAX_RESERVE_S or ns.price_fen < 1:
        problems.append(f"reserve-seconds must be 1..{MAX_RESERVE_S}, price-fen positive")
    if not 0 <= ns.pay_ratio <= 1:
        problems.append("pay-ratio must be from 0 to 1")
    if ns.orders and ns.profile:
        problems.append("--profile needs --duration (py-spy records for a fixed time)")
    if problems:
        for line in problems:
            print(f"sale: {line}", file=sys.stderr)
        return 2
    server_args = []
    if ns.pay_ratio > 0 and ns.engine == "redis":
        server_args = ["--pay-provider", "dev"]  # the memory engine's default
    try:
        target = harness.launch(
            ns, name="sale", connections=ns.buyers, prefix=PREFIX, server_args=server_args
        )
    except harness.UsageError as exc:
        print(f"sale: {exc}", file=sys.stderr)
        return 2
    git = report.git_state(Path(__file__).resolve().parent.parent)  # what the server runs
    result, loop_name = harness.run_load(target, lambda result: _run(ns, target, result))
    doc = {
        "scenario": "sale",
        "command": report.command_line(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.get("t0", 0))),
        "params": {
            "mode": "orders" if ns.orders else "duration",
            "engine": target.engine,
            "buyers": ns.buyers,
            "orders": ns.orders or None,
            "duration": None if ns.orders else ns.duration,
            "warmup": 0.0 if ns.orders else ns.warmup,
            "stock": ns.stock,
            "limit": ns.limit,
            "qty": ns.qty,
            "price_fen": ns.price_fen,
            "reserve_seconds": ns.reserve_seconds,
            "pay_ratio": ns.pay_ratio,
            "ahead": ns.ahead,
            "drain": ns.drain,
            "scan": not ns.no_scan,
            "url": ns.url,
            "server_args": server_args + ns.server_arg,
            "in_flight_per_buyer": 1,
            "profile": ns.profile,
        },
        "load": {
            "cpus": target.affinity,
            "pinned": target.pin,
            "loop": loop_name,
            "client": "bench.httpclient (raw asyncio protocol, HTTP/1.1 keep-alive)",
            "nofile": list(target.nofile),
        },
        "machine": report.machine(),
        "git": git,
        "versions": report.versions(
            "interact", "aiohttp", "orjson", "uvloop", "redis", "hiredis", "PyJWT"
        ),
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


class SaleRec:
    """A sale as created and what its buyers were answered."""

    __slots__ = (
        "acked_units", "answers", "held", "id", "index", "orders", "paid", "paid_units",
        "path", "stock",
    )  # fmt: skip

    def __init__(self, index: int, sale_id: str, stock: int) -> None:
        self.index = index
        self.id = sale_id
        self.stock = stock
        self.path = f"/api/v1/sales/{sale_id}/orders".encode()
        self.answers: Tally[str] = Tally()
        self.held: dict[int, int] = {}  # buyer index -> units acknowledged (201s)
        self.orders: dict[str, tuple[int, int]] = {}  # order id -> (buyer index, qty)
        self.paid: set[str] = set()  # order ids confirmed paid
        self.acked_units = 0
        self.paid_units = 0


class Buyer:
    """One buyer's closed loop: its sale, its units there, its request in flight."""

    __slots__ = (
        "conn", "cur", "head", "held", "idx", "kind", "pay_order", "pay_qty", "sent_ns",
        "seq", "uid", "uidb",
    )  # fmt: skip

    def __init__(self, idx: int, uid: str, head: bytes) -> None:
        self.idx = idx
        self.uid = uid
        self.uidb = uid.encode()
        self.head = head  # Host, Authorization, Content-Type lines
        self.conn: httpclient.HttpConn | None = None
        self.cur = 0  # index of its sale
        self.held = 0  # units acknowledged on that sale
        self.seq = 0
        self.kind = 0  # RESERVE or PAY in flight, 0 for none
        self.sent_ns = 0
        self.pay_order = ""
        self.pay_qty = 0


class Run:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.qty = ns.qty
        self.limit = ns.limit
        self.body_tail = b'Content-Length: %d\r\n\r\n{"qty":%d}' % (
            len(b'{"qty":%d}' % ns.qty), ns.qty,
        )  # fmt: skip
        self.budget: int | None = ns.orders or None
        self.sales: list[SaleRec] = []
        self.buyers: list[Buyer] = []
        self.parked: list[Buyer] = []
        self.firing = False
        self.phase = "setup"
        self.max_cur = 0
        self.need_sale = asyncio.Event()
        self.done = asyncio.Event()
        self.inflight = 0
        self.warm_left = 0  # buyers whose first GET /healthz is not answered yet
        self.warmed = asyncio.Event()
        # Reservation attempts: sent, answered, answers by code ("reserved" for a 201).
        self.sent = 0
        self.answered = 0
        self.reserved = 0
        self.units = 0
        self.answers: Tally[str] = Tally()
        # Confirmations (dev payment).
        self.pay_acc = 0.0
        self.confirms_sent = 0
        self.confirms = 0
        self.confirmed = 0
        self.stalls = 0  # a buyer that had to wait for the next sale
        self.replays = 0  # 201s marked Idempotent-Replayed (every key is fresh: none)
        self.errors: Tally[str] = Tally()
        self.connect_failures: Tally[str] = Tally()
        self.lat_sent = array("q")  # send time (time_ns) of every answered attempt
        self.lat_ns = array("q")
        self.pay_lat_sent = array("q")
        self.pay_lat_ns = array("q")

    # -- requests (called from the read callback) -------------------------------

    def fire(self, b: Buyer) -> None:
        sale = self.sales[b.cur]
        b.seq += 1
        raw = b"POST %s HTTP/1.1\r\n%sIdempotency-Key: %s-%d\r\n%s" % (
            sale.path, b.head, b.uidb, b.seq, self.body_tail,
        )  # fmt: skip
        b.kind = RESERVE
        b.sent_ns = time.time_ns()
        assert b.conn is not None
        if b.conn.send(raw):
            self.sent += 1
            self.inflight += 1
        else:
            b.kind = 0

    def fire_pay(self, b: Buyer) -> None:
        raw = b"POST /api/v1/pay/dev/%s/confirm HTTP/1.1\r\n%sContent-Length: 0\r\n\r\n" % (
            b.pay_order.encode(), b.head,
        )  # fmt: skip
        b.kind = PAY
        b.sent_ns = time.time_ns()
        assert b.conn is not None
        if b.conn.send(raw):
            self.confirms_sent += 1
            self.inflight += 1
        else:
            b.kind = 0

    def next(self, b: Buyer) -> None:
        """After an answer: the same sale again, the next sale, or stop."""
        if not self.firing:
            return
        if self.budget is not None and self.sent >= self.budget:
            return
        if b.held + self.qty > self.limit:
            self.advance(b)
        else:
            self.fire(b)

    def advance(self, b: Buyer) -> None:
        nxt = b.cur + 1
        b.cur = nxt
        b.held = 0
        if nxt > self.max_cur:
            self.max_cur = nxt
        if nxt + self.ns.ahead >= len(self.sales):
            self.need_sale.set()
        if not self.firing or (self.budget is not None and self.sent >= self.budget):
            return
        if nxt < len(self.sales):
            self.fire(b)
        else:
            self.stalls += 1
            self.parked.append(b)

    def resume_parked(self) -> None:
        parked, self.parked = self.parked, []
        for b in parked:
            if b.cur < len(self.sales):
                self.next(b)
            else:
                self.parked.append(b)

    # -- answers ------------------------------------------------------------------

    def on_answer(
        self, conn: httpclient.HttpConn, status: int, head: bytes, body: bytes, now: int
    ) -> None:
        b: Buyer = conn.owner  # type: ignore[assignment]
        kind = b.kind
        if not kind:
            self.errors["an answer with no request in flight"] += 1
            return
        b.kind = 0
        if kind == WARM:
            if status != 200:
                self.errors[f"GET /healthz answered {status}"] += 1
            self.warm_left -= 1
            if not self.warm_left:
                self.warmed.set()
            return
        self.inflight -= 1
        if kind == RESERVE:
            self._reserve_answer(b, status, head, body, now)
        else:
            self._pay_answer(b, status, body, now)
        if self.budget is not None and self.sent >= self.budget and not self.inflight:
            self.done.set()

    def _reserve_answer(self, b: Buyer, status: int, head: bytes, body: bytes, now: int) -> None:
        self.lat_sent.append(b.sent_ns)
        self.lat_ns.append(now - b.sent_ns)
        self.answered += 1
        sale = self.sales[b.cur]
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if status == 201 and isinstance(data, dict):
            oid, qty = data.get("id"), data.get("qty")
            if b"\r\nidempotent-replayed:" in head:
                self.replays += 1
            if (
                not isinstance(oid, str) or qty != self.qty or data.get("uid") != b.uid
                or data.get("sale") != sale.id or data.get("status") != "reserved"
                or oid in sale.orders
            ):  # fmt: skip
                self.errors["a 201 that does not match its request"] += 1
            if isinstance(oid, str) and isinstance(qty, int):
                sale.orders[oid] = (b.idx, qty)
                sale.acked_units += qty
                sale.held[b.idx] = sale.held.get(b.idx, 0) + qty
                b.held += qty
                self.units += qty
            self.reserved += 1
            sale.answers["reserved"] += 1
            self.answers["reserved"] += 1
            ratio = self.ns.pay_ratio
            if ratio and isinstance(oid, str) and self.firing:
                self.pay_acc += ratio
                if self.pay_acc >= 1.0 - 1e-9:
                    self.pay_acc -= 1.0
                    b.pay_order, b.pay_qty = oid, int(qty or 0)
                    self.fire_pay(b)
                    return
            self.next(b)
            return
        code = _error_code(data) or f"http_{status}"
        sale.answers[code] += 1
        self.answers[code] += 1
        if status == 409 and code in ("sold_out", "limit_reached"):
            self.advance(b)
            return
        self.errors[f"reserve answered {status} {code}"] += 1
        self.next(b)  # the same sale again, with a fresh key

    def _pay_answer(self, b: Buyer, status: int, body: bytes, now: int) -> None:
        self.pay_lat_sent.append(b.sent_ns)
        self.pay_lat_ns.append(now - b.sent_ns)
        self.confirms += 1
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if (
            status == 200 and isinstance(data, dict) and data.get("status") == "paid"
            and data.get("id") == b.pay_order
        ):  # fmt: skip
            sale = self.sales[b.cur]
            if b.pay_order in sale.orders and b.pay_order not in sale.paid:
                sale.paid.add(b.pay_order)
                sale.paid_units += b.pay_qty
                self.confirmed += 1
            else:
                self.errors["a confirmation of an unknown or paid order"] += 1
        else:
            self.errors[f"confirm answered {status} {_error_code(data) or ''}".strip()] += 1
        self.next(b)

    # -- figures -----------------------------------------------------------------

    def snapshot(self, server: Server, redis_pid: int | None) -> dict[str, Any]:
        return {
            "mono": time.monotonic(),
            "wall_ns": time.time_ns(),
            "answered": self.answered,
            "reserved": self.reserved,
            "units": self.units,
            "sent": self.sent,
            "confirms": self.confirms,
            "confirmed": self.confirmed,
            "answers": dict(self.answers),
            "stalls": self.stalls,
            "sales": len(self.sales),
            **harness.process_cpu(server, redis_pid),
            "cpus": cpu_times(),
        }

    def failed_conns(self) -> int:
        return sum(1 for b in self.buyers if b.conn is not None and b.conn.failure)


def _error_code(data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        code = data["error"].get("code")
        return str(code) if code is not None else None
    return None


async def _create_sale(run: Run, http: aiohttp.ClientSession, base: str, room: str) -> None:
    ns = run.ns
    body = {
        "title": f"bench sale {len(run.sales) + 1}",
        "sku": "bench",
        "price_fen": ns.price_fen,
        "stock": ns.stock,
        "limit": ns.limit,
        "reserve_seconds": ns.reserve_seconds,
    }
    async with http.post(f"{base}/api/v1/rooms/{room}/sales", json=body) as r:
        data = await r.json()
        if r.status != 201:
            raise RuntimeError(f"create sale: {r.status} {data}")
    run.sales.append(SaleRec(len(run.sales), data["id"], int(data["stock"])))


async def _progress(
    run: Run, server: Server, redis_pid: int | None, t0: float, timeline: list[dict[str, Any]]
) -> None:
    prev = run.snapshot(server, redis_pid)
    while True:
        await asyncio.sleep(1.0)
        cur = run.snapshot(server, redis_pid)
        dt = cur["mono"] - prev["mono"]
        entry = {
            "t": round(cur["mono"] - t0, 2),
            "phase": run.phase,
            "connected": sum(1 for b in run.buyers if b.conn is not None),
            "attempts_per_s": (cur["answered"] - prev["answered"]) / dt,
            "reserved_per_s": (cur["reserved"] - prev["reserved"]) / dt,
            "confirms_per_s": (cur["confirms"] - prev["confirms"]) / dt,
            "answered": cur["answered"],
            "sales": cur["sales"],
            "stalls": cur["stalls"],
            "server_cpu_pct": harness.cpu_rate(prev, cur, "server_cpu", dt),
            "redis_cpu_pct": harness.cpu_rate(prev, cur, "redis_cpu", dt),
            "load_cpu_pct": harness.cpu_rate(prev, cur, "load_cpu", dt),
            "server_rss_kb": server.rss_kb(),
        }
        timeline.append(entry)
        failed = run.failed_conns() + sum(run.connect_failures.values())
        done = f"  done {cur['answered']:>9,}/{run.budget:,}" if run.budget else ""
        print(
            f"[{entry['t']:6.1f}s] {run.phase:<7} buyers {entry['connected']:>5,}  "
            f"attempts/s {entry['attempts_per_s']:>7,.0f}  "
            f"reserved/s {entry['reserved_per_s']:>7,.0f}  "
            f"confirms/s {entry['confirms_per_s']:>6,.0f}  sales {entry['sales']:>4}  "
            f"stalls {entry['stalls']:>5,}  cpu server {_pct(entry['server_cpu_pct'])} "
            f"redis {_pct(entry['redis_cpu_pct'])} load {_pct(entry['load_cpu_pct'])}  "
            f"failures {failed}{done}",
            flush=True,
        )
        prev = cur


async def _connect_buyers(run: Run, server: Server, secret: str) -> None:
    sem = asyncio.Semaphore(run.ns.connect_concurrency)

    async def one(i: int) -> None:
        uid = f"sb{i}"
        token = tokens.issue(secret, tokens.User(uid, uid, tokens.Role.VIEWER), 24 * 3600)
        b = Buyer(i, uid, httpclient.fixed_head(server.host, server.port, token))
        async with sem:
            try:
                conn = await httpclient.connect(server.host, server.port, run.on_answer)
            except Exception as exc:
                run.connect_failures[type(exc).__name__] += 1
                return
        conn.owner = b
        b.conn = conn
        run.buyers.append(b)

    await asyncio.gather(*(one(i) for i in range(run.ns.buyers)))
    run.buyers.sort(key=lambda b: b.idx)
    # A connect returns once the kernel has the connection, maybe before the server
    # accepted it: one answered request per connection makes sure it is being served.
    run.warm_left = len(run.buyers)
    warm = b"GET /healthz HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (server.host.encode(), server.port)
    for b in run.buyers:
        assert b.conn is not None
        b.kind = WARM
        b.conn.send(warm)
    if run.warm_left:
        try:
            await asyncio.wait_for(run.warmed.wait(), 60)
        except TimeoutError:
            run.errors[f"{run.warm_left} connections not served within 60 s"] += 1
    for b in run.buyers:
        b.kind = 0


async def _run(ns: argparse.Namespace, target: harness.Target, result: dict[str, Any]) -> dict:
    server, secret, redis_url, redis_pid = (
        target.server, target.secret, target.redis_url, target.redis_pid,
    )  # fmt: skip
    run = Run(ns)
    t0 = time.monotonic()
    result["t0"] = time.time()
    timeline: list[dict[str, Any]] = []
    result["timeline"] = timeline
    op = tokens.issue(secret, tokens.User("bench-op", "bench-op", tokens.Role.OPERATOR), 24 * 3600)
    profiler = None
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {op}"}, timeout=timeout
    ) as http:
        async with http.post(server.base + "/api/v1/rooms", json={"title": "bench sale"}) as r:
            room = await r.json()
            if r.status != 201:
                raise RuntimeError(f"create room: {r.status} {room}")
        room_id = room["id"]
        async with http.post(f"{server.base}/api/v1/rooms/{room_id}/start") as r:
            if r.status != 200:
                raise RuntimeError(f"start room: {r.status} {await r.text()}")
        result["room"] = room_id

        progress = asyncio.create_task(_progress(run, server, redis_pid, t0, timeline))
        creator: asyncio.Task[None] | None = None
        try:
            # -- connect ---------------------------------------------------------
            run.phase = "connect"
            t_conn = time.monotonic()
            await _connect_buyers(run, server, secret)
            connect_s = time.monotonic() - t_conn
            if not run.buyers:
                raise RuntimeError("no buyer could connect")
            print(
                f"connected {len(run.buyers):,} buyers in {connect_s:.1f}s; "
                f"server RSS {report.fmt(server.rss_kb())} KB",
                flush=True,
            )
            for _ in range(ns.ahead + 1):
                await _create_sale(run, http, server.base, room_id)
            rss_start = server.rss_kb()
            r_start = await harness.redis_info(redis_url)

            # -- fire: warm-up, then the window (or until N attempts) -------------
            run.firing = True
            creator = asyncio.create_task(harness.keep_ahead(
                run, lambda: _create_sale(run, http, server.base, room_id),
                lambda: len(run.sales), run.need_sale,
            ))  # fmt: skip
            if ns.orders:
                run.phase = "orders"
                w0 = run.snapshot(server, redis_pid)
                r0 = r_start
            else:
                run.phase = "warmup"
            t_start = time.monotonic()
            for b in run.buyers:
                if run.budget is None or run.sent < run.budget:
                    run.fire(b)
            if ns.orders:
                while not run.done.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(run.done.wait(), 1.0)
                    if not any(b.kind for b in run.buyers) and not run.parked:
                        break  # every connection failed: nothing more will come
                w1 = run.snapshot(server, redis_pid)
                r1 = await harness.redis_info(redis_url)
            else:
                await asyncio.sleep(ns.warmup)
                run.phase = "window"
                w0 = run.snapshot(server, redis_pid)
                r0 = await harness.redis_info(redis_url)
                profiler = harness.start_profile(
                    ns, server.pid, ns.load_cpus if not ns.no_pin else None
                )
                await asyncio.sleep(max(0.0, t_start + ns.warmup + ns.duration - time.monotonic()))
                w1 = run.snapshot(server, redis_pid)
                r1 = await harness.redis_info(redis_url)
            run.phase = "drain"
            run.firing = False
            run.need_sale.set()

            # -- drain: the requests still in flight -----------------------------
            t_drain = time.monotonic()
            while time.monotonic() - t_drain < ns.drain:
                if not any(b.kind for b in run.buyers):
                    break
                await asyncio.sleep(0.02)
            drain_s = time.monotonic() - t_drain
            in_flight_left = sum(1 for b in run.buyers if b.kind)
            rss_end = server.rss_kb()
        finally:
            run.firing = False
            run.need_sale.set()
            if creator is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await creator
            failures_open = Tally(
                b.conn.failure for b in run.buyers if b.conn is not None and b.conn.failure
            )
            for b in run.buyers:
                if b.conn is not None:
                    b.conn.close()
            await asyncio.sleep(0.2)

        # -- read back and check every sale and order ---------------------------
        try:
            run.phase = "check"
            t_check = time.monotonic()
            correct = await _check(run, http, server.base, room_id, in_flight_left)
            correct["seconds"] = time.monotonic() - t_check
            r_end = await harness.redis_info(redis_url)
        finally:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress

    profile = None
    if profiler is not None:
        profile = await asyncio.to_thread(harness.finish_profile, profiler, ns)

    # -- figures -----------------------------------------------------------------
    dt = w1["mono"] - w0["mono"]
    lo, hi = w0["wall_ns"], w1["wall_ns"]
    lat_ms = [x / 1e6 for s, x in zip(run.lat_sent, run.lat_ns, strict=True) if lo <= s < hi]
    pct = {**report.percentiles(lat_ms, (50, 90, 99, 99.9)), "samples": len(lat_ms)}
    del lat_ms
    pay_ms = [
        x / 1e6 for s, x in zip(run.pay_lat_sent, run.pay_lat_ns, strict=True) if lo <= s < hi
    ]
    pay_pct = report.percentiles(pay_ms, (50, 90, 99, 99.9))

    def delta(key: str) -> int:
        return int(w1[key] - w0[key])

    answers = {k: w1["answers"].get(k, 0) - w0["answers"].get(k, 0) for k in w1["answers"]}
    answered = delta("answered")
    confirms = delta("confirms")
    server_cpu = harness.cpu_rate(w0, w1, "server_cpu", dt)
    load_cpu = harness.cpu_rate(w0, w1, "load_cpu", dt)
    notes: list[str] = []
    if load_cpu is not None and load_cpu > 90:
        notes.append(f"the load generator used {load_cpu:.0f}% of a CPU: it may limit the rate")
    if server_cpu is not None and server_cpu > 90:
        notes.append(f"the server used {server_cpu:.0f}% of its CPU: it is saturated")
    busy = cpu_busy(w0["cpus"], w1["cpus"])
    if target.pin and ns.load_cpus.isdigit():
        load_core = busy.get(f"cpu{ns.load_cpus}", {}).get("busy_pct")
        if load_core is not None and load_core > 95:
            notes.append(
                f"CPU {ns.load_cpus} (load generator and Redis) was {load_core:.0f}% busy: "
                "the client side may limit the rate"
            )
    failures = {
        "connect": dict(run.connect_failures),
        "closed_or_failed": dict(failures_open),
        "protocol": dict(run.errors),
        "in_flight_after_drain": in_flight_left,
        "total": sum(run.connect_failures.values()) + sum(failures_open.values())
        + sum(run.errors.values()) + in_flight_left,
    }  # fmt: skip
    orders_used = sum(len(s.orders) for s in run.sales)
    r_mem = [(r or {}).get("used_memory") for r in (r_start, r_end)]
    result.update(
        {
            "window": {
                "seconds": dt,
                "attempts": answered,
                "attempts_per_s": answered / dt,
                "reserved": delta("reserved"),
                "reserved_per_s": delta("reserved") / dt,
                "units_per_s": delta("units") / dt,
                "answers": answers,
                "answers_per_s": {k: v / dt for k, v in answers.items()},
                "confirms": confirms,
                "confirms_per_s": confirms / dt,
                "confirmed": delta("confirmed"),
                "requests_per_s": (answered + confirms) / dt,
                "stalls": delta("stalls"),
                "sales_created": delta("sales"),
                "server_cpu_pct": server_cpu,
                "server_user_sys_pct": harness.user_sys_pct(w0, w1, dt),
                "redis_cpu_pct": harness.cpu_rate(w0, w1, "redis_cpu", dt),
                "load_cpu_pct": load_cpu,
                "server_cpu_us_per_attempt": (
                    server_cpu / 100 * dt / answered * 1e6 if server_cpu and answered else None
                ),
                "server_cpu_us_per_request": (
                    server_cpu / 100 * dt / (answered + confirms) * 1e6
                    if server_cpu and answered
                    else None
                ),
                "cpus": busy,
            },
            "latency_ms": pct,
            "confirm_latency_ms": {**pay_pct, "samples": len(pay_ms)},
            "run": {
                "seconds_firing": w1["mono"] - t_start if ns.orders else None,
                "attempts_sent": run.sent,
                "attempts_answered": run.answered,
                "answers": dict(run.answers),
                "reserved": run.reserved,
                "units": run.units,
                "confirms": run.confirms,
                "confirmed": run.confirmed,
                "replayed_201s": run.replays,
                "stalls": run.stalls,
                "sales": len(run.sales),
                "drain_s": drain_s,
            },
            "connect": {"buyers": len(run.buyers), "seconds": connect_s},
            "rss_kb": {"start": rss_start, "end": rss_end},
            "redis": {
                "url": redis_url,
                "pid": redis_pid,
                "rss_kb_end": proc_rss_kb(redis_pid) if redis_pid else None,
                "used_memory": {"start": r_mem[0], "end": r_mem[1]},
                "used_memory_per_order": (
                    (r_mem[1] - r_mem[0]) / orders_used
                    if r_mem[0] is not None and r_mem[1] is not None and orders_used
                    else None
                ),
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
    run: Run, http: aiohttp.ClientSession, base: str, room_id: str, in_flight_left: int
) -> dict[str, Any]:
    """Read every sale (and every order of the room) back and hold them against what
    the buyers were answered.

    Per sale: ``left + reserved + paid + refunded == stock`` and the stock as created;
    ``reserved + paid`` = the units the 201s acknowledged, ``paid`` = the units
    confirmed, ``refunded`` = 0; no buyer above the limit. A sale every buyer has moved
    past ("complete") holds, when its stock covers every buyer's limit, exactly N × L
    units and answered no ``sold_out``; otherwise it is sold out (``left < qty``) and
    every buyer that did not reach its limit was answered ``sold_out`` exactly once.
    The order scan: the server's orders of the room are the acknowledged ones, one for
    one (buyer, sale, qty, status ``paid`` when confirmed, else ``reserved``).
    """
    ns = run.ns
    problems: list[str] = []
    sem = asyncio.Semaphore(16)
    n = len(run.buyers)
    per_buyer = (ns.limit // ns.qty) * ns.qty  # units a buyer can take from one sale
    lowest = min((b.cur for b in run.buyers if b.conn is not None and not b.conn.failure),
                 default=0)  # fmt: skip
    complete = partial = 0
    totals = Tally[str]()

    async def one(sale: SaleRec) -> None:
        nonlocal complete, partial
        async with sem, http.get(f"{base}/api/v1/sales/{sale.id}") as r:
            data = await r.json()
            if r.status != 200:
                problems.append(f"{sale.id}: GET {r.status} {data}")
                return
        left, reserved, paid = data["left"], data["reserved"], data["paid"]
        refunded, stock = data["refunded"], data["stock"]
        for k in ("left", "reserved", "paid", "refunded"):
            totals[k] += data[k]
        totals["stock"] += stock
        totals["acked_units"] += sale.acked_units
        totals["paid_units"] += sale.paid_units
        if left + reserved + paid + refunded != stock:
            problems.append(
                f"{sale.id}: left {left} + reserved {reserved} + paid {paid} + refunded "
                f"{refunded} != stock {stock}"
            )
        if min(left, reserved, paid, refunded) < 0:
            problems.append(f"{sale.id}: a negative counter {data}")
        if stock != sale.stock or stock != ns.stock:
            problems.append(f"{sale.id}: stock {stock}, created with {sale.stock}")
        if reserved + paid != sale.acked_units:
            problems.append(
                f"{sale.id}: reserved {reserved} + paid {paid} != {sale.acked_units} "
                "units acknowledged"
            )
        if paid != sale.paid_units:
            problems.append(f"{sale.id}: paid {paid} != {sale.paid_units} units confirmed")
        if refunded:
            problems.append(f"{sale.id}: refunded {refunded} (no refund was asked)")
        over = [i for i, units in sale.held.items() if units > ns.limit]
        if over:
            problems.append(f"{sale.id}: {len(over)} buyers acknowledged above the limit")
        sold_out = sale.answers.get("sold_out", 0)
        if sold_out and left >= ns.qty:
            problems.append(f"{sale.id}: {sold_out} answered sold_out with {left} left")
        if sale.index < lowest:
            complete += 1
            full = sum(1 for units in sale.held.values() if units >= per_buyer)
            if ns.stock >= n * per_buyer:
                if sale.acked_units != n * per_buyer or sold_out:
                    problems.append(
                        f"{sale.id}: complete with {sale.acked_units} units acknowledged "
                        f"(want {n * per_buyer}), {sold_out} sold_out"
                    )
            else:
                if left >= ns.qty:
                    problems.append(f"{sale.id}: complete, not sold out, {left} left")
                if sold_out != n - full:
                    problems.append(
                        f"{sale.id}: {sold_out} buyers answered sold_out, want {n - full} "
                        f"(the {n} buyers less the {full} at their limit)"
                    )
        elif sale.answers:
            partial += 1

    await asyncio.gather(*(one(sale) for sale in run.sales))
    limit_answers = run.answers.get("limit_reached", 0)
    if limit_answers:
        problems.append(
            f"{limit_answers} attempts answered limit_reached: the server counts units "
            "the buyers were not acknowledged"
        )
    if run.replays:
        problems.append(f"{run.replays} answers marked Idempotent-Replayed (keys are fresh)")
    if in_flight_left:
        problems.append(f"{in_flight_left} requests unanswered after the drain")
    scan = None if ns.no_scan else await _scan_orders(run, http, base, room_id, problems)
    return {
        "ok": not problems,
        "sales": len(run.sales),
        "complete": complete,
        "partial": partial,
        "untouched": len(run.sales) - complete - partial,
        "totals": dict(totals),
        "orders_acknowledged": sum(len(s.orders) for s in run.sales),
        "orders_confirmed": sum(len(s.paid) for s in run.sales),
        "max_units_per_buyer_per_sale": max(
            (u for s in run.sales for u in s.held.values()), default=0
        ),
        "scan": scan,
        "problems": problems[:50],
        "problem_count": len(problems),
    }


async def _scan_orders(
    run: Run, http: aiohttp.ClientSession, base: str, room_id: str, problems: list[str]
) -> dict[str, Any]:
    """Page through ``GET /rooms/{room}/orders`` and match every order to an ack."""
    t = time.monotonic()
    by_id = {s.id: s for s in run.sales}
    uids = {b.uid: b.idx for b in run.buyers}
    seen: set[str] = set()
    holds: Tally[tuple[str, int]] = Tally()
    bad = Tally[str]()
    after: str | None = None
    pages = 0
    while True:
        params = {"limit": str(SCAN_PAGE)}
        if after is not None:
            params["after"] = after
        async with http.get(f"{base}/api/v1/rooms/{room_id}/orders", params=params) as r:
            data = await r.json()
            if r.status != 200:
                problems.append(f"order scan: GET {r.status} {data}")
                break
        pages += 1
        for o in data["orders"]:
            oid = o["id"]
            sale = by_id.get(o["sale"])
            ack = sale.orders.get(oid) if sale is not None else None
            if oid in seen:
                bad["listed twice"] += 1
                continue
            seen.add(oid)
            if sale is None or ack is None:
                bad["not acknowledged"] += 1
                continue
            idx, qty = ack
            if uids.get(o["uid"]) != idx or o["qty"] != qty:
                bad["buyer or qty differs"] += 1
            want = "paid" if oid in sale.paid else "reserved"
            if o["status"] != want:
                bad[f"status {o['status']}, want {want}"] += 1
            if o["amount_fen"] != qty * run.ns.price_fen:
                bad["amount differs"] += 1
            if o["status"] in ("reserved", "paid"):
                holds[(sale.id, idx)] += o["qty"]
        if len(data["orders"]) < SCAN_PAGE or not data.get("next"):
            break
        after = data["next"]
    acked = sum(len(s.orders) for s in run.sales)
    missing = acked - len(seen & {oid for s in run.sales for oid in s.orders})
    if missing:
        bad["acknowledged, not listed"] += missing
    over = sum(1 for units in holds.values() if units > run.ns.limit)
    if over:
        bad["buyers above the limit of a sale (server's orders)"] += over
    for what, count in bad.items():
        problems.append(f"order scan: {count} orders {what}")
    return {
        "orders_listed": len(seen),
        "orders_acknowledged": acked,
        "pages": pages,
        "seconds": time.monotonic() - t,
        "max_units_per_buyer_per_sale": max(holds.values(), default=0),
        "problems": dict(bad),
    }


def _print_report(doc: dict[str, Any]) -> None:
    w = doc.get("window")
    if w is None:
        print("\nno measurement: the run did not reach the end of its window")
        if doc.get("error"):
            print("error:", doc["error"])
        return
    p, lat, plat, cor = doc["params"], doc["latency_ms"], doc["confirm_latency_ms"], doc["correct"]
    run, fails = doc["run"], doc["failures"]
    rd = doc.get("redis") or {}
    scan = cor.get("scan")
    mode = (
        f"{p['orders']:,} attempts in {w['seconds']:.1f} s (the whole run)"
        if p["mode"] == "orders"
        else f"{w['seconds']:.1f} s after {p['warmup']:g} s warm-up"
    )
    rows = [
        ("engine", p["engine"]),
        ("shape", f"{p['buyers']:,} buyers, sales of {p['stock']:,} units, limit "
         f"{p['limit']}, qty {p['qty']}, pay ratio {p['pay_ratio']:g}"),
        ("window", mode),
        ("reservation attempts/s", w["attempts_per_s"]),
        ("reserved/s (201)", w["reserved_per_s"]),
        ("answers in window", ", ".join(f"{k} {v:,}" for k, v in sorted(w["answers"].items()))),
        ("confirmations/s", w["confirms_per_s"]),
        ("stalls (waited for a sale)", w["stalls"]),
        ("sales created in window", w["sales_created"]),
        ("latency p50 ms", lat["p50"]),
        ("latency p90 ms", lat["p90"]),
        ("latency p99 ms", lat["p99"]),
        ("latency p99.9 ms", lat["p99.9"]),
        ("latency max ms", lat["max"]),
        ("latency samples", lat["samples"]),
        ("confirm latency p50 / p99 ms", f"{report.fmt(plat['p50'])} / "
         f"{report.fmt(plat['p99'])}" if plat["samples"] else "-"),
        ("server CPU % (1 core = 100)", w["server_cpu_pct"]),
        ("server CPU us per attempt", w["server_cpu_us_per_attempt"]),
        ("server CPU user / sys %", " / ".join(map(str, w.get("server_user_sys_pct") or ["-"]))),
        ("redis-server CPU %", w["redis_cpu_pct"]),
        ("redis commands in window", harness.top_commands(rd.get("window")) or "-"),
        ("redis memory per order (B)", rd.get("used_memory_per_order")),
        ("load CPU %", w["load_cpu_pct"]),
        ("others on the server's CPU %", w.get("others_on_server_cpu_pct")),
        ("CPU busy / softirq / steal %", "  ".join(
            f"{k}: {c['busy_pct']}/{c['softirq_pct']}/{c['steal_pct']}"
            for k, c in sorted(w["cpus"].items()))),
        ("server RSS start / end (KB)", f"{report.fmt(doc['rss_kb']['start'])} / "
         f"{report.fmt(doc['rss_kb']['end'])}"),
        ("attempts / reserved, whole run", f"{run['attempts_answered']:,} / {run['reserved']:,}"),
        ("correct", "yes" if cor["ok"] else f"NO ({cor['problem_count']} problems)"),
        ("sales checked", f"{cor['sales']} ({cor['complete']} complete, {cor['partial']} "
         f"partial, {cor['untouched']} untouched)"),
        ("units left+reserved+paid = stock", "{left:,}+{reserved:,}+{paid:,} = {stock:,}".format(
            **{k: cor["totals"].get(k, 0) for k in ("left", "reserved", "paid", "stock")})),
        ("units acknowledged / confirmed", f"{cor['totals'].get('acked_units', 0):,} / "
         f"{cor['totals'].get('paid_units', 0):,}"),
        ("most units of a buyer in a sale", cor["max_units_per_buyer_per_sale"]),
        ("orders listed = acknowledged", "not scanned" if scan is None else
         f"{scan['orders_listed']:,} = {scan['orders_acknowledged']:,} "
         f"({scan['pages']:,} pages, {scan['seconds']:.1f} s)"),
        ("check took (s)", cor["seconds"]),
        ("failures", fails["total"] if not fails["total"] else
         f"{fails['total']}: connect {fails['connect']}, closed {fails['closed_or_failed']}, "
         f"protocol {fails['protocol']}, in flight {fails['in_flight_after_drain']}"),
        ("server log warnings/errors", doc["server"].get("log_problems")),
    ]  # fmt: skip
    print("\nsale results (reservation attempts)")
    print(report.table(rows))
    for line in cor["problems"][:10]:
        print("  problem:", line)
    for line in doc["server"].get("log_problem_lines", [])[:5]:
        print("  server log:", line[:300])
    harness.print_profile(doc.get("profile"))
    for note in doc.get("notes", []):
        print("note:", note)
