"""ReportStore: the open viewer reports of each room, and when each is due an alert.

Contract:
- ``file(room_id, target, reporter, reason, item, now_ms)`` adds one reporter to the open
  report on ``target`` (a ``moderation.reports.target_key``), in one atomic step: when the
  target has no open report, ``item`` is queued in the room's review queue (the same queue
  as held comments, ``kind: "report"``) and becomes it. Answers ``Filed``: the report's id
  (its review-queue item id), whether this reporter is new on it (False: a duplicate,
  nothing changed), whether this call opened it, and how many distinct reporters it has.
  A report whose queue item is gone (resolved, or trimmed off a full queue) is not open:
  the next report on the target opens a new one.
- ``reporters(room_id, report_id)``: its reporters and their reasons (empty when not open).
- ``resolve(room_id, report_id)`` closes an open report and takes its item out of the
  review queue, exactly once across every process: of concurrent calls one gets
  ``(item, reporters)``, the others (and any later call) None. Afterwards the target has
  no open report, and a reporter may report it again.
- ``hold_once(room_id, report_id)``: True for the first caller only (a comment is held
  once however many reporters push it past the threshold).
- ``schedule_alert(room_id, report_id, due_ms)``; ``cancel_alert``; ``due_alerts(now_ms,
  limit)`` answers at most ``limit`` (room, report) pairs whose time has come, each to one
  caller only, ever (a claim: the alert is sent once across processes).

Engines: ``report_store_memory`` (uses the memory review queue it is given) and
``report_store_redis`` (``lua/report_file.lua``, ``lua/report_resolve.lua``: per-room keys
with the room's hash tag, so one slot; the alert schedule is one global sorted set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Filed:
    report_id: str
    new: bool
    opened: bool
    reporters: int


class ReportStore(Protocol):
    async def file(
        self,
        room_id: str,
        target: str,
        reporter: str,
        reason: str,
        item: Mapping[str, Any],
        now_ms: int,
    ) -> Filed: ...

    async def reporters(self, room_id: str, report_id: str) -> dict[str, str]: ...

    async def resolve(
        self, room_id: str, report_id: str
    ) -> tuple[dict[str, Any], dict[str, str]] | None: ...

    async def hold_once(self, room_id: str, report_id: str) -> bool: ...

    async def schedule_alert(self, room_id: str, report_id: str, due_ms: int) -> None: ...

    async def cancel_alert(self, room_id: str, report_id: str) -> None: ...

    async def due_alerts(self, now_ms: int, limit: int) -> list[tuple[str, str]]: ...
