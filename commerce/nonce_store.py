"""NonceStore: each payment-notification nonce is accepted once, across all processes.

Contract: ``claim(nonce, ttl_s)`` is True the first time a nonce is seen within
``ttl_s`` seconds and False after; the caller claims only once the signature verified,
so forged requests cannot use up nonces.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class NonceStore(Protocol):
    async def claim(self, nonce: str, ttl_s: int) -> bool: ...


class MemoryNonceStore:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    async def claim(self, nonce: str, ttl_s: int) -> bool:
        now = time.monotonic()
        if len(self._seen) > 100_000:
            self._seen = {n: t for n, t in self._seen.items() if t > now}
        if self._seen.get(nonce, 0.0) > now:
            return False
        self._seen[nonce] = now + ttl_s
        return True


class RedisNonceStore:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}paynonce:"

    async def claim(self, nonce: str, ttl_s: int) -> bool:
        return bool(await self._client.set(self._prefix + nonce, b"1", nx=True, ex=ttl_s))
