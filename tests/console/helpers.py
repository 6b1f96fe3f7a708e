"""What the console tests drive besides the browser: REST calls and viewers over WebSocket."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class Rest:
    """A REST client holding one bearer token (the test's side, not the console's)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        r = httpx.request(method, self.base + path, json=body, headers=headers, timeout=10)
        data = (
            r.json()
            if r.content and r.headers.get("content-type", "").startswith("application/json")
            else r.content
        )
        return r.status_code, data

    def ok(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        status, data = self.call(method, path, body, headers)
        assert 200 <= status < 300, (method, path, status, data)
        return data


@contextmanager
def ws_viewer(base: str, room: str, token: str) -> Iterator[WsViewer]:
    """A viewer connected to ``room`` (welcomed), closed on leaving the block."""
    url = base.replace("http://", "ws://") + f"/ws?room={room}&token={token}"
    with connect(url, open_timeout=10) as ws:
        yield WsViewer(ws)


class WsViewer:
    """A viewer's WebSocket: ``wait_for`` reads messages until one matches, with a deadline."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self.welcome = self.wait_for(lambda m: m["t"] == "welcome")

    def send(self, obj: dict[str, Any]) -> None:
        self.ws.send(json.dumps(obj))

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        for msg in self.seen:
            if match(msg):
                return msg
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message in {timeout}s; saw {self.seen[-10:]}")
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            for msg in json.loads(raw):
                self.seen.append(msg)
                if match(msg):
                    return msg

    def comment(self, text: str, ref: str) -> dict[str, Any]:
        """Send a comment and return its ack."""
        self.send({"t": "dm", "text": text, "ref": ref})
        return self.wait_for(lambda m: m["t"] == "ack" and m.get("ref") == ref)

    def closed(self, timeout: float = 10) -> int | None:
        """Read until the server closes the connection; its close code."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"still open after {timeout}s; saw {self.seen[-10:]}")
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None
            self.seen.extend(json.loads(raw))


def yuan(fen: int) -> str:
    """Fen as the console shows them (computed here on its own, not by the page's code)."""
    return f"¥{fen // 100}.{fen % 100:02d}"
