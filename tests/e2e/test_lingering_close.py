"""The lingering close (RFC 6455 §7.1.1), on both paths, against real server processes.

When the server closes a connection whose client is still sending (a message over
``max_frame_bytes``, a frame that breaks the protocol, a refusal, a ban), it must not
close the socket at once: the bytes it would leave unread make its kernel answer with a
reset, and the client's kernel then drops the close frame before the client reads it.
The server sends its close frame, reads and drops what still comes until the client's
close frame or its EOF (half-closing first where it no longer parses frames), and cuts
the connection CLOSE_TIMEOUT_S after its close frame.

The peers are raw sockets (``tests.e2e.peer``) with a small receive buffer that send the
whole of what they meant to send before they read anything. Every test here failed on
the code before the lingering close, on both paths, except the refusal on the aiohttp
path: aiohttp's own close already read up to the client's close frame there; it checks
that taking the transport away from aiohttp keeps it so.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Callable

import aiohttp
import pytest

from bench.client import mask_frame
from interact.client_frames import OP_CLOSE, OP_PING, OP_TEXT
from interact.viewer import CLOSE_TIMEOUT_S
from tests.e2e.harness import Api, ServerProcess
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

StartServer = Callable[..., ServerProcess]

# The head of a masked text frame that announces 1 MiB: refused (1009) from its header.
BIG_HEAD = bytes((0x80 | OP_TEXT, 0x80 | 127)) + MiB.to_bytes(8, "big") + os.urandom(4)
CHUNK = b"\x00" * (16 * 1024)
# Their pongs fill the peer's small receive buffer: the server's close frame then waits
# in the server's send queue, which a reset throws away.
PINGS = mask_frame(OP_PING, b"p" * 125) * 256

VIOLATIONS = {
    # a 1 MiB message: the server refuses it from its header, the client sends it all
    "1009 too big": (BIG_HEAD, 1009),
    # opcode 3 is reserved; what follows is never parsed
    "1002 bad opcode": (mask_frame(0x3, b"x"), 1002),
    "1007 not utf-8": (mask_frame(OP_TEXT, b"\xff\xfe"), 1007),
}


async def stream(peer: Peer, size: int, chunk: bytes = CHUNK) -> None:
    """Send ``size`` bytes without reading anything; fails if the server resets."""
    sent = 0
    while sent < size:
        try:
            await asyncio.wait_for(peer.send(chunk), 10)
        except ConnectionError as exc:
            raise AssertionError(f"the server reset the connection after {sent} bytes") from exc
        sent += len(chunk)


async def read_close(peer: Peer) -> tuple[int, bytes]:
    """The server's close frame, which must come (after any data frames), then, once the
    client has answered it, the server's EOF."""
    try:
        while True:
            op, payload = await peer.frame()
            if op == OP_CLOSE:
                break
    except ConnectionError as exc:
        raise AssertionError("the close frame was lost to a reset") from exc
    # The client answers, as RFC 6455 §5.5.1 wants; then the server closes: nothing more.
    assert peer.buf == b"", peer.buf
    await peer.send(close_frame(payload[:2]))
    try:
        more = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(peer.sock, 1024), 10)
    except ConnectionError as exc:
        raise AssertionError("a reset after the close frame, not an EOF") from exc
    assert more == b"", more
    return int.from_bytes(payload[:2], "big"), payload[2:]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("violation", list(VIOLATIONS))
async def test_a_client_still_sending_after_a_violation_reads_the_close_frame(
    memory_server: ServerProcess, operator: Api, path: str, violation: str
) -> None:
    bad, code = VIOLATIONS[violation]
    rid = (await operator.live_room())["id"]
    query = {"room": rid, "token": memory_server.token("big")}
    # Three times: before the lingering close every attempt lost the close frame.
    for _ in range(3):
        peer = await Peer.open(memory_server.port, query, path, rcvbuf=4096)
        await peer.welcome()
        await peer.send(PINGS + bad)
        # The server decides at once; the client sends on as a client in the middle of a
        # big message does, all of it, and only then reads.
        await stream(peer, MiB)
        got, _ = await read_close(peer)
        assert got == code
        peer.close()


