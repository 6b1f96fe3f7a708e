"""In-process AlertStore (see ``rooms.alert_store`` for the contract); leases run on
``clock`` (monotonic ms by default), so tests can drive them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rooms.alert_store import MAX_ALERTS
from rooms.alerts import Alert, AlertState


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


@dataclass(slots=True)
class _Room:
    lease: tuple[str, int, int] | None = None  # holder, token, expires (clock ms)
    fence: int = 0
    state: AlertState | None = None
    order: list[str] = field(default_factory=list)  # alert ids, newest first
    alerts: dict[str, Alert] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    quiet: dict[str, int] = field(default_factory=dict)  # rule:subject -> until (clock ms)


class MemoryAlertStore:
    def __init__(self, clock: Callable[[], int] = _monotonic_ms) -> None:
        self._clock = clock
        self._rooms: dict[str, _Room] = {}

    def _room(self, room_id: str) -> _Room:
        return self._rooms.setdefault(room_id, _Room())

    def _held(self, room: _Room) -> tuple[str, int, int] | None:
        if room.lease is not None and room.lease[2] <= self._clock():
            room.lease = None
        return room.lease

    async def acquire(self, room_id: str, holder: str, ttl_ms: int) -> int:
        room = self._room(room_id)
        lease = self._held(room)
        if lease is None:
            room.fence += 1
            room.lease = (holder, room.fence, self._clock() + ttl_ms)
            return room.fence
        if lease[0] != holder:
            return 0
        room.lease = (holder, lease[1], self._clock() + ttl_ms)
        return lease[1]

    async def release(self, room_id: str, holder: str, token: int) -> bool:
        room = self._room(room_id)
        lease = self._held(room)
        if lease is None or lease[:2] != (holder, token):
            return False
        room.lease = None
        return True

    async def holder(self, room_id: str) -> str | None:
        lease = self._held(self._room(room_id))
        return None if lease is None else lease[0]

    async def save(
        self, room_id: str, holder: str, token: int, state: AlertState, alerts: Sequence[Alert]
    ) -> bool:
        room = self._room(room_id)
        lease = self._held(room)
        if lease is None or lease[:2] != (holder, token):
            return False
        room.state = AlertState.from_json(state.to_json())  # a copy, as Redis keeps one
        for alert in alerts:
            if alert.id not in room.alerts:
                room.order.insert(0, alert.id)
            room.alerts[alert.id] = alert
        for gone in room.order[MAX_ALERTS:]:
            del room.alerts[gone]
        del room.order[MAX_ALERTS:]
        return True

    async def notice(self, room_id: str, alert: Alert, quiet_ms: int) -> bool:
        room = self._room(room_id)
        key = f"{alert.rule}:{alert.subject}"
        now = self._clock()
        if room.quiet.get(key, now) > now:
            return False
        room.quiet[key] = now + quiet_ms
        if alert.id not in room.alerts:
            room.order.insert(0, alert.id)
        room.alerts[alert.id] = alert
        for gone in room.order[MAX_ALERTS:]:
            del room.alerts[gone]
        del room.order[MAX_ALERTS:]
        return True

    async def load(self, room_id: str) -> AlertState | None:
        state = self._room(room_id).state
        return None if state is None else AlertState.from_json(state.to_json())

    async def alerts(
        self, room_id: str, limit: int = 100, *, active_only: bool = False
    ) -> list[Alert]:
        room = self._room(room_id)
        found = (room.alerts[i] for i in room.order)
        if active_only:
            found = (a for a in found if a.state == "raised")
        return [a for _, a in zip(range(limit), found, strict=False)]

    async def rules(self, room_id: str) -> dict[str, Any]:
        return dict(self._room(room_id).rules)

    async def set_rules(self, room_id: str, overrides: Mapping[str, Any]) -> None:
        self._room(room_id).rules = dict(overrides)
