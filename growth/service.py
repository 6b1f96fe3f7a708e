"""The growth services: invites (share tokens, attribution, the room's figures) and
pre-live reminders (subscriptions, the schedule, the sending worker).

The application hands in what lives elsewhere: the room's start, state and title
(``room_of``), the room's ledger (``ledger``, read for invitees' orders), the WeChat
sender, and the clock, so this package imports no other domain and tests drive time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from growth.alerts import Alert, Alerts
from growth.invites import (
    Attribution,
    InviteStore,
    Outcome,
    invited_sales,
    k_factor,
    new_token,
    valid_token,
)
from growth.reminders import (
    Claim,
    Job,
    Mark,
    ReminderStore,
    jobs_for,
    message_data,
    room_page,
    still_due,
)
from growth.rewards import InviteRewards
from growth.subscribe_sender import SendResult, Sent
from interact.floor.errors import BadRequest, Conflict, NotFound

log = logging.getLogger(__name__)

LedgerReader = Callable[[str, str | None, int], Awaitable[list[tuple[str, dict[str, str]]]]]
# Ledger events read per round trip, and at most this many in all per report (the
# ledger keeps about 100,000 per room: LEDGER_MAXLEN).
LEDGER_PAGE = 1000
LEDGER_MAX_EVENTS = 200_000
# Template ids per subscription request.
MAX_TEMPLATES_PER_REQUEST = 10
MAX_TEMPLATE_ID_LEN = 64


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """What growth needs of a room (``rooms.models.Room``, without importing it)."""

    status: str
    scheduled_at: int | None
    title: str


RoomOf = Callable[[str], Awaitable[RoomInfo | None]]


class InviteService:
    def __init__(
        self,
        store: InviteStore,
        *,
        ledger: LedgerReader | None = None,
        tokens_per_user: int = 5,
        clock: Callable[[], int] = wall_ms,
        rewards: InviteRewards | None = None,
    ) -> None:
        self.store = store
        self.rewards = rewards
        self.ledger = ledger
        self.tokens_per_user = max(1, tokens_per_user)
        self.clock = clock
        self.outcomes: dict[str, int] = {o.value: 0 for o in Outcome}

    async def share_token(self, room_id: str, uid: str) -> tuple[str, bool]:
        """A share token of ``uid`` for the room (a new one until the cap, then the
        newest held) and whether it is new."""
        for _ in range(3):  # 96 random bits: a collision is a broken generator
            try:
                return await self.store.issue_token(room_id, uid, new_token(), self.tokens_per_user)
            except ValueError:
                continue
        raise RuntimeError("share token generator keeps colliding")

    async def open(self, room_id: str, uid: str, token: str) -> Attribution:
        """An invitee opened the room through ``token`` (``/ws?inv=`` or ``share_open``).

        Malformed tokens are unknown without a store call. Call after the viewer is
        known to be in the room (admitted, or an authenticated event)."""
        if not valid_token(token):
            result = Attribution(Outcome.UNKNOWN)
        else:
            result = await self.store.attribute(room_id, uid, token, self.clock())
        self.outcomes[result.outcome.value] += 1
        if result.outcome is Outcome.RECORDED and result.inviter and self.rewards is not None:
            try:
                await self.rewards.entered(room_id, result.inviter)
            except Exception:  # never fail an open over a reward: the next open retries it
                log.exception("invite rewards failed in room %s", room_id)
        return result

    async def report(self, room_id: str) -> dict[str, Any]:
        summary = await self.store.summary(room_id)
        sales = invited_sales([], {})
        if self.ledger is not None and summary.invited_uv:
            invitees = await self.store.invitees(room_id)
            sales = invited_sales(await self._ledger_events(room_id), invitees)
        return {
            "room": room_id,
            "opens": summary.opens,
            "invited_uv": summary.invited_uv,
            "inviters": summary.inviters,
            "invited_buyers": sales.buyers,
            "invited_gmv_fen": sales.gmv_fen,
            "k_factor": k_factor(summary.invited_uv, summary.inviters),
            "depths": {str(d): n for d, n in sorted(summary.depths.items())},
        }

    async def _ledger_events(self, room_id: str) -> list[dict[str, str]]:
        assert self.ledger is not None
        out: list[dict[str, str]] = []
        after: str | None = None
        while len(out) < LEDGER_MAX_EVENTS:
            page = await self.ledger(room_id, after, LEDGER_PAGE)
            out.extend(e for _, e in page if e.get("type") in ("order_paid", "order_refunded"))
            if len(page) < LEDGER_PAGE:
                break
            after = page[-1][0]
        return out

    async def mine(self, room_id: str, uid: str) -> dict[str, Any]:
        return {"room": room_id, "invited": await self.store.invited_by(room_id, uid)}


class Sender(Protocol):
    def ready(self) -> bool: ...

    async def send(
        self, openid: str, template_id: str, page: str, data: dict[str, Any]
    ) -> SendResult: ...


@dataclass(slots=True)
class ReminderStats:
    jobs_done: int = 0
    jobs_dropped: int = 0
    sent: int = 0
    refused: int = 0
    failed: int = 0
    unknown: int = 0
    retried: int = 0
    breaker_open: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ReminderSettings:
    templates: tuple[str, ...]
    lead_ms: int = 3 * 3600 * 1000
    page: str = "pages/room/room"
    title_field: str = "thing1"
    time_field: str = "time2"
    per_s: float = 20.0
    lease_ms: int = 60_000
    grace_ms: int = 30 * 60 * 1000
    retry_ms: int = 30_000
    max_credits: int = 4


_MARK_OF = {
    Sent.SENT: Mark.SENT,
    Sent.REFUSED: Mark.REFUSED,
    Sent.CONFIG: Mark.FAILED,
    Sent.RETRY: Mark.RETRY,
    Sent.UNKNOWN: Mark.UNKNOWN,
    Sent.OPEN: Mark.RETRY,
}


class ReminderService:
    def __init__(
        self,
        store: ReminderStore,
        room_of: RoomOf,
        settings: ReminderSettings,
        *,
        sender: Sender | None = None,
        clock: Callable[[], int] = wall_ms,
        alerts: Alerts | None = None,
    ) -> None:
        self.store = store
        self.room_of = room_of
        self.settings = settings
        self.sender = sender
        self.clock = clock
        self.alerts = alerts or Alerts()
        self.stats = ReminderStats()

    @property
    def enabled(self) -> bool:
        return bool(self.settings.templates)

    def check_templates(self, templates: object) -> list[str]:
        """The accepted template ids of a request, or ``BadRequest`` naming the problem."""
        allowed = self.settings.templates
        if (
            not isinstance(templates, list)
            or not 1 <= len(templates) <= MAX_TEMPLATES_PER_REQUEST
            or not all(isinstance(t, str) for t in templates)
        ):
            raise BadRequest(
                f"'templates' must be a list of 1 to {MAX_TEMPLATES_PER_REQUEST} template ids"
            )
        for template in templates:
            if template not in allowed:
                raise BadRequest(f"template '{template[:MAX_TEMPLATE_ID_LEN]}' is not configured")
        return templates

    async def subscribe(
        self, room_id: str, uid: str, templates: Sequence[str]
    ) -> tuple[int, dict[str, int]]:
        """Credit one message per accepted template (up to ``max_credits`` in the room)
        and make sure the room's reminder jobs exist."""
        info = await self.room_of(room_id)
        if info is None:
            raise NotFound(f"room {room_id[:64]} not found")
        now = self.clock()
        if info.scheduled_at is None:
            raise Conflict("the room has no scheduled start to be reminded of")
        if info.status != "scheduled" or info.scheduled_at <= now:
            raise Conflict("the room has started or ended: nothing to remind of")
        added = await self.store.add_credits(room_id, uid, templates, self.settings.max_credits)
        await self.plan(room_id, info.scheduled_at, None)
        return added

    async def plan(self, room_id: str, start_ms: int | None, old_start_ms: int | None) -> None:
        """Jobs for the room's new start; the old start's jobs go (a job left behind by
        a crash is dropped by the worker: it checks the room's start when claimed)."""
        now = self.clock()
        if start_ms is not None:
            for job, due in jobs_for(room_id, start_ms, self.settings.lead_ms, now):
                await self.store.ensure_job(job, due)
        if old_start_ms is not None and old_start_ms != start_ms:
            for job, _ in jobs_for(room_id, old_start_ms, 1, 0):
                await self.store.drop_job(job)

    async def run_due(self, max_jobs: int = 100) -> int:
        """Claim and work through due jobs (at most ``max_jobs``); how many were claimed."""
        claimed = 0
        while claimed < max_jobs:
            claim = await self.store.claim(self.clock(), self.settings.lease_ms)
            if claim is None:
                break
            claimed += 1
            await self._work(claim)
        return claimed

    async def run(self, poll_s: float) -> None:
        """Every ``poll_s`` seconds, the due jobs; until cancelled."""
        while True:
            try:
                await self.run_due()
            except Exception:  # Redis away: the leases keep the jobs for the next round
                log.warning("reminder round failed", exc_info=True)
            await asyncio.sleep(poll_s)

    async def _work(self, claim: Claim) -> None:
        job, s = claim.job, self.settings
        info = await self.room_of(job.room_id)
        if info is None or not still_due(
            job, info.scheduled_at, info.status, self.clock(), s.grace_ms
        ):
            self.stats.jobs_dropped += 1
            await self.store.finish(claim)
            return
        if self.sender is None:
            await self.store.retry_at(claim, self.clock() + s.retry_ms)
            return
        log.info("reminder job claimed: %s of room %s", job.stage.value, job.room_id)
        data = message_data(info.title, job.start_ms, s.title_field, s.time_field)
        page = room_page(s.page, job.room_id)
        interval = 1.0 / s.per_s if s.per_s > 0 else 0.0
        renew_at = self.clock() + s.lease_ms // 3
        retry = False
        alerted: set[int | None] = set()
        for uid in await self.store.subscribers(job.room_id):
            if self.clock() >= renew_at:
                renewed = await self.store.extend(claim, self.clock() + s.lease_ms)
                if renewed is None:
                    return  # the lease ran out and another process holds the job now
                claim, renew_at = renewed, self.clock() + s.lease_ms // 3
            template = await self.store.take(job, uid, s.templates)
            if template is None:
                continue  # reminded already, or no credit left
            if not self.sender.ready():
                self.stats.breaker_open += 1
                await self.store.settle(job, uid, template, Mark.RETRY)
                retry = True
                break
            result = await self.sender.send(uid, template, page, data)
            await self.store.settle(job, uid, template, _MARK_OF[result.outcome])
            self._count(result)
            if result.outcome is Sent.CONFIG and result.errcode not in alerted:
                alerted.add(result.errcode)
                self.alerts.emit(
                    Alert(
                        "reminder_config",
                        job.room_id,
                        f"WeChat refused the reminder's setup (errcode {result.errcode}): "
                        "check the template id, its data fields and the page",
                        result.errcode,
                        {"template": template, "stage": job.stage.value},
                    )
                )
            retry = retry or result.outcome in (Sent.RETRY, Sent.OPEN)
            if interval:
                await asyncio.sleep(interval)
        if retry:
            await self.store.retry_at(claim, self.clock() + s.retry_ms)
        else:
            self.stats.jobs_done += 1
            await self.store.finish(claim)

    def _count(self, result: SendResult) -> None:
        st = self.stats
        if result.outcome is Sent.SENT:
            st.sent += 1
        elif result.outcome is Sent.REFUSED:
            st.refused += 1
        elif result.outcome is Sent.CONFIG:
            st.failed += 1
        elif result.outcome is Sent.UNKNOWN:
            st.unknown += 1
        else:
            st.retried += 1


__all__ = [
    "InviteService",
    "Job",
    "LedgerReader",
    "ReminderService",
    "ReminderSettings",
    "RoomInfo",
]
