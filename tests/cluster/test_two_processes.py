"""Two server processes on a three-master Redis Cluster: danmaku order across processes,
a red packet grab storm and a flash-sale order storm (exact money, no oversell)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp

from tests.cluster.conftest import StartServer
from tests.e2e.harness import Api, Viewer, connect


async def _comment(viewer: Viewer, n: int, tag: str) -> list[int]:
    seqs = []
    for i in range(n):
        await viewer.send({"t": "dm", "text": f"{tag}{i}", "ref": f"{tag}{i}"})
        seqs.append((await viewer.ack(f"{tag}{i}"))["seq"])
    return seqs


async def test_danmaku_cross_processes_in_seq_order(
    servers: StartServer, session: aiohttp.ClientSession, cluster_env: dict[str, str]
) -> None:
    one, two = servers(env=cluster_env), servers(env=cluster_env)
    op = Api(session, one.base, one.token("ops", "operator"))
    for server in (one, two):
        status, ready = await Api(session, server.base, None).call("GET", "/readyz")
        assert (status, ready["engine"]) == (200, "redis-cluster"), ready
    # Several rooms, so their slots (almost surely) fall on more than one master.
    rooms = [(await op.live_room(f"room {i}"))["id"] for i in range(4)]
    viewers: dict[str, list[Viewer]] = {}
    for rid in rooms:
        a, welcome = await connect(session, one.base, rid, one.token("a"))
        assert welcome["t"] == "welcome"
        b, _ = await connect(session, two.base, rid, two.token("b"))
        viewers[rid] = [a, b]

    sent = await asyncio.gather(
        *(_comment(v, 25, f"{rid}-{i}") for rid, vs in viewers.items() for i, v in enumerate(vs))
    )
    for k in range(len(rooms)):
        assert sorted(sent[2 * k] + sent[2 * k + 1]) == list(range(1, 51))
    for vs in viewers.values():
        for viewer in vs:  # every viewer, on either process, sees 1..50 in order
            assert [(await viewer.next("dm"))["seq"] for _ in range(50)] == list(range(1, 51))

    # A state change through process one reaches process two; online counts add up.
    rid = rooms[0]
    await op.call("POST", f"/api/v1/rooms/{rid}/pause")
    assert (await viewers[rid][1].next("room"))["status"] == "paused"
    extra, _ = await connect(session, two.base, rid, two.token("c"))
    count = 0
    while count != 3:
        count = (await viewers[rid][0].next("online"))["count"]
    for vs in [*viewers.values(), [extra]]:
        for viewer in vs:
            await viewer.close()


async def test_200_grabbers_on_50_shares_across_two_processes(
    servers: StartServer, session: aiohttp.ClientSession, cluster_env: dict[str, str]
) -> None:
    one, two = servers(env=cluster_env), servers(env=cluster_env)
    op = Api(session, one.base, one.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    watcher, _ = await connect(session, two.base, rid, two.token("watcher"))
    status, packet = await op.call(
        "POST", f"/api/v1/rooms/{rid}/red-packets", {"total_fen": 10_000, "count": 50}
    )
    assert status == 201, packet
    pid = packet["id"]
    assert (await watcher.next("rp"))["id"] == pid  # the event crossed processes

    async def grab(i: int) -> tuple[str, int, Any]:
        server = one if i % 2 else two
        api = Api(session, server.base, server.token(f"u{i}"))
        status, body = await api.call("POST", f"/api/v1/red-packets/{pid}/grab")
        return f"u{i}", status, body

    results = await asyncio.gather(*(grab(i) for i in range(200)))
    wins = {uid: body["amount_fen"] for uid, status, body in results if status == 200}
    losers = Counter(body["error"]["code"] for _, status, body in results if status != 200)
    assert len(wins) == 50
    assert sum(wins.values()) == 10_000
    assert losers == Counter({"empty": 150})
    _, view = await op.call("GET", f"/api/v1/red-packets/{pid}")
    assert view["status"] == "done" and view["left"] == 0
    assert {c["uid"]: c["amount_fen"] for c in view["claims"]} == wins
    assert (await watcher.next("rp_done"))["id"] == pid
    _, ledger = await op.call("GET", f"/api/v1/rooms/{rid}/ledger?count=1000")
    claims = [e for e in ledger["events"] if e["type"] == "rp_claim"]
    assert len(claims) == 50 and sum(int(e["amount_fen"]) for e in claims) == 10_000
    await watcher.close()


async def test_flash_sale_storm_never_oversells(
    servers: StartServer, session: aiohttp.ClientSession, cluster_env: dict[str, str]
) -> None:
    one, two = servers(env=cluster_env), servers(env=cluster_env)
    op = Api(session, one.base, one.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    watcher, _ = await connect(session, two.base, rid, two.token("watcher"))
    status, sale = await op.call(
        "POST",
        f"/api/v1/rooms/{rid}/sales",
        {"title": "t", "price_fen": 990, "stock": 40, "limit": 2, "reserve_seconds": 60},
    )
    assert status == 201, sale
    sid = sale["id"]

    async def buy(i: int) -> tuple[str, int, Any]:
        server = one if i % 2 else two
        uid = f"u{i % 150}"  # 150 users, each trying twice
        api = Api(session, server.base, server.token(uid))
        async with session.post(
            f"{server.base}/api/v1/sales/{sid}/orders",
            json={"qty": 1 + i % 2},
            headers={"Authorization": f"Bearer {api.token}", "Idempotency-Key": f"k{i}"},
        ) as r:
            return uid, r.status, await r.json()

    results = await asyncio.gather(*(buy(i) for i in range(300)))
    held: Counter[str] = Counter()
    for uid, status, body in results:
        if status == 201:
            held[uid] += int(body["qty"])
    assert sum(held.values()) == 40  # every unit sold, none twice
    assert max(held.values()) <= 2
    codes = Counter(b["error"]["code"] for _, s, b in results if s != 201)
    assert set(codes) <= {"sold_out", "limit_reached"}, codes
    _, view = await op.call("GET", f"/api/v1/sales/{sid}")
    assert (view["left"], view["reserved"]) == (0, 40)
    # Stock changes were fanned out to the other process's viewer.
    stock = await watcher.next("stock")
    assert stock["id"] == sid
    await watcher.close()
