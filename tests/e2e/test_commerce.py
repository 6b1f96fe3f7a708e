"""Red packets and lotteries against a real server process on the memory engine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess, connect

# The room's own lifecycle is on its ledger too (for webhooks); these tests are about money.
LIFECYCLE = {"room_started", "room_ended"}


def money(ledger: dict) -> list[dict]:
    return [e for e in ledger["events"] if e["type"] not in LIFECYCLE]


async def test_red_packet_announce_grab_replay_and_done(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    viewers = [
        (await connect(session, memory_server.base, rid, memory_server.token(f"g{i}")))[0]
        for i in range(4)
    ]
    status, packet = await operator.call(
        "POST", f"/api/v1/rooms/{rid}/red-packets", {"total_fen": 1000, "count": 3}
    )
    assert status == 201, packet
    assert packet["count"] == 3 and packet["total_fen"] == 1000 and packet["left"] == 3
    pid = packet["id"]
    for v in viewers:
        rp = await v.next("rp")
        assert (rp["id"], rp["count"], rp["total_fen"]) == (pid, 3, 1000)
    amounts = {}
    for i, v in enumerate(viewers[:3]):
        await v.send({"t": "grab", "id": pid, "ref": f"g{i}"})
        ack = await v.ack(f"g{i}")
        assert ack["ok"] is True and ack["amount_fen"] >= 1
        amounts[f"g{i}"] = ack["amount_fen"]
    assert sum(amounts.values()) == 1000
    # A replayed grab gets the first amount and changes nothing.
    await viewers[0].send({"t": "grab", "id": pid, "ref": "again"})
    again = await viewers[0].ack("again")
    assert again["ok"] is False and again["code"] == "already_grabbed"
    assert again["amount_fen"] == amounts["g0"]
    await viewers[3].send({"t": "grab", "id": pid, "ref": "late"})
    assert (await viewers[3].ack("late"))["code"] == "empty"
    done = await viewers[3].next("rp_done")
    best = max(amounts.values())
    assert done["id"] == pid and done["reason"] == "empty"
    assert done["luckiest"]["amount_fen"] == best and amounts[done["luckiest"]["uid"]] == best
    status, view = await operator.call("GET", f"/api/v1/red-packets/{pid}")
    assert status == 200 and view["status"] == "done" and view["left"] == 0
    assert {c["uid"]: c["amount_fen"] for c in view["claims"]} == amounts
    # A late joiner's welcome no longer lists the finished packet.
    late, welcome = await connect(session, memory_server.base, rid, memory_server.token("z"))
    assert welcome["rp"] == []
    for v in [*viewers, late]:
        await v.close()


@pytest.mark.parametrize(
    "body",
    [
        {"total_fen": -100, "count": 2},
        {"total_fen": 0, "count": 1},
        {"total_fen": 10.5, "count": 2},
        {"total_fen": "100", "count": 2},
        {"total_fen": 10**12, "count": 2},
        {"total_fen": 5, "count": 10},
        {"total_fen": 100, "count": 0},
        {"total_fen": 100_000, "count": 2001},
        {"total_fen": 100, "count": 2, "split": "weird"},
        {"total_fen": 100, "count": 2, "expires_in": -1},
        {"total_fen": 100, "count": 2, "opens_in": 100, "expires_in": 50},
        {"total_fen": 100, "count": 2, "condition": {"kind": "password"}},
        {"total_fen": 100, "count": True},
    ],
)
async def test_bad_packets_are_refused_and_change_nothing(
    operator: Api, body: dict[str, object]
) -> None:
    room = await operator.live_room()
    status, answer = await operator.call("POST", f"/api/v1/rooms/{room['id']}/red-packets", body)
    assert status == 400, answer
    assert answer["error"]["code"] == "bad_request"
    status, ledger = await operator.call("GET", f"/api/v1/rooms/{room['id']}/ledger")
    assert status == 200 and money(ledger) == []


async def test_who_may_send_and_where_grabs_land(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    viewer = Api(session, memory_server.base, memory_server.token("v"))
    room = await operator.live_room()
    other = await operator.live_room()
    status, _ = await viewer.call(
        "POST", f"/api/v1/rooms/{room['id']}/red-packets", {"total_fen": 100, "count": 1}
    )
    assert status == 403
    _, packet = await operator.call(
        "POST", f"/api/v1/rooms/{other['id']}/red-packets", {"total_fen": 100, "count": 1}
    )
    v, _ = await connect(session, memory_server.base, room["id"], memory_server.token("v"))
    # A packet of another room cannot be grabbed from this room's connection.
    await v.send({"t": "grab", "id": packet["id"], "ref": 1})
    assert (await v.ack(1))["code"] == "not_found"
    for bad in ["nope", f"{room['id']}.rpdeadbeef", "x" * 64]:
        await v.send({"t": "grab", "id": bad, "ref": bad})
        assert (await v.ack(bad))["code"] == "not_found"
    status, body = await viewer.call("POST", "/api/v1/red-packets/nope/grab")
    assert status == 404 and body["error"]["code"] == "not_found"
    _, view = await operator.call("GET", f"/api/v1/red-packets/{packet['id']}")
    assert view["left"] == 1 and view["claims"] == []
    await v.close()


async def test_countdown_password_and_expiry_refund(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    v, _ = await connect(session, memory_server.base, rid, memory_server.token("pw"))
    _, packet = await operator.call(
        "POST",
        f"/api/v1/rooms/{rid}/red-packets",
        {
            "total_fen": 300,
            "count": 3,
            "opens_in": 1,
            "expires_in": 3,
            "condition": {"kind": "password", "password": "主播最帅"},
        },
    )
    pid = packet["id"]
    announced = await v.next("rp")
    assert announced["condition"] == {"kind": "password", "password": "主播最帅"}
    await v.send({"t": "grab", "id": pid, "ref": "early"})
    assert (await v.ack("early"))["code"] == "conflict"  # not open yet
    await asyncio.sleep(1.1)
    await v.send({"t": "grab", "id": pid, "ref": "nopw"})
    assert (await v.ack("nopw"))["code"] == "forbidden"
    await v.send({"t": "dm", "text": "主播最帅!", "ref": "pw"})
    assert (await v.ack("pw"))["ok"] is True
    await v.send({"t": "grab", "id": pid, "ref": "ok"})
    got = await v.ack("ok")
    assert got["ok"] is True
    done = await v.next("rp_done", timeout=6)
    assert done["reason"] == "expired" and done["left"] == 2
    assert done["refund_fen"] == 300 - got["amount_fen"]
    _, view = await operator.call("GET", f"/api/v1/red-packets/{pid}")
    assert view["status"] == "expired"
    assert view["claimed_fen"] + view["refund"]["amount_fen"] == 300
    await v.send({"t": "grab", "id": pid, "ref": "after"})
    assert (await v.ack("after"))["code"] in ("expired", "already_grabbed")
    _, ledger = await operator.call("GET", f"/api/v1/rooms/{rid}/ledger")
    kinds = [e["type"] for e in money(ledger)]
    assert kinds == ["rp_created", "rp_claim", "rp_refund"]
    await v.close()


async def test_lottery_enter_draw_prove_and_verify(
    memory_server: ServerProcess,
    session: aiohttp.ClientSession,
    operator: Api,
    tmp_path: Path,
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    viewers = [
        (await connect(session, memory_server.base, rid, memory_server.token(f"e{i}")))[0]
        for i in range(6)
    ]
    status, lot = await operator.call(
        "POST",
        f"/api/v1/rooms/{rid}/lotteries",
        {
            "prize": {"title": "福袋", "kind": "goods"},
            "winners": 2,
            "condition": {"kind": "enter"},
            "duration": 2,
        },
    )
    assert status == 201, lot
    lid, commit = lot["id"], lot["commit"]
    for v in viewers:
        assert (await v.next("lot"))["commit"] == commit
    for i, v in enumerate(viewers[:5]):
        await v.send({"t": "enter", "id": lid, "ref": i})
        assert (await v.ack(i))["entries"] == i + 1
    await viewers[0].send({"t": "enter", "id": lid, "ref": "twice"})
    assert (await viewers[0].ack("twice"))["ok"] is False
    result = await viewers[5].next("lot_result", timeout=5)
    assert result["id"] == lid and len(result["winners"]) == 2 and result["entries"] == 5
    proof = result["proof"]
    status, listed = await operator.call("GET", f"/api/v1/lotteries/{lid}/entries")
    assert status == 200 and listed["entrants"] == [f"e{i}" for i in range(5)]
    entries = tmp_path / "entries.txt"
    entries.write_text("\n".join(listed["entrants"]) + "\n")
    check = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "interact",
            "verify-lottery",
            "--commit",
            commit,
            "--secret",
            proof["secret"],
            "--lottery-id",
            lid,
            "--entries",
            str(entries),
            "--winners",
            "2",
            "--expected-winners",
            ",".join(result["winners"]),
            "--entries-sha256",
            proof["entries_sha256"],
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0 and "VERIFIED" in check.stdout, check.stdout + check.stderr
    tampered = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "interact",
            "verify-lottery",
            "--commit",
            commit,
            "--secret",
            "00" * 32,
            "--lottery-id",
            lid,
            "--entries",
            str(entries),
            "--winners",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert tampered.returncode == 1 and "NOT VERIFIED" in tampered.stdout
    status, _ = await operator.call("POST", f"/api/v1/lotteries/{lid}/draw")
    assert status == 409
    await viewers[5].send({"t": "enter", "id": lid, "ref": "late"})
    assert (await viewers[5].ack("late"))["code"] == "expired"
    _, view = await operator.call("GET", f"/api/v1/lotteries/{lid}")
    assert view["status"] == "drawn" and view["winners"] == result["winners"]
    for v in viewers:
        await v.close()


async def test_lottery_conditions_and_unused_prizes(
    memory_server: ServerProcess, session: aiohttp.ClientSession, operator: Api
) -> None:
    room = await operator.live_room()
    rid = room["id"]
    v, _ = await connect(session, memory_server.base, rid, memory_server.token("c1"))
    _, pw = await operator.call(
        "POST",
        f"/api/v1/rooms/{rid}/lotteries",
        {
            "prize": "口红",
            "winners": 3,
            "condition": {"kind": "password", "password": "666"},
            "duration": 600,
        },
    )
    _, watch = await operator.call(
        "POST",
        f"/api/v1/rooms/{rid}/lotteries",
        {
            "prize": "券",
            "winners": 1,
            "condition": {"kind": "watch", "minutes": 5},
            "duration": 600,
        },
    )
    status, _ = await operator.call("GET", f"/api/v1/lotteries/{pw['id']}/entries")
    assert status == 409  # entrants are published only once drawn
    await v.send({"t": "enter", "id": pw["id"], "ref": "click"})
    assert (await v.ack("click"))["code"] == "forbidden"
    await v.send({"t": "enter", "id": watch["id"], "ref": "watch"})
    assert (await v.ack("watch"))["code"] == "forbidden"
    await v.send({"t": "dm", "text": "666666", "ref": "pw"})
    await v.ack("pw")
    status, drawn = await operator.call("POST", f"/api/v1/lotteries/{pw['id']}/draw")
    assert status == 200, drawn
    assert drawn["winners"] == ["c1"] and drawn["unused"] == 2
    status, _ = await operator.call("POST", f"/api/v1/lotteries/{pw['id']}/draw")
    assert status == 409
    for bad in [
        {"prize": "x", "winners": 0, "condition": {"kind": "enter"}, "duration": 10},
        {"prize": "x", "winners": 1, "condition": {"kind": "follow"}, "duration": 10},
        {"prize": "x", "winners": 1, "condition": {"kind": "enter"}, "duration": 0},
        {"prize": "", "winners": 1, "condition": {"kind": "enter"}, "duration": 10},
        {"prize": "x", "winners": 1, "condition": {"kind": "watch", "minutes": 5}, "duration": 60},
        {
            "prize": "x",
            "winners": 1,
            "condition": {"kind": "password", "password": "x" * 21},
            "duration": 60,
        },
        {
            "prize": {"title": "cash", "kind": "cash"},
            "winners": 1,
            "condition": {"kind": "enter"},
            "duration": 10,
        },
    ]:
        status, _ = await operator.call("POST", f"/api/v1/rooms/{rid}/lotteries", bad)
        assert status == 400, bad
    await v.close()


async def test_nothing_is_sent_into_an_ended_room(operator: Api) -> None:
    room = await operator.live_room()
    rid = room["id"]
    await operator.call("POST", f"/api/v1/rooms/{rid}/end")
    status, body = await operator.call(
        "POST", f"/api/v1/rooms/{rid}/red-packets", {"total_fen": 100, "count": 1}
    )
    assert status == 409 and body["error"]["code"] == "conflict"
    status, _ = await operator.call(
        "POST",
        f"/api/v1/rooms/{rid}/lotteries",
        {"prize": "x", "winners": 1, "condition": {"kind": "enter"}, "duration": 60},
    )
    assert status == 409
    _, ledger = await operator.call("GET", f"/api/v1/rooms/{rid}/ledger")
    assert money(ledger) == []
    status, _ = await operator.call("GET", f"/api/v1/rooms/{rid}/ledger?after=garbage")
    assert status == 400
