"""DanmakuLog: per-room sequence numbers, bounded history and the atomic append.

Contract:
- ``append`` assigns the room's next ``seq`` (1, 2, 3, … per epoch), stores the message in
  the history and publishes it through the broker, all in one atomic step, so history
  order, seq order and delivery order agree across any number of processes. With
  ``require_live`` it refuses (``Conflict``/``room_not_live``) unless the room is live,
  checked in the same step; an unknown room is ``NotFound``.
- The stored and published form is the JSON of ``{"t": "dm", "seq": N, **body}``.
- History keeps the last ``size`` sequence numbers: the window ``(seq - size, seq]``.
- ``epoch`` names one continuous numbering; it changes when the numbering restarts
  (the log was lost), so a client's ``since`` is only meaningful within its epoch.
- ``history(since, epoch)``: with a matching epoch and ``since`` inside the window, the
  messages after ``since`` and ``recovered=True``; otherwise the most recent ``limit``
  messages and ``recovered=False``.
- ``retract(seq)`` removes one message from the history; True when it was there.
- With ``journal`` on (the deployment archives rooms), every appended message also goes
  to the room's journal in the same atomic step, and every successful retraction adds
  ``{"t": "retract", "seq": N, "ts": ms}`` to it: an append-only list the history's cap
  never trims, read by the archive writer (docs/archive.md). ``journal(room, start,
  count)`` reads entries ``start .. start+count-1`` (0-based, in append order); with
  ``journal`` off it reads as empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Appended:
    seq: int
    epoch: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class History:
    seq: int
    epoch: str
    recovered: bool
    items: list[bytes]


class DanmakuLog(Protocol):
    async def append(
        self, room_id: str, body: dict[str, Any], *, require_live: bool = True
    ) -> Appended: ...

    async def history(
        self, room_id: str, since: int | None, epoch: str | None, limit: int
    ) -> History: ...

    async def retract(self, room_id: str, seq: int) -> bool: ...

    async def journal(self, room_id: str, start: int, count: int) -> list[bytes]: ...


def in_window(since: int | None, epoch: str | None, head: int, cur_epoch: str, size: int) -> bool:
    """Whether a client at ``since``/``epoch`` can be caught up from the history alone."""
    return since is not None and epoch == cur_epoch and 0 <= since <= head and since >= head - size
