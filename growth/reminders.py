"""Pre-live reminders: stages, jobs, the message, and the ReminderStore contract.

A room with a scheduled start (``scheduled_at``, ms) reminds its subscribers twice: at
``lead`` before the start (the LEAD stage; skipped when the start is nearer than that
when the job is made) and at the start (START). One job per (room, stage, start time)
sits in the store's schedule; the worker of one process claims it, checks it against the
room's *current* start (a job for an old start is dropped: a reschedule never sends for
the old time), then sends each subscriber at most one message for it.

Delivery per credit is **at most once**. Before a message goes out, the store takes one
credit and writes the subscriber's marker for that job in the same step (``take``). A
crash after the take and before WeChat's answer leaves the marker: that subscriber gets
no message for the job, never two. At-least-once would need the marker after the send,
and a crash in between would then send twice — spending a second grant the user gave for
another reminder, which WeChat counts and the user sees. A lost reminder costs less.
When WeChat's answer proves nothing went out (an errcode other than 0), ``settle`` gives
the credit back; 43101 (refused or unsubscribed) clears the user's credits for the
template, since WeChat holds none.

ReminderStore contract (both engines, tests/contract/test_reminder_store.py):

- ``add_credits(room, uid, templates, max_per_user)``: one credit per template id in
  ``templates``, while the user's credits in the room stay at most ``max_per_user``;
  answers how many were added and the credits now held (template -> n). Atomic.
- ``ensure_job(job, due_ms)``: adds the job unless it is there (a claimed job keeps its
  lease). ``drop_job(job)`` removes it.
- ``claim(now_ms, lease_ms)``: one job due at ``now_ms`` (or whose lease ran out) with
  a lease until ``now_ms + lease_ms``, and that lease; None when none is due. Two
  claimers never hold the same job at once. ``extend``, ``finish`` and ``retry_at`` act
  only while the caller's lease is the current one (False otherwise).
- ``take(job, uid, templates)``: if the user has no marker for the job and a credit for
  one of ``templates`` (tried in order), takes that credit and marks the user pending,
  one step; answers the template, else None (no marker written without a credit).
- ``settle(job, uid, template, state)``: ``SENT``/``UNKNOWN`` keep the credit spent;
  ``REFUSED`` also sets the template's credits to 0; ``FAILED`` gives the credit back and
  keeps the marker (not retried for this job); ``RETRY`` gives it back and removes the
  marker (a later pass tries again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

# WeChat's subscribe-message field limits (characters).
THING_MAX = 20
# Beijing time, for the time shown in the message.
CHINA = dt.timezone(dt.timedelta(hours=8))


class Stage(StrEnum):
    LEAD = "lead"
    START = "start"


class Mark(StrEnum):
    PENDING = "p"
    SENT = "s"
    REFUSED = "r"
    FAILED = "f"
    UNKNOWN = "u"
    RETRY = "-"  # settle only: the marker is removed


@dataclass(frozen=True, slots=True)
class Job:
    room_id: str
    stage: Stage
    start_ms: int

    def encode(self) -> str:
        return f"{self.room_id}\t{self.stage.value}\t{self.start_ms}"

    @classmethod
    def decode(cls, raw: str) -> Job:
        room_id, stage, start = raw.split("\t")
        return cls(room_id, Stage(stage), int(start))


def jobs_for(room_id: str, start_ms: int, lead_ms: int, now_ms: int) -> list[tuple[Job, int]]:
    """The jobs (and due times) of one start time: LEAD only when it is still ahead."""
    out = []
    if lead_ms > 0 and start_ms - lead_ms > now_ms:
        out.append((Job(room_id, Stage.LEAD, start_ms), start_ms - lead_ms))
    out.append((Job(room_id, Stage.START, start_ms), start_ms))
    return out


def still_due(job: Job, scheduled_at: int | None, status: str, now_ms: int, grace_ms: int) -> bool:
    """Whether a claimed job may still send: the room's start is the job's, the room has
    not ended, and the moment has not passed (LEAD: before the start; START: within
    ``grace_ms`` after it)."""
    if scheduled_at != job.start_ms or status == "ended":
        return False
    if job.stage is Stage.LEAD:
        return status == "scheduled" and now_ms < job.start_ms
    return now_ms <= job.start_ms + grace_ms


def message_data(
    title: str, start_ms: int, title_field: str, time_field: str
) -> dict[str, dict[str, str]]:
    """The template's ``data``: the room's title (a ``thing``, cut to 20 characters)
    and the start in Beijing time (a ``time``)."""
    when = dt.datetime.fromtimestamp(start_ms / 1000, CHINA).strftime("%Y-%m-%d %H:%M")
    return {
        title_field: {"value": title.strip()[:THING_MAX] or "直播"},
        time_field: {"value": when},
    }


def room_page(page: str, room_id: str) -> str:
    sep = "&" if "?" in page else "?"
    return f"{page}{sep}room={room_id}"


@dataclass(frozen=True, slots=True)
class Claim:
    job: Job
    lease: int  # the lease's end, ms: the claim's identity


class ReminderStore(Protocol):
    async def add_credits(
        self, room_id: str, uid: str, templates: Sequence[str], max_per_user: int
    ) -> tuple[int, dict[str, int]]: ...

    async def credits(self, room_id: str, uid: str) -> dict[str, int]: ...

    async def subscribers(self, room_id: str) -> list[str]: ...

    async def ensure_job(self, job: Job, due_ms: int) -> None: ...

    async def drop_job(self, job: Job) -> None: ...

    async def due_jobs(self) -> dict[Job, int]: ...

    async def claim(self, now_ms: int, lease_ms: int) -> Claim | None: ...

    async def extend(self, claim: Claim, lease: int) -> Claim | None: ...

    async def finish(self, claim: Claim) -> bool: ...

    async def retry_at(self, claim: Claim, due_ms: int) -> bool: ...

    async def take(self, job: Job, uid: str, templates: Sequence[str]) -> str | None: ...

    async def settle(self, job: Job, uid: str, template: str, mark: Mark) -> None: ...

    async def mark_of(self, job: Job, uid: str) -> Mark | None: ...
