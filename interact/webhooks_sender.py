"""The webhook delivery client (``webhooks.sender.Sender``): one signed POST over
aiohttp, to the address the SSRF guard checked.

Each endpoint gets its own ``aiohttp.ClientSession`` (its own bounded pool), so a slow one
holds only its own connections. The name is resolved once per attempt, every address
checked, and the connection made to the checked address (the URL's host replaced by the
IP; ``Host`` and TLS SNI keep the name, so certificates are verified against it).

aiohttp rather than httpx: the server runs it already, and in the webhooks benchmark the
sender took 4 % of the server's CPU samples with it against 48 % with httpx, which on a
shared core was the difference between keeping up with 10,000 orders a minute and
falling behind (docs/benchmarks.md). It lives here, not in ``webhooks``, because domain
packages do not import aiohttp (tests/unit/test_layers.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time

import aiohttp

from webhooks.sender import MAX_ANSWER_BYTES, Outcome, Pin
from webhooks.urls import UrlRefused, check_url, pinned_address


def _tls() -> ssl.SSLContext:
    try:
        import certifi  # the CA bundle httpx uses elsewhere in the process
    except ImportError:  # pragma: no cover - the system's store then
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


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
        self._clients: dict[str, aiohttp.ClientSession] = {}
        self._tls: ssl.SSLContext | None = None

    def _client(self, endpoint_id: str) -> aiohttp.ClientSession:
        client = self._clients.get(endpoint_id)
        if client is None:
            if self._tls is None:
                self._tls = _tls()
            connector = aiohttp.TCPConnector(
                limit=self._per_endpoint,
                limit_per_host=self._per_endpoint,
                use_dns_cache=False,  # the host is the checked IP, never a name
                ssl=self._tls,
            )
            client = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                trust_env=False,  # no proxy from the environment around the guard
                auto_decompress=False,
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
                async with self._client(endpoint_id).post(
                    pinned,
                    data=body,
                    headers={
                        **headers,
                        "host": host_header,
                        "content-type": "application/json",
                        "user-agent": "Interact-Webhooks/1",
                    },
                    allow_redirects=False,  # a 3xx is a failure (Standard Webhooks)
                    server_hostname=target.host if target.scheme == "https" else None,
                ) as response:
                    read = 0
                    while chunk := await response.content.readany():
                        read += len(chunk)
                        if read > MAX_ANSWER_BYTES:
                            response.close()  # the rest is dropped with the connection
                            break
                    return Outcome(response.status, response.headers.get("retry-after"), took())
        except UrlRefused as exc:
            return Outcome(None, None, took(), f"refused: {exc}")
        except TimeoutError:
            return Outcome(None, None, took(), f"timeout after {self._timeout:g} s")
        except (aiohttp.ClientError, ValueError) as exc:
            return Outcome(None, None, took(), f"{type(exc).__name__}: {str(exc)[:200]}")

    async def forget(self, endpoint_id: str) -> None:
        client = self._clients.pop(endpoint_id, None)
        if client is not None:
            await client.close()

    async def close(self) -> None:
        for endpoint_id in list(self._clients):
            await self.forget(endpoint_id)
