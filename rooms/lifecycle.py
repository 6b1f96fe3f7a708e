"""The room state machine: scheduled → live ⇄ paused → ended."""

from __future__ import annotations

from rooms.models import RoomStatus

S, L, P, E = RoomStatus.SCHEDULED, RoomStatus.LIVE, RoomStatus.PAUSED, RoomStatus.ENDED

# action -> (states it may start from, state it leads to, timestamp field it stamps)
TRANSITIONS: dict[str, tuple[frozenset[RoomStatus], RoomStatus, str | None]] = {
    "start": (frozenset({S}), L, "started_at"),
    "pause": (frozenset({L}), P, None),
    "resume": (frozenset({P}), L, None),
    "end": (frozenset({S, L, P}), E, "ended_at"),
}


def next_status(current: RoomStatus, action: str) -> RoomStatus | None:
    """The state ``action`` leads to from ``current``, or None when it is forbidden."""
    allowed, target, _ = TRANSITIONS[action]
    return target if current in allowed else None
