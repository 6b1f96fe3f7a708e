"""A coupon batch as a lottery's prize (``commerce.service`` over the real lottery and
coupon stores), on every engine: each winner gets exactly one coupon of the batch, in the
room's ledger; a draw whose process died before issuing is made good by the sweep; two
processes issuing at once still give one coupon per winner."""

from __future__ import annotations

import asyncio

import pytest

from commerce.coupon_service import CouponService
from commerce.coupons import Batch, CouponKind, CouponTerms, new_batch_id
from commerce.models import LotteryStatus, PrizeKind
from commerce.service import PRIZE_RETRY_MS, CommerceService
from interact.engine import Engine
from interact.floor.errors import BadRequest
from tests.contract.conftest import MakeEngine

ROOM = "lcroom"
T0 = 1_700_000_000_000
DAY = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


async def batch_in(engine: Engine, *, room: str | None = ROOM, total: int = 100) -> str:
    terms = CouponTerms(CouponKind.FIXED, 500, 0, 0, T0, T0 + 30 * DAY, room)
    batch = Batch(new_batch_id(room), "5 元券", terms, total, 1, T0)
    assert await engine.sales.coupons.create_batch(batch, 10)
    return batch.id


def service(engine: Engine, clock: Clock) -> CommerceService:
    commerce = CommerceService(
        packets=engine.packets, lotteries=engine.lotteries, broker=engine.broker, clock=clock
    )
    commerce.coupons = CouponService(engine.sales.coupons, clock=clock)
    return commerce


async def issued(engine: Engine) -> list[tuple[str, str, str]]:
    events = await engine.ledger.read(ROOM, None, 10_000)
    return sorted(
        (e["uid"], e["batch"], e["reason"]) for _, e in events if e["type"] == "coupon_issued"
    )


async def wallet_batches(engine: Engine, uid: str) -> list[str]:
    return [c.batch_id for c in await engine.sales.coupons.wallet(uid, 100)]


async def test_each_winner_gets_one_coupon_of_the_batch(engine: Engine) -> None:
    clock = Clock()
    commerce = service(engine, clock)
    batch = await batch_in(engine)
    lot = await commerce.create_lottery(
        ROOM, prize={"coupon_batch": batch}, winners=3, condition={"kind": "enter"}, duration=60
    )
    # No title given: the batch's; the kind follows from the batch.
    assert lot.lottery.prize.to_dict() == {
        "title": "5 元券",
        "kind": "coupon",
        "coupon_batch": batch,
    }
    entrants = [f"u{i}" for i in range(8)]
    for uid in entrants:
        await commerce.enter(lot.lottery.id, uid)
    drawn = await commerce.draw_now(lot.lottery.id)
    assert drawn.status is LotteryStatus.DRAWN and len(drawn.winners) == 3
    assert await issued(engine) == sorted((w, batch, "lottery") for w in drawn.winners)
    for uid in entrants:
        expected = [batch] if uid in drawn.winners else []
        assert await wallet_batches(engine, uid) == expected
    assert (await engine.sales.coupons.get_batch(batch)).issued == 3  # type: ignore[union-attr]
    # Done: out of the index, so a later sweep issues nothing more.
    clock.now += 2 * PRIZE_RETRY_MS
    assert await engine.lotteries.prizes_due(clock.now, 10) == []
    await commerce.sweep()
    await commerce.issue_prizes(drawn)  # a replay, per lottery and winner
    assert len(await issued(engine)) == 3


async def test_a_draw_that_died_before_issuing_is_made_good_by_the_sweep(
    make_engine: MakeEngine, kind: str
) -> None:
    clock = Clock()
    engine = await make_engine()
    commerce = service(engine, clock)
    batch = await batch_in(engine)
    lot = await commerce.create_lottery(
        ROOM, prize={"title": "券", "kind": "coupon", "coupon_batch": batch}, winners=2,
        condition={"kind": "enter"}, duration=60,
    )  # fmt: skip
    lid = lot.lottery.id
    for uid in ("a", "b", "c"):
        await commerce.enter(lid, uid)
    # What a process leaves when killed between storing the result and issuing: the draw
    # steps of CommerceService.draw up to finish_draw, and nothing after.
    claim = await engine.lotteries.claim_draw(lid, clock.now, 30_000, force=True)
    assert claim is not None and claim.lottery.prize.coupon_batch == batch
    await engine.lotteries.mark_prizes(lid, clock.now + PRIZE_RETRY_MS)
    assert await engine.lotteries.finish_draw(lid, claim.draw(), clock.now)
    assert await issued(engine) == []
    # Another process's sweep: not before the retry time, then once.
    other = service(await make_engine(), clock) if kind != "memory" else commerce
    await other.sweep()
    assert await issued(engine) == []
    clock.now += PRIZE_RETRY_MS
    await asyncio.gather(other.sweep(), commerce.sweep())
    view = await commerce.get_lottery(lid)
    assert await issued(engine) == sorted((w, batch, "lottery") for w in view.winners)
    assert await engine.lotteries.prizes_due(clock.now + DAY, 10) == []


