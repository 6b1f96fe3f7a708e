"""RedPacketStore contract (``commerce.redpacket_store``), on every engine."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from commerce.ids import new_packet_id, room_of
from commerce.keys import CommerceKeys
from commerce.ledger import Ledger
from commerce.ledger_memory import MemoryLedger
from commerce.ledger_redis import RedisLedger
from commerce.models import (
    GrabOutcome,
    GrabResult,
    Luckiest,
    PacketClaim,
    PacketStatus,
    PacketView,
    RedPacket,
    Refund,
    Split,
)
from commerce.redpacket_store import RedPacketStore
from commerce.redpacket_store_memory import MemoryRedPacketStore
from commerce.redpacket_store_redis import RedisRedPacketStore
from commerce.split import split_equal, split_random
from interact.floor.errors import Code, Conflict
from tests.contract.conftest import NewClient

T0 = 1_700_000_000_000
TTL = 60_000
OK, ALREADY = GrabOutcome.OK, GrabOutcome.ALREADY_GRABBED


@dataclass(frozen=True, slots=True)
class Stores:
    ledger: Ledger
    packets: RedPacketStore


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
            return Stores(ledger, MemoryRedPacketStore(ledger))
        keys = CommerceKeys(request.getfixturevalue("redis_prefix"))
        client = new_redis_client()
        clients.append(client)
        return Stores(RedisLedger(client, keys), RedisRedPacketStore(client, keys))

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def stores(make_stores: MakeStores) -> Stores:
    return make_stores()


def packet(
    room: str = "r1",
    total: int = 100,
    count: int = 4,
    *,
    split: Split = Split.RANDOM,
    opens_at: int = T0,
    expires_at: int = T0 + TTL,
    condition: str | None = None,
) -> RedPacket:
    return RedPacket(
        id=new_packet_id(room),
        room_id=room,
        sender="anchor",
        total_fen=total,
        count=count,
        split=split,
        created_at=T0 - 1_000,
        opens_at=opens_at,
        expires_at=expires_at,
        condition=condition,
    )


async def created(s: Stores, shares: list[int], **kw: object) -> RedPacket:
    p = packet(total=sum(shares), count=len(shares), **kw)  # type: ignore[arg-type]
    await s.packets.create(p, shares)
    return p


async def view(s: Stores, pid: str) -> PacketView:
    got = await s.packets.get(pid)
    assert got is not None
    return got


async def events(s: Stores, room: str = "r1") -> list[dict[str, str]]:
    return [fields for _, fields in await s.ledger.read(room, None, 100_000)]


def check_money(v: PacketView) -> None:
    """The invariant: claims + refund == total once closed; claims ≤ total while open."""
    refunded = v.refund.amount_fen if v.refund else 0
    if v.status is PacketStatus.OPEN:
        assert v.claimed_fen < v.packet.total_fen and v.refund is None
    else:
        assert v.claimed_fen + refunded == v.packet.total_fen
    assert len(v.claims) == len({c.uid for c in v.claims})


# --- ids ---------------------------------------------------------------------------------


def test_ids_embed_their_room() -> None:
    pid = new_packet_id("room-1_A")
    assert pid.startswith("room-1_A.rp") and len(pid) == len("room-1_A.rp") + 10
    assert room_of(pid) == "room-1_A"
    assert new_packet_id("r") != new_packet_id("r")


@pytest.mark.parametrize(
    "bad", ["", ".", "nodot", ".rp1", "r.", "r.rp{x}", "a b.rp1", "r.rp1\n", "x" * 65 + ".rp1"]
)
def test_room_of_garbage_is_none(bad: str) -> None:
    assert room_of(bad) is None


# --- create and get ------------------------------------------------------------------------


async def test_create_then_get(stores: Stores) -> None:
    p = packet(total=100, count=3, split=Split.EQUAL, condition="口令 666")
    await stores.packets.create(p, [34, 33, 33])
    v = await view(stores, p.id)
    assert v == PacketView(packet=p, status=PacketStatus.OPEN, left=3, claims=())
    assert v.claimed_fen == 0 and v.luckiest is None and v.refund is None
    assert await events(stores) == [
        {
            "type": "rp_created",
            "packet": p.id,
            "sender": "anchor",
            "total_fen": "100",
            "count": "3",
            "split": "equal",
            "ts": str(T0 - 1_000),
        }
    ]
    assert [x.packet for x in await stores.packets.open_in_room("r1")] == [p]


async def test_get_unknown_is_none(stores: Stores) -> None:
    assert await stores.packets.get(new_packet_id("r1")) is None
    assert await stores.packets.get("garbage") is None


async def test_duplicate_id_is_conflict_and_keeps_the_first(stores: Stores) -> None:
    p = await created(stores, [50, 50])
    other = dataclasses.replace(p, sender="someone", total_fen=3, count=1)
    with pytest.raises(Conflict) as info:
        await stores.packets.create(other, [3])
    assert info.value.code is Code.CONFLICT
    v = await view(stores, p.id)
    assert v.packet == p and v.left == 2
    assert len(await events(stores)) == 1


@pytest.mark.parametrize(
    ("shares", "change"),
    [
        ([30, 30], {}),  # sums to 60, not 100
        ([50, 25, 25], {}),  # 3 shares for a packet of 2
        ([100, 0], {}),  # a zero share
        ([50, 50], {"room_id": "r2"}),  # the id is of r1
        ([50, 50], {"opens_at": T0 + TTL + 1}),
    ],
    ids=["sum", "count", "zero", "room", "opens-after-expiry"],
)
async def test_create_refuses_inconsistent_input(
    stores: Stores, shares: list[int], change: dict[str, object]
) -> None:
    p = dataclasses.replace(packet(total=100, count=2), **change)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await stores.packets.create(p, shares)
    assert await stores.packets.get(p.id) is None
    assert await events(stores) == []


# --- grab --------------------------------------------------------------------------------


async def test_grabs_pop_shares_in_order_and_log_each_claim(stores: Stores) -> None:
    p = await created(stores, [10, 40, 20, 30])
    r1 = await stores.packets.grab(p.id, "u1", T0)
    r2 = await stores.packets.grab(p.id, "u2", T0 + 5)
    assert (r1.outcome, r1.amount_fen, r1.left, r1.done, r1.luckiest) == (OK, 10, 3, False, None)
    assert (r2.outcome, r2.amount_fen, r2.left, r2.done) == (OK, 40, 2, False)
    v = await view(stores, p.id)
    assert v.status is PacketStatus.OPEN and v.left == 2
    assert v.claims == (PacketClaim("u1", 10), PacketClaim("u2", 40))
    assert v.luckiest is None  # only told once every share is taken
    assert (await events(stores))[1:] == [
        {"type": "rp_claim", "packet": p.id, "uid": "u1", "amount_fen": "10", "ts": str(T0)},
        {"type": "rp_claim", "packet": p.id, "uid": "u2", "amount_fen": "40", "ts": str(T0 + 5)},
    ]


async def test_last_share_closes_the_packet_with_the_luckiest(stores: Stores) -> None:
    # Ties go to the earliest claim: u2 and u4 both got 40.
    p = await created(stores, [10, 40, 10, 40])
    other = await created(stores, [5])
    got = [await stores.packets.grab(p.id, f"u{i}", T0 + i) for i in range(1, 5)]
    assert [g.done for g in got] == [False, False, False, True]
    assert [g.left for g in got] == [3, 2, 1, 0]
    assert got[-1].luckiest == Luckiest("u2", 40)
    v = await view(stores, p.id)
    assert v.status is PacketStatus.DONE and v.left == 0 and v.luckiest == Luckiest("u2", 40)
    assert [c.uid for c in v.claims] == ["u1", "u2", "u3", "u4"]
    check_money(v)
    assert (await events(stores))[-1] == {
        "type": "rp_done",
        "packet": p.id,
        "luckiest": "u2",
        "amount_fen": "40",
        "ts": str(T0 + 4),
    }
    assert [x.packet.id for x in await stores.packets.open_in_room("r1")] == [other.id]
    assert await stores.packets.due(T0 + TTL, 10) == [other.id]
    # A done packet refunds nothing.
    assert await stores.packets.expire(p.id, T0 + TTL) is None


async def test_single_share_packet_is_done_at_once(stores: Stores) -> None:
    p = await created(stores, [7])
    got = await stores.packets.grab(p.id, "u1", T0)
    assert (got.outcome, got.amount_fen, got.left, got.done) == (OK, 7, 0, True)
    assert got.luckiest == Luckiest("u1", 7)


async def test_a_second_grab_gets_the_first_amount_and_changes_nothing(stores: Stores) -> None:
    p = await created(stores, [60, 30, 10])
    await stores.packets.grab(p.id, "u1", T0)
    before, log = await view(stores, p.id), await events(stores)
    again = await stores.packets.grab(p.id, "u1", T0 + 1)
    assert (again.outcome, again.amount_fen, again.left, again.done) == (ALREADY, 60, 2, False)
    assert again.outcome.code is Code.ALREADY_GRABBED
    assert await view(stores, p.id) == before
    assert await events(stores) == log
    # Still the first amount once the packet is done, and even past its deadline.
    await stores.packets.grab(p.id, "u2", T0)
    await stores.packets.grab(p.id, "u3", T0)
    for now in (T0 + 2, T0 + TTL * 10):
        late = await stores.packets.grab(p.id, "u1", now)
        assert (late.outcome, late.amount_fen, late.left) == (ALREADY, 60, 0)


async def test_empty_after_the_last_share(stores: Stores) -> None:
    p = await created(stores, [1, 1])
    await stores.packets.grab(p.id, "u1", T0)
    await stores.packets.grab(p.id, "u2", T0)
    late = await stores.packets.grab(p.id, "u3", T0 + 1)
    assert (late.outcome, late.amount_fen, late.left, late.done) == (
        GrabOutcome.EMPTY,
        None,
        0,
        False,
    )
    assert late.outcome.code is Code.EMPTY
    assert len(await events(stores)) == 1 + 2 + 1  # created, two claims, done


@pytest.mark.parametrize("pid", ["r1.rp0000000000", "garbage", "", "r1.", "no room.rp1"])
async def test_unknown_packet_is_not_found(stores: Stores, pid: str) -> None:
    got = await stores.packets.grab(pid, "u1", T0)
    assert (got.outcome, got.amount_fen) == (GrabOutcome.NOT_FOUND, None)
    assert got.outcome.code is Code.NOT_FOUND


async def test_not_open_before_the_countdown_ends(stores: Stores) -> None:
    p = await created(stores, [3, 3], opens_at=T0 + 10_000)
    early = await stores.packets.grab(p.id, "u1", T0 + 9_999)
    assert (early.outcome, early.amount_fen, early.left) == (GrabOutcome.NOT_OPEN, None, 2)
    assert early.outcome.code is Code.CONFLICT
    assert (await stores.packets.grab(p.id, "u1", T0 + 10_000)).outcome is OK


async def test_expired_at_the_deadline_even_before_the_sweep(stores: Stores) -> None:
    p = await created(stores, [5, 5, 5])
    assert (await stores.packets.grab(p.id, "u1", T0 + TTL - 1)).outcome is OK
    late = await stores.packets.grab(p.id, "u2", T0 + TTL)
    assert (late.outcome, late.amount_fen, late.left) == (GrabOutcome.EXPIRED, None, 2)
    assert late.outcome.code is Code.EXPIRED
    assert (await view(stores, p.id)).status is PacketStatus.OPEN  # the sweep closes it
    await stores.packets.expire(p.id, T0 + TTL)
    # Closed: expired whatever the caller's clock says.
    assert (await stores.packets.grab(p.id, "u3", T0)).outcome is GrabOutcome.EXPIRED
    assert (await stores.packets.grab(p.id, "u1", T0)).outcome is ALREADY


async def test_password_condition_needs_eligibility(stores: Stores) -> None:
    p = await created(stores, [4, 4], condition="芝麻开门")
    refused = await stores.packets.grab(p.id, "u1", T0)
    assert (refused.outcome, refused.left) == (GrabOutcome.FORBIDDEN, 2)
    assert refused.outcome.code is Code.FORBIDDEN
    assert await stores.packets.add_eligible(p.id, "u1") is True
    assert await stores.packets.add_eligible(p.id, "u1") is True
    assert (await stores.packets.grab(p.id, "u1", T0)).outcome is OK
    assert (await stores.packets.grab(p.id, "u2", T0)).outcome is GrabOutcome.FORBIDDEN
    # Eligibility for one packet is not for another.
    plain = await created(stores, [4])
    assert (await stores.packets.grab(plain.id, "u2", T0)).outcome is OK


async def test_add_eligible_to_unknown_packet_is_false(stores: Stores) -> None:
    assert await stores.packets.add_eligible(new_packet_id("r1"), "u1") is False
    assert await stores.packets.add_eligible("garbage", "u1") is False


# --- expire and due ------------------------------------------------------------------------


async def test_expire_refunds_the_rest_exactly_once(stores: Stores) -> None:
    p = await created(stores, [10, 20, 30, 40])
    await stores.packets.grab(p.id, "u1", T0)
    assert await stores.packets.expire(p.id, T0 + TTL - 1) is None  # not due
    refund = await stores.packets.expire(p.id, T0 + TTL)
    assert refund == Refund(p.id, "r1", "anchor", 90, 3)
    assert await stores.packets.expire(p.id, T0 + TTL + 1) is None
    v = await view(stores, p.id)
    assert (v.status, v.left, v.refund, v.luckiest) == (PacketStatus.EXPIRED, 0, refund, None)
    assert v.claims == (PacketClaim("u1", 10),)
    check_money(v)
    assert (await events(stores))[-1] == {
        "type": "rp_refund",
        "packet": p.id,
        "sender": "anchor",
        "amount_fen": "90",
        "shares": "3",
        "ts": str(T0 + TTL),
    }
    assert await stores.packets.open_in_room("r1") == []
    assert await stores.packets.due(T0 + TTL * 2, 10) == []


async def test_expire_of_an_untouched_packet_refunds_everything(stores: Stores) -> None:
    p = await created(stores, split_random(1_000, 7))
    refund = await stores.packets.expire(p.id, T0 + TTL)
    assert refund is not None and (refund.amount_fen, refund.shares) == (1_000, 7)


async def test_expire_of_unknown_is_none(stores: Stores) -> None:
    assert await stores.packets.expire(new_packet_id("r1"), T0 + TTL) is None
    assert await stores.packets.expire("garbage", T0 + TTL) is None


async def test_due_lists_open_packets_past_their_deadline_earliest_first(stores: Stores) -> None:
    late = await created(stores, [1], expires_at=T0 + 3_000)
    early = await created(stores, [1], expires_at=T0 + 1_000)
    mid = await created(stores, [1, 1], expires_at=T0 + 2_000)
    later = await created(stores, [1], expires_at=T0 + 9_000)
    assert await stores.packets.due(T0, 10) == []
    assert await stores.packets.due(T0 + 1_000, 10) == [early.id]
    assert await stores.packets.due(T0 + 3_000, 10) == [early.id, mid.id, late.id]
    assert await stores.packets.due(T0 + 3_000, 2) == [early.id, mid.id]
    assert await stores.packets.due(T0 + 3_000, 0) == []
    # Closed ones leave the index, whether taken or refunded.
    await stores.packets.grab(early.id, "u1", T0)
    await stores.packets.expire(mid.id, T0 + 2_000)
    assert await stores.packets.due(T0 + 3_000, 10) == [late.id]
    assert await stores.packets.due(T0 + 9_000, 10) == [late.id, later.id]


async def test_sweeping_due_packets_closes_them_all(stores: Stores) -> None:
    ids = [(await created(stores, [2, 3], expires_at=T0 + i)).id for i in range(450)]
    refunded: list[str] = []
    while batch := await stores.packets.due(T0 + 1_000, 100):
        for pid in batch:
            refund = await stores.packets.expire(pid, T0 + 1_000)
            assert refund is not None and refund.amount_fen == 5
            refunded.append(pid)
    assert refunded == ids


async def test_open_in_room_is_per_room_oldest_first(stores: Stores) -> None:
    a = await created(stores, [1, 1])
    b = await created(stores, [2])
    c = dataclasses.replace(packet("r2", 3, 1), created_at=T0 - 5_000)
    await stores.packets.create(c, [3])
    await stores.packets.grab(b.id, "u1", T0)
    assert [v.packet.id for v in await stores.packets.open_in_room("r1")] == [a.id]
    assert [v.packet.id for v in await stores.packets.open_in_room("r2")] == [c.id]
    assert await stores.packets.open_in_room("r3") == []
    (va,) = await stores.packets.open_in_room("r1")
    assert va == await view(stores, a.id)


# --- concurrency ---------------------------------------------------------------------------


def check_rush(p: RedPacket, results: Sequence[GrabResult], uids: list[str]) -> None:
    by_outcome = Counter(r.outcome for r in results)
    assert by_outcome == {OK: p.count, GrabOutcome.EMPTY: len(uids) - p.count}
    winners = [(uid, r.amount_fen) for uid, r in zip(uids, results, strict=True) if r.outcome is OK]
    assert len({uid for uid, _ in winners}) == p.count
    assert sum(a for _, a in winners) == p.total_fen
    assert sum(r.done for r in results) == 1


async def test_2000_grabbers_race_for_500_shares(stores: Stores) -> None:
    p = await created(stores, split_random(100_000, 500))
    uids = [f"u{i}" for i in range(2_000)]
    results = await asyncio.gather(*(stores.packets.grab(p.id, u, T0 + 1) for u in uids))
    check_rush(p, results, uids)
    v = await view(stores, p.id)
    check_money(v)
    assert v.status is PacketStatus.DONE and len(v.claims) == 500
    assert dict((c.uid, c.amount_fen) for c in v.claims) == {
        u: r.amount_fen for u, r in zip(uids, results, strict=True) if r.outcome is OK
    }
    (done,) = [r for r in results if r.done]
    top = max(c.amount_fen for c in v.claims)
    first_top = next(c for c in v.claims if c.amount_fen == top)
    assert done.luckiest == v.luckiest == Luckiest(first_top.uid, top)
    log = await events(stores)
    assert Counter(e["type"] for e in log) == {"rp_created": 1, "rp_claim": 500, "rp_done": 1}
    assert sum(int(e["amount_fen"]) for e in log if e["type"] == "rp_claim") == 100_000


@pytest.mark.parametrize("kind", ["redis"])
async def test_two_processes_race_for_the_same_packet(make_stores: MakeStores) -> None:
    a, b = make_stores(), make_stores()
    p = await created(a, split_equal(50_001, 500))
    uids = [f"u{i}" for i in range(2_000)]
    # Each uid tries on both connections at once: still one share per uid.
    calls = [s.packets.grab(p.id, u, T0) for u in uids for s in (a, b)]
    results = await asyncio.gather(*calls)
    per_uid = {u: (results[2 * i], results[2 * i + 1]) for i, u in enumerate(uids)}
    for x, y in per_uid.values():
        if OK in (x.outcome, y.outcome):
            assert {x.outcome, y.outcome} == {OK, ALREADY} and x.amount_fen == y.amount_fen
        else:
            assert x.outcome is y.outcome is GrabOutcome.EMPTY
    won = {u: x.amount_fen for u, (x, _) in per_uid.items() if x.amount_fen is not None}
    assert len(won) == 500 and sum(won.values()) == 50_001
    assert await a.packets.get(p.id) == await b.packets.get(p.id)
    check_money(await view(b, p.id))


async def test_50_replayed_grabs_by_one_uid_take_one_share(stores: Stores) -> None:
    p = await created(stores, [11, 22, 33])
    results = await asyncio.gather(*(stores.packets.grab(p.id, "u1", T0) for _ in range(50)))
    assert Counter(r.outcome for r in results) == {OK: 1, ALREADY: 49}
    assert {r.amount_fen for r in results} == {11}
    v = await view(stores, p.id)
    assert v.left == 2 and v.claims == (PacketClaim("u1", 11),)
    assert [e["type"] for e in await events(stores)] == ["rp_created", "rp_claim"]


async def test_expire_racing_grabs_and_itself_refunds_once(stores: Stores) -> None:
    for round_ in range(5):
        p = await created(stores, split_random(20_000, 200))
        calls: list[tuple[str, Awaitable[object]]] = [
            *(("grab", stores.packets.grab(p.id, f"u{i}", T0 + TTL - 1)) for i in range(300)),
            *(("expire", stores.packets.expire(p.id, T0 + TTL)) for _ in range(10)),
        ]
        random.Random(round_).shuffle(calls)  # a different interleaving each round
        results = await asyncio.gather(*(call for _, call in calls))
        tagged = list(zip((tag for tag, _ in calls), results, strict=True))
        grabbed = [r for tag, r in tagged if tag == "grab" and isinstance(r, GrabResult)]
        refunds = [r for tag, r in tagged if tag == "expire" and isinstance(r, Refund)]
        assert len(grabbed) == 300
        v = await view(stores, p.id)
        check_money(v)
        claimed = sum(r.amount_fen or 0 for r in grabbed if r.outcome is OK)
        assert claimed == v.claimed_fen
        if v.status is PacketStatus.EXPIRED:
            assert len(refunds) == 1 and refunds[0] == v.refund
            assert claimed + refunds[0].amount_fen == 20_000
        else:  # every share went before the first expire ran
            assert v.status is PacketStatus.DONE and refunds == [] and claimed == 20_000
        outcomes = {r.outcome for r in grabbed}
        assert outcomes <= {OK, GrabOutcome.EXPIRED, GrabOutcome.EMPTY}
    kinds = Counter(e["type"] for e in await events(stores))
    assert kinds["rp_created"] == 5 and kinds["rp_refund"] + kinds["rp_done"] == 5


@pytest.mark.parametrize("kind", ["redis"])
async def test_two_processes_expire_at_once_one_refund(make_stores: MakeStores) -> None:
    a, b = make_stores(), make_stores()
    p = await created(a, [5] * 20)
    await a.packets.grab(p.id, "u1", T0)
    results = await asyncio.gather(
        *(s.packets.expire(p.id, T0 + TTL) for _ in range(20) for s in (a, b))
    )
    refunds = [r for r in results if r is not None]
    assert refunds == [Refund(p.id, "r1", "anchor", 95, 19)]
    assert [e["type"] for e in await events(b)].count("rp_refund") == 1


# --- redis layout --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_keys_carry_the_room_hash_tag(
    stores: Stores, redis_url: str, redis_prefix: str
) -> None:
    p = await created(stores, [1, 2, 3], condition="pw")
    await stores.packets.add_eligible(p.id, "u1")
    await stores.packets.grab(p.id, "u1", T0)
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = sorted([k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")])
    finally:
        await client.aclose()
    per_room = [k for k in keys if k != f"{redis_prefix}rp-due"]
    # record, shares, claims, order, eligible, the room's open and all-packets sets (the
    # latter for retention) and its ledger
    assert len(per_room) == 8, keys
    assert all(k.count("{") == 1 and "{r1}" in k for k in per_room), keys
