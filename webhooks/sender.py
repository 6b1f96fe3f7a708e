"""What the delivery loop needs of an HTTP client: one signed POST to an endpoint,
answered with an ``Outcome``. The implementation lives in the application layer
(``interact.webhooks_sender``: aiohttp, the SSRF guard applied at connect time); the
domain only states the contract.

``send`` checks the URL and every address its host resolves to at each attempt
(``webhooks.urls``), connects to the checked address, reads at most
``MAX_ANSWER_BYTES`` of the answer, follows no redirect, and never raises: a refusal, a
timeout or a transport error is an ``Outcome`` with ``status`` None and ``error`` set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from webhooks.urls import Target

# What is read of an answer: enough to finish the exchange on a kept-alive connection.
MAX_ANSWER_BYTES = 64 * 1024

Pin = Callable[[Target], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    retry_after: str | None
    latency_ms: int
    error: str = ""


class Sender(Protocol):
    allow_http: bool
    allow_private: bool

    async def send(
        self, endpoint_id: str, url: str, headers: dict[str, str], body: bytes
    ) -> Outcome: ...

    async def forget(self, endpoint_id: str) -> None: ...

    async def close(self) -> None: ...
