"""RoomStore: room records and their atomic state transitions.

Contract:
- ``create`` stores a new room; creating an id that exists is ``Conflict``.
- ``create(room, quota=N)`` with N > 0 and ``room.anchor`` set refuses the room when its
  anchor already holds N rooms that are open (not ended, not expired): ``Conflict`` with
  code ``limit_reached`` and ``limit`` N. The check and the write are one atomic step per
  anchor, so concurrent creates never admit more than N. Every room with an anchor is
  counted, whatever quota it was created with (an operator's create passes 0: no check).
- ``create(room, unstarted_ttl_ms=T)`` with T > 0: unless the room starts (first goes
  ``live``) within T ms of its creation, it is forgotten (``get`` None, gone from ``list``,
  no longer counted). Starting it removes the deadline for good.
- ``open_rooms(anchor)``: how many open rooms count against that anchor now.
- ``transition(room, action, now_ms)`` applies one lifecycle action (``rooms.lifecycle``)
  as an atomic compare-and-set: ``NotFound`` for an unknown room, ``Conflict`` when the
  room's current state forbids it; on success the updated room. Ending a room frees its
  place in its anchor's quota. A store built with the deployment's ledger appends
  ``room_started`` / ``room_ended`` (``LEDGER_EVENTS``, fields ``type`` and ``ts``) to the
  room's ledger in the same atomic step as the transition (webhooks read it), so no crash
  can leave a transition without its event or an event without its transition.
- ``list`` returns rooms newest first, optionally filtered by status.
- ``set_stream_start(room, ms)`` sets the room's ``stream_started_at`` (None clears it)
  and returns the updated room: ``NotFound`` for an unknown room, ``Conflict`` once it
  has ended (its archive's offsets are fixed then). Atomic with the status check.
- ``set_schedule(room, ms)`` sets the room's ``scheduled_at`` (None clears it) and returns
  the updated room: ``NotFound`` for an unknown room, ``Conflict`` unless it is still
  ``scheduled`` (a start announced after the fact means nothing). Atomic with the check.
"""

from __future__ import annotations

from typing import Protocol

from interact.floor.errors import Code, Conflict
from rooms.models import Room, RoomStatus

# Lifecycle actions whose transition writes a ledger event, and its type.
LEDGER_EVENTS = {"start": "room_started", "end": "room_ended"}


def quota_exceeded(quota: int) -> Conflict:
    return Conflict(
        f"this anchor already has {quota} rooms that have not ended; end one first",
        Code.LIMIT_REACHED,
        limit=quota,
    )


class RoomStore(Protocol):
    async def create(self, room: Room, *, quota: int = 0, unstarted_ttl_ms: int = 0) -> None: ...

    async def get(self, room_id: str) -> Room | None: ...

    async def open_rooms(self, anchor: str) -> int: ...

    async def sweep(self, now_ms: int | None = None) -> int:
        """Apply what retention has made due (rooms.retention); idempotent, so any number
        of processes may call it; how many rooms left the deadline indexes."""
        ...

    async def list(
        self, status: RoomStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Room]: ...

    async def transition(self, room_id: str, action: str, now_ms: int) -> Room: ...

    async def set_stream_start(self, room_id: str, ms: int | None) -> Room: ...

    async def set_schedule(self, room_id: str, ms: int | None) -> Room: ...


def stream_start_refused() -> Conflict:
    return Conflict("the room has ended: its archive's offsets are fixed")


def schedule_refused(status: RoomStatus) -> Conflict:
    return Conflict(f"the room is {status.value}: only a scheduled room can be (re)scheduled")
