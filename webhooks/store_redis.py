"""Redis WebhookStore (see ``webhooks.store`` for the contract): the scripts in
``webhooks/lua`` make each step atomic; every key is in the ``{wh}`` slot."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from interact.floor.scripts import source
from interact.floor.scripts import text as _text
from webhooks.keys import WebhookKeys
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint
from webhooks.schedule import Verdict
from webhooks.store import ATTEMPTS_KEPT, KEEP_MS, LOG_CAP, MAX_PENDING, QueueFull


class RedisWebhookStore:
    def __init__(
        self,
        client: Redis,
        keys: WebhookKeys,
        *,
        log_cap: int = LOG_CAP,
        keep_ms: int = KEEP_MS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._r = client
        self._k = keys
        self._log_cap = log_cap
        self._max_pending = max_pending
        self._keep_ms = keep_ms
        # redis-py's own scripts, not the floor's pipe: webhooks are off the hot path.
        self._add = client.register_script(_src("endpoint_add"))
        self._put = client.register_script(_src("endpoint_put"))
        self._enqueue = client.register_script(_src("enqueue"))
        self._claim = client.register_script(_src("claim"))
        self._finish = client.register_script(_src("finish"))
        self._replay = client.register_script(_src("replay"))

    async def add_endpoint(self, endpoint: Endpoint, *, max_endpoints: int) -> bool:
        keys = [self._k.endpoints(), self._k.endpoints_version()]
        return bool(await self._add(keys, [endpoint.id, endpoint.to_json(), max_endpoints]))

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        raw = await self._r.hget(self._k.endpoints(), endpoint_id)
        return None if raw is None else Endpoint.from_json(raw)

    async def list_endpoints(self) -> list[Endpoint]:
        return (await self.versioned_endpoints())[1]

    async def endpoints_version(self) -> int:
        return int(await self._r.get(self._k.endpoints_version()) or 0)

    async def versioned_endpoints(self) -> tuple[int, list[Endpoint]]:
        # The version is read first (one connection, in order): the list is at least as
        # new as the version it is cached under.
        async with self._r.pipeline(transaction=False) as p:
            p.get(self._k.endpoints_version())
            p.hgetall(self._k.endpoints())
            version, raw = await p.execute()
        endpoints = [Endpoint.from_json(v) for v in raw.values()]
        return int(version or 0), sorted(endpoints, key=lambda e: (e.created_at, e.id))

    async def put_endpoint(self, endpoint: Endpoint) -> bool:
        keys = [self._k.endpoints(), self._k.endpoints_version()]
        return bool(await self._put(keys, [endpoint.id, endpoint.to_json()]))

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        if not await self._r.hdel(self._k.endpoints(), endpoint_id):
            return False
        # After the change: a reader that saw the old version reads the list again.
        await self._r.incr(self._k.endpoints_version())
        # The record is gone first, so nothing claims for it meanwhile; then its queue.
        k = self._k
        dids = [_text(d) for d in await self._r.zrange(k.log(endpoint_id), 0, -1)]
        dids += [_text(d) for d in await self._r.zrange(k.due(endpoint_id), 0, -1)]
        subjects = set()
        for did in set(dids):
            subject = await self._r.hget(k.delivery(did), "subject")
            if subject is not None:
                subjects.add(_text(subject))
            await self._r.delete(k.delivery(did), k.attempts(did))
        for subject in subjects:
            await self._r.delete(k.chain(endpoint_id, subject))
        await self._r.delete(k.due(endpoint_id), k.log(endpoint_id), k.dead(endpoint_id))
        await self._r.hdel(k.pending(), endpoint_id)
        return True

    async def enqueue(self, delivery: Delivery) -> bool:
        queued = int(await self._enqueue(*self._enqueue_args(delivery)))
        if queued < 0:
            raise QueueFull(delivery.endpoint)
        return bool(queued)

    async def enqueue_many(self, deliveries: list[Delivery]) -> list[int]:
        if not deliveries:
            return []
        # One round trip for a fan-out round; the scripts run in this order, so chains
        # keep the order of the list.
        for tries_left in (1, 0):
            try:
                async with self._r.pipeline(transaction=False) as p:
                    for delivery in deliveries:
                        keys, args = self._enqueue_args(delivery)
                        await self._enqueue(keys, args, client=p)
                    return [int(r) for r in await p.execute()]
            except NoScriptError:
                # A cluster pipeline does not load scripts (a plain one does): after a
                # node's restart, load it and run the list again (enqueue is idempotent).
                if not tries_left:
                    raise
                self._enqueue.sha = await self._r.script_load(self._enqueue.script)
        raise AssertionError("unreachable")

    def _enqueue_args(self, delivery: Delivery) -> tuple[list[str], list[Any]]:
        did, k = delivery.id, self._k
        keys = [
            k.delivery(did),
            k.chain(delivery.endpoint, delivery.subject),
            k.due(delivery.endpoint),
            k.log(delivery.endpoint),
            k.dead(delivery.endpoint),
            k.pending(),
        ]
        args = [
            did, delivery.endpoint, delivery.event_id, delivery.event_type, delivery.subject,
            delivery.body, delivery.created_at, self._log_cap, self._max_pending,
            k.delivery(""), k.attempts(""),
        ]  # fmt: skip
        return keys, args

    async def claim(
        self, endpoint_id: str, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        ids = await self._claim([self._k.due(endpoint_id)], [now_ms, lease_until_ms, limit])
        return await self._deliveries([_text(did) for did in ids])

    async def finish(
        self,
        delivery_id: str,
        attempt: Attempt,
        verdict: Verdict,
        next_at_ms: int | None,
        subject: str | None = None,
    ) -> bool:
        endpoint, _, _ = delivery_id.partition(":")
        if subject is None:
            raw = await self._r.hget(self._k.delivery(delivery_id), "subject")
            if raw is None:
                return False
            subject = _text(raw)
        k = self._k
        keys = [
            k.delivery(delivery_id),
            k.attempts(delivery_id),
            k.chain(endpoint, subject),
            k.due(endpoint),
            k.dead(endpoint),
            k.log(endpoint),
            k.pending(),
        ]
        args = [
            delivery_id, verdict.value, orjson.dumps(attempt.to_dict()), attempt.at,
            next_at_ms if next_at_ms is not None else attempt.at, self._keep_ms, ATTEMPTS_KEPT,
            endpoint,
        ]  # fmt: skip
        return bool(await self._finish(keys, args))

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        found = await self._deliveries([delivery_id])
        return found[0] if found else None

    async def _deliveries(self, delivery_ids: list[str]) -> list[Delivery]:
        """The deliveries that still exist, in one round trip."""
        if not delivery_ids:
            return []
        async with self._r.pipeline(transaction=False) as p:
            for did in delivery_ids:
                p.hgetall(self._k.delivery(did))
                p.lrange(self._k.attempts(did), 0, -1)
            replies = await p.execute()
        out = []
        for raw, attempts in zip(replies[::2], replies[1::2], strict=True):
            if raw:
                out.append(_delivery(raw, attempts))
        return out

    async def list_deliveries(self, endpoint_id: str, limit: int) -> list[Delivery]:
        if limit <= 0:
            return []
        dids = await self._r.zrevrange(self._k.log(endpoint_id), 0, limit - 1)
        return await self._deliveries([_text(did) for did in dids])  # expired ones left out

    async def replay(self, delivery_id: str, now_ms: int) -> bool:
        endpoint, _, _ = delivery_id.partition(":")
        subject = await self._r.hget(self._k.delivery(delivery_id), "subject")
        if subject is None:
            return False
        k = self._k
        keys = [
            k.delivery(delivery_id),
            k.attempts(delivery_id),
            k.chain(endpoint, _text(subject)),
            k.due(endpoint),
            k.dead(endpoint),
            k.pending(),
        ]
        return bool(await self._replay(keys, [delivery_id, now_ms, endpoint]))

    async def dead_since(self, endpoint_id: str, since_ms: int, limit: int) -> list[str]:
        if limit <= 0:
            return []
        dids = await self._r.zrangebyscore(
            self._k.dead(endpoint_id), since_ms, "+inf", start=0, num=limit
        )
        prefix = endpoint_id + ":"
        return [_text(d).removeprefix(prefix) for d in dids]


def _delivery(raw: dict[bytes, bytes], attempts: list[bytes]) -> Delivery:
    h: dict[str, Any] = {_text(a): b for a, b in raw.items()}
    return Delivery(
        endpoint=_text(h["endpoint"]),
        event_id=_text(h["event_id"]),
        event_type=_text(h["type"]),
        subject=_text(h["subject"]),
        body=bytes(h["body"]),
        created_at=int(h["created_at"]),
        status=DeliveryStatus(_text(h["status"])),
        attempts=int(h["attempts"]),
        next_at=int(h["next_at"]),
        attempt_log=tuple(Attempt.from_dict(orjson.loads(a)) for a in attempts),
    )


def _src(name: str) -> str:
    return source(name, "webhooks")