async def test_a_lottery_marked_but_not_drawn_waits_for_its_draw(engine: Engine) -> None:
    clock = Clock()
    commerce = service(engine, clock)
    batch = await batch_in(engine)
    lot = await commerce.create_lottery(
        ROOM, prize={"coupon_batch": batch}, winners=1, condition={"kind": "enter"}, duration=60
    )
    lid = lot.lottery.id
    await commerce.enter(lid, "solo")
    # Marked, then the drawing process died before finish_draw: the lease must lapse.
    claim = await engine.lotteries.claim_draw(lid, clock.now, 30_000, force=True)
    assert claim is not None
    await engine.lotteries.mark_prizes(lid, clock.now)
    await commerce.sweep()
    assert await issued(engine) == []
    assert (await commerce.get_lottery(lid)).status is LotteryStatus.DRAWING
    clock.now += 30_000 + PRIZE_RETRY_MS
    await commerce.sweep()  # redraws (the lease lapsed) and issues in the same round
    assert await issued(engine) == [("solo", batch, "lottery")]


async def test_a_batch_that_runs_out_refuses_the_rest_once(engine: Engine) -> None:
    clock = Clock()
    commerce = service(engine, clock)
    batch = await batch_in(engine, total=3)
    lot = await commerce.create_lottery(
        ROOM, prize={"coupon_batch": batch}, winners=3, condition={"kind": "enter"}, duration=60
    )
    # Given out otherwise after the lottery was created: one coupon is left for 3 winners.
    coupons = CouponService(engine.sales.coupons, clock=clock)
    for uid in ("x1", "x2"):
        assert (await coupons.issue(batch, uid)).coupon is not None
    for uid in ("w1", "w2", "w3"):
        await commerce.enter(lot.lottery.id, uid)
    drawn = await commerce.draw_now(lot.lottery.id)
    assert len([e for e in await issued(engine) if e[2] == "lottery"]) == 1
    assert commerce.prizes_refused == 2
    assert len(drawn.winners) == 3
    assert await engine.lotteries.prizes_due(clock.now + DAY, 10) == []


@pytest.mark.parametrize(
    ("prize", "message"),
    [
        ({"coupon_batch": "nope"}, "prize.coupon_batch must be a coupon batch id"),
        ({"title": "t", "kind": "goods", "coupon_batch": "B"}, "belongs to a coupon prize"),
        ({"coupon_batch": "B", "extra": 1}, "unknown field 'prize.extra'"),
        ({"coupon_batch": "OTHER"}, "this room's batch or merchant-wide"),
        ({"coupon_batch": "MISSING"}, "no such coupon batch"),
        ({"coupon_batch": "SMALL"}, "1 coupon(s) left, fewer than the winners"),
        ({"coupon_batch": "ENDING"}, "validity ends before the draw"),
    ],
)
async def test_coupon_prizes_are_checked_at_creation(
    engine: Engine, prize: dict[str, object], message: str
) -> None:
    clock = Clock()
    commerce = service(engine, clock)
    names = {
        "B": await batch_in(engine),
        "OTHER": await batch_in(engine, room="lcother"),
        "MISSING": new_batch_id(ROOM),
        "SMALL": await batch_in(engine, total=1),
    }
    ending = Batch(
        new_batch_id(ROOM), "soon",
        CouponTerms(CouponKind.FIXED, 100, 0, 0, T0, T0 + 30_000, ROOM), 10, 1, T0,
    )  # fmt: skip
    assert await engine.sales.coupons.create_batch(ending, 10)
    names["ENDING"] = ending.id
    body = {k: names.get(v, v) if k == "coupon_batch" else v for k, v in prize.items()}
    with pytest.raises(BadRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        await commerce.create_lottery(
            ROOM, prize=body, winners=2, condition={"kind": "enter"}, duration=60
        )
    assert await engine.lotteries.open_in_room(ROOM) == []


async def test_without_coupons_wired_a_coupon_prize_is_refused(engine: Engine) -> None:
    commerce = CommerceService(
        packets=engine.packets, lotteries=engine.lotteries, broker=engine.broker
    )
    batch = await batch_in(engine)
    with pytest.raises(BadRequest, match="not available"):
        await commerce.create_lottery(
            ROOM, prize={"coupon_batch": batch}, winners=1, condition={"kind": "enter"},
            duration=60,
        )  # fmt: skip
    # A coupon prize without a batch is still allowed: owed, as goods are.
    lot = await commerce.create_lottery(
        ROOM, prize={"title": "券", "kind": "coupon"}, winners=1, condition={"kind": "enter"},
        duration=60,
    )  # fmt: skip
    assert lot.lottery.prize.kind is PrizeKind.COUPON and lot.lottery.prize.coupon_batch is None
