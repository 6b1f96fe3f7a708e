"""In-process ReportStore (see ``moderation.report_store`` for the contract).

It files into the memory review queue it is given; nothing here awaits anything that
suspends, so each call is one atomic step on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moderation.report_store import Filed
from moderation.review_queue import encode_item
from moderation.review_queue_memory import MemoryReviewQueue


@dataclass(slots=True)
class _Open:
    target: str
    reporters: dict[str, str] = field(default_factory=dict)
    held: bool = False


class MemoryReportStore:
    def __init__(self, review: MemoryReviewQueue) -> None:
        self._review = review
        self._by_target: dict[tuple[str, str], str] = {}  # (room, target) -> report id
        self._open: dict[tuple[str, str], _Open] = {}  # (room, report id) -> state
        self._alerts: dict[tuple[str, str], int] = {}

    async def file(
        self,
        room_id: str,
        target: str,
        reporter: str,
        reason: str,
        item: Mapping[str, Any],
        now_ms: int,
    ) -> Filed:
        encode_item(item)  # refused before anything changes, as on Redis
        report_id = self._by_target.get((room_id, target))
        if report_id is not None and not self._review.has(room_id, report_id):
            self._forget(room_id, report_id)
            report_id = None
        opened = report_id is None
        if report_id is None:
            report_id = await self._review.hold(room_id, item)
            self._by_target[(room_id, target)] = report_id
            self._open[(room_id, report_id)] = _Open(target)
        state = self._open[(room_id, report_id)]
        new = reporter not in state.reporters
        if new:
            state.reporters[reporter] = reason
        return Filed(report_id, new, opened, len(state.reporters))

    def _forget(self, room_id: str, report_id: str) -> _Open | None:
        state = self._open.pop((room_id, report_id), None)
        if state is not None and self._by_target.get((room_id, state.target)) == report_id:
            del self._by_target[(room_id, state.target)]
        return state

    async def reporters(self, room_id: str, report_id: str) -> dict[str, str]:
        state = self._open.get((room_id, report_id))
        if state is None or not self._review.has(room_id, report_id):
            return {}
        return dict(state.reporters)

    async def resolve(
        self, room_id: str, report_id: str
    ) -> tuple[dict[str, Any], dict[str, str]] | None:
        if (room_id, report_id) not in self._open:
            return None
        item = await self._review.take(room_id, report_id)
        state = self._forget(room_id, report_id)
        if item is None or state is None:
            return None
        return item, dict(state.reporters)

    async def hold_once(self, room_id: str, report_id: str) -> bool:
        state = self._open.get((room_id, report_id))
        if state is None or state.held:
            return False
        state.held = True
        return True

    async def schedule_alert(self, room_id: str, report_id: str, due_ms: int) -> None:
        self._alerts.setdefault((room_id, report_id), due_ms)

    async def cancel_alert(self, room_id: str, report_id: str) -> None:
        self._alerts.pop((room_id, report_id), None)

    async def due_alerts(self, now_ms: int, limit: int) -> list[tuple[str, str]]:
        ready = sorted((due, key) for key, due in self._alerts.items() if due <= now_ms)
        out = [key for _, key in ready[: max(limit, 0)]]
        for key in out:
            del self._alerts[key]
        return out
