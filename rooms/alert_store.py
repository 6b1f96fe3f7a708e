"""AlertStore: a room's alert lease, rule state, alerts and rule overrides.

Contract (both engines; on Redis any number of processes):

- ``acquire(room, holder, ttl_ms)`` takes the room's evaluation lease when nobody holds
  it (or its holder's ran out), or renews it when ``holder`` holds it: it answers the
  lease's fencing token (a positive integer, new at every take-over, kept while renewed),
  or 0 when another holder's lease is running. On Redis the lease is one key set ``PX``
  by a script (``lua/alert_lease.lua``): only the holder renews it, and a token comes from
  a per-room counter, so two holders never share one.
- ``release(room, holder, token)`` gives the lease up, only with the lease's own token.
- ``holder(room)``: who holds the lease now (None: nobody).
- ``save(room, holder, token, state, alerts)`` writes the rule state and the alerts
  raised or cleared in one step, *fenced*: only while ``holder`` still holds the lease
  with ``token`` (True); a process whose lease ran out (paused, partitioned) writes
  nothing (False). A raised alert joins the room's list, newest first; a cleared one
  replaces its record, keeping its place. At most ``MAX_ALERTS`` are kept per room.
- ``load(room)``: the state last saved (None: never).
- ``alerts(room, limit, active_only)``: newest first; ``active_only``: still raised.
- ``rules(room)`` / ``set_rules(room, overrides)``: the room's overrides (validated by
  the caller, ``rooms.alerts.check_overrides``); an empty mapping removes them.
- ``notice(room, alert, quiet_ms)`` stores an event alert raised outside the room's
  rules (growth's ``reminder_config``), without the lease: True when stored, False when
  one of the same rule and subject was stored within ``quiet_ms`` (over every process:
  a storm of the same error is told once). It joins the list like a raised alert.
- Every key of a room expires ``retention_ms`` after its last write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rooms.alerts import Alert, AlertState

MAX_ALERTS = 500


class AlertStore(Protocol):
    async def acquire(self, room_id: str, holder: str, ttl_ms: int) -> int: ...

    async def release(self, room_id: str, holder: str, token: int) -> bool: ...

    async def holder(self, room_id: str) -> str | None: ...

    async def save(
        self, room_id: str, holder: str, token: int, state: AlertState, alerts: Sequence[Alert]
    ) -> bool: ...

    async def load(self, room_id: str) -> AlertState | None: ...

    async def alerts(
        self, room_id: str, limit: int = 100, *, active_only: bool = False
    ) -> list[Alert]: ...

    async def notice(self, room_id: str, alert: Alert, quiet_ms: int) -> bool: ...

    async def rules(self, room_id: str) -> dict[str, Any]: ...

    async def set_rules(self, room_id: str, overrides: Mapping[str, Any]) -> None: ...
