"""Endpoints, deliveries and attempts: the records the webhook stores hold."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from webhooks.events import WebhookEvent


class EndpointStatus(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its turn or its next attempt
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # every attempt failed: dead-lettered, replayable


def new_endpoint_id() -> str:
    return "wh" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Secret:
    value: str  # whsec_…, never logged
    expires_at: int | None = None  # ms; None: the current secret


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    events: tuple[str, ...]
    room: str | None
    created_at: int
    secrets: tuple[Secret, ...]
    status: EndpointStatus = EndpointStatus.ENABLED
    disabled_reason: str = ""
    failing_since: int | None = None

    def wants(self, event: WebhookEvent) -> bool:
        """Subscribed to the event: its type, its room (when the endpoint has one), and
        it happened once the endpoint existed."""
        if event.type not in self.events or event.ts_ms < self.created_at:
            return False
        return self.room is None or event.room == self.room

    def signing_secrets(self, now_ms: int) -> list[str]:
        """The secrets to sign with now: the current one and any still in its overlap."""
        return [s.value for s in self.secrets if s.expires_at is None or s.expires_at > now_ms]

    def public(self) -> dict[str, Any]:
        """What the REST API shows (no secret)."""
        previous = [s.expires_at for s in self.secrets if s.expires_at is not None]
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "room": self.room,
            "status": self.status.value,
            "disabled_reason": self.disabled_reason or None,
            "created_at": self.created_at,
            "failing_since": self.failing_since,
            "previous_secret_expires_at": max(previous) if previous else None,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                **self.public(),
                "secrets": [[s.value, s.expires_at] for s in self.secrets],
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Endpoint:
        d = orjson.loads(raw)
        return cls(
            id=d["id"],
            url=d["url"],
            events=tuple(d["events"]),
            room=d["room"],
            created_at=d["created_at"],
            secrets=tuple(Secret(v, e) for v, e in d["secrets"]),
            status=EndpointStatus(d["status"]),
            disabled_reason=d.get("disabled_reason") or "",
            failing_since=d.get("failing_since"),
        )

    def evolve(self, **changes: Any) -> Endpoint:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Attempt:
    at: int  # ms, the store's clock
    status: int | None  # HTTP status; None when there was no answer
    latency_ms: int
    error: str = ""  # why there was no answer (timeout, refused address, …)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error or None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attempt:
        return cls(d["at"], d["status"], d["latency_ms"], d.get("error") or "")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint; ``id`` is ``"<endpoint>:<event id>"``."""

    endpoint: str
    event_id: str
    event_type: str
    subject: str
    body: bytes
    created_at: int
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0  # since it was (re)queued
    next_at: int | None = None
    attempt_log: tuple[Attempt, ...] = field(default=())

    @property
    def id(self) -> str:
        return delivery_id(self.endpoint, self.event_id)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "type": self.event_type,
            "status": self.status.value,
            "created_at": self.created_at,
            "attempts": [a.to_dict() for a in self.attempt_log],
            "next_attempt_at": self.next_at if self.status is DeliveryStatus.PENDING else None,
        }


def delivery_id(endpoint_id: str, event_id: str) -> str:
    return f"{endpoint_id}:{event_id}"


def delivery_of(endpoint_id: str, event: WebhookEvent, now_ms: int) -> Delivery:
    return Delivery(
        endpoint=endpoint_id,
        event_id=event.id,
        event_type=event.type,
        subject=event.subject,
        body=event.body,
        created_at=now_ms,
    )
