"""Money under concurrency on Redis with two server processes, and claims surviving a crash."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.e2e.harness import Api, ServerProcess, connect
from tests.redis_server import start_redis_server, stop_redis_server

StartServer = Callable[..., ServerProcess]


def env_for(url: str, prefix: str) -> dict[str, str]:
    return {
        "INTERACT_REDIS_URL": url,
        "INTERACT_REDIS_PREFIX": prefix,
        "INTERACT_SWEEP_INTERVAL": "0.2",
    }


async def test_2000_grabbers_on_500_shares_across_two_processes(
    servers: StartServer, redis_url: str, redis_prefix: str
) -> None:
    env = env_for(redis_url, redis_prefix)
    one, two = servers(env=env), servers(env=env)
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        op = Api(session, one.base, one.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        watcher, _ = await connect(session, two.base, rid, two.token("watcher"))
        status, packet = await op.call(
            "POST", f"/api/v1/rooms/{rid}/red-packets", {"total_fen": 100_000, "count": 500}
        )
        assert status == 201
        pid = packet["id"]

        async def grab(i: int) -> tuple[str, int, dict[str, object]]:
            server = one if i % 2 else two
            api = Api(session, server.base, server.token(f"u{i}"))
            status, body = await api.call("POST", f"/api/v1/red-packets/{pid}/grab")
            return f"u{i}", status, body

        results = await asyncio.gather(*(grab(i) for i in range(2000)))
        wins = {uid: body["amount_fen"] for uid, status, body in results if status == 200}
        losers = [body["error"]["code"] for _, status, body in results if status != 200]
        assert len(wins) == 500
        assert sum(wins.values()) == 100_000  # type: ignore[arg-type]
        assert Counter(losers) == Counter({"empty": 1500})
        _, view = await op.call("GET", f"/api/v1/red-packets/{pid}")
        assert view["status"] == "done" and view["left"] == 0
        claims = {c["uid"]: c["amount_fen"] for c in view["claims"]}
        assert claims == wins and len(view["claims"]) == 500  # no user twice
        done = await watcher.next("rp_done")
        assert done["id"] == pid and claims[done["luckiest"]["uid"]] == max(claims.values())
        _, ledger = await op.call("GET", f"/api/v1/rooms/{rid}/ledger?count=1000")
        claim_events = [e for e in ledger["events"] if e["type"] == "rp_claim"]
        assert len(claim_events) == 500
        assert sum(int(e["amount_fen"]) for e in claim_events) == 100_000
        await watcher.close()


async def test_10000_entrants_10_winners_drawn_exactly_once(
    servers: StartServer, redis_url: str, redis_prefix: str
) -> None:
    env = env_for(redis_url, redis_prefix)
    one, two = servers(env=env), servers(env=env)
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        op = Api(session, one.base, one.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        watchers = [
            (await connect(session, s.base, rid, s.token(f"w{i}")))[0]
            for i, s in enumerate((one, two))
        ]
        status, lot = await op.call(
            "POST",
            f"/api/v1/rooms/{rid}/lotteries",
            {"prize": "福袋", "winners": 10, "condition": {"kind": "enter"}, "duration": 600},
        )
        assert status == 201
        lid = lot["id"]

        async def enter(i: int) -> int:
            server = one if i % 2 else two
            api = Api(session, server.base, server.token(f"e{i}"))
            status, _ = await api.call("POST", f"/api/v1/lotteries/{lid}/entries")
            return status

        statuses = await asyncio.gather(*(enter(i) for i in range(10_000)))
        assert Counter(statuses) == Counter({201: 10_000})
        # Both processes race to draw early; exactly one draw happens.
        first = Api(session, one.base, one.token("ops", "operator"))
        second = Api(session, two.base, two.token("ops", "operator"))
        answers = await asyncio.gather(
            first.call("POST", f"/api/v1/lotteries/{lid}/draw"),
            second.call("POST", f"/api/v1/lotteries/{lid}/draw"),
        )
        assert sorted(status for status, _ in answers) == [200, 409]
        drawn = next(body for status, body in answers if status == 200)
        assert len(drawn["winners"]) == 10 and len(set(drawn["winners"])) == 10
        assert drawn["entries"] == 10_000 and drawn["proof"]["entries"] == 10_000
        for w in watchers:
            result = await w.next("lot_result")
            assert result["winners"] == drawn["winners"]
        await asyncio.sleep(0.5)
        for w in watchers:
            assert not [m for m in w.backlog if m.get("t") == "lot_result"]
            assert all(
                m.get("t") != "lot_result"
                for m in list(w.inbox._queue)  # type: ignore[attr-defined]
            )
        _, ledger = await op.call("GET", f"/api/v1/rooms/{rid}/ledger")
        assert [e["type"] for e in ledger["events"]].count("lot_drawn") == 1
        for w in watchers:
            await w.close()


async def test_acknowledged_claims_survive_a_redis_crash_with_aof(
    servers: StartServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proc, port = start_redis_server(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    url = f"redis://127.0.0.1:{port}/0"
    try:
        server = servers(env=env_for(url, "aof:"))
        op = Api(session, server.base, server.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        _, packet = await op.call(
            "POST", f"/api/v1/rooms/{rid}/red-packets", {"total_fen": 5000, "count": 50}
        )
        pid = packet["id"]
        acked = {}
        for i in range(30):
            api = Api(session, server.base, server.token(f"a{i}"))
            status, body = await api.call("POST", f"/api/v1/red-packets/{pid}/grab")
            assert status == 200
            acked[f"a{i}"] = body["amount_fen"]
        proc.send_signal(signal.SIGKILL)
        stop_redis_server(proc)
        proc, _ = start_redis_server(
            tmp_path, "--appendonly", "yes", "--appendfsync", "always", port=port
        )
        for _ in range(100):
            status, view = await op.call("GET", f"/api/v1/red-packets/{pid}")
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200, view
        assert {c["uid"]: c["amount_fen"] for c in view["claims"]} == acked
        assert view["left"] == 20
        # A replay after the crash still answers with the first amount.
        api = Api(session, server.base, server.token("a0"))
        status, body = await api.call("POST", f"/api/v1/red-packets/{pid}/grab")
        assert status == 409 and body["error"]["amount_fen"] == acked["a0"]
    finally:
        stop_redis_server(proc)
