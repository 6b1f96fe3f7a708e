"""The delivery client: one signed POST over httpx, to the address the SSRF guard checked.

Each endpoint gets its own ``httpx.AsyncClient`` (its own bounded pool), so a slow one
holds only its own connections. The name is resolved once per attempt, every address
checked, and the connection made to the checked address (the URL's host replaced by the
IP; ``Host`` and TLS SNI keep the name, so certificates are verified against it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from webhooks.urls import Target, UrlRefused, check_url, pinned_address

# What is read of an answer: enough to finish the exchange on a kept-alive connection.
MAX_ANSWER_BYTES = 64 * 1024

Pin = Callable[[Target], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    retry_after: str | None
    latency_ms: int
    error: str = ""


class Sender:
    def __init__(
        self,
        *,
        allow_http: bool,
        allow_private: bool,
        timeout: float = 15.0,
        per_endpoint: int = 8,
        pin: Pin | None = None,
    ) -> None:
        self.allow_http = allow_http
        self.allow_private = allow_private
        self._timeout = timeout
        self._per_endpoint = per_endpoint
        self._pin = pin or (lambda t: pinned_address(t, allow_private=allow_private))
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, endpoint_id: str) -> httpx.AsyncClient:
        client = self._clients.get(endpoint_id)
        if client is None:
            limits = httpx.Limits(
                max_connections=self._per_endpoint, max_keepalive_connections=self._per_endpoint
            )
            client = httpx.AsyncClient(
                limits=limits,
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,  # a 3xx is a failure (Standard Webhooks)
                trust_env=False,  # no proxy from the environment around the guard
            )
            self._clients[endpoint_id] = client
        return client

    async def send(
        self, endpoint_id: str, url: str, headers: dict[str, str], body: bytes
    ) -> Outcome:
        start = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - start) * 1000)

        try:
            async with asyncio.timeout(self._timeout):
                target = check_url(url, allow_http=self.allow_http)
                address = await self._pin(target)
                ip = ipaddress.ip_address(address)
                literal = f"[{ip}]" if ip.version == 6 else str(ip)
                default = 443 if target.scheme == "https" else 80
                host = target.host if ":" not in target.host else f"[{target.host}]"
                host_header = host if target.port == default else f"{host}:{target.port}"
                pinned = f"{target.scheme}://{literal}:{target.port}{target.path}"
                extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
                request = self._client(endpoint_id).build_request(
                    "POST",
                    pinned,
                    content=body,
                    headers={
                        **headers,
                        "host": host_header,
                        "content-type": "application/json",
                        "user-agent": "Interact-Webhooks/1",
                    },
                    extensions=extensions,
                )
                response = await self._client(endpoint_id).send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read > MAX_ANSWER_BYTES:
                            break
                finally:
                    await response.aclose()
                return Outcome(response.status_code, response.headers.get("retry-after"), took())
        except UrlRefused as exc:
            return Outcome(None, None, took(), f"refused: {exc}")
        except TimeoutError:
            return Outcome(None, None, took(), f"timeout after {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome(None, None, took(), f"{type(exc).__name__}: {str(exc)[:200]}")

    async def forget(self, endpoint_id: str) -> None:
        client = self._clients.pop(endpoint_id, None)
        if client is not None:
            await client.aclose()

    async def close(self) -> None:
        for endpoint_id in list(self._clients):
            await self.forget(endpoint_id)
