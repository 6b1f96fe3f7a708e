"""WebhookService: endpoints, fan-out from the ledger and delivery.

Two loops, so that neither waits for the other: ``fanout`` turns ledger entries into
deliveries (one idempotent enqueue per endpoint, then the acknowledgement), ``deliver``
claims due deliveries and sends each in its own task, up to ``concurrency`` in flight in
the process and ``per_endpoint`` for one endpoint. The money path never waits for either.
Time: ``clock`` (ms) drives the schedule and is injectable; ``wall`` (s) stamps
``webhook-timestamp``, which receivers check against their own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from interact.floor.errors import BadRequest, Conflict, NotFound
from webhooks import signing
from webhooks.events import (
    EVENT_TYPES,
    WebhookEvent,
    alert_event,
    from_ledger,
    test_event,
    valid_event_id,
)
from webhooks.feed import LedgerFeed
from webhooks.models import (
    Attempt,
    Delivery,
    Endpoint,
    EndpointStatus,
    Secret,
    delivery_id,
    delivery_of,
    new_endpoint_id,
)
from webhooks.schedule import Verdict, decide, failing_too_long
from webhooks.sender import Outcome, Sender
from webhooks.store import QueueFull, WebhookStore
from webhooks.urls import UrlRefused, check_url

log = logging.getLogger("interact.webhooks")

MAX_EVENTS_PER_ENDPOINT = len(EVENT_TYPES)
MAX_REPLAY = 1000
# Deliveries per pipelined enqueue: a fan-out round of 500 entries to 50 endpoints is
# 25,000 scripts, sent in parts so that one reply buffer stays small.
ENQUEUE_BATCH = 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class WebhookService:
    def __init__(
        self,
        *,
        store: WebhookStore,
        feed: LedgerFeed,
        sender: Sender,
        rooms: Callable[[], Awaitable[list[str]]],
        clock: Callable[[], int] = now_ms,
        wall: Callable[[], float] = time.time,
        concurrency: int = 64,
        per_endpoint: int = 8,
        lease_ms: int = 60_000,
        rotation_overlap_ms: int = 24 * 3600 * 1000,
        max_endpoints: int = 50,
        refund_settles_at_once: bool = False,
        rooms_refresh_s: float = 1.0,
        batch: int = 500,
        lottery_proof: Callable[[str], Awaitable[Mapping[str, Any] | None]] | None = None,
    ) -> None:
        self.store = store
        self.feed = feed
        self.sender = sender
        self._rooms = rooms
        self.clock = clock
        self.wall = wall
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.lease_ms = lease_ms
        self.rotation_overlap_ms = rotation_overlap_ms
        self.max_endpoints = max_endpoints
        self.refund_settles_at_once = refund_settles_at_once
        self.rooms_refresh_s = rooms_refresh_s
        self.batch = batch
        # The application's reader of a drawn lottery's commit and proof (the ledger's
        # lot_drawn holds the winners, the lottery's record the revealed secret).
        self.lottery_proof = lottery_proof
        self._room_list: list[str] = []
        self._rooms_at = -1e9
        # The endpoints as of a version of the store's list: each round asks for the
        # version (one small read) and parses the list only when it moved.
        self._endpoints: tuple[int, list[Endpoint]] = (-1, [])
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Set when a delivery slot frees or the fan-out queued something: the delivery
        # loop claims again at once instead of sleeping out its poll interval (with every
        # slot busy, a poll-paced loop caps an endpoint at per_endpoint per interval).
        self._wake = asyncio.Event()

    # --- endpoints

    async def register(self, url: object, events: object, room: str | None) -> Endpoint:
        """A new endpoint, its secret included; ``BadRequest`` naming what is wrong."""
        types = check_events(events)
        checked_url = await self.check_url(url)
        endpoint = Endpoint(
            id=new_endpoint_id(),
            url=checked_url,
            events=types,
            room=room,
            created_at=self.clock(),
            secrets=(Secret(signing.new_secret()),),
        )
        if not await self.store.add_endpoint(endpoint, max_endpoints=self.max_endpoints):
            raise Conflict(f"at most {self.max_endpoints} webhook endpoints; delete one first")
        return endpoint

    async def check_url(self, url: object) -> str:
        if not isinstance(url, str):
            raise BadRequest("'url' must be a string")
        try:
            target = check_url(url, allow_http=self.sender.allow_http)
            # Checked again at every delivery, against what the name resolves to then.
            from webhooks.urls import pinned_address

            await pinned_address(target, allow_private=self.sender.allow_private)
        except UrlRefused as exc:
            raise BadRequest(f"'url' refused: {exc}") from None
        return url

    async def endpoint(self, endpoint_id: str) -> Endpoint:
        endpoint = await self.store.get_endpoint(endpoint_id)
        if endpoint is None:
            raise NotFound(f"no webhook endpoint {endpoint_id[:40]}")
        return endpoint

    async def delete(self, endpoint_id: str) -> None:
        if not await self.store.delete_endpoint(endpoint_id):
            raise NotFound(f"no webhook endpoint {endpoint_id[:40]}")
        await self.sender.forget(endpoint_id)

    async def rotate(self, endpoint_id: str) -> tuple[Endpoint, str]:
        """A new current secret; the previous one signs too for the overlap."""
        endpoint = await self.endpoint(endpoint_id)
        now = self.clock()
        fresh = signing.new_secret()
        kept = [s for s in endpoint.secrets if s.expires_at is None or s.expires_at > now]
        previous = [
            Secret(s.value, now + self.rotation_overlap_ms) if s.expires_at is None else s
            for s in kept
        ]
        rotated = endpoint.evolve(secrets=(Secret(fresh), *previous[:3]))
        if not await self.store.put_endpoint(rotated):
            raise NotFound(f"no webhook endpoint {endpoint_id[:40]}")
        return rotated, fresh

    async def enable(self, endpoint_id: str) -> Endpoint:
        endpoint = await self.endpoint(endpoint_id)
        enabled = endpoint.evolve(
            status=EndpointStatus.ENABLED, disabled_reason="", failing_since=None
        )
        await self.store.put_endpoint(enabled)
        return enabled

    # --- operators' tools

    async def replay(self, endpoint_id: str, event_id: str) -> None:
        await self.endpoint(endpoint_id)
        did = delivery_id(endpoint_id, event_id)
        if not valid_event_id(event_id) or await self.store.get_delivery(did) is None:
            raise NotFound(f"no delivery of {event_id[:80]} to this endpoint")
        if not await self.store.replay(did, self.clock()):
            raise Conflict("the delivery is still pending")

    async def replay_dead(self, endpoint_id: str, since_ms: int) -> int:
        await self.endpoint(endpoint_id)
        n = 0
        for event_id in await self.store.dead_since(endpoint_id, since_ms, MAX_REPLAY):
            n += await self.store.replay(delivery_id(endpoint_id, event_id), self.clock())
        return n

    async def send_test(self, endpoint_id: str) -> str:
        await self.endpoint(endpoint_id)
        now = self.clock()
        event = test_event(f"test_{secrets.token_hex(8)}", endpoint_id, now)
        await self.store.enqueue(delivery_of(endpoint_id, event, now))
        return event.id

    async def deliveries(self, endpoint_id: str, limit: int) -> list[Delivery]:
        await self.endpoint(endpoint_id)
        return await self.store.list_deliveries(endpoint_id, limit)

    async def publish_alert(
        self, state: str, alert_id: str, data: Mapping[str, Any], ts_ms: int | None = None
    ) -> int:
        """The hook for alerts: ``alert.raised`` / ``alert.cleared`` to every enabled
        endpoint subscribed (and of the alert's room, if it has one). Idempotent per
        ``(alert_id, state)``. Returns how many deliveries were queued."""
        event = alert_event(state, alert_id, self.clock() if ts_ms is None else ts_ms, data)
        return await self._fan_out_event(event, await self._enabled())

    # --- fan-out

    async def _all_endpoints(self) -> list[Endpoint]:
        if await self.store.endpoints_version() != self._endpoints[0]:
            self._endpoints = await self.store.versioned_endpoints()
        return self._endpoints[1]

    async def _enabled(self) -> list[Endpoint]:
        return [e for e in await self._all_endpoints() if e.status is EndpointStatus.ENABLED]

    async def _fan_out_event(self, event: WebhookEvent, endpoints: list[Endpoint]) -> int:
        now = self.clock()
        n = 0
        for endpoint in endpoints:
            if endpoint.wants(event):
                try:
                    n += await self.store.enqueue(delivery_of(endpoint.id, event, now))
                except QueueFull:
                    await self._disable_full(endpoint.id)
        return n

    async def _disable_full(self, endpoint_id: str) -> None:
        """An endpoint whose backlog reached the store's cap is disabled (its queue kept;
        events after this are not queued for it) and an alert says so, once."""
        endpoint = await self.store.get_endpoint(endpoint_id)
        if endpoint is None or endpoint.status is EndpointStatus.DISABLED:
            return
        now = self.clock()
        reason = "too many deliveries pending (the endpoint does not keep up)"
        disabled = endpoint.evolve(status=EndpointStatus.DISABLED, disabled_reason=reason)
        if await self.store.put_endpoint(disabled):
            log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
            await self.publish_alert(
                "raised",
                f"webhook-backlog-{endpoint_id}-{now}",
                {"name": "webhook_endpoint_disabled", "endpoint": endpoint_id, "message": reason},
            )

    async def rooms(self) -> list[str]:
        if time.monotonic() - self._rooms_at >= self.rooms_refresh_s:
            self._room_list = await self._rooms()
            self._rooms_at = time.monotonic()
        return self._room_list

    async def fanout(self, block_ms: int = 0) -> int:
        """One round: pull ledger entries (waiting up to ``block_ms`` for one when the
        feed can), queue their events, acknowledge. Returns the number of entries
        handled."""
        rooms = await self.rooms()
        if not rooms:
            return 0
        entries = await self.feed.pull(rooms, self.batch, block_ms)
        if not entries:
            return 0
        endpoints = await self._enabled()
        now = self.clock()
        queue: list[Delivery] = []
        done: dict[str, list[str]] = {}
        for room, entry_id, fields in entries:
            proof = None
            if fields.get("type") == "lot_drawn" and self.lottery_proof is not None:
                # Drawn is final: the record's proof is there before lot_drawn is written.
                proof = await self.lottery_proof(fields.get("lottery", ""))
            try:
                events = from_ledger(
                    room,
                    entry_id,
                    fields,
                    refund_settles_at_once=self.refund_settles_at_once,
                    lottery_proof=proof,
                )
            except ValueError:  # a payload past the cap: logged, never retried for ever
                log.warning("webhook event of %s %s not built", room, entry_id, exc_info=True)
                events = []
            for event in events:
                queue.extend(delivery_of(e.id, event, now) for e in endpoints if e.wants(event))
            done.setdefault(room, []).append(entry_id)
        await self._enqueue(queue)
        # Queued (and the delivery loop told) before the entries are acknowledged: a
        # crash in between reads them again and queues nothing twice.
        self._wake.set()
        for room, ids in done.items():
            await self.feed.ack(room, ids)
        return len(entries)

    async def _enqueue(self, queue: list[Delivery]) -> None:
        """The round's deliveries in one batch, in ledger order; an endpoint whose
        queue is full is disabled."""
        for i in range(0, len(queue), ENQUEUE_BATCH):
            part = queue[i : i + ENQUEUE_BATCH]
            full = {
                d.endpoint
                for d, queued in zip(part, await self.store.enqueue_many(part), strict=True)
                if queued < 0
            }
            for endpoint_id in sorted(full):
                await self._disable_full(endpoint_id)

    # --- delivery

    async def deliver(self, *, wait: bool = False) -> int:
        """One round: claim what is due and send it; ``wait`` for the attempts to finish
        (tests driving the clock), else they run on. Returns the number started."""
        started: list[asyncio.Task[None]] = []
        for endpoint in await self._enabled():
            free = min(
                self.per_endpoint - self._in_flight.get(endpoint.id, 0),
                self.concurrency - sum(self._in_flight.values()),
            )
            if free <= 0:
                continue
            now = self.clock()
            claimed = await self.store.claim(endpoint.id, now, now + self.lease_ms, free)
            for d in claimed:
                self._in_flight[endpoint.id] = self._in_flight.get(endpoint.id, 0) + 1
                task = asyncio.create_task(self._attempt(endpoint, d))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started.append(task)
        if wait and started:
            await asyncio.gather(*started)
        return len(started)

    async def _attempt(self, endpoint: Endpoint, d: Delivery) -> None:
        try:
            headers = signing.headers(
                endpoint.signing_secrets(self.clock()), d.event_id, int(self.wall()), d.body
            )
            outcome = await self.sender.send(endpoint.id, endpoint.url, headers, d.body)
            await self._record(endpoint.id, d, outcome)
        except Exception:  # the lease runs out and the attempt is made again
            log.warning("webhook attempt %s failed", d.id, exc_info=True)
        finally:
            self._in_flight[endpoint.id] -= 1
            self._wake.set()

    async def _record(self, endpoint_id: str, d: Delivery, outcome: Outcome) -> None:
        now = self.clock()
        decision = decide(d.attempts + 1, outcome.status, outcome.retry_after, now)
        attempt = Attempt(now, outcome.status, outcome.latency_ms, outcome.error)
        await self.store.finish(
            d.id, attempt, decision.verdict, decision.next_at_ms, subject=d.subject
        )
        if decision.verdict is Verdict.SUCCEEDED:
            # The common case needs no read: the cached record (its version checked by
            # this round's claim) says the endpoint was not failing.
            cached = next((e for e in self._endpoints[1] if e.id == endpoint_id), None)
            if cached is not None and cached.failing_since is None:
                return
        endpoint = await self.store.get_endpoint(endpoint_id)
        if endpoint is None:
            return
        if decision.verdict is Verdict.SUCCEEDED:
            if endpoint.failing_since is not None:
                await self.store.put_endpoint(endpoint.evolve(failing_since=None))
            return
        since = endpoint.failing_since if endpoint.failing_since is not None else now
        changed = endpoint.evolve(failing_since=since)
        if decision.disable:
            changed = changed.evolve(
                status=EndpointStatus.DISABLED, disabled_reason="the endpoint answered 410 Gone"
            )
        elif failing_too_long(since, now) and endpoint.status is EndpointStatus.ENABLED:
            changed = changed.evolve(
                status=EndpointStatus.DISABLED,
                disabled_reason="every delivery failed for 5 days",
            )
            await self.publish_alert(
                "raised",
                f"webhook-disabled-{endpoint_id}-{now}",
                {"name": "webhook_endpoint_disabled", "endpoint": endpoint_id,
                 "message": "a webhook endpoint failed every delivery for 5 days"},
            )  # fmt: skip
        if changed != endpoint:
            await self.store.put_endpoint(changed)

    async def run(self, poll_s: float) -> None:
        """Both loops, until cancelled; a failed round is logged and tried again."""
        await asyncio.gather(
            self._loop(self._fanout_round, poll_s, blocks=self.feed.blocks),
            self._loop(self.deliver, poll_s, self._wake),
        )

    async def _fanout_round(self) -> int:
        # A blocking feed waits for the next entry itself, for half the room list's
        # refresh at most (a new room is followed about as soon as without blocking).
        block_ms = max(100, int(self.rooms_refresh_s * 500))
        if not await self.rooms():
            await asyncio.sleep(block_ms / 1000)
            return 0
        return await self.fanout(block_ms=block_ms)

    async def _loop(
        self,
        job: Callable[[], Awaitable[int]],
        poll_s: float,
        wake: asyncio.Event | None = None,
        *,
        blocks: bool = False,
    ) -> None:
        while True:
            if wake is not None:
                wake.clear()  # before the round: a wake-up during it is not lost
            try:
                busy = await job()
            except Exception:  # Redis away: try again next round
                log.warning("webhook %s round failed", job.__name__, exc_info=True)
                await asyncio.sleep(poll_s)
                continue
            if busy or blocks:
                await asyncio.sleep(0)
            elif wake is None:
                await asyncio.sleep(poll_s)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll_s):
                        await wake.wait()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except BaseException:
                pass
        await self.sender.close()


def check_events(events: object) -> tuple[str, ...]:
    """The event types of a registration: a non-empty list of known types."""
    if not isinstance(events, list) or not events:
        raise BadRequest(
            f"'events' must be a non-empty list of event types: {', '.join(EVENT_TYPES)}"
        )
    if len(events) > MAX_EVENTS_PER_ENDPOINT:
        raise BadRequest(f"'events' lists at most {MAX_EVENTS_PER_ENDPOINT} types")
    out: list[str] = []
    for item in events:
        if not isinstance(item, str) or item not in EVENT_TYPES:
            shown = item[:40] if isinstance(item, str) else repr(item)[:40]
            raise BadRequest(f"unknown event type {shown!r}; known: {', '.join(EVENT_TYPES)}")
        if item not in out:
            out.append(item)
    return tuple(out)
