"""Redis AlertStore (see ``rooms.alert_store`` for the contract).

Every key of a room carries the room's hash tag, so the lease check and the write it
fences are one script on one slot (Redis Cluster too). The lease's value is
``holder|token``: a save compares the whole value, so a holder whose lease ran out and
was taken (even back by itself, with a new token) cannot write with the old one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from interact.floor.scripts import register, text
from rooms.alert_store import MAX_ALERTS
from rooms.alerts import Alert, AlertState
from rooms.audience import RETENTION_MS


@dataclass(frozen=True, slots=True)
class AlertKeys:
    prefix: str = "interact:"

    def _room(self, room_id: str, what: str) -> str:
        return f"{self.prefix}al:{{{room_id}}}:{what}"

    def lease(self, room_id: str) -> str:
        return self._room(room_id, "lease")

    def fence(self, room_id: str) -> str:
        return self._room(room_id, "fence")

    def state(self, room_id: str) -> str:
        return self._room(room_id, "state")

    def order(self, room_id: str) -> str:
        """List: alert ids, newest first."""
        return self._room(room_id, "ids")

    def alerts(self, room_id: str) -> str:
        """Hash: alert id -> its JSON."""
        return self._room(room_id, "alerts")

    def rules(self, room_id: str) -> str:
        return self._room(room_id, "rules")

    def quiet(self, room_id: str, rule: str, subject: str) -> str:
        """String: set while a notice of (rule, subject) is not to be repeated."""
        return self._room(room_id, f"quiet:{rule}:{subject}")


class RedisAlertStore:
    def __init__(
        self, client: Redis, prefix: str = "interact:", *, retention_ms: int = RETENTION_MS
    ) -> None:
        self._client = client
        self._keys = AlertKeys(prefix)
        self._retention_ms = retention_ms
        self._lease = register(client, "alert_lease", "rooms")
        self._save = register(client, "alert_save", "rooms")
        self._notice = register(client, "alert_notice", "rooms")

    async def acquire(self, room_id: str, holder: str, ttl_ms: int) -> int:
        k = self._keys
        token = await self._lease(
            keys=[k.lease(room_id), k.fence(room_id)],
            args=[holder, int(ttl_ms), "acquire", 0, self._retention_ms],
        )
        return int(token)

    async def release(self, room_id: str, holder: str, token: int) -> bool:
        k = self._keys
        done = await self._lease(
            keys=[k.lease(room_id), k.fence(room_id)],
            args=[holder, 0, "release", int(token), self._retention_ms],
        )
        return bool(int(done))

    async def holder(self, room_id: str) -> str | None:
        value = await self._client.get(self._keys.lease(room_id))
        return None if value is None else text(value).rpartition("|")[0]

    async def save(
        self, room_id: str, holder: str, token: int, state: AlertState, alerts: Sequence[Alert]
    ) -> bool:
        k = self._keys
        args: list[Any] = [
            f"{holder}|{int(token)}",
            self._retention_ms,
            orjson.dumps(state.to_json()),
            MAX_ALERTS,
        ]
        for alert in alerts:
            args += [alert.id, orjson.dumps(alert.to_dict())]
        done = await self._save(
            keys=[k.lease(room_id), k.state(room_id), k.order(room_id), k.alerts(room_id)],
            args=args,
        )
        return bool(int(done))

    async def notice(self, room_id: str, alert: Alert, quiet_ms: int) -> bool:
        k = self._keys
        done = await self._notice(
            keys=[
                k.quiet(room_id, alert.rule, alert.subject),
                k.order(room_id),
                k.alerts(room_id),
            ],
            args=[
                max(1, int(quiet_ms)),
                self._retention_ms,
                MAX_ALERTS,
                alert.id,
                orjson.dumps(alert.to_dict()),
            ],
        )
        return bool(int(done))

    async def load(self, room_id: str) -> AlertState | None:
        raw = await self._client.get(self._keys.state(room_id))
        return None if raw is None else AlertState.from_json(orjson.loads(raw))

    async def alerts(
        self, room_id: str, limit: int = 100, *, active_only: bool = False
    ) -> list[Alert]:
        k = self._keys
        # Active ones may sit anywhere in the list: read it all (it is capped) to filter.
        ids = await self._client.lrange(k.order(room_id), 0, -1 if active_only else limit - 1)
        if not ids:
            return []
        raw = await self._client.hmget(k.alerts(room_id), ids)
        found = [Alert.from_dict(orjson.loads(r)) for r in raw if r]
        if active_only:
            found = [a for a in found if a.state == "raised"]
        return found[:limit]

    async def rules(self, room_id: str) -> dict[str, Any]:
        raw = await self._client.get(self._keys.rules(room_id))
        return {} if raw is None else dict(orjson.loads(raw))

    async def set_rules(self, room_id: str, overrides: Mapping[str, Any]) -> None:
        key = self._keys.rules(room_id)
        if overrides:
            await self._client.set(key, orjson.dumps(dict(overrides)), px=self._retention_ms)
        else:
            await self._client.delete(key)
