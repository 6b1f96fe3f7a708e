"""A coupon batch as a lottery's prize through a real server (both engines): the
application wires coupons into the lottery service, winners find exactly one coupon of
the batch in their wallet, and the room's ledger says why."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess
from tests.e2e.test_coupons import _env, ledger, new_batch

StartServer = Callable[..., ServerProcess]


@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_winners_get_one_coupon_of_the_prize_batch(
    servers: StartServer, engine: str, request: pytest.FixtureRequest
) -> None:
    server = servers(env=_env(engine, request))
    async with aiohttp.ClientSession() as session:
        operator = Api(session, server.base, server.token("lc-ops", "operator"))
        rid = (await operator.live_room())["id"]
        batch = await new_batch(operator, room=rid, title="抽奖券", total=10, per_user=1)
        status, lot = await operator.call(
            "POST", f"/api/v1/rooms/{rid}/lotteries",
            {"prize": {"coupon_batch": batch["id"]}, "winners": 2,
             "condition": {"kind": "enter"}, "duration": 600},
        )  # fmt: skip
        assert status == 201, lot
        assert lot["prize"] == {"title": "抽奖券", "kind": "coupon", "coupon_batch": batch["id"]}
        viewers = [f"lcv{i}" for i in range(5)]
        for uid in viewers:
            status, got = await operator.call(
                "POST", f"/api/v1/lotteries/{lot['id']}/entries", token=server.token(uid)
            )
            assert status == 201, got
        status, drawn = await operator.call("POST", f"/api/v1/lotteries/{lot['id']}/draw")
        assert status == 200 and len(drawn["winners"]) == 2, drawn
        for uid in viewers:
            status, mine = await operator.call("GET", "/api/v1/me/coupons", token=server.token(uid))
            assert status == 200, mine
            held = [c["batch"] for c in mine["coupons"]]
            assert held == ([batch["id"]] if uid in drawn["winners"] else []), (uid, mine)
        issued = [e for e in await ledger(operator, rid) if e["type"] == "coupon_issued"]
        assert sorted((e["uid"], e["reason"]) for e in issued) == sorted(
            (w, "lottery") for w in drawn["winners"]
        )
        # A batch too small for the winners is refused at creation, and nothing opens.
        status, err = await operator.call(
            "POST", f"/api/v1/rooms/{rid}/lotteries",
            {"prize": {"coupon_batch": batch["id"]}, "winners": 9,
             "condition": {"kind": "enter"}, "duration": 600},
        )  # fmt: skip
        assert status == 400 and err["error"]["left"] == 8, err
