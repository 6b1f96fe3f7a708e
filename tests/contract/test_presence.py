"""Presence contract (``rooms.presence``), on every engine."""

from __future__ import annotations

import asyncio

from interact.engine import Engine

LONG = 60_000


async def test_unknown_room_has_nobody(engine: Engine) -> None:
    assert await engine.presence.total("nobody") == 0


async def test_report_sums_nodes(engine: Engine) -> None:
    assert await engine.presence.report("r", "n1", 5, LONG) == 5
    assert await engine.presence.report("r", "n2", 7, LONG) == 12
    assert await engine.presence.total("r") == 12
    # A node's report replaces its previous one; it does not add to it.
    assert await engine.presence.report("r", "n1", 2, LONG) == 9
    assert await engine.presence.total("r") == 9
    assert await engine.presence.total("other") == 0


async def test_report_of_zero_removes_the_node(engine: Engine) -> None:
    await engine.presence.report("r", "n1", 5, LONG)
    await engine.presence.report("r", "n2", 7, LONG)
    assert await engine.presence.report("r", "n1", 0, LONG) == 7
    assert await engine.presence.report("r", "n2", 0, LONG) == 0
    assert await engine.presence.total("r") == 0
    assert await engine.presence.report("r", "n3", 0, LONG) == 0


async def test_a_node_that_stops_reporting_expires(engine: Engine) -> None:
    await engine.presence.report("r", "short", 4, 200)
    assert await engine.presence.report("r", "long", 6, LONG) == 10
    await asyncio.sleep(0.3)
    assert await engine.presence.total("r") == 6
    assert await engine.presence.report("r", "long", 6, LONG) == 6
    # Reporting again brings it back.
    assert await engine.presence.report("r", "short", 1, 200) == 7


async def test_every_node_expired_leaves_zero(engine: Engine) -> None:
    await engine.presence.report("r", "a", 3, 150)
    await engine.presence.report("r", "b", 3, 150)
    await asyncio.sleep(0.25)
    assert await engine.presence.total("r") == 0
    assert await engine.presence.report("r", "c", 2, LONG) == 2


async def test_refresh_keeps_a_node_alive(engine: Engine) -> None:
    for _ in range(4):
        await engine.presence.report("r", "n", 3, 200)
        await asyncio.sleep(0.1)
    assert await engine.presence.total("r") == 3
