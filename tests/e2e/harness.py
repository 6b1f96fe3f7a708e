"""Real server processes and real clients for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import orjson

from interact import tokens

SECRET = "e2e-secret-0123456789abcdef0123456789abcdef"
# Pacing off unless a test turns it on (or asks for the shipped defaults): most tests
# send faster than a viewer may.
PACING_OFF = {"INTERACT_RATE_PER_S": "0", "INTERACT_REPEAT_WINDOW": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    secret: str = SECRET

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(
        self, uid: str, role: str = "viewer", nick: str | None = None, ttl: int = 3600
    ) -> str:
        user = tokens.User(uid=uid, nick=nick or uid, role=tokens.Role(role))
        return tokens.issue(self.secret, user, ttl)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
    shipped_defaults: bool = False,
) -> ServerProcess:
    """A server process on ``port`` (a free one by default), logging to ``tmp_path``.

    ``shipped_defaults``: moderation as shipped (pacing on), not the harness's pacing off.
    """
    port = port or free_port()
    log_path = tmp_path / f"server-{port}-{time.monotonic_ns()}.log"
    # With the shipped defaults, no INTERACT_* setting of the caller's shell leaks in.
    inherited = {
        k: v for k, v in os.environ.items() if not (shipped_defaults and k.startswith("INTERACT_"))
    }
    full_env = {
        **inherited,
        "INTERACT_SECRET": SECRET,
        "INTERACT_HOST": "127.0.0.1",
        "INTERACT_PORT": str(port),
        "INTERACT_LOG_LEVEL": "info",
        **({} if shipped_defaults else PACING_OFF),
        **(env or {}),
    }
    for key in ("INTERACT_REDIS_URL", "INTERACT_CONFIG"):
        if env is None or key not in env:
            full_env.pop(key, None)
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "interact", "serve", *args],
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(proc, port, log_path)
    if wait:
        wait_ready(server)
    return server


def wait_ready(server: ServerProcess, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.base + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"server not ready in {timeout}s:\n{server.log()}")


class Api:
    """A REST client holding one bearer token."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str | None) -> None:
        self.session = session
        self.base = base
        self.token = token

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        data: bytes | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        headers = {}
        tok = token if token is not None else self.token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        async with self.session.request(
            method, self.base + path, json=json, data=data, headers=headers
        ) as r:
            raw = await r.read()
            body = orjson.loads(raw) if raw and r.content_type == "application/json" else raw
            return r.status, body

    async def live_room(self, title: str = "room") -> dict[str, Any]:
        status, room = await self.call("POST", "/api/v1/rooms", {"title": title})
        assert status == 201, room
        status, room = await self.call("POST", f"/api/v1/rooms/{room['id']}/start")
        assert status == 200, room
        return room


@dataclass
class Viewer:
    """A WebSocket client that decodes every batch into ``inbox``."""

    ws: aiohttp.ClientWebSocketResponse
    codec: str
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    frames: int = 0
    close_code: int | None = None
    reader: asyncio.Task[None] | None = None
    # messages skipped by ``next(kind)``, kept in order for later calls
    backlog: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                batch = orjson.loads(msg.data)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                batch = msgpack.unpackb(msg.data, raw=False)
            else:
                break
            assert isinstance(batch, list), batch
            self.frames += 1
            for item in batch:
                self.inbox.put_nowait(item)
        self.close_code = self.ws.close_code

    async def send(self, obj: dict[str, Any]) -> None:
        if self.codec == "msgpack":
            await self.ws.send_bytes(msgpack.packb(obj))
        else:
            await self.ws.send_str(orjson.dumps(obj).decode())

    async def next(self, kind: str | None = None, timeout: float = 5) -> dict[str, Any]:
        """The next message (of type ``kind``; others stay queued for later calls)."""
        for i, msg in enumerate(self.backlog):
            if kind is None or msg.get("t") == kind:
                return self.backlog.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            msg = await asyncio.wait_for(self.inbox.get(), max(left, 0.001))
            if kind is None or msg.get("t") == kind:
                return msg
            self.backlog.append(msg)

    async def ack(self, ref: Any, timeout: float = 5) -> dict[str, Any]:
        while True:
            msg = await self.next("ack", timeout)
            if msg.get("ref") == ref:
                return msg

    async def closed(self, timeout: float = 10) -> int | None:
        assert self.reader is not None
        await asyncio.wait_for(self.reader, timeout)
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 5)


async def connect(
    session: aiohttp.ClientSession,
    base: str,
    room: str,
    token: str,
    *,
    codec: str = "json",
    since: int | None = None,
    epoch: str | None = None,
    compress: int = 0,
    welcome: bool = True,
) -> tuple[Viewer, dict[str, Any]]:
    """Connect a viewer and return it with its welcome (or the first message)."""
    params = {"room": room, "token": token, "codec": codec}
    if since is not None:
        params["since"] = str(since)
    if epoch is not None:
        params["epoch"] = epoch
    ws = await session.ws_connect(base + "/ws", params=params, compress=compress, autoping=True)
    viewer = Viewer(ws, codec)
    viewer.start()
    first: dict[str, Any] = {}
    if welcome:
        first = await viewer.next()
        assert first["t"] == "welcome", first
    return viewer, first
