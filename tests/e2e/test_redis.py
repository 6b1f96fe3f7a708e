"""Two server processes on one Redis: fan-out, ordering, recovery and online counts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess, connect, free_port, wait_ready
from tests.redis_server import start_redis_server, stop_redis_server

StartServer = Callable[..., ServerProcess]


def redis_env(url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "INTERACT_REDIS_URL": url,
        "INTERACT_REDIS_PREFIX": prefix,
        "INTERACT_ONLINE_INTERVAL": "0.3",
        **extra,
    }


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_comments_cross_processes_in_seq_order(
    servers: StartServer,
    session: aiohttp.ClientSession,
    redis_url: str,
    redis_prefix: str,
    codec: str,
) -> None:
    env = redis_env(redis_url, redis_prefix)
    one, two = servers(env=env), servers(env=env)
    op = Api(session, one.base, one.token("ops", "operator"))
    room = await op.live_room()
    rid = room["id"]
    on_one, _ = await connect(session, one.base, rid, one.token("a"), codec=codec)
    on_two, _ = await connect(session, two.base, rid, two.token("b"), codec=codec)
    senders = [on_one, on_two]

    async def send(viewer: object, n: int, tag: str) -> list[int]:
        seqs = []
        for i in range(n):
            await viewer.send({"t": "dm", "text": f"{tag}{i}", "ref": f"{tag}{i}"})  # type: ignore[attr-defined]
            seqs.append((await viewer.ack(f"{tag}{i}"))["seq"])  # type: ignore[attr-defined]
        return seqs

    sent = await asyncio.gather(send(senders[0], 40, "a"), send(senders[1], 40, "b"))
    all_seqs = sorted(sent[0] + sent[1])
    assert all_seqs == list(range(1, 81))
    for viewer in senders:
        got = [(await viewer.next("dm"))["seq"] for _ in range(80)]
        assert got == list(range(1, 81))
    # The room state change made through process one reaches viewers of process two.
    await op.call("POST", f"/api/v1/rooms/{rid}/pause")
    assert (await on_two.next("room"))["status"] == "paused"
    # Online counts are summed over both processes.
    extra, _ = await connect(session, two.base, rid, two.token("c"), codec=codec)
    count = 0
    while count != 3:
        count = (await on_one.next("online"))["count"]
    for v in (on_one, on_two, extra):
        await v.close()


async def test_recovery_on_another_process(
    servers: StartServer, session: aiohttp.ClientSession, redis_url: str, redis_prefix: str
) -> None:
    env = redis_env(redis_url, redis_prefix)
    one, two = servers(env=env), servers(env=env)
    op = Api(session, one.base, one.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    sender, _ = await connect(session, one.base, rid, one.token("s"))
    v, welcome = await connect(session, one.base, rid, one.token("v"))
    for i in range(3):
        await sender.send({"t": "dm", "text": f"x{i}", "ref": i})
        await sender.ack(i)
    last = 0
    while last < 3:
        last = (await v.next("dm"))["seq"]
    await v.close()
    for i in range(3, 8):
        await sender.send({"t": "dm", "text": f"x{i}", "ref": i})
        await sender.ack(i)
    v2, again = await connect(
        session, two.base, rid, two.token("v"), since=last, epoch=welcome["epoch"]
    )
    assert again["recovered"] is True
    assert [m["seq"] for m in again["history"]] == [4, 5, 6, 7, 8]
    assert [m["text"] for m in again["history"]] == [f"x{i}" for i in range(3, 8)]
    await sender.close()
    await v2.close()


async def test_workers_share_one_port(
    servers: StartServer, session: aiohttp.ClientSession, redis_url: str, redis_prefix: str
) -> None:
    port = free_port()
    server = servers(
        "--workers", "2", env=redis_env(redis_url, redis_prefix), port=port, wait=False
    )
    wait_ready(server)
    pids = set()
    for _ in range(200):
        async with aiohttp.ClientSession() as fresh:  # a new connection each time
            async with fresh.get(server.base + "/healthz") as r:
                pids.add(r.headers["X-Interact-Pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2, "requests were not spread over two worker processes"
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    viewers = [
        (await connect(session, server.base, rid, server.token(f"v{i}")))[0] for i in range(8)
    ]
    await viewers[0].send({"t": "dm", "text": "to all workers", "ref": 1})
    seq = (await viewers[0].ack(1))["seq"]
    for v in viewers:
        assert (await v.next("dm"))["seq"] == seq
    for v in viewers:
        await v.close()
    assert server.stop() == 0


async def test_redis_outage_is_reported_and_survived(
    servers: StartServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Redis stops: not ready, comments refused with `overloaded`, viewers stay; it returns:
    ready again, and comments flow with their numbering intact (AOF keeps the log)."""
    proc, port = start_redis_server(tmp_path, "--appendonly", "yes")
    url = f"redis://127.0.0.1:{port}/0"
    try:
        server = servers(env=redis_env(url, "outage:"))
        op = Api(session, server.base, server.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        v, _ = await connect(session, server.base, rid, server.token("v"))
        await v.send({"t": "dm", "text": "before", "ref": 1})
        assert (await v.ack(1))["seq"] == 1
        assert (await v.next("dm"))["seq"] == 1
        stop_redis_server(proc)
        status, body = await op.call("GET", "/readyz")
        assert status == 503 and body["status"] == "unavailable"
        await v.send({"t": "dm", "text": "during", "ref": 2})
        ack = await v.ack(2)
        assert ack["ok"] is False and ack["code"] == "overloaded"
        status, body = await op.call("POST", f"/api/v1/rooms/{rid}/pause")
        assert status == 503 and body["error"]["code"] == "overloaded"
        proc, _ = start_redis_server(tmp_path, "--appendonly", "yes", port=port)
        for _ in range(100):
            if (await op.call("GET", "/readyz"))[0] == 200:
                break
            await asyncio.sleep(0.1)
        assert (await op.call("GET", "/readyz"))[0] == 200
        assert v.close_code is None and not v.ws.closed
        acked: list[int] = []
        received: list[int] = []
        for attempt in range(50):  # the pub/sub connection comes back on its own
            await v.send({"t": "dm", "text": "after", "ref": 10 + attempt})
            ack = await v.ack(10 + attempt)
            if ack["ok"]:
                acked.append(ack["seq"])
                with contextlib.suppress(TimeoutError):
                    while not received or received[-1] < ack["seq"]:
                        received.append((await v.next("dm", timeout=1))["seq"])
                if received and received[-1] == ack["seq"]:
                    break
            await asyncio.sleep(0.1)
        # The refused comment took no number; numbering resumed where it stopped; and
        # the comments acked before pub/sub was back were read back from the history:
        # the viewer got every one, in order, once.
        assert acked == list(range(2, 2 + len(acked)))
        assert received == acked
        await v.close()
    finally:
        stop_redis_server(proc)


async def test_a_lone_comment_made_while_pubsub_reconnects_still_arrives(
    servers: StartServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Redis restarts; one comment is made before this process's pub/sub connection is
    back (its backoff has grown to seconds) and nothing after it: no later seq reveals
    the gap, so the broker's resync must — the viewer still gets it."""
    proc, port = start_redis_server(tmp_path, "--appendonly", "yes")
    url = f"redis://127.0.0.1:{port}/0"
    try:
        server = servers(env=redis_env(url, "lone:"))
        op = Api(session, server.base, server.token("ops", "operator"))
        rid = (await op.live_room())["id"]
        v, _ = await connect(session, server.base, rid, server.token("v"))
        status, first = await op.call("POST", f"/api/v1/rooms/{rid}/messages", {"text": "one"})
        assert status == 201
        assert (await v.next("dm"))["seq"] == first["seq"]
        stop_redis_server(proc)
        await asyncio.sleep(3.4)  # the broker's reconnect backoff grows past a second
        proc, _ = start_redis_server(tmp_path, "--appendonly", "yes", port=port)
        for _ in range(300):
            status, lone = await op.call("POST", f"/api/v1/rooms/{rid}/messages", {"text": "two"})
            if status == 201:
                break
            await asyncio.sleep(0.01)
        assert status == 201 and lone["seq"] == first["seq"] + 1
        got = await v.next("dm", timeout=15)
        assert (got["seq"], got["text"]) == (lone["seq"], "two")
        await v.close()
    finally:
        stop_redis_server(proc)
