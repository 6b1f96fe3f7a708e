"""Audience memory: Redis bytes per unique viewer per room, and per interned uid.

Writes ``--uids`` synthetic uids straight through the Redis ``AudienceStore``
(``rooms/audience_redis.py``: the same interning script and per-room bitmaps the server
uses) into ``--rooms`` rooms, every uid into every room's ``watch`` set and a
``--comment-share`` of them into its ``comment`` set, in batches of ``--batch`` (one
script per batch, as the hub writes once per tick). Then it reads Redis's own
``MEMORY USAGE`` (``SAMPLES 0``: every field counted) of every key:

- per interned uid: the deployment's interning hash and counter over the uids;
- per unique viewer per room: a room's audience keys (bitmaps, totals, minute hash)
  over its viewers; the first room and the rest separately would be the same, since the
  interning is shared: a second room costs only its bitmaps.

The run fails (exit status 1) when one room's audience sets (its bitmaps) reach
``--max-room-bytes`` (10 MB by default, the issue's bound for a 1,000,000-viewer room),
and checks that every room's ``watch_uv`` reads back exactly ``--uids``.

A throwaway ``redis-server`` is started (``--redis-url``: use that one instead; never a
shared one, every key under the prefix is deleted at the end).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench import harness, report

HELP = "Redis bytes per unique viewer per room and per interned uid (1,000,000 uids)"
PREFIX = "bench-audience:"
MB = 1_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uids", type=int, default=1_000_000, help="unique synthetic uids")
    p.add_argument("--rooms", type=int, default=2, help="rooms every uid joins")
    p.add_argument("--comment-share", type=float, default=0.1, help="share who comment")
    p.add_argument("--batch", type=int, default=5000, help="uids per batch (one script)")
    p.add_argument("--max-room-bytes", type=int, default=10 * MB, help="bound on a room's sets")
    p.add_argument("--redis-url", help="use this Redis (its keys under the prefix go)")
    p.add_argument("--redis-cpus", default="1", help="taskset CPU list of the redis-server")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")


async def _usage(client: Any, keys: list[bytes]) -> int:
    total = 0
    for key in keys:
        total += int(await client.memory_usage(key, samples=0) or 0)
    return total


async def _run(ns: argparse.Namespace, url: str) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from interact.engine import connect_redis
    from rooms.audience import Batch, minute_of, now_ms
    from rooms.audience_redis import AudienceKeys, RedisAudience

    client, pipe = connect_redis(url)
    plain = aioredis.Redis.from_url(url)
    store = RedisAudience(client, PREFIX)  # type: ignore[arg-type]
    keys = AudienceKeys(PREFIX)
    minute = minute_of(now_ms())
    every = max(1, round(1 / ns.comment_share)) if ns.comment_share > 0 else 0
    before = int((await plain.info("memory"))["used_memory"])
    t0 = time.perf_counter()
    try:
        for r in range(ns.rooms):
            room = f"room{r}"
            for start in range(0, ns.uids, ns.batch):
                uids = tuple(f"u{i:07d}" for i in range(start, min(ns.uids, start + ns.batch)))
                marks = {"watch": uids}
                if every:
                    marks["comment"] = uids[::every]
                await store.record([Batch(room, minute, marks, {"watch_pv": len(uids)})])
        took = time.perf_counter() - t0
        after = int((await plain.info("memory"))["used_memory"])
        interning = await _usage(plain, [keys.ids().encode(), keys.next_id().encode()])
        rooms = []
        for r in range(ns.rooms):
            room = f"room{r}"
            own = [k async for k in plain.scan_iter(match=f"{PREFIX}an:{{{room}}}:*")]
            sets = [k for k in own if b":b:" in k]
            snap = await store.read(room, minute, minute)
            rooms.append(
                {
                    "room": room,
                    "watch_uv": snap.uv["watch"],
                    "comment_uv": snap.uv["comment"],
                    "sets_bytes": await _usage(plain, sets),
                    "all_keys_bytes": await _usage(plain, own),
                    "keys": len(own),
                }
            )
        first = rooms[0]
        return {
            "t0": time.time(),
            "write_seconds": round(took, 2),
            "uids_per_s": round(ns.uids * ns.rooms / took) if took else None,
            "interning_bytes": interning,
            "bytes_per_interned_uid": round(interning / ns.uids, 2),
            "rooms": rooms,
            "room_sets_bytes": first["sets_bytes"],
            "bytes_per_viewer_per_room": round(first["all_keys_bytes"] / ns.uids, 3),
            "bytes_per_viewer_per_room_set": round(
                first["sets_bytes"] / ns.uids / (2 if every else 1), 3
            ),
            "used_memory_delta_bytes": after - before,
            "used_memory_per_uid": round((after - before) / ns.uids, 2),
        }
    finally:
        doomed = [k async for k in plain.scan_iter(match=f"{PREFIX}*", count=1000)]
        for i in range(0, len(doomed), 1000):
            await plain.delete(*doomed[i : i + 1000])
        await plain.aclose()
        if pipe is not None:
            await pipe.close()
        await client.aclose()


def main(ns: argparse.Namespace) -> int:
    if ns.uids < 1 or ns.rooms < 1 or ns.batch < 1 or not 0 <= ns.comment_share <= 1:
        print("audience: uids, rooms and batch must be positive", file=sys.stderr)
        return 2
    result = harness.run_on_redis(ns, "audience", _run)
    problems = [
        f"{r['room']}: watch_uv {r['watch_uv']} != {ns.uids}"
        for r in result["rooms"]
        if r["watch_uv"] != ns.uids
    ]
    if result["room_sets_bytes"] >= ns.max_room_bytes:
        problems.append(
            f"a room's audience sets take {result['room_sets_bytes']} bytes >= {ns.max_room_bytes}"
        )
    params = {k: getattr(ns, k) for k in ("uids", "rooms", "comment_share", "batch")}
    doc = {
        "scenario": "audience",
        "command": report.command_line(),
        "params": {**params, "max_room_bytes": ns.max_room_bytes},
        "machine": report.machine(),
        "versions": report.versions("interact", "redis"),
        "correct": {"ok": not problems, "problems": problems},
        **result,
    }
    print(
        report.table(
            [
                ("uids", ns.uids),
                ("rooms", ns.rooms),
                ("bytes per interned uid", doc["bytes_per_interned_uid"]),
                ("bytes per viewer per room (all keys)", doc["bytes_per_viewer_per_room"]),
                ("bytes per viewer per room per set", doc["bytes_per_viewer_per_room_set"]),
                ("one room's sets, bytes", doc["room_sets_bytes"]),
                ("used_memory delta per uid", doc["used_memory_per_uid"]),
                ("write, uids/s", doc["uids_per_s"]),
                ("correct", "yes" if not problems else "; ".join(problems)),
            ]
        )
    )
    if ns.json:
        report.write_json(ns.json, doc)
    return 0 if not problems else 1
