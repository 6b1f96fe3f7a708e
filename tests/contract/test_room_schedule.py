"""RoomStore ``set_schedule`` (``rooms.room_store``), on every engine."""

from __future__ import annotations

import pytest

from interact.engine import Engine
from interact.floor.errors import Conflict, NotFound
from rooms.models import Room


async def test_scheduled_at_round_trips_and_is_set_only_while_scheduled(engine: Engine) -> None:
    await engine.rooms.create(Room(id="s1", title="t", created_at=1, scheduled_at=5_000))
    got = await engine.rooms.get("s1")
    assert got is not None and got.scheduled_at == 5_000
    moved = await engine.rooms.set_schedule("s1", 9_000_000_000_000)
    assert moved.scheduled_at == 9_000_000_000_000
    assert (await engine.rooms.get("s1")).scheduled_at == 9_000_000_000_000  # type: ignore[union-attr]
    cleared = await engine.rooms.set_schedule("s1", None)
    assert cleared.scheduled_at is None and cleared.to_dict()["scheduled_at"] is None
    await engine.rooms.transition("s1", "start", 10)
    with pytest.raises(Conflict):
        await engine.rooms.set_schedule("s1", 20_000)
    assert (await engine.rooms.get("s1")).scheduled_at is None  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await engine.rooms.set_schedule("nope", 20_000)
