"""A merchant's webhook receiver on a real socket: every delivery is verified with the
``standardwebhooks`` package (an implementation we did not write), then deduplicated by
``webhook-id`` as Standard Webhooks tells receivers to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    id: str
    payload: dict[str, Any]
    signatures: list[str]
    host: str


@dataclass
class Receiver:
    secrets: list[str]
    # What to answer: (status, headers) for a delivery; 204 by default.
    answer: Callable[[str, dict[str, Any]], tuple[int, dict[str, str]]] = field(
        default=lambda _id, _p: (204, {})
    )
    all: list[Received] = field(default_factory=list)  # every verified delivery
    unique: dict[str, Received] = field(default_factory=dict)  # first of each id
    rejected: list[str] = field(default_factory=list)
    delay: float = 0.0  # seconds each delivery takes to process
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = dict(request.headers)
        payload = None
        for secret in self.secrets:
            try:
                payload = Webhook(secret).verify(raw, headers)
                break
            except WebhookVerificationError:
                continue
        if payload is None:
            self.rejected.append(headers.get("webhook-id", "?"))
            return web.Response(status=401)
        got = Received(
            headers["webhook-id"], payload, headers["webhook-signature"].split(" "),
            request.headers.get("Host", ""),
        )  # fmt: skip
        self.all.append(got)
        status, extra = self.answer(got.id, payload)
        if 200 <= status < 300:
            self.unique.setdefault(got.id, got)
        return web.Response(status=status, headers=extra)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
