"""Retention soak: Redis memory after ``--rooms`` rooms have run and ended.

Each room goes through the Redis stores the server uses (``interact.engine.redis_engine``
with a retention policy, docs/archive.md section 11): created, started, ``--comments``
comments and one retraction, moderation state (a mute, slow mode, a log entry), one red
packet grabbed by ``--grabs`` viewers, one sale with ``--orders`` paid orders, then ended.
Time is driven here rather than waited for:

1. ``baseline``: ``INFO memory`` ``used_memory`` once the scripts are loaded;
2. ``loaded``: after every room ended; every key of every room is checked with ``PTTL``
   (a per-room key without one is a failure) and sorted by the retention it got;
3. ``hot expired``: every key whose TTL is at most the hot retention is given
   ``PEXPIRE 1`` and the rooms' index is swept as if that time had passed: what is left
   is kept for the refund window (room record, ledger, orders, sales, packets);
4. ``all expired``: the same for those keys and the index: memory should be back at the
   baseline.

The run fails (exit status 1) if any per-room key has no TTL, or if an order cannot be
read back after the hot keys expired. A throwaway ``redis-server`` is started
(``--redis-url``: use that one instead; every key under the prefix is deleted at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from bench import harness, report

HELP = "Redis memory of ended rooms: hot keys expire, money records kept (1,000 rooms)"
PREFIX = "bench-retention:"
_INFO: list[dict[str, Any]] = []


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rooms", type=int, default=1000, help="rooms created, run and ended")
    p.add_argument("--comments", type=int, default=50, help="comments per room")
    p.add_argument("--grabs", type=int, default=20, help="red packet grabs per room")
    p.add_argument("--orders", type=int, default=10, help="paid orders per room")
    p.add_argument("--concurrency", type=int, default=20, help="rooms run at once")
    p.add_argument("--redis-url", help="use this Redis (its keys under the prefix go)")
    p.add_argument("--redis-cpus", default="1", help="taskset CPU list of the redis-server")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")


async def _used(client: Any) -> dict[str, int]:
    """``used_memory`` and its dataset part (without client buffers and Redis's own
    overhead: the pool's connections are opened while the rooms run)."""
    info = await client.info("memory")
    keyspace = await client.info("keyspace")
    _INFO.append({**info, "keyspace": keyspace})
    return {"used": int(info["used_memory"]), "dataset": int(info["used_memory_dataset"])}


async def _keys(client: Any) -> list[bytes]:
    return [k async for k in client.scan_iter(match=f"{PREFIX}*", count=2000)]


async def _ttls(client: Any, keys: list[bytes]) -> list[int]:
    out: list[int] = []
    for i in range(0, len(keys), 1000):
        async with client.pipeline(transaction=False) as pipe:
            for key in keys[i : i + 1000]:
                pipe.pttl(key)
            out += [int(x) for x in await pipe.execute()]
    return out


async def _expire(client: Any, keys: list[bytes]) -> None:
    """Let time pass for ``keys``: expire them now and touch them so Redis drops them."""
    for i in range(0, len(keys), 1000):
        async with client.pipeline(transaction=False) as pipe:
            for key in keys[i : i + 1000]:
                pipe.pexpire(key, 1)
            await pipe.execute()
    await asyncio.sleep(0.01)
    for i in range(0, len(keys), 1000):
        await client.exists(*keys[i : i + 1000])


async def _room(engine: Any, ns: argparse.Namespace, n: int) -> str:
    from commerce.ids import new_packet_id, new_sale_id
    from commerce.models import RedPacket, Split
    from commerce.sale_models import Sale
    from rooms.models import Room
    from rooms.service import new_room_id

    rid = new_room_id()
    now = int(time.time() * 1000)
    await engine.rooms.create(Room(id=rid, title=f"soak {n}", created_at=now, updated_at=now))
    await engine.rooms.transition(rid, "start", now)
    for i in range(ns.comments):
        body = {"uid": f"u{i % 97}", "nick": "n", "role": "viewer", "text": f"弹幕 {i}",
                "color": 0xFFFFFF, "mode": "scroll", "ts": now}  # fmt: skip
        await engine.danmaku.append(rid, body)
        await engine.stats.commented(rid, f"u{i % 97}")
    if ns.comments:
        await engine.danmaku.retract(rid, 1)
    await engine.mutes.mute(rid, "spammer", now + 600_000, "op", "spam", now_ms=now)
    await engine.mod_settings.set_slow_mode(rid, 3, None, "op")
    await engine.modlog.append(rid, {"type": "mute", "uid": "spammer"})
    if ns.grabs:
        packet = RedPacket(id=new_packet_id(rid), room_id=rid, sender="anchor",
                           total_fen=100 * ns.grabs, count=ns.grabs, split=Split.EQUAL,
                           created_at=now, opens_at=now, expires_at=now + 86_400_000)  # fmt: skip
        await engine.packets.create(packet, [100] * ns.grabs)
        for i in range(ns.grabs):
            await engine.packets.grab(packet.id, f"u{i}", now)
    if ns.orders:
        sale = Sale(id=new_sale_id(rid), room_id=rid, title="口红", sku="sku", price_fen=990,
                    stock=ns.orders, limit=1, starts_at=now - 1000, ends_at=now + 3_600_000,
                    reserve_ms=60_000, created_at=now - 2000)  # fmt: skip
        await engine.sales.create(sale)
        for i in range(ns.orders):
            got = await engine.sales.reserve(sale.id, f"u{i}", 1, f"k{i}", now)
            assert got.order is not None, got
            await engine.sales.confirm_paid(got.order.id, got.order.amount_fen, f"tx{n}-{i}", now)
    await engine.rooms.transition(rid, "end", int(time.time() * 1000))
    return rid


async def _run(ns: argparse.Namespace, url: str) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from interact.engine import redis_engine
    from rooms.retention import RetentionPolicy

    policy = RetentionPolicy()
    engine = redis_engine(url, PREFIX, 200, journal=True, retention=policy)
    await engine.start()
    plain = aioredis.Redis.from_url(url)
    try:
        await _room(engine, argparse.Namespace(comments=1, grabs=1, orders=1), -1)  # scripts
        await _expire(plain, await _keys(plain))
        await engine.rooms.sweep(int(time.time() * 1000) + policy.money_ms)  # type: ignore[attr-defined]
        baseline = await _used(plain)
        baseline_keys = len(await _keys(plain))

        t0 = time.perf_counter()
        gate = asyncio.Semaphore(ns.concurrency)

        async def one(n: int) -> str:
            async with gate:
                return await _room(engine, ns, n)

        rooms = await asyncio.gather(*(one(n) for n in range(ns.rooms)))
        elapsed = time.perf_counter() - t0
        loaded = await _used(plain)
        keys = await _keys(plain)
        ttls = await _ttls(plain, keys)
        tagged = [(k, t) for k, t in zip(keys, ttls, strict=True) if b"{" in k and b"{wh}" not in k]
        untimed = [k.decode() for k, t in tagged if t < 0]
        hot = [k for k, t in tagged if 0 < t <= policy.hot_ms]
        money = [k for k, t in tagged if t > policy.hot_ms]

        await _expire(plain, hot)
        later = int(time.time() * 1000) + policy.hot_ms + 1
        await engine.rooms.sweep(later)  # type: ignore[attr-defined]
        hot_expired = await _used(plain)
        left_keys = await _keys(plain)
        orders_left = len(await engine.sales.orders_in_room(rooms[0], 1000))
        room_kept = await engine.rooms.get(rooms[0]) is not None

        await _expire(plain, money)
        await engine.rooms.sweep(later + policy.money_ms)  # type: ignore[attr-defined]
        all_expired = await _used(plain)
        final_keys = await _keys(plain)
        problems = [f"per-room key without a TTL: {k}" for k in untimed[:20]]
        if ns.orders and orders_left != ns.orders:
            problems.append(f"orders readable after the hot keys expired: {orders_left}")
        if not room_kept:
            problems.append("the room record (kept for refunds) went with the hot keys")
        per_room = max(1, ns.rooms)

        def delta(after: dict[str, int]) -> dict[str, int]:
            return {k: round((after[k] - baseline[k]) / per_room) for k in after}

        return {
            "correct": {"ok": not problems, "problems": problems},
            "rooms_per_s": round(ns.rooms / elapsed, 1),
            "memory": {
                "baseline": baseline,
                "loaded": loaded,
                "hot_expired": hot_expired,
                "all_expired": all_expired,
            },
            "bytes_per_room_loaded": delta(loaded),
            "bytes_per_room_retained": delta(hot_expired),
            "bytes_per_room_after_refund_window": delta(all_expired),
            "info": _INFO,
            "keys_left": sorted(k.decode() for k in final_keys)[:20],
            "keys": {
                "baseline": baseline_keys,
                "loaded": len(keys),
                "hot_ttl": len(hot),
                "money_ttl": len(money),
                "without_ttl": len(untimed),
                "after_hot": len(left_keys),
                "after_all": len(final_keys),
            },
        }
    finally:
        doomed = await _keys(plain)
        for i in range(0, len(doomed), 1000):
            await plain.delete(*doomed[i : i + 1000])
        await plain.aclose()
        await engine.close()


def main(ns: argparse.Namespace) -> int:
    if ns.rooms < 1 or min(ns.comments, ns.grabs, ns.orders) < 0 or ns.concurrency < 1:
        print("retention: rooms and concurrency must be positive", file=sys.stderr)
        return 2
    result = harness.run_on_redis(ns, "retention", _run)
    params = {k: getattr(ns, k) for k in ("rooms", "comments", "grabs", "orders", "concurrency")}
    doc = {
        "scenario": "retention",
        "command": report.command_line(),
        "params": params,
        "machine": report.machine(),
        "versions": report.versions("interact", "redis"),
        **result,
    }
    mem, keys = result["memory"], result["keys"]

    def both(m: dict[str, int]) -> str:
        return f"{report.fmt(m['dataset'])} (used_memory {report.fmt(m['used'])})"

    ok = "yes" if result["correct"]["ok"] else "; ".join(result["correct"]["problems"])
    k = keys
    after_window = both(result["bytes_per_room_after_refund_window"])
    ttl_classes = f"{k['hot_ttl']} / {k['money_ttl']} / {k['without_ttl']}"
    key_counts = f"{k['baseline']} / {k['after_hot']} / {k['after_all']}"
    print(
        report.table(
            [
                ("rooms", ns.rooms),
                ("rooms/s (run and ended)", result["rooms_per_s"]),
                ("dataset bytes: baseline", both(mem["baseline"])),
                ("all rooms ended", both(mem["loaded"])),
                ("hot keys expired", both(mem["hot_expired"])),
                ("refund window passed", both(mem["all_expired"])),
                ("per ended room, before expiry", both(result["bytes_per_room_loaded"])),
                ("per ended room retained (money)", both(result["bytes_per_room_retained"])),
                ("per room after the refund window", after_window),
                ("keys: hot TTL / money TTL / none", ttl_classes),
                ("keys: baseline / after hot / after all", key_counts),
                ("correct", ok),
            ]
        )
    )  # fmt: skip
    if ns.json:
        report.write_json(ns.json, doc)
    return 0 if result["correct"]["ok"] else 1
