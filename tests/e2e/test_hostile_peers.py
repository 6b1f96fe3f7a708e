"""Hostile peers after the upgrade, on both paths, against real server processes.

Each test runs on the direct path (a fresh connection: ``interact.upgrade`` answers it and
a ``RawSocket`` serves it) and on the aiohttp path (the same upgrade on a connection that
served a request first: aiohttp answers it and ``interact.ws.ws_handler`` serves it).
The peers are raw non-blocking sockets that read only when the test says so.
"""

from __future__ import annotations

import asyncio
import signal
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from bench.client import mask_frame
from interact.client_frames import OP_PING, OP_TEXT
from tests.e2e.harness import Api, ServerProcess, connect
from tests.e2e.peer import (
    PATHS,
    MiB,
    Peer,
    close_frame,
    established,
    rss_bytes,
    text,
    wait_until,
)
from tests.redis_server import start_redis_server, stop_redis_server

StartServer = Callable[..., ServerProcess]


async def live_query(server: ServerProcess, uid: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session:
        api = Api(session, server.base, server.token("ops", "operator"))
        room = await api.live_room()
    return {"room": room["id"], "token": server.token(uid)}


# -- finding 2: replies under back-pressure; closes that do not wait on the peer -------

PING_FRAME = mask_frame(OP_PING, b"p" * 125)
PING_MESSAGE = text({"t": "ping", "ref": "r" * 64})
# What the peer offers to send without reading anything back. Before the fix the server
# read all of it and buffered every reply: +30 MB or more of RSS.
OFFERED = 24 * MiB
# What the server may grow by for that peer: its write buffer stops at the soft limit
# (256 KiB) plus the replies to one read (~250 KB) and the messages waiting (64).
# Measured: +1.0 to +1.6 MB (before the fix: +27 to +33 MB, every offered byte read).
RSS_BOUND = 8 * MiB


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["ping frames", "ping messages"])
async def test_a_peer_that_never_reads_stops_being_read_and_its_close_does_not_wait(
    servers: StartServer, path: str, kind: str
) -> None:
    server = servers(env={"INTERACT_IDLE_TIMEOUT": "3"})
    peer = await Peer.open(server.port, await live_query(server, "deaf"), path, rcvbuf=4096)
    await peer.welcome()
    before = rss_bytes(server.proc.pid)
    unit = PING_FRAME if kind == "ping frames" else PING_MESSAGE
    chunk = unit * (64 * 1024 // len(unit))
    sent = 0
    while sent < OFFERED:
        try:
            # The server stops reading a peer that does not read: then this stalls.
            await asyncio.wait_for(peer.send(chunk), 3)
        except TimeoutError:
            break
        sent += len(chunk)
    grown = rss_bytes(server.proc.pid) - before
    assert sent < OFFERED, f"the server read all {sent} bytes and grew {grown} bytes"
    assert grown < RSS_BOUND, grown
    # Silent (it is not read) for the idle timeout, it is closed with 4008; the close
    # frame cannot reach a peer that does not read, and the server does not wait for it.
    await wait_until(
        lambda: not established(server.port, peer.port),
        3 + 5 + 10,
        "the server still holds the connection of a peer that does not read",
    )
    peer.close()


# -- finding 5: frames before a violation are handled first ----------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("bad", "code"),
    [(mask_frame(OP_TEXT, b"x" * 5000), 1009), (mask_frame(OP_TEXT, b"\xff\xfe"), 1007)],
    ids=["oversized", "not-utf8"],
)
async def test_a_comment_before_a_bad_frame_is_acked_and_published_then_the_close_says_why(
    memory_server: ServerProcess, operator: Api, path: str, bad: bytes, code: int
) -> None:
    rid = (await operator.live_room())["id"]
    watcher, _ = await connect(operator.session, memory_server.base, rid, memory_server.token("w"))
    peer = await Peer.open(
        memory_server.port, {"room": rid, "token": memory_server.token("p")}, path
    )
    await peer.welcome()
    # One write: the comment and the bad frame arrive in the same read.
    await peer.send(text({"t": "dm", "text": "before the bad frame", "ref": 1}) + bad)
    got, closed_with, _ = await peer.until_close()
    acks = [m for m in got if m.get("t") == "ack"]
    assert len(acks) == 1 and acks[0]["ok"] is True and acks[0]["ref"] == 1, got
    assert closed_with == code
    dm = await watcher.next("dm")
    assert (dm["text"], dm["seq"]) == ("before the bad frame", acks[0]["seq"])
    peer.close()
    await watcher.close()


# -- 7a: closes answered alike on both paths; the exact size limit ----------------------

