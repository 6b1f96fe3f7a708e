"""In-process ReminderStore (contract: ``growth.reminders``); no await between a read and
its write, so each operation is atomic on the event loop."""

from __future__ import annotations

from collections.abc import Sequence

from growth.reminders import Claim, Job, Mark


class MemoryReminderStore:
    def __init__(self) -> None:
        self._credits: dict[tuple[str, str], dict[str, int]] = {}  # (room, uid) -> tpl -> n
        self._subs: dict[str, list[str]] = {}  # room -> uids, in order of first subscribe
        self._due: dict[Job, int] = {}
        self._marks: dict[tuple[Job, str], Mark] = {}

    async def add_credits(
        self, room_id: str, uid: str, templates: Sequence[str], max_per_user: int
    ) -> tuple[int, dict[str, int]]:
        held = self._credits.setdefault((room_id, uid), {})
        subs = self._subs.setdefault(room_id, [])
        if uid not in subs:
            subs.append(uid)
        added = 0
        for template in templates:
            if sum(held.values()) >= max_per_user:
                break
            held[template] = held.get(template, 0) + 1
            added += 1
        return added, {t: n for t, n in held.items() if n > 0}

    async def credits(self, room_id: str, uid: str) -> dict[str, int]:
        held = self._credits.get((room_id, uid), {})
        return {t: n for t, n in held.items() if n > 0}

    async def subscribers(self, room_id: str) -> list[str]:
        return list(self._subs.get(room_id, ()))

    async def ensure_job(self, job: Job, due_ms: int) -> None:
        self._due.setdefault(job, due_ms)

    async def drop_job(self, job: Job) -> None:
        self._due.pop(job, None)

    async def due_jobs(self) -> dict[Job, int]:
        return dict(self._due)

    async def claim(self, now_ms: int, lease_ms: int) -> Claim | None:
        due = [(at, job.encode(), job) for job, at in self._due.items() if at <= now_ms]
        if not due:
            return None
        _, _, job = min(due)
        lease = now_ms + lease_ms
        self._due[job] = lease
        return Claim(job, lease)

    def _held(self, claim: Claim) -> bool:
        return self._due.get(claim.job) == claim.lease

    async def extend(self, claim: Claim, lease: int) -> Claim | None:
        if not self._held(claim):
            return None
        self._due[claim.job] = lease
        return Claim(claim.job, lease)

    async def finish(self, claim: Claim) -> bool:
        if not self._held(claim):
            return False
        del self._due[claim.job]
        return True

    async def retry_at(self, claim: Claim, due_ms: int) -> bool:
        if not self._held(claim):
            return False
        self._due[claim.job] = due_ms
        return True

    async def take(self, job: Job, uid: str, templates: Sequence[str]) -> str | None:
        if (job, uid) in self._marks:
            return None
        held = self._credits.get((job.room_id, uid), {})
        for template in templates:
            if held.get(template, 0) > 0:
                held[template] -= 1
                self._marks[(job, uid)] = Mark.PENDING
                return template
        return None

    async def settle(self, job: Job, uid: str, template: str, mark: Mark) -> None:
        held = self._credits.setdefault((job.room_id, uid), {})
        if mark is Mark.REFUSED:
            held[template] = 0
        elif mark in (Mark.FAILED, Mark.RETRY):
            held[template] = held.get(template, 0) + 1
        if mark is Mark.RETRY:
            self._marks.pop((job, uid), None)
        else:
            self._marks[(job, uid)] = mark

    async def mark_of(self, job: Job, uid: str) -> Mark | None:
        return self._marks.get((job, uid))
