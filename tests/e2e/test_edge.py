"""The edge of a real server process: per-process connection caps and the request-head
deadline, on both connection paths (raw upgrade on and off)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess
from tests.e2e.raw_client import RawClient

# Every wait allows several times the deadline: the machine may be loaded.
WAIT_S = 10.0

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_from(server: ServerProcess, source: str) -> Conn:
    """A TCP connection from a loopback source address (any 127.x.y.z is this host)."""
    return await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))


async def knock(server: ServerProcess, source: str) -> tuple[Conn, bytes]:
    """Connect and ask for /healthz: the connection and the head of the answer — a 200
    when admitted (the connection then stays open, idle), a 503 when refused."""
    reader, writer = await open_from(server, source)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        head = b""
    return (reader, writer), head


async def until_admitted(server: ServerProcess, source: str) -> Conn:
    """Knock until admitted: a closed connection is forgotten by the server a moment
    after the client sees it close."""
    deadline = time.monotonic() + WAIT_S
    while True:
        conn, head = await knock(server, source)
        if head.startswith(b"HTTP/1.1 200"):
            return conn
        conn[1].close()
        assert head.startswith(b"HTTP/1.1 503"), head
        assert time.monotonic() < deadline, "never admitted again"


async def metric(server: ServerProcess, name: str, source: str = "127.0.0.250") -> float:
    """A sample of the server's /metrics (asked again while the server refuses)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        reader, writer = await open_from(server, source)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            text = (await asyncio.wait_for(reader.read(), WAIT_S)).decode()
        except ConnectionResetError:
            text = ""
        finally:
            writer.close()
        if text.startswith("HTTP/1.1 200"):
            break
        assert time.monotonic() < deadline, text[:200]
    lines = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(lines[0].split()[-1]) if lines else 0.0


async def assert_refused(server: ServerProcess, source: str) -> None:
    (reader, writer), head = await knock(server, source)
    try:
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert b"\r\nRetry-After: " in head and b"\r\nConnection: close\r\n" in head
        # And closed: at once after the 503, so the request sent meanwhile may be
        # answered with a reset.
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
    finally:
        writer.close()


@pytest.mark.parametrize("raw", ["true", "false"])
async def test_the_per_address_cap_refuses_the_next_and_recovers_when_one_closes(
    servers: Callable[..., ServerProcess], raw: str
) -> None:
    server = servers(
        env={
            "INTERACT_RAW_UPGRADE": raw,
            "INTERACT_MAX_CONNS_PER_ADDRESS": "3",
            "INTERACT_HEAD_TIMEOUT": "60",
        }
    )
    held = [await until_admitted(server, "127.0.0.1") for _ in range(3)]
    await assert_refused(server, "127.0.0.1")
    # Another address is not affected.
    other = await until_admitted(server, "127.0.0.2")
    other[1].close()
    assert await metric(server, 'interact_connections_refused_total{reason="address"}') == 1
    held.pop()[1].close()
    held.append(await until_admitted(server, "127.0.0.1"))
    for _, writer in held:
        writer.close()


@pytest.mark.parametrize("raw", ["true", "false"])
async def test_the_unwelcomed_cap_counts_connections_until_their_welcome(
    servers: Callable[..., ServerProcess], raw: str
) -> None:
    server = servers(
        env={
            "INTERACT_RAW_UPGRADE": raw,
            "INTERACT_MAX_UNWELCOMED": "2",
            "INTERACT_HEAD_TIMEOUT": "60",
        }
    )
    async with aiohttp.ClientSession() as session:
        op = Api(session, server.base, server.token("ops", "operator"))
        rid = (await op.live_room())["id"]
    viewer, _ = await RawClient.open(server, {"room": rid, "token": server.token("v")})
    assert (await viewer.messages())[0]["t"] == "welcome"  # and so no longer counted
    held = [await until_admitted(server, f"127.0.0.{i}") for i in (2, 3)]
    await assert_refused(server, "127.0.0.4")
    held.pop()[1].close()
    held.append(await until_admitted(server, "127.0.0.4"))
    for _, writer in held:
        writer.close()
    viewer.close()
    assert await metric(server, 'interact_connections_refused_total{reason="unwelcomed"}') >= 1


async def test_with_the_aiohttp_path_only_a_trickled_head_still_has_its_deadline(
    servers: Callable[..., ServerProcess],
) -> None:
    server = servers(env={"INTERACT_RAW_UPGRADE": "false", "INTERACT_HEAD_TIMEOUT": "1"})
    reader, writer = await open_from(server, "127.0.0.1")
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""
    finally:
        writer.close()
    assert await metric(server, 'interact_deadline_closed_total{stage="head"}') == 1
