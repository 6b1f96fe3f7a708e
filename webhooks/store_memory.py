"""In-process WebhookStore (see ``webhooks.store`` for the contract); each method runs
without an await, so each is one step as a Lua script is on Redis."""

from __future__ import annotations

import dataclasses
from collections import deque

from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint
from webhooks.schedule import Verdict
from webhooks.store import ATTEMPTS_KEPT, LOG_CAP, MAX_PENDING, QueueFull


class MemoryWebhookStore:
    def __init__(self, *, log_cap: int = LOG_CAP, max_pending: int = MAX_PENDING) -> None:
        self._log_cap = log_cap
        self._max_pending = max_pending
        self._pending: dict[str, int] = {}  # endpoint -> deliveries pending
        self._endpoints: dict[str, Endpoint] = {}
        self._deliveries: dict[str, Delivery] = {}
        self._chains: dict[tuple[str, str], deque[str]] = {}
        self._due: dict[str, dict[str, int]] = {}  # endpoint -> delivery id -> ms
        self._log: dict[str, dict[str, int]] = {}  # endpoint -> delivery id -> created
        self._dead: dict[str, dict[str, int]] = {}
        self._version = 0

    async def add_endpoint(self, endpoint: Endpoint, *, max_endpoints: int) -> bool:
        if len(self._endpoints) >= max_endpoints:
            return False
        self._endpoints[endpoint.id] = endpoint
        self._version += 1
        return True

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self._endpoints.get(endpoint_id)

    async def list_endpoints(self) -> list[Endpoint]:
        return sorted(self._endpoints.values(), key=lambda e: (e.created_at, e.id))

    async def endpoints_version(self) -> int:
        return self._version

    async def versioned_endpoints(self) -> tuple[int, list[Endpoint]]:
        return self._version, await self.list_endpoints()

    async def put_endpoint(self, endpoint: Endpoint) -> bool:
        if endpoint.id not in self._endpoints:
            return False
        self._endpoints[endpoint.id] = endpoint
        self._version += 1
        return True

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        if self._endpoints.pop(endpoint_id, None) is None:
            return False
        self._version += 1
        for did in [d for d, v in self._deliveries.items() if v.endpoint == endpoint_id]:
            del self._deliveries[did]
        for key in [k for k in self._chains if k[0] == endpoint_id]:
            del self._chains[key]
        for table in (self._due, self._log, self._dead, self._pending):
            table.pop(endpoint_id, None)
        return True

    async def enqueue_many(self, deliveries: list[Delivery]) -> list[int]:
        out = []
        for delivery in deliveries:
            try:
                out.append(int(await self.enqueue(delivery)))
            except QueueFull:
                out.append(-1)
        return out

    async def enqueue(self, delivery: Delivery) -> bool:
        did = delivery.id
        if did in self._deliveries:
            return False
        if self._pending.get(delivery.endpoint, 0) >= self._max_pending:
            raise QueueFull(delivery.endpoint)
        self._pending[delivery.endpoint] = self._pending.get(delivery.endpoint, 0) + 1
        self._deliveries[did] = dataclasses.replace(
            delivery, status=DeliveryStatus.PENDING, attempts=0, next_at=delivery.created_at
        )
        chain = self._chains.setdefault((delivery.endpoint, delivery.subject), deque())
        chain.append(did)
        if len(chain) == 1:
            self._due.setdefault(delivery.endpoint, {})[did] = delivery.created_at
        log = self._log.setdefault(delivery.endpoint, {})
        log[did] = delivery.created_at
        while len(log) > self._log_cap:
            # Insertion order is enqueue order: the first is the oldest, found in O(1).
            oldest = next(iter(log))
            del log[oldest]
            # Nothing else holds a finished delivery: it goes with its line in the list.
            if self._deliveries[oldest].status is not DeliveryStatus.PENDING:
                del self._deliveries[oldest]
                self._dead.get(delivery.endpoint, {}).pop(oldest, None)
        return True

    async def claim(
        self, endpoint_id: str, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[Delivery]:
        due = self._due.get(endpoint_id, {})
        ready = sorted((ms, did) for did, ms in due.items() if ms <= now_ms)[: max(limit, 0)]
        for _, did in ready:
            due[did] = lease_until_ms
        return [self._deliveries[did] for _, did in ready]

    async def finish(
        self,
        delivery_id: str,
        attempt: Attempt,
        verdict: Verdict,
        next_at_ms: int | None,
        subject: str | None = None,
    ) -> bool:
        d = self._deliveries.get(delivery_id)
        if d is None or d.status is not DeliveryStatus.PENDING:
            return False
        log = (*d.attempt_log, attempt)[-ATTEMPTS_KEPT:]
        chain = self._chains.get((d.endpoint, d.subject), deque())
        due = self._due.setdefault(d.endpoint, {})
        if verdict is Verdict.RETRY:
            assert next_at_ms is not None
            self._deliveries[delivery_id] = dataclasses.replace(
                d, attempts=d.attempts + 1, next_at=next_at_ms, attempt_log=log
            )
            if chain and chain[0] == delivery_id:
                due[delivery_id] = next_at_ms
            return True
        status = DeliveryStatus(verdict.value)
        self._deliveries[delivery_id] = dataclasses.replace(
            d, status=status, attempts=d.attempts + 1, attempt_log=log
        )
        self._pending[d.endpoint] = self._pending.get(d.endpoint, 1) - 1
        listed = delivery_id in self._log.get(d.endpoint, {})
        if not listed:  # fell off the list while pending: nothing shows it any more
            del self._deliveries[delivery_id]
        due.pop(delivery_id, None)
        if delivery_id in chain:
            chain.remove(delivery_id)
        if chain:
            due[chain[0]] = attempt.at
        else:
            self._chains.pop((d.endpoint, d.subject), None)
        if status is DeliveryStatus.DEAD and listed:
            self._dead.setdefault(d.endpoint, {})[delivery_id] = attempt.at
        return True

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self._deliveries.get(delivery_id)

    async def list_deliveries(self, endpoint_id: str, limit: int) -> list[Delivery]:
        log = self._log.get(endpoint_id, {})
        newest = sorted(log, key=lambda d: (log[d], d), reverse=True)[: max(limit, 0)]
        return [self._deliveries[d] for d in newest if d in self._deliveries]

    async def replay(self, delivery_id: str, now_ms: int) -> bool:
        d = self._deliveries.get(delivery_id)
        if d is None or d.status is DeliveryStatus.PENDING:
            return False
        self._deliveries[delivery_id] = dataclasses.replace(
            d, status=DeliveryStatus.PENDING, attempts=0, next_at=now_ms
        )
        self._pending[d.endpoint] = self._pending.get(d.endpoint, 0) + 1
        self._dead.get(d.endpoint, {}).pop(delivery_id, None)
        chain = self._chains.setdefault((d.endpoint, d.subject), deque())
        chain.append(delivery_id)
        if len(chain) == 1:
            self._due.setdefault(d.endpoint, {})[delivery_id] = now_ms
        return True

    async def dead_since(self, endpoint_id: str, since_ms: int, limit: int) -> list[str]:
        dead = self._dead.get(endpoint_id, {})
        ids = sorted((ms, did) for did, ms in dead.items() if ms >= since_ms)[: max(limit, 0)]
        prefix = endpoint_id + ":"
        return [did.removeprefix(prefix) for _, did in ids]
