"""Viewer reports end to end: filing (rate-limited, deduplicated), the automatic hold,
resolution by an operator (exactly once, the reporters told), and the alert to a room's
staff when a report waits past the response target. The rules are ``moderation.reports``,
the state ``moderation.report_store``; decisions go to the room's moderation log
(``category: report``), from which the archive takes its ``report`` records.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from interact.floor.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from moderation.report_store import ReportStore
from moderation.reports import (
    DEFAULT_MUTE_S,
    KIND,
    ReportConfig,
    Target,
    age_ms,
    check_action,
    should_hold,
    target_of,
)
from moderation.service import STAFF_ROLES, ModerationService

log = logging.getLogger("interact.moderation")

# The comment of a room with that seq, as the room's history holds it; None when it is
# not there (never sent, retracted, or older than the history).
LookupComment = Callable[[str, int], Awaitable[dict[str, Any] | None]]
# Reporters told per published message (one message to every process, each sending it to
# the connections of the uids it names).
NOTIFY_BATCH = 500
ALERTS_PER_SWEEP = 100
_COMMENT_FIELDS = ("seq", "uid", "nick", "role", "text", "ts")


class ReportService:
    def __init__(
        self,
        *,
        store: ReportStore,
        moderation: ModerationService,
        lookup: LookupComment,
        config: ReportConfig | None = None,
    ) -> None:
        self.store = store
        self.mod = moderation
        self.lookup = lookup
        self.config = config or ReportConfig()

    def now(self) -> int:
        return self.mod.clock()

    # -- a viewer reports ------------------------------------------------------------

    async def report(
        self, room_id: str, reporter: str, target: Target, reason: str, note: str = ""
    ) -> dict[str, Any]:
        """File one report; answers ``{"report": id, "duplicate": bool}``."""
        now = self.now()
        cfg = self.config
        decision = await self.mod.limiter.rate_limit(
            room_id, f"report:{reporter}", now, cfg.rate_per_s, cfg.burst
        )
        if not decision.allowed:
            raise RateLimited(
                f"too many reports: at most one every {1 / cfg.rate_per_s:g} s per user and "
                f"room (bursts of {cfg.burst})",
                retry_after_ms=decision.retry_after_ms,
            )
        comment: dict[str, Any] | None = None
        if target.seq is not None:
            found = await self.lookup(room_id, target.seq)
            if found is None:
                raise NotFound(
                    f"no comment {target.seq} to report: retracted, or older than the "
                    "room's recent history"
                )
            comment = {k: found.get(k) for k in _COMMENT_FIELDS}
            accused = str(found.get("uid", ""))
        else:
            accused = str(target.uid)
        if accused == reporter:
            raise BadRequest("you cannot report yourself")
        item = {
            "kind": KIND,
            "target": target.to_dict(),
            "uid": accused,
            "comment": comment,
            "reason": reason,
            "note": note,
            "reporter": reporter,
            "filed_at": now,
        }
        filed = await self.store.file(room_id, target.key, reporter, reason, item, now)
        if not filed.new:
            return {"report": filed.report_id, "duplicate": True}
        await self.mod.record(room_id, now, uid=accused, seq=target.seq, action="report",
                              by=reporter, category=KIND, rule=reason, text=note,
                              item=filed.report_id, reporters=filed.reporters)  # fmt: skip
        if filed.opened:
            await self.store.schedule_alert(room_id, filed.report_id, now + cfg.response_ms)
        if should_hold(filed.reporters, cfg.hold_after, target) and await self.store.hold_once(
            room_id, filed.report_id
        ):
            await self._hold(room_id, filed.report_id, target, filed.reporters, now)
        return {"report": filed.report_id, "duplicate": False}

    async def _hold(self, room_id: str, report_id: str, target: Target, n: int, now: int) -> None:
        """Retract the comment from every viewer until an operator decides."""
        assert target.seq is not None
        if self.mod.retract is not None:
            try:
                await self.mod.retract(room_id, target.seq)
            except NotFound:
                pass  # retracted meanwhile (an operator was quicker): held all the same
        await self.mod.record(room_id, now, seq=target.seq, action="hold", by="system",
                              category=KIND, rule=f"{n} reporters", item=report_id)  # fmt: skip

    # -- operators -------------------------------------------------------------------

    async def list(
        self, room_id: str, limit: int = 100, after: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Open reports, oldest first, with their age and reporters."""
        now = self.now()
        out = []
        for report_id, item in await self.mod.review.list(room_id, limit, after, kind=KIND):
            reporters = await self.store.reporters(room_id, report_id)
            reasons: dict[str, int] = {}
            for reason in reporters.values():
                reasons[reason] = reasons.get(reason, 0) + 1
            out.append({"id": report_id, **item, "age_ms": age_ms(item, now),
                        "overdue": age_ms(item, now) > self.config.response_ms,
                        "reporters": len(reporters), "reasons": reasons})  # fmt: skip
        return out

    async def resolve(
        self,
        room_id: str,
        report_id: str,
        action: str,
        *,
        by: str,
        role: str,
        seconds: int | None = None,
    ) -> dict[str, Any]:
        """Resolve an open report once (``Conflict`` after); tell every reporter."""
        item = await self.mod.review.get(room_id, report_id)
        if item is None or item.get("kind") != KIND:
            raise Conflict("that report was already resolved, or there is no such report")
        target = target_of(item)
        check_action(action, target)
        if action == "ban" and role != "operator":
            raise Forbidden("only an operator can ban (a ban holds in every room)")
        resolved = await self.store.resolve(room_id, report_id)
        if resolved is None:
            raise Conflict("that report was already resolved, or there is no such report")
        item, reporters = resolved
        now = self.now()
        accused = str(item.get("uid", ""))
        reason = f"report {report_id}: {item.get('reason', '')}"
        applied = True
        if action == "retract" and target.seq is not None and self.mod.retract is not None:
            try:
                await self.mod.retract(room_id, target.seq)
            except NotFound:
                applied = False  # already retracted (held), or past the history
        elif action == "mute":
            await self.mod.mute(room_id, accused, seconds or DEFAULT_MUTE_S, by, reason)
        elif action == "ban":
            await self.mod.ban(accused, seconds, by, reason)
        await self.store.cancel_alert(room_id, report_id)
        waited = age_ms(item, now)
        await self.mod.record(room_id, now, uid=accused, seq=target.seq, action="resolve",
                              by=by, category=KIND, rule=action, item=report_id,
                              reporters=len(reporters), waited_ms=waited)  # fmt: skip
        await self._tell(room_id, sorted(reporters), report_id, target, action)
        return {"report": report_id, "outcome": action, "applied": applied,
                "reporters": len(reporters), "waited_ms": waited}  # fmt: skip

    async def _tell(
        self, room_id: str, uids: builtins.list[str], report_id: str, target: Target, outcome: str
    ) -> None:
        # ``to`` with no role and ``uids``: the hub sends it only to those users'
        # connections in the room, without the list.
        for i in range(0, len(uids), NOTIFY_BATCH):
            await self.mod.publish(room_id, {
                "t": "report_result", "to": [], "uids": uids[i : i + NOTIFY_BATCH],
                "report": report_id, "target": target.to_dict(), "outcome": outcome,
            })  # fmt: skip

    # -- the response target -----------------------------------------------------------

    async def sweep(self) -> int:
        """Alert the staff of rooms whose reports wait past the response target; how many
        alerts this call sent (each report alerts once, in one process)."""
        now = self.now()
        sent = 0
        for room_id, report_id in await self.store.due_alerts(now, ALERTS_PER_SWEEP):
            try:
                item = await self.mod.review.get(room_id, report_id)
                if item is None or item.get("kind") != KIND:
                    continue  # resolved meanwhile
                waited = age_ms(item, now)
                minutes = waited // 60_000
                target = target_of(item)
                what = f"comment {target.seq}" if target.seq is not None else "a user"
                await self.mod.publish(room_id, {
                    "t": "notice", "level": "alert", "to": sorted(STAFF_ROLES),
                    "report": report_id,
                    "text": f"a viewer report on {what} has waited {minutes} min "
                            f"(response target {self.config.response_ms // 60_000} min)",
                })  # fmt: skip
                await self.mod.record(room_id, now, uid=item.get("uid"), seq=target.seq,
                                      action="overdue", by="system", category=KIND,
                                      item=report_id, waited_ms=waited)  # fmt: skip
                sent += 1
            except Exception:  # one room's failure must not stop the others' alerts
                log.warning("report alert for %s in %s failed", report_id, room_id, exc_info=True)
        return sent
