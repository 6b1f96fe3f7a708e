"""The API additions the console reads: rooms filtered by anchor on the server, and the
slow mode in force."""

from __future__ import annotations

from tests.console.helpers import Rest
from tests.e2e.harness import ServerProcess


def test_rooms_filtered_by_anchor(server: ServerProcess, operator: Rest) -> None:
    a = Rest(server.base, server.token("flt-a", "anchor"))
    b = Rest(server.base, server.token("flt-b", "anchor"))
    mine = [a.ok("POST", "/api/v1/rooms", {"title": f"A{i}"})["id"] for i in range(3)]
    theirs = b.ok("POST", "/api/v1/rooms", {"title": "B"})["id"]
    # One made for the anchor by an operator is theirs too.
    mine.append(operator.ok("POST", "/api/v1/rooms", {"title": "A3", "anchor": "flt-a"})["id"])
    operator.ok("POST", "/api/v1/rooms", {"title": "nobody's"})
    a.ok("POST", f"/api/v1/rooms/{mine[0]}/start")

    listed = a.ok("GET", "/api/v1/rooms?anchor=me&limit=200")["rooms"]
    assert [r["id"] for r in listed] == list(reversed(mine))  # newest first
    assert {r["anchor"] for r in listed} == {"flt-a"}
    assert [r["id"] for r in operator.ok("GET", "/api/v1/rooms?anchor=flt-b")["rooms"]] == [theirs]
    live = a.ok("GET", "/api/v1/rooms?anchor=me&status=live")["rooms"]
    assert [r["id"] for r in live] == [mine[0]]
    # Paging applies after the filter.
    page = a.ok("GET", "/api/v1/rooms?anchor=me&limit=2&offset=1")["rooms"]
    assert [r["id"] for r in page] == [mine[2], mine[1]]
    # Without the filter every room is listed, as before.
    everything = {r["id"] for r in a.ok("GET", "/api/v1/rooms?limit=200")["rooms"]}
    assert theirs in everything and set(mine) <= everything
    # A viewer has no rooms of their own.
    viewer = Rest(server.base, server.token("flt-v"))
    assert viewer.ok("GET", "/api/v1/rooms?anchor=me")["rooms"] == []
    status, body = a.call("GET", "/api/v1/rooms?anchor=a%20b")
    assert status == 400 and body["error"]["message"].startswith("anchor must be 'me' or a user id")


def test_the_slow_mode_in_force_can_be_read(server: ServerProcess, operator: Rest) -> None:
    anchor = Rest(server.base, server.token("slow-a", "anchor"))
    room = anchor.ok("POST", "/api/v1/rooms", {"title": "慢速"})["id"]
    path = f"/api/v1/rooms/{room}/slow-mode"
    assert anchor.ok("GET", path) == {"room": room, "seconds": 0, "until": None, "by": None}
    operator.ok("POST", path, {"seconds": 30})
    assert anchor.ok("GET", path) == {"room": room, "seconds": 30, "until": None, "by": "ops"}
    anchor.ok("POST", path, {"seconds": 0})
    assert operator.ok("GET", path)["seconds"] == 0
    # Staff of the room only, with the usual refusals.
    other = Rest(server.base, server.token("slow-b", "anchor"))
    assert other.call("GET", path)[0] == 403
    assert Rest(server.base, server.token("slow-v")).call("GET", path)[0] == 403
    assert operator.call("GET", "/api/v1/rooms/r000000000000/slow-mode")[0] == 404
    assert Rest(server.base, "not-a-token").call("GET", path)[0] == 401
