"""LotteryStore contract (``commerce.lottery_store``), on every engine."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from commerce.draw import DrawResult, commitment, draw, new_secret, verify
from commerce.ids import new_lottery_id, room_of
from commerce.keys import CommerceKeys
from commerce.ledger import Ledger
from commerce.ledger_memory import MemoryLedger
from commerce.ledger_redis import RedisLedger
from commerce.lottery_store import LotteryStore
from commerce.lottery_store_memory import MemoryLotteryStore
from commerce.lottery_store_redis import RedisLotteryStore
from commerce.models import (
    Condition,
    ConditionKind,
    DrawClaim,
    EnterOutcome,
    EnterResult,
    Lottery,
    LotteryStatus,
    LotteryView,
    Prize,
    PrizeKind,
)
from interact.floor.errors import Code, Conflict
from tests.contract.conftest import NewClient

T0 = 1_700_000_000_000
DURATION = 600_000
DRAW_AT = T0 + DURATION
LEASE = 30_000
OPEN, DRAWING, DRAWN = LotteryStatus.OPEN, LotteryStatus.DRAWING, LotteryStatus.DRAWN


@dataclass(frozen=True, slots=True)
class Stores:
    ledger: Ledger
    lotteries: LotteryStore


MakeStores = Callable[[], Stores]


@pytest.fixture
async def make_stores(
    kind: str, request: pytest.FixtureRequest, new_redis_client: NewClient
) -> AsyncIterator[MakeStores]:
    """Build stores of ``kind``; on redis each call is a new client (a second process)."""
    clients: list[aioredis.Redis] = []

    def make() -> Stores:
        if kind == "memory":
            ledger = MemoryLedger()
            return Stores(ledger, MemoryLotteryStore(ledger))
        keys = CommerceKeys(request.getfixturevalue("redis_prefix"))
        client = new_redis_client()
        clients.append(client)
        return Stores(RedisLedger(client, keys), RedisLotteryStore(client, keys))

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def stores(make_stores: MakeStores) -> Stores:
    return make_stores()


def lottery(
    room: str = "r1",
    *,
    winners: int = 3,
    draw_at: int = DRAW_AT,
    condition: Condition | None = None,
    prize: Prize | None = None,
    new_first: bool = False,
    created_at: int = T0,
) -> tuple[Lottery, bytes]:
    secret = new_secret()
    lot = Lottery(
        id=new_lottery_id(room),
        room_id=room,
        prize=prize or Prize("蓝牙耳机", PrizeKind.GOODS),
        winners=winners,
        condition=condition or Condition(ConditionKind.ENTER),
        draw_at=draw_at,
        created_at=created_at,
        commit=commitment(secret),
        new_first=new_first,
    )
    return lot, secret


async def created(s: Stores, **kw: object) -> tuple[Lottery, bytes]:
    lot, secret = lottery(**kw)  # type: ignore[arg-type]
    await s.lotteries.create(lot, secret)
    return lot, secret


async def view(s: Stores, lid: str) -> LotteryView:
    got = await s.lotteries.get(lid)
    assert got is not None
    return got


async def enter_all(s: Stores, lid: str, uids: list[str], now: int = T0) -> None:
    for uid in uids:
        assert (await s.lotteries.enter(lid, uid, now)).outcome is EnterOutcome.OK


async def claim(s: Stores, lid: str, now: int = DRAW_AT, *, force: bool = False) -> DrawClaim:
    got = await s.lotteries.claim_draw(lid, now, LEASE, force=force)
    assert got is not None
    return got


async def drawn(s: Stores, lid: str, now: int = DRAW_AT) -> DrawResult:
    result = (await claim(s, lid, now)).draw()
    assert await s.lotteries.finish_draw(lid, result, now + 1)
    return result


async def events(s: Stores, room: str = "r1") -> list[dict[str, str]]:
    return [fields for _, fields in await s.ledger.read(room, None, 100_000)]


# --- create and get ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "prize"),
    [
        (Condition(ConditionKind.ENTER), Prize("耳机", PrizeKind.GOODS)),
        (Condition(ConditionKind.PASSWORD, password="主播好帅"), Prize("券", PrizeKind.COUPON)),
        (Condition(ConditionKind.WATCH, minutes=5), Prize("现金", PrizeKind.CASH, 888)),
    ],
    ids=["enter", "password", "watch"],
)
async def test_create_then_get_round_trips(
    stores: Stores, condition: Condition, prize: Prize
) -> None:
    lot, secret = await created(stores, condition=condition, prize=prize, new_first=True)
    v = await view(stores, lot.id)
    assert v == LotteryView(lottery=lot, status=OPEN, entries=0)
    assert (v.winners, v.proof, v.unused, v.drawn_at) == ((), None, None, None)
    assert secret.hex() not in repr(v)
    assert await events(stores) == [
        {
            "type": "lot_created",
            "lottery": lot.id,
            "commit": lot.commit,
            "winners": "3",
            "prize_kind": prize.kind.value,
            "prize_fen": "" if prize.amount_fen is None else str(prize.amount_fen),
            "draw_at": str(DRAW_AT),
            "ts": str(T0),
        }
    ]


async def test_get_unknown_is_none(stores: Stores) -> None:
    assert await stores.lotteries.get(new_lottery_id("r1")) is None
    assert await stores.lotteries.get("garbage") is None


async def test_duplicate_id_is_conflict_and_keeps_the_first(stores: Stores) -> None:
    lot, _ = await created(stores)
    secret = new_secret()
    other = dataclasses.replace(lot, winners=9, commit=commitment(secret))
    with pytest.raises(Conflict) as info:
        await stores.lotteries.create(other, secret)
    assert info.value.code is Code.CONFLICT
    assert (await view(stores, lot.id)).lottery == lot


@pytest.mark.parametrize("what", ["commit", "room", "winners"])
async def test_create_refuses_inconsistent_input(stores: Stores, what: str) -> None:
    lot, secret = lottery()
    if what == "commit":
        secret = new_secret()
    elif what == "room":
        lot = dataclasses.replace(lot, room_id="r2")
    else:
        lot = dataclasses.replace(lot, winners=0)
    with pytest.raises(ValueError):
        await stores.lotteries.create(lot, secret)
    assert await stores.lotteries.get(lot.id) is None
    assert await events(stores) == []


def test_lottery_ids_embed_their_room() -> None:
    lid = new_lottery_id("room_9")
    assert lid.startswith("room_9.lt") and room_of(lid) == "room_9"


# --- enter ---------------------------------------------------------------------------------


async def test_enter_once_per_uid_until_draw_at(stores: Stores) -> None:
    lot, _ = await created(stores)
    enter = stores.lotteries.enter
    assert await enter(lot.id, "u1", T0) == EnterResult(EnterOutcome.OK, 1)
    assert await enter(lot.id, "u2", T0) == EnterResult(EnterOutcome.OK, 2)
    assert await enter(lot.id, "u1", DRAW_AT - 1) == EnterResult(EnterOutcome.ALREADY, 2)
    assert await enter(lot.id, "u3", DRAW_AT) == EnterResult(EnterOutcome.CLOSED, 2)
    assert await enter(lot.id, "u1", DRAW_AT) == EnterResult(EnterOutcome.CLOSED, 2)
    assert (await view(stores, lot.id)).entries == 2


@pytest.mark.parametrize("lid", ["r1.lt0000000000", "garbage", "", "r1."])
async def test_enter_unknown_is_not_found(stores: Stores, lid: str) -> None:
    assert await stores.lotteries.enter(lid, "u1", T0) == EnterResult(EnterOutcome.NOT_FOUND, 0)


# --- claim and finish ----------------------------------------------------------------------


async def test_claim_waits_for_draw_at_unless_forced(stores: Stores) -> None:
    lot, secret = await created(stores)
    await enter_all(stores, lot.id, ["u3", "u1", "u2"])
    assert await stores.lotteries.claim_draw(lot.id, DRAW_AT - 1, LEASE) is None
    assert (await view(stores, lot.id)).status is OPEN
    got = await claim(stores, lot.id, T0 + 5, force=True)
    assert got.lottery == lot and got.secret == secret
    assert got.entrants == ("u1", "u2", "u3")
    assert got.prior_winners == frozenset()
    assert got.lease_until == T0 + 5 + LEASE
    assert secret.hex() not in repr(got)
    v = await view(stores, lot.id)
    assert (v.status, v.entries, v.proof) == (DRAWING, 3, None)
    assert secret.hex() not in repr(v)
    # Entries are frozen from the claim on.
    assert (await stores.lotteries.enter(lot.id, "u4", T0 + 6)).outcome is EnterOutcome.CLOSED


async def test_a_held_lease_refuses_other_claims_and_a_lapsed_one_redraws_the_same(
    stores: Stores,
) -> None:
    lot, _ = await created(stores)
    await enter_all(stores, lot.id, [f"u{i}" for i in range(20)])
    first = await claim(stores, lot.id, DRAW_AT)
    for now, force in [(DRAW_AT, False), (first.lease_until - 1, False), (DRAW_AT + 1, True)]:
        assert await stores.lotteries.claim_draw(lot.id, now, LEASE, force=force) is None
    again = await claim(stores, lot.id, first.lease_until)
    assert again.lease_until == first.lease_until + LEASE
    assert (again.secret, again.entrants) == (first.secret, first.entrants)
    assert again.draw() == first.draw()


async def test_finish_stores_the_result_once(stores: Stores) -> None:
    lot, secret = await created(stores, prize=Prize("红包", PrizeKind.CASH, 500))
    uids = [f"u{i}" for i in range(10)]
    await enter_all(stores, lot.id, uids)
    got = await claim(stores, lot.id)
    result = got.draw()
    assert result == draw(secret, lot.id, uids, 3)
    assert await stores.lotteries.finish_draw(lot.id, result, DRAW_AT + 7) is True
    v = await view(stores, lot.id)
    assert v == LotteryView(
        lottery=lot,
        status=DRAWN,
        entries=10,
        winners=tuple(result.winners),
        proof=result.proof,
        unused=0,
        drawn_at=DRAW_AT + 7,
    )
    assert v.proof is not None and v.proof["secret"] == secret.hex()
    proof = v.proof
    report = verify(
        lot.commit,
        str(proof["secret"]),
        lot.id,
        uids,
        lot.winners,
        list(v.winners),
        str(proof["entries_sha256"]),
    )
    assert report.ok, report.lines()
    # Once only: a second finish, a late claim and a late entry all change nothing.
    other = DrawResult(winners=["u0"], proof={"secret": "x"}, unused=2)
    assert await stores.lotteries.finish_draw(lot.id, other, DRAW_AT + 8) is False
    assert await stores.lotteries.claim_draw(lot.id, DRAW_AT + LEASE * 9, LEASE) is None
    late = await stores.lotteries.enter(lot.id, "late", T0)
    assert (late.outcome, late.entries) == (EnterOutcome.CLOSED, 10)
    assert await view(stores, lot.id) == v
    assert (await events(stores))[-1] == {
        "type": "lot_drawn",
        "lottery": lot.id,
        "winners": ",".join(result.winners),
        "entries": "10",
        "unused": "0",
        "prize_kind": "cash",
        "prize_fen": "500",
        "ts": str(DRAW_AT + 7),
    }
    assert [e["type"] for e in await events(stores)] == ["lot_created", "lot_drawn"]


async def test_finish_needs_a_claim(stores: Stores) -> None:
    lot, secret = await created(stores)
    result = draw(secret, lot.id, ["u1"], 3)
    assert await stores.lotteries.finish_draw(lot.id, result, DRAW_AT) is False
    assert (await view(stores, lot.id)).status is OPEN
    assert await stores.lotteries.finish_draw(new_lottery_id("r1"), result, DRAW_AT) is False
    assert await stores.lotteries.finish_draw("garbage", result, DRAW_AT) is False
    assert await stores.lotteries.claim_draw("garbage", DRAW_AT, LEASE, force=True) is None
    assert await stores.lotteries.claim_draw(new_lottery_id("r1"), DRAW_AT, LEASE) is None
    assert [e["type"] for e in await events(stores)] == ["lot_created"]


async def test_fewer_entrants_than_prizes(stores: Stores) -> None:
    lot, _ = await created(stores, winners=5)
    await enter_all(stores, lot.id, ["a", "b"])
    result = await drawn(stores, lot.id)
    assert sorted(result.winners) == ["a", "b"] and result.unused == 3
    v = await view(stores, lot.id)
    assert (sorted(v.winners), v.unused) == (["a", "b"], 3)
    empty, _ = await created(stores, winners=2)
    result = await drawn(stores, empty.id)
    assert (result.winners, result.unused) == ([], 2)
    v = await view(stores, empty.id)
    assert (v.status, v.winners, v.entries, v.unused) == (DRAWN, (), 0, 2)
    assert (await events(stores))[-1]["winners"] == ""


async def test_prior_winners_of_the_room_rank_last_with_new_first(stores: Stores) -> None:
    uids = [f"u{i}" for i in range(8)]
    first, _ = await created(stores, winners=3)
    await enter_all(stores, first.id, uids)
    won = set((await drawn(stores, first.id)).winners)
    second, secret = await created(stores, winners=5, new_first=True)
    await enter_all(stores, second.id, uids)
    got = await claim(stores, second.id)
    assert got.prior_winners == won
    result = got.draw()
    assert set(result.winners[:5]) == set(uids) - won
    assert "prior_winners_sha256" in result.proof
    assert result == draw(secret, second.id, uids, 5, exclude_first=won)
    assert await stores.lotteries.finish_draw(second.id, result, DRAW_AT)
    # Another room knows nothing of these winners.
    elsewhere, _ = await created(stores, room="r2")
    await enter_all(stores, elsewhere.id, uids)
    assert (await claim(stores, elsewhere.id)).prior_winners == frozenset()


# --- due and open_in_room -------------------------------------------------------------------


async def test_due_offers_what_to_draw_now_earliest_first(stores: Stores) -> None:
    late, _ = await created(stores, draw_at=T0 + 3_000)
    early, _ = await created(stores, draw_at=T0 + 1_000)
    mid, _ = await created(stores, draw_at=T0 + 2_000)
    later, _ = await created(stores, draw_at=T0 + 9_000)
    due = stores.lotteries.due
    assert await due(T0, 10) == []
    assert await due(T0 + 3_000, 10) == [early.id, mid.id, late.id]
    assert await due(T0 + 3_000, 2) == [early.id, mid.id]
    assert await due(T0 + 3_000, 0) == []
    held = await claim(stores, early.id, T0 + 3_000)
    # Held: not offered until the lease lapses, then offered again.
    assert await due(T0 + 3_000, 10) == [mid.id, late.id]
    assert held.lease_until > later.draw_at
    assert await due(held.lease_until, 10) == [mid.id, late.id, later.id, early.id]
    await drawn(stores, mid.id, T0 + 3_000)
    assert await due(held.lease_until, 10) == [late.id, later.id, early.id]


async def test_early_draw_leaves_due_and_a_lapsed_forced_claim_comes_back(
    stores: Stores,
) -> None:
    lot, _ = await created(stores)
    held = await claim(stores, lot.id, T0 + 1, force=True)
    assert await stores.lotteries.due(T0 + 2, 10) == []
    assert await stores.lotteries.due(held.lease_until, 10) == [lot.id]
    again = await claim(stores, lot.id, held.lease_until)
    assert await stores.lotteries.finish_draw(lot.id, again.draw(), held.lease_until)
    assert await stores.lotteries.due(DRAW_AT * 2, 10) == []


async def test_open_in_room_lists_undrawn_lotteries_oldest_first(stores: Stores) -> None:
    b, _ = await created(stores, created_at=T0 + 2)
    a, _ = await created(stores, created_at=T0 + 1)
    c, _ = await created(stores, created_at=T0 + 3)
    other, _ = await created(stores, room="r2")
    await claim(stores, b.id, T0, force=True)
    await drawn(stores, c.id)
    views = await stores.lotteries.open_in_room("r1")
    assert [(v.lottery.id, v.status) for v in views] == [(a.id, OPEN), (b.id, DRAWING)]
    assert views[0] == await view(stores, a.id)
    assert [v.lottery.id for v in await stores.lotteries.open_in_room("r2")] == [other.id]
    assert await stores.lotteries.open_in_room("r3") == []


# --- concurrency ---------------------------------------------------------------------------


async def test_10000_entrants_10_winners_drawn_exactly_once(stores: Stores) -> None:
    lot, secret = await created(stores, winners=10)
    uids = [f"user-{i:05d}" for i in range(10_000)]
    for start in range(0, len(uids), 2_500):
        batch = uids[start : start + 2_500]
        # The batch's first 250 uids twice at once: one ok, one already.
        calls = [*batch, *batch[:250]]
        results = await asyncio.gather(*(stores.lotteries.enter(lot.id, u, T0) for u in calls))
        assert Counter(r.outcome for r in results) == {
            EnterOutcome.OK: len(batch),
            EnterOutcome.ALREADY: 250,
        }
        assert max(r.entries for r in results) == start + len(batch)
    assert (await view(stores, lot.id)).entries == 10_000
    claims = await asyncio.gather(
        *(stores.lotteries.claim_draw(lot.id, DRAW_AT, LEASE) for _ in range(2))
    )
    held = [c for c in claims if c is not None]
    assert len(held) == 1 and len(held[0].entrants) == 10_000
    result = held[0].draw()
    assert result == draw(secret, lot.id, uids, 10)
    finishes = await asyncio.gather(
        *(stores.lotteries.finish_draw(lot.id, result, DRAW_AT + 1) for _ in range(2))
    )
    assert sorted(finishes) == [False, True]
    late = await stores.lotteries.enter(lot.id, "late", T0)
    assert (late.outcome, late.entries) == (EnterOutcome.CLOSED, 10_000)
    v = await view(stores, lot.id)
    assert v.status is DRAWN and list(v.winners) == result.winners and v.proof is not None
    assert v.proof["entries"] == 10_000
    report = verify(lot.commit, str(v.proof["secret"]), lot.id, uids, 10, list(v.winners))
    assert report.ok, report.lines()
    assert [e["type"] for e in await events(stores)] == ["lot_created", "lot_drawn"]


@pytest.mark.parametrize("kind", ["redis"])
async def test_two_processes_race_to_claim_and_finish(make_stores: MakeStores) -> None:
    a, b = make_stores(), make_stores()
    lot, _ = await created(a, winners=2)
    uids = [f"u{i}" for i in range(500)]
    results = await asyncio.gather(
        *(s.lotteries.enter(lot.id, u, T0) for u in uids for s in (a, b))
    )
    assert Counter(r.outcome for r in results)[EnterOutcome.OK] == 500
    for _ in range(3):  # a few rounds: the lease lapses and they race again
        claims = await asyncio.gather(
            *(s.lotteries.claim_draw(lot.id, DRAW_AT, LEASE) for _ in range(10) for s in (a, b))
        )
        assert sum(c is not None for c in claims) <= 1
    got = await asyncio.gather(
        a.lotteries.claim_draw(lot.id, DRAW_AT + LEASE, LEASE),
        b.lotteries.claim_draw(lot.id, DRAW_AT + LEASE, LEASE),
    )
    (held,) = [c for c in got if c is not None]
    result = held.draw()
    done = await asyncio.gather(
        a.lotteries.finish_draw(lot.id, result, DRAW_AT + LEASE),
        b.lotteries.finish_draw(lot.id, result, DRAW_AT + LEASE),
    )
    assert sorted(done) == [False, True]
    assert await a.lotteries.get(lot.id) == await b.lotteries.get(lot.id)
    assert [e["type"] for e in await events(b)] == ["lot_created", "lot_drawn"]


# --- redis layout --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_keys_carry_the_room_hash_tag(
    stores: Stores, redis_url: str, redis_prefix: str
) -> None:
    lot, _ = await created(stores)
    await enter_all(stores, lot.id, ["u1", "u2"])
    await drawn(stores, lot.id)
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = sorted([k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")])
    finally:
        await client.aclose()
    per_room = [k for k in keys if k != f"{redis_prefix}lot-due"]
    # record, entries, the room's undrawn set is gone once empty, prior winners, ledger,
    # the room's set of every lottery (its end expires them through it)
    assert len(per_room) == 5, keys
    assert all(k.count("{") == 1 and "{r1}" in k for k in per_room), keys


async def test_entrants_are_listed_sorted(stores: Stores) -> None:
    lot, _ = await created(stores)
    await enter_all(stores, lot.id, ["c", "a", "b"])
    assert await stores.lotteries.entrants(lot.id) == ["a", "b", "c"]
    assert await stores.lotteries.entrants("nope") == []
    assert await stores.lotteries.entrants("r1.ltmissing") == []
