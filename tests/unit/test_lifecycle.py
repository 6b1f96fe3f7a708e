"""rooms.lifecycle and rooms.models: the room state machine, records and ids."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.lifecycle import TRANSITIONS, next_status
from rooms.models import Room, RoomStatus, valid_room_id

S, L, P, E = RoomStatus.SCHEDULED, RoomStatus.LIVE, RoomStatus.PAUSED, RoomStatus.ENDED
ACTIONS = ("start", "pause", "resume", "end")

# The documented machine, scheduled → live ⇄ paused → ended, written out independently.
ALLOWED = {
    (S, "start"): L,
    (L, "pause"): P,
    (P, "resume"): L,
    (S, "end"): E,
    (L, "end"): E,
    (P, "end"): E,
}


def test_the_actions_are_exactly_the_documented_ones() -> None:
    assert set(TRANSITIONS) == set(ACTIONS)


@pytest.mark.parametrize(("status", "action"), list(itertools.product(RoomStatus, ACTIONS)))
def test_transition_table(status: RoomStatus, action: str) -> None:
    assert next_status(status, action) == ALLOWED.get((status, action))


def test_ended_is_final() -> None:
    assert all(next_status(E, action) is None for action in ACTIONS)


def test_timestamps_stamped_by_actions() -> None:
    assert {action: TRANSITIONS[action][2] for action in ACTIONS} == {
        "start": "started_at",
        "pause": None,
        "resume": None,
        "end": "ended_at",
    }


def test_unknown_action_is_not_silently_allowed() -> None:
    with pytest.raises(KeyError):
        next_status(S, "restart")


def test_room_defaults() -> None:
    room = Room(id="r1", title="T")
    assert room.status is S
    assert (room.anchor, room.started_at, room.ended_at) == (None, None, None)
    assert (room.created_at, room.updated_at) == (0, 0)


def test_to_dict_is_plain() -> None:
    room = Room(id="r1", title="Hello", status=L, anchor="a1", created_at=5, started_at=6)
    out = room.to_dict()
    assert out == {
        "id": "r1",
        "title": "Hello",
        "status": "live",
        "anchor": "a1",
        "created_at": 5,
        "started_at": 6,
        "ended_at": None,
        "updated_at": 0,
        "stream_started_at": None,
        "scheduled_at": None,
    }
    assert type(out["status"]) is str


OPT_TS = st.none() | st.integers(min_value=0, max_value=2**53)
ROOMS = st.builds(
    Room,
    id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    title=st.text(max_size=50),
    status=st.sampled_from(RoomStatus),
    anchor=st.none() | st.text(min_size=1, max_size=20),
    created_at=st.integers(min_value=0, max_value=2**53),
    started_at=OPT_TS,
    ended_at=OPT_TS,
    updated_at=st.integers(min_value=0, max_value=2**53),
    stream_started_at=OPT_TS,
    scheduled_at=OPT_TS,
)


@given(room=ROOMS)
def test_to_dict_from_dict_roundtrip(room: Room) -> None:
    assert Room.from_dict(room.to_dict()) == room


def test_from_dict_accepts_a_redis_hash_of_strings() -> None:
    data = {
        "id": "r1",
        "title": "T",
        "status": "paused",
        "created_at": "10",
        "started_at": "11",
        "ended_at": "",
        "updated_at": "12",
    }
    assert Room.from_dict(data) == Room(
        id="r1", title="T", status=P, created_at=10, started_at=11, ended_at=None, updated_at=12
    )


def test_from_dict_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError):
        Room.from_dict({"id": "r1", "title": "T", "status": "archived"})


@pytest.mark.parametrize(
    "room_id", ["a", "R", "0", "_", "-", "room-1_A", "x" * 64, "ABCxyz0123456789-_"]
)
def test_valid_room_ids(room_id: str) -> None:
    assert valid_room_id(room_id) is True


@pytest.mark.parametrize(
    "room_id",
    [
        "",
        "x" * 65,
        "{r1}",
        "r{1",
        "r}",
        "room 1",
        " r1",
        "r1 ",
        "\tr1",
        "r:1",
        "r/1",
        "r.1",
        "房间",
        "ｒ1",  # full-width letter
        "r١",  # Arabic-Indic digit
        "r%20",
    ],
)
def test_invalid_room_ids(room_id: str) -> None:
    assert valid_room_id(room_id) is False


@given(room_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_every_id_of_the_alphabet_is_valid(room_id: str) -> None:
    assert valid_room_id(room_id)


def test_to_dict_has_every_field_of_the_room() -> None:
    room = Room(id="r1", title="t", status=RoomStatus.LIVE, anchor="a", created_at=1,
                started_at=2, ended_at=3, updated_at=4)  # fmt: skip
    out = room.to_dict()
    assert set(out) == {f.name for f in dataclasses.fields(Room)}
    assert out["status"] == "live" and Room.from_dict(out) == room
