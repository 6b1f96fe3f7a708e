"""The WebhookStore contract (webhooks.store), on every engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from interact.engine import connect_redis
from tests.contract.conftest import _url_of
from webhooks.events import make_event
from webhooks.keys import WebhookKeys
from webhooks.models import Attempt, DeliveryStatus, Endpoint, Secret, delivery_of
from webhooks.schedule import Verdict
from webhooks.store import QueueFull, WebhookStore
from webhooks.store_memory import MemoryWebhookStore
from webhooks.store_redis import RedisWebhookStore

MakeStore = Callable[[], WebhookStore]


@pytest.fixture
async def make_store(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """Stores of ``kind``; on Redis each one its own connection, sharing one prefix (as
    two processes of one deployment do)."""
    if kind == "memory":
        shared = MemoryWebhookStore(log_cap=5, max_pending=8)
        yield lambda: shared
        return
    url = _url_of(kind, request)
    prefix = request.getfixturevalue("redis_prefix")
    made: list[Any] = []

    def make() -> WebhookStore:
        client, pipe = connect_redis(url)
        made.append((client, pipe))
        store = RedisWebhookStore(client, WebhookKeys(prefix), log_cap=5, max_pending=8)  # type: ignore[arg-type]
        return store

    yield make
    for client, pipe in made:
        if pipe is not None:
            await pipe.close()
        await client.aclose()


def endpoint(eid: str = "wh1") -> Endpoint:
    return Endpoint(eid, "https://x.example/h", ("order.paid",), None, 0, (Secret("whsec_x"),))


def delivery(eid: str, event: str, subject: str = "o1", at: int = 100):  # type: ignore[no-untyped-def]
    ev = make_event(event, "order.paid", room="r1", subject=subject, ts_ms=at, data={"n": event})
    return delivery_of(eid, ev, at)


def attempt(at: int, status: int | None = 500) -> Attempt:
    return Attempt(at, status, 3)


async def test_endpoints_cap_update_delete(make_store: MakeStore) -> None:
    store = make_store()
    assert await store.add_endpoint(endpoint("wh1"), max_endpoints=2)
    assert await store.add_endpoint(endpoint("wh2"), max_endpoints=2)
    assert not await store.add_endpoint(endpoint("wh3"), max_endpoints=2)
    changed = endpoint("wh1").evolve(failing_since=5)
    assert await store.put_endpoint(changed)
    assert await make_store().get_endpoint("wh1") == changed
    assert [e.id for e in await store.list_endpoints()] == ["wh1", "wh2"]
    await store.enqueue(delivery("wh1", "e1"))
    assert await store.delete_endpoint("wh1")
    assert not await store.delete_endpoint("wh1")
    assert not await store.put_endpoint(changed)  # a delete wins over an update
    assert await store.get_delivery("wh1:e1") is None
    assert await store.claim("wh1", 10**6, 10**7, 10) == []


async def test_every_endpoint_change_moves_the_version(make_store: MakeStore) -> None:
    store, other = make_store(), make_store()  # other: a second process
    v0, listed = await other.versioned_endpoints()
    assert listed == [] and await other.endpoints_version() == v0
    assert await store.add_endpoint(endpoint("wh1"), max_endpoints=1)
    v1, listed = await other.versioned_endpoints()
    assert v1 != v0 and [e.id for e in listed] == ["wh1"]
    assert not await store.add_endpoint(endpoint("wh2"), max_endpoints=1)  # refused
    assert await other.endpoints_version() == v1
    assert await store.put_endpoint(endpoint("wh1").evolve(failing_since=7))
    v2, listed = await other.versioned_endpoints()
    assert v2 not in (v0, v1) and listed[0].failing_since == 7
    assert await store.delete_endpoint("wh1")
    v3, listed = await other.versioned_endpoints()
    assert v3 not in (v0, v1, v2) and listed == []
    assert not await store.delete_endpoint("wh1") and not await store.put_endpoint(endpoint())
    assert await other.endpoints_version() == v3


async def test_finish_with_the_subject_given_moves_the_chain(make_store: MakeStore) -> None:
    store = make_store()
    await store.enqueue(delivery("wh1", "e1"))
    await store.enqueue(delivery("wh1", "e2"))
    [head] = await store.claim("wh1", 100, 1100, 10)
    assert await store.finish(head.id, attempt(150, 204), Verdict.SUCCEEDED, None, head.subject)
    assert not await store.finish(head.id, attempt(151, 204), Verdict.SUCCEEDED, None, "o1")
    [nxt] = await store.claim("wh1", 150, 1150, 10)
    assert nxt.event_id == "e2"


async def test_enqueue_is_idempotent_and_chains_keep_order(make_store: MakeStore) -> None:
    store = make_store()
    assert await store.enqueue(delivery("wh1", "e1"))
    assert not await store.enqueue(delivery("wh1", "e1"))
    await store.enqueue(delivery("wh1", "e2"))
    await store.enqueue(delivery("wh1", "x1", subject="o2"))
    claimed = await store.claim("wh1", 100, 1100, 10)
    assert sorted(d.event_id for d in claimed) == ["e1", "x1"]  # e2 waits behind e1
    # Leased: nobody else gets them before the lease ends; anyone does after it.
    assert await make_store().claim("wh1", 1000, 2000, 10) == []
    again = await make_store().claim("wh1", 1100, 2100, 10)
    assert sorted(d.event_id for d in again) == ["e1", "x1"]
    assert await store.finish("wh1:e1", attempt(1200, 200), Verdict.SUCCEEDED, None)
    assert not await store.finish("wh1:e1", attempt(1201, 200), Verdict.SUCCEEDED, None)
    [nxt] = await store.claim("wh1", 1200, 2200, 10)
    assert nxt.event_id == "e2"
    done = await store.get_delivery("wh1:e1")
    assert done is not None and done.status is DeliveryStatus.SUCCEEDED
    assert [a.status for a in done.attempt_log] == [200]


async def test_retry_then_dead_then_replay(make_store: MakeStore) -> None:
    store = make_store()
    await store.enqueue(delivery("wh1", "e1"))
    await store.enqueue(delivery("wh1", "e2"))
    await store.claim("wh1", 100, 200, 1)
    assert await store.finish("wh1:e1", attempt(150), Verdict.RETRY, 5000)
    assert await store.claim("wh1", 4999, 6000, 10) == []
    [d] = await store.claim("wh1", 5000, 6000, 10)
    assert d.attempts == 1 and d.next_at == 5000
    assert await store.finish("wh1:e1", attempt(5001), Verdict.DEAD, None)
    assert await store.dead_since("wh1", 5001, 10) == ["e1"]
    assert await store.dead_since("wh1", 5002, 10) == []
    [nxt] = await store.claim("wh1", 5001, 6000, 10)
    assert nxt.event_id == "e2"  # a dead letter lets its chain go on
    assert not await store.replay("wh1:e2", 6000)  # pending: nothing to replay
    assert await store.replay("wh1:e1", 6000)
    replayed = await store.get_delivery("wh1:e1")
    assert replayed is not None and replayed.status is DeliveryStatus.PENDING
    assert replayed.attempts == 0 and len(replayed.attempt_log) == 2
    assert await store.dead_since("wh1", 0, 10) == []
    # Behind e2 in its chain: due only once e2 is finished (e2's lease ran out: due again).
    assert [d.event_id for d in await store.claim("wh1", 7000, 8000, 10)] == ["e2"]
    await store.finish("wh1:e2", attempt(7000, 204), Verdict.SUCCEEDED, None)
    [back] = await store.claim("wh1", 7000, 8000, 10)
    assert back.event_id == "e1"


async def test_list_is_newest_first_and_capped(make_store: MakeStore) -> None:
    store = make_store()
    for i in range(7):
        await store.enqueue(delivery("wh1", f"e{i}", subject=f"o{i}", at=100 + i))
    listed = await store.list_deliveries("wh1", 10)
    assert [d.event_id for d in listed] == ["e6", "e5", "e4", "e3", "e2"]
    assert [d.event_id for d in await store.list_deliveries("wh1", 2)] == ["e6", "e5"]
    assert (await store.get_delivery("wh1:e0")) is not None  # pending: still queued
    assert len(await store.claim("wh1", 10**6, 10**7, 100)) == 7


async def test_pending_deliveries_are_capped_per_endpoint(make_store: MakeStore) -> None:
    store = make_store()
    for i in range(8):
        assert await store.enqueue(delivery("wh1", f"e{i}", subject=f"o{i}"))
    with pytest.raises(QueueFull):
        await make_store().enqueue(delivery("wh1", "e8", subject="o8"))
    assert await store.get_delivery("wh1:e8") is None
    assert not await store.enqueue(delivery("wh1", "e0"))  # a repeat is a no-op, not full
    assert await store.enqueue(delivery("wh2", "e8"))  # another endpoint has its own cap
    claimed = {d.event_id: d for d in await store.claim("wh1", 100, 200, 8)}
    await store.finish("wh1:e0", attempt(150), Verdict.RETRY, 5000)  # still pending
    with pytest.raises(QueueFull):
        await store.enqueue(delivery("wh1", "e8", subject="o8"))
    await store.finish("wh1:e1", attempt(150, 204), Verdict.SUCCEEDED, None)
    await store.finish("wh1:e2", attempt(150), Verdict.DEAD, None)
    assert len(claimed) == 8
    assert await store.enqueue(delivery("wh1", "e8", subject="o8"))
    assert await store.enqueue(delivery("wh1", "e9", subject="o9"))
    with pytest.raises(QueueFull):
        await store.enqueue(delivery("wh1", "e10", subject="o10"))
    assert await store.delete_endpoint("wh1") is False  # never registered: nothing to drop


async def test_finished_deliveries_falling_off_the_list_are_deleted(make_store: MakeStore) -> None:
    store = make_store()
    for i in range(3):
        await store.enqueue(delivery("wh1", f"e{i}", subject=f"o{i}", at=100 + i))
    await store.claim("wh1", 200, 300, 10)
    await store.finish("wh1:e0", attempt(200, 204), Verdict.SUCCEEDED, None)
    await store.finish("wh1:e1", attempt(200), Verdict.DEAD, None)
    await store.finish("wh1:e2", attempt(200), Verdict.RETRY, 9000)
    assert await store.dead_since("wh1", 0, 10) == ["e1"]
    for i in range(3, 8):  # the list keeps 5: e0, e1 and e2 fall off
        await store.enqueue(delivery("wh1", f"e{i}", subject=f"o{i}", at=100 + i))
    assert await store.get_delivery("wh1:e0") is None
    assert await store.get_delivery("wh1:e1") is None
    assert await store.dead_since("wh1", 0, 10) == []
    assert not await store.replay("wh1:e1", 300)
    pending = await store.get_delivery("wh1:e2")  # pending: kept until it is finished
    assert pending is not None and pending.status is DeliveryStatus.PENDING
    [again] = [d for d in await store.claim("wh1", 9000, 9500, 10) if d.event_id == "e2"]
    assert await store.finish(again.id, attempt(9000, 204), Verdict.SUCCEEDED, None)
    assert await store.get_delivery("wh1:e2") is None
