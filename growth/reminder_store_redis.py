"""Redis ReminderStore (contract: ``growth.reminders``).

Per-room state (credits, subscribers, markers) is on the room's slot; the schedule is
one global sorted set, job -> due ms, where a claim sets the score to the end of its
lease (``lua/reminder_claim.lua``): a job whose holder died becomes due again when the
lease runs out, and only the current holder may move or remove it
(``lua/reminder_lease.lua``). Times come from the caller, so tests drive them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from growth.keys import GrowthKeys
from growth.reminders import Claim, Job, Mark
from interact.floor.scripts import register, text


class RedisReminderStore:
    def __init__(self, client: Any, keys: GrowthKeys) -> None:
        self._client = client
        self._keys = keys
        self._subscribe = register(client, "subscribe", "growth")
        self._claim = register(client, "reminder_claim", "growth")
        self._lease = register(client, "reminder_lease", "growth")
        self._take = register(client, "reminder_take", "growth")
        self._settle = register(client, "reminder_settle", "growth")

    async def add_credits(
        self, room_id: str, uid: str, templates: Sequence[str], max_per_user: int
    ) -> tuple[int, dict[str, int]]:
        k = self._keys
        reply = await self._subscribe(
            keys=[k.credits(room_id, uid), k.subscribers(room_id)],
            args=[uid, int(max_per_user), *templates],
        )
        flat = reply[1:]
        return int(reply[0]), {text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def credits(self, room_id: str, uid: str) -> dict[str, int]:
        raw = await self._client.hgetall(self._keys.credits(room_id, uid))
        return {text(t): int(n) for t, n in raw.items() if int(n) > 0}

    async def subscribers(self, room_id: str) -> list[str]:
        return sorted(text(u) for u in await self._client.smembers(self._keys.subscribers(room_id)))

    async def ensure_job(self, job: Job, due_ms: int) -> None:
        await self._client.zadd(self._keys.due(), {job.encode(): due_ms}, nx=True)

    async def drop_job(self, job: Job) -> None:
        await self._client.zrem(self._keys.due(), job.encode())

    async def due_jobs(self) -> dict[Job, int]:
        raw = await self._client.zrange(self._keys.due(), 0, -1, withscores=True)
        return {Job.decode(text(m)): int(score) for m, score in raw}

    async def claim(self, now_ms: int, lease_ms: int) -> Claim | None:
        reply = await self._claim(keys=[self._keys.due()], args=[int(now_ms), int(lease_ms)])
        if not reply:
            return None
        return Claim(Job.decode(text(reply[0])), int(reply[1]))

    async def _on_lease(self, claim: Claim, action: str) -> bool:
        done = await self._lease(
            keys=[self._keys.due()], args=[claim.job.encode(), claim.lease, action]
        )
        return bool(int(done))

    async def extend(self, claim: Claim, lease: int) -> Claim | None:
        return Claim(claim.job, lease) if await self._on_lease(claim, str(int(lease))) else None

    async def finish(self, claim: Claim) -> bool:
        return await self._on_lease(claim, "finish")

    async def retry_at(self, claim: Claim, due_ms: int) -> bool:
        return await self._on_lease(claim, str(int(due_ms)))

    def _job_keys(self, job: Job, uid: str) -> list[str]:
        k = self._keys
        return [k.sent(job.room_id, job.stage.value, job.start_ms), k.credits(job.room_id, uid)]

    async def take(self, job: Job, uid: str, templates: Sequence[str]) -> str | None:
        reply = await self._take(keys=self._job_keys(job, uid), args=[uid, *templates])
        return text(reply) if reply else None

    async def settle(self, job: Job, uid: str, template: str, mark: Mark) -> None:
        await self._settle(keys=self._job_keys(job, uid), args=[uid, template, mark.value])

    async def mark_of(self, job: Job, uid: str) -> Mark | None:
        k = self._keys
        raw = await self._client.hget(k.sent(job.room_id, job.stage.value, job.start_ms), uid)
        return Mark(text(raw)) if raw is not None else None
