"""Growth stores on each engine (memory, redis, redis-cluster), for the contract tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from growth.invite_store_memory import MemoryInviteStore
from growth.invite_store_redis import RedisInviteStore
from growth.keys import GrowthKeys
from growth.reminder_store_memory import MemoryReminderStore
from growth.reminder_store_redis import RedisReminderStore

# (invite store, reminder store) as one process sees them; a second call on redis is a
# second process's connections to the same keys (memory: the same objects).
Stores = tuple[Any, Any]
MakeStores = Callable[[], Stores]


@pytest.fixture(name="make_stores")
async def make_stores_fixture(
    kind: str, new_redis_client: Callable[[], Any], redis_prefix: str
) -> AsyncIterator[MakeStores]:
    if kind == "memory":
        shared = (MemoryInviteStore(), MemoryReminderStore())
        yield lambda: shared
        return
    new_client = new_redis_client
    keys = GrowthKeys(redis_prefix)

    def make() -> Stores:
        client = new_client()
        return RedisInviteStore(client, keys), RedisReminderStore(client, keys)

    yield make
