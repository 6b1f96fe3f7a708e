"""AlertStore contract (``rooms.alert_store``), on every engine: the lease and its
fencing token, fenced saves, the alert list and the rule overrides."""

from __future__ import annotations

import asyncio
import time

import pytest

from interact.engine import Engine
from rooms.alert_store import MAX_ALERTS
from rooms.alerts import Alert, AlertState, Track
from tests.contract.conftest import MakeEngine


def alert(n: int, state: str = "raised", room: str = "r") -> Alert:
    return Alert(
        id=f"{room}.{n}", room=room, rule="sold_out", subject=f"s{n}", state=state,
        severity="info", message=f"sale s{n} is sold out", value=0.0, threshold=0.0,
        raised_at=1000 + n, cleared_at=None if state == "raised" else 2000 + n,
    )  # fmt: skip


async def test_one_holder_at_a_time_and_a_token_per_take_over(engine: Engine) -> None:
    store = engine.alerts
    a = await store.acquire("r", "p1", 60_000)
    assert a > 0
    assert await store.acquire("r", "p2", 60_000) == 0  # held by p1
    assert await store.acquire("r", "p1", 60_000) == a  # renewed: same token
    assert await store.holder("r") == "p1"
    assert await store.acquire("other", "p2", 60_000) > 0  # rooms are separate
    assert not await store.release("r", "p2", a)  # not p2's
    assert not await store.release("r", "p1", a + 1)  # not this token
    assert await store.release("r", "p1", a)
    assert await store.holder("r") is None
    b = await store.acquire("r", "p2", 60_000)
    assert b > a  # a new take-over, a new token
    assert await store.acquire("r", "p1", 60_000) == 0


async def test_a_lease_runs_out_and_its_holder_can_no_longer_write(engine: Engine) -> None:
    store = engine.alerts
    token = await store.acquire("r", "p1", 150)
    state = AlertState(seq=1, tracks={"sold_out:s1": Track("r.1", 1001, -1)})
    assert await store.save("r", "p1", token, state, [alert(1)])
    # Not renewed: the lease runs out (Redis' own clock; polled, not slept on).
    deadline = time.monotonic() + 5
    while (taken := await store.acquire("r", "p2", 60_000)) == 0:
        assert time.monotonic() < deadline, "the lease never ran out"
        await asyncio.sleep(0.02)
    assert taken > token
    # The old holder's save is fenced out; the new holder's goes through.
    assert not await store.save("r", "p1", token, AlertState(seq=9), [alert(9)])
    assert (await store.load("r")) == state
    assert [a.id for a in await store.alerts("r")] == ["r.1"]
    assert await store.save("r", "p2", taken, AlertState(seq=2), [alert(2)])
    assert (await store.load("r")).seq == 2  # type: ignore[union-attr]
    # The old holder taking it back later gets a new token: its old one stays useless.
    assert await store.release("r", "p2", taken)
    again = await store.acquire("r", "p1", 60_000)
    assert again > taken
    assert not await store.save("r", "p1", token, AlertState(seq=5), [])


async def test_alerts_newest_first_cleared_in_place_active_only_capped(engine: Engine) -> None:
    store = engine.alerts
    token = await store.acquire("r", "p", 60_000)
    assert await store.alerts("r") == []
    assert await store.load("r") is None
    assert await store.save("r", "p", token, AlertState(seq=3), [alert(1), alert(2), alert(3)])
    assert await store.save("r", "p", token, AlertState(seq=3), [alert(2, "cleared")])
    found = await store.alerts("r")
    assert [(a.id, a.state) for a in found] == [
        ("r.3", "raised"), ("r.2", "cleared"), ("r.1", "raised"),
    ]  # fmt: skip
    assert found[1] == alert(2, "cleared")  # the whole record, as saved
    assert [a.id for a in await store.alerts("r", 2)] == ["r.3", "r.2"]
    assert [a.id for a in await store.alerts("r", active_only=True)] == ["r.3", "r.1"]
    assert [a.id for a in await store.alerts("r", 1, active_only=True)] == ["r.3"]
    assert await store.alerts("other") == []
    many = [alert(n) for n in range(4, MAX_ALERTS + 10)]
    assert await store.save("r", "p", token, AlertState(seq=MAX_ALERTS + 9), many)
    kept = await store.alerts("r", MAX_ALERTS + 100)
    assert len(kept) == MAX_ALERTS
    assert kept[0].id == f"r.{MAX_ALERTS + 9}" and kept[-1].id == "r.10"  # 509 made


async def test_rule_overrides(engine: Engine) -> None:
    store = engine.alerts
    assert await store.rules("r") == {}
    await store.set_rules("r", {"uv_drop": 0.2, "disabled": ["sold_out"]})
    assert await store.rules("r") == {"uv_drop": 0.2, "disabled": ["sold_out"]}
    assert await store.rules("other") == {}
    await store.set_rules("r", {})
    assert await store.rules("r") == {}


@pytest.mark.parametrize("kind", ["redis"])
async def test_two_processes_race_for_one_room(make_engine: MakeEngine) -> None:
    """Many acquirers at once over separate connections: exactly one wins each round."""
    engines = [await make_engine() for _ in range(4)]
    for round_ in range(5):
        room = f"race{round_}"
        tokens = await asyncio.gather(
            *(e.alerts.acquire(room, f"p{i}", 60_000) for i, e in enumerate(engines))
        )
        assert sum(1 for t in tokens if t) == 1, tokens
        winner = next(i for i, t in enumerate(tokens) if t)
        assert await engines[0].alerts.holder(room) == f"p{winner}"
