"""WebhookStore: endpoints, and the deliveries queued for them.

Contract (both engines; tests/contract/test_webhook_store.py):
- Endpoints: ``add_endpoint`` refuses (False) past ``max_endpoints``; ``put_endpoint``
  replaces a record only while it exists; ``delete_endpoint`` drops the endpoint and
  everything queued for it. Each of the three that changes something moves
  ``endpoints_version``; ``versioned_endpoints`` returns a version with a list at least
  as new as it (a process caches the list and reads it again when the version moved).
- ``enqueue`` queues one event for one endpoint once: a second enqueue of the same
  delivery id is a no-op (False), so reading a ledger entry again queues nothing new.
  An endpoint holds at most ``max_pending`` pending deliveries: one more is
  ``QueueFull`` and nothing is queued (the service then disables the endpoint).
  ``enqueue_many`` does the same for a list, in its order (one round trip on Redis),
  and answers per delivery: 1 queued, 0 there already, -1 the endpoint's queue full.
- Deliveries of one endpoint and one subject form a chain in enqueue order; only the
  chain's head is ever due, so one order's events reach an endpoint in order.
- ``claim(endpoint, now, lease_until, limit)`` returns heads due by ``now`` (oldest due
  first) and leases them until ``lease_until``: no other claim returns them before that,
  and after it (their holder died) any claim does — at least once, never lost.
- ``finish(delivery_id, attempt, verdict, next_at, subject)`` logs the attempt (the
  delivery's ``subject``, when the caller has it, saves the store looking it up); ``retry`` makes
  the delivery due at ``next_at``; ``succeeded`` and ``dead`` end it, make the chain's
  next delivery due at once, and (``dead``) list it among the dead letters. Finishing a
  delivery that is not pending changes nothing (False).
- ``replay`` queues a finished delivery again (same event id, attempts from 0, attempt
  log kept) at the end of its chain; pending ones are not replayed (False).
- Finished deliveries are kept ``keep_ms`` (7 days by default) and at most ``log_cap``
  per endpoint: the per-endpoint list keeps the newest ``log_cap``, and a finished
  delivery that falls off it is deleted. Memory per endpoint is thus bounded by
  ``log_cap + max_pending`` deliveries.
"""

from __future__ import annotations

from typing import Protocol

from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.schedule import Verdict

KEEP_MS = 7 * 24 * 3600 * 1000
LOG_CAP = 10_000
ATTEMPTS_KEPT = 50
# Pending deliveries per endpoint: about 7 minutes of 10,000 paid orders a minute (three
# events each), a backlog no retry schedule will catch up with: past it the endpoint is
# disabled rather than let a dead endpoint fill Redis.
MAX_PENDING = 200_000


class QueueFull(Exception):
    """The endpoint has ``max_pending`` deliveries pending already."""


class WebhookStore(Protocol):
    async def add_endpoint(self, endpoint: Endpoint, *, max_endpoints: int) -> bool: ...

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None: ...

    async def list_endpoints(self) -> list[Endpoint]: ...

    async def endpoints_version(self) -> int: ...

    async def versioned_endpoints(self) -> tuple[int, list[Endpoint]]: ...

    async def put_endpoint(self, endpoint: Endpoint) -> bool: ...

    async def delete_endpoint(self, endpoint_id: str) -> bool: ...

    async def enqueue(self, delivery: Delivery) -> bool: ...

    async def enqueue_many(self, deliveries: list[Delivery]) -> list[int]: ...

    async def claim(
        self, endpoint_id: str, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[Delivery]: ...

    async def finish(
        self,
        delivery_id: str,
        attempt: Attempt,
        verdict: Verdict,
        next_at_ms: int | None,
        subject: str | None = None,
    ) -> bool: ...

    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    async def list_deliveries(self, endpoint_id: str, limit: int) -> list[Delivery]: ...

    async def replay(self, delivery_id: str, now_ms: int) -> bool: ...

    async def dead_since(self, endpoint_id: str, since_ms: int, limit: int) -> list[str]: ...
