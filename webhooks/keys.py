"""Redis key layout of the webhooks package.

Every key carries the hash tag ``{wh}``: the scripts touch a delivery, its endpoint's
queue and its subject's chain together, so they share one slot on Redis Cluster (the
delivery traffic of a deployment is small beside its rooms'). ``prefix`` is the
deployment's, as for ``rooms.keys``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WebhookKeys:
    prefix: str = "interact:"

    def endpoints(self) -> str:
        """Hash: endpoint id -> the endpoint's JSON (secrets included)."""
        return f"{self.prefix}{{wh}}:endpoints"

    def endpoints_version(self) -> str:
        """Counter: bumped by every change of ``endpoints``, so a process keeps the list
        cached and reads it again only when this moved."""
        return f"{self.prefix}{{wh}}:endpoints:v"

    def delivery(self, delivery_id: str) -> str:
        """Hash: one event for one endpoint (body, status, attempts, next_at)."""
        return f"{self.prefix}{{wh}}:d:{delivery_id}"

    def attempts(self, delivery_id: str) -> str:
        """List: the delivery's attempts, JSON, oldest first (capped)."""
        return f"{self.prefix}{{wh}}:a:{delivery_id}"

    def chain(self, endpoint_id: str, subject: str) -> str:
        """List: the endpoint's unfinished deliveries of one subject, in order; only the
        head is in ``due``, so an order's events never overtake each other."""
        return f"{self.prefix}{{wh}}:c:{endpoint_id}:{subject}"

    def due(self, endpoint_id: str) -> str:
        """Sorted set: chain heads -> ms of their next attempt (or their lease's end)."""
        return f"{self.prefix}{{wh}}:due:{endpoint_id}"

    def log(self, endpoint_id: str) -> str:
        """Sorted set: the endpoint's deliveries -> ms created (the deliveries list)."""
        return f"{self.prefix}{{wh}}:log:{endpoint_id}"

    def dead(self, endpoint_id: str) -> str:
        """Sorted set: dead-lettered deliveries -> ms they died."""
        return f"{self.prefix}{{wh}}:dead:{endpoint_id}"

    def pending(self) -> str:
        """Hash: endpoint id -> how many of its deliveries are pending (the cap's count)."""
        return f"{self.prefix}{{wh}}:pending"