CLIENT_CLOSES = [
    ((4000).to_bytes(2, "big"), 4000),  # echoed
    ((1000).to_bytes(2, "big") + b"bye", 1000),
    (b"", 1000),
    ((1006).to_bytes(2, "big"), 1002),  # Autobahn 7.9.5: a code never sent on the wire
    ((5000).to_bytes(2, "big"), 1002),  # 7.13.1
    ((65535).to_bytes(2, "big"), 1002),  # 7.13.2
    (b"\x03", 1002),  # one byte
    ((3000).to_bytes(2, "big") + b"\xff\xfe", 1007),  # reason not UTF-8
]


@pytest.mark.parametrize("path", PATHS)
async def test_a_client_close_gets_the_same_answer_on_both_paths(
    memory_server: ServerProcess, operator: Api, path: str
) -> None:
    rid = (await operator.live_room())["id"]
    answers = []
    for payload, _ in CLIENT_CLOSES:
        peer = await Peer.open(
            memory_server.port, {"room": rid, "token": memory_server.token("c")}, path
        )
        await peer.welcome()
        await peer.send(close_frame(payload))
        _, code, _ = await peer.until_close()
        answers.append(code)
        peer.close()
    assert answers == [code for _, code in CLIENT_CLOSES]


def sized_ping(size: int) -> bytes:
    """A ping message of exactly ``size`` bytes of JSON."""
    base = orjson.dumps({"t": "ping", "ref": 1, "pad": ""})
    return orjson.dumps({"t": "ping", "ref": 1, "pad": "x" * (size - len(base))})


def deflated(payload: bytes) -> bytes:
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    data = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflated"])
async def test_exactly_max_frame_bytes_is_accepted_and_one_byte_more_closes_1009(
    memory_server: ServerProcess, operator: Api, path: str, compressed: bool
) -> None:
    rid = (await operator.live_room())["id"]
    query = {"room": rid, "token": memory_server.token("size")}

    def wire(size: int) -> bytes:
        payload = sized_ping(size)
        assert len(payload) == size
        if compressed:  # RSV1: the size that counts is the inflated one
            return mask_frame(OP_TEXT | 0x40, deflated(payload))
        return mask_frame(OP_TEXT, payload)

    peer = await Peer.open(memory_server.port, query, path, deflate=compressed)
    await peer.welcome()
    await peer.send(wire(4096))  # max_frame_bytes of the server: 4096
    while not any(m.get("t") == "pong" for m in await peer.messages()):
        pass
    await peer.send(wire(4097))
    _, code, _ = await peer.until_close()
    assert code == 1009
    peer.close()


# -- the welcome deadline ------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_a_connection_not_welcomed_in_time_is_closed_1011(
    servers: StartServer, tmp_path: Path, path: str
) -> None:
    redis, redis_port = start_redis_server(tmp_path / "redis")
    server = None
    try:
        server = servers(
            env={
                "INTERACT_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "INTERACT_WELCOME_TIMEOUT": "1",
            }
        )
        query = await live_query(server, "patient")
        redis.send_signal(signal.SIGSTOP)  # the engine stops answering: no join completes
        try:
            peer = await Peer.open(server.port, query, path)
            started = time.monotonic()
            got, code, _ = await peer.until_close()
            assert (got, code) == ([], 1011)
            assert time.monotonic() - started >= 0.9
            peer.close()
        finally:
            redis.send_signal(signal.SIGCONT)
    finally:
        if server is not None:
            server.stop()
        stop_redis_server(redis)


# -- finding 9: a closed connection is freed when it closes ----------------------------


async def test_big_messages_of_closed_connections_do_not_stay_in_memory(
    servers: StartServer,
) -> None:
    # A fixed mmap threshold: glibc then returns every freed big buffer to the system at
    # once, instead of raising the threshold after the first and keeping later ones on
    # its heap, so RSS shows what is still held, not what the allocator chose to keep.
    server = servers("--max-frame-bytes", "20000000", env={"MALLOC_MMAP_THRESHOLD_": "131072"})
    query = await live_query(server, "big")
    big = mask_frame(OP_TEXT, b"x" * (8 * MiB))
    before = rss_bytes(server.proc.pid)
    for _ in range(3):
        peers = [await Peer.open(server.port, query, "direct") for _ in range(20)]
        for p in peers:
            await p.welcome()
        # Each sends an 8 MiB message and its close in one go, and is gone.
        await asyncio.gather(*(p.send(big + close_frame(b"")) for p in peers))
        ports = [p.port for p in peers]
        for p in peers:
            p.close()
        await wait_until(
            lambda ports=ports: not any(established(server.port, port) for port in ports),
            30,
            "the server did not let the connections go",
        )
    # Each round's messages are 160 MiB (20 x 8 MiB), all held at once while they arrive;
    # what the allocator keeps of that peak varies (measured after a round: 0 to 99 MiB,
    # after three: -1 to 0 MiB). Before the fix every round stayed: +526 MiB after three.
    grown = rss_bytes(server.proc.pid) - before
    assert grown < 160 * MiB, grown