@pytest.mark.parametrize("path", PATHS)
async def test_a_refused_client_still_sending_reads_its_close_frame(
    memory_server: ServerProcess, operator: Api, path: str
) -> None:
    """A close the server starts (here: no such room, 4004) while the client streams
    messages it may send: they are read and dropped, not queued up."""
    await operator.live_room()  # the server is up and serving
    query = {"room": "r" + "0" * 12, "token": memory_server.token("lost")}
    ping = text({"t": "ping"})
    burst = ping * (len(CHUNK) // len(ping))
    for _ in range(3):
        peer = await Peer.open(memory_server.port, query, path, rcvbuf=4096)
        sent = 0
        while sent < MiB:
            try:
                await asyncio.wait_for(peer.send(burst), 10)
            except ConnectionError as exc:
                raise AssertionError(f"reset after {sent} bytes") from exc
            sent += len(burst)
        got, reason = await read_close(peer)
        assert (got, reason) == (4004, b"room not found")
        peer.close()


@pytest.mark.parametrize("path", PATHS)
async def test_a_banned_client_still_sending_reads_its_close_frame(
    servers: StartServer, path: str
) -> None:
    """A close the hub starts (a ban, 4003; 4008, 4029 and 1001 go the same way) while the
    client streams messages it may send (likes, which get no reply)."""
    server = servers(env={"INTERACT_ONLINE_INTERVAL": "3600"})  # nothing else to read
    async with aiohttp.ClientSession() as session:
        api = Api(session, server.base, server.token("ops", "operator"))
        rid = (await api.live_room())["id"]
        peer = await Peer.open(
            server.port, {"room": rid, "token": server.token("doomed")}, path, rcvbuf=4096
        )
        await peer.welcome()
        likes = text({"t": "like", "n": 1}) * 512
        status, _ = await api.call("POST", "/api/v1/moderation/bans", {"uid": "doomed"})
        assert status == 201
    # The client sends until the close frame is in (without reading it), then 1 MiB more.
    deadline = time.monotonic() + 10
    while not select.select([peer.sock], [], [], 0)[0]:
        assert time.monotonic() < deadline, "no close frame"
        await stream(peer, len(likes), likes)
    await stream(peer, MiB, likes)
    assert await read_close(peer) == (4003, b"banned")
    peer.close()


@pytest.mark.parametrize("path", PATHS)
async def test_a_peer_that_never_stops_sending_is_cut_at_the_deadline_in_bounded_memory(
    memory_server: ServerProcess, operator: Api, path: str
) -> None:
    rid = (await operator.live_room())["id"]
    peer = await Peer.open(
        memory_server.port, {"room": rid, "token": memory_server.token("hose")}, path
    )
    await peer.welcome()
    before = rss_bytes(memory_server.proc.pid)
    started = time.monotonic()
    await peer.send(BIG_HEAD)
    await stream(peer, MiB)
    assert (await read_close(peer))[0] == 1009
    # Past its 1 MiB, the peer sends on for ever: the server reads and drops it all and,
    # CLOSE_TIMEOUT_S after its close frame, cuts the connection.
    sent, peak = MiB, 0
    with pytest.raises(ConnectionError):
        while True:
            await asyncio.wait_for(peer.send(CHUNK * 16), 10)
            sent += len(CHUNK) * 16
            peak = max(peak, rss_bytes(memory_server.proc.pid) - before)
            assert time.monotonic() - started < CLOSE_TIMEOUT_S + 8, "never cut"
    cut = time.monotonic() - started
    await wait_until(
        lambda: not established(memory_server.port, peer.port), 5, "the server holds it"
    )
    peer.close()
    # Not before the deadline: the close lingered (and the peer could send that much).
    assert cut >= CLOSE_TIMEOUT_S * 0.95, (cut, sent)
    assert sent > 2 * MiB, sent
    # Nothing it sent is kept: measured +0 to +0.1 MB while it sent 4.3 to 5 GB in 2 s.
    assert peak < 8 * MiB, (peak, sent)
