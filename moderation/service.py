"""ModerationService: the policy every comment passes, and the operators' tools.

Before a comment is logged (``check_comment``): bans (connections are also closed on a
ban, everywhere) and mutes, pacing (one Lua step on
Redis: room cap, slow mode, repeats, per-user rate), then the word filter (reject, hold
for review, or mask). After it is logged (``after_comment``): WeChat content security,
in flight, off the sender's path. Refusals escalate: a user refused too often is muted,
a room whose refused share runs high goes into slow mode by itself and alerts its staff.
Every decision is appended to the room's moderation log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from interact.floor.errors import BadRequest, Code, Conflict
from interact.floor.moderation_policy import Action, Verdict
from moderation.content_security import ContentSecurity
from moderation.moderation_log import ModerationLog
from moderation.mute_store import Ban, Mute, MuteStore
from moderation.normalize import normalize_text
from moderation.rate_limiter import RateLimiter, RateReason
from moderation.review_queue import ReviewQueue
from moderation.room_settings import ModerationSettings, SlowMode
from moderation.rules import WordAction
from moderation.wordfilter import FilterResult, WordFilter
from rooms.broker import CONTROL_ROOM

log = logging.getLogger("interact.moderation")

STAFF_ROLES = frozenset({"anchor", "operator"})
MAX_MUTE_S = 30 * 24 * 3600
MAX_SLOW_MODE_S = 3600

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
Retract = Callable[[str, int], Awaitable[None]]
AnchorOf = Callable[[str], Awaitable[str | None]]
Observe = Callable[[str, str], None]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class ModerationConfig:
    rate_per_s: float = 1.0
    burst: int = 3
    repeat_window_ms: int = 5_000
    room_cap_per_s: int = 0  # accepted comments per room per second, 0 = no cap
    escalate_after: int = 3
    escalate_window_ms: int = 600_000
    escalate_mute_ms: int = 600_000
    breaker_share: float = 0.2
    breaker_window_ms: int = 30_000
    breaker_min_comments: int = 20
    auto_slow_s: int = 10
    auto_slow_ms: int = 300_000  # how long automatic slow mode lasts before it lifts
    staff_exempt: bool = True  # operators, and a room's own anchor, skip pacing and filter


class ModerationService:
    def __init__(
        self,
        *,
        limiter: RateLimiter,
        mutes: MuteStore,
        log_store: ModerationLog,
        review: ReviewQueue,
        settings: ModerationSettings,
        words: WordFilter,
        publish: Publish,
        config: ModerationConfig | None = None,
        security: ContentSecurity | None = None,
        observe: Observe | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.limiter = limiter
        self.mutes = mutes
        self.log = log_store
        self.review = review
        self.settings = settings
        self.words = words
        self.publish = publish
        self.config = config or ModerationConfig()
        self.security = security
        self.observe = observe or (lambda action, category: None)
        self.clock = clock
        self.retract: Retract | None = None  # set by the app: RoomService.retract
        # Set by the app: RoomService.anchor_of. Unset, no anchor is exempt.
        self.anchor_of: AnchorOf | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the comment path -----------------------------------------------------------

    async def check_comment(self, room_id: str, uid: str, role: str, text: str) -> Verdict:
        now = self.clock()
        banned, until, slow = await asyncio.gather(
            self.mutes.banned(uid, now),
            self.mutes.muted_until(room_id, uid, now),
            self.settings.slow_mode(room_id, now),
        )
        if banned:
            # Connections are closed on a ban; this holds if one missed the message.
            return Verdict(Action.REJECT, code=Code.FORBIDDEN.value, reason="you are banned")
        if until is not None:
            self.observe("muted", "mute")
            return Verdict(
                Action.REJECT,
                code=Code.MUTED.value,
                reason="you are muted here",
                extra={"until": until, "remaining_ms": until - now},
            )
        if self.config.staff_exempt and await self._exempt(room_id, uid, role):
            return Verdict.accept()
        cfg = self.config
        pace = await self.limiter.check_comment(
            room_id, uid, _text_key(text), now,
            rate_per_s=cfg.rate_per_s, burst=cfg.burst, repeat_window_ms=cfg.repeat_window_ms,
            slow_mode_ms=slow.seconds * 1000, room_cap_per_s=cfg.room_cap_per_s,
        )  # fmt: skip
        if not pace.allowed:
            self.observe("rate_limited", pace.reason.value)
            message = _PACE_MESSAGES.get(pace.reason, "slow down")
            return Verdict(Action.REJECT, code=Code.RATE_LIMITED.value, reason=message,
                           extra={"retry_after_ms": pace.retry_after_ms,
                                  "rule": pace.reason.value})  # fmt: skip
        found = self.words.check(text)
        if found.action is WordAction.REJECT or found.too_long:
            await self._refused(room_id, uid, text, found, now, by="filter")
            return Verdict(Action.REJECT, code=Code.REJECTED.value, reason="comment refused")
        await self._count(room_id, refused=False, now=now)
        if found.action is WordAction.REVIEW:
            self._record(found)
            masked = found.masked(text) if found.mask_spans else None
            return Verdict(Action.REVIEW, text=masked, reason=_rule_name(found))
        if found.action is WordAction.MASK:
            self._record(found)
            await self.record(
                room_id,
                now,
                uid=uid,
                text=text,
                rule=_rule_name(found),
                category=_category(found),
                action="mask",
                by="filter",
            )
            return Verdict(Action.MASK, text=found.masked(text))
        return Verdict.accept()

    async def _exempt(self, room_id: str, uid: str, role: str) -> bool:
        """Operators everywhere; an anchor only in a room they anchor: the anchor role is
        anyone who may open rooms, and must not buy a pass through every other room."""
        if role == "operator":
            return True
        if role != "anchor" or self.anchor_of is None:
            return False
        return await self.anchor_of(room_id) == uid

    async def after_comment(self, room_id: str, comment: dict[str, Any], seq: int) -> None:
        if self.security is None:
            return
        task = asyncio.ensure_future(self._in_flight(room_id, comment, seq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def hold(self, room_id: str, comment: dict[str, Any], rule: str) -> str:
        item = await self.review.hold(room_id, {"comment": comment, "rule": rule})
        await self.record(room_id, self.clock(), uid=str(comment.get("uid", "")),
                        text=str(comment.get("text", "")), rule=rule, category="review",
                        action="review", by="filter", item=item)  # fmt: skip
        return item

    async def _in_flight(self, room_id: str, comment: dict[str, Any], seq: int) -> None:
        """msgSecCheck after the fact: risky → retract and count; review → retract and hold."""
        assert self.security is not None
        uid, text = str(comment.get("uid", "")), str(comment.get("text", ""))
        try:
            verdict = await self.security.check(uid, text)
            if verdict is None or verdict.suggest == "pass":
                return
            if self.retract is not None:
                await self.retract(room_id, seq)
            now = self.clock()
            rule = f"wechat:{verdict.label}"
            if verdict.suggest == "risky":
                self.observe("reject", "wechat")
                await self.record(room_id, now, uid=uid, text=text, rule=rule, category="wechat",
                                action="retract", by="wechat", seq=seq)  # fmt: skip
                await self._escalate(room_id, uid, now)
                await self._count(room_id, refused=True, now=now)
            else:
                self.observe("review", "wechat")
                await self.review.hold(room_id, {"comment": comment, "rule": rule, "seq": seq})
                await self.record(room_id, now, uid=uid, text=text, rule=rule, category="wechat",
                                action="review", by="wechat", seq=seq)  # fmt: skip
        except Exception:
            log.warning("in-flight check of a comment in room %s failed", room_id, exc_info=True)

    async def _refused(
        self, room_id: str, uid: str, text: str, found: FilterResult, now: int, by: str
    ) -> None:
        self._record(found)
        await self.record(room_id, now, uid=uid, text=text, rule=_rule_name(found),
                        category=_category(found), action="reject", by=by)  # fmt: skip
        await self._escalate(room_id, uid, now)
        await self._count(room_id, refused=True, now=now)

    async def _escalate(self, room_id: str, uid: str, now: int) -> None:
        cfg = self.config
        count = await self.mutes.record_refusal(room_id, uid, now, cfg.escalate_window_ms)
        if count < cfg.escalate_after:
            return
        until = now + cfg.escalate_mute_ms
        current = await self.mutes.muted_until(room_id, uid, now)
        if current is not None and current >= until:
            return  # never shorten a longer mute an operator set
        await self.mutes.mute(room_id, uid, until, "system", "repeated refusals", now_ms=now)
        await self.record(room_id, now, uid=uid, rule=f"{count} refusals", category="escalation",
                        action="mute", by="system", until=until)  # fmt: skip

    async def _count(self, room_id: str, *, refused: bool, now: int) -> None:
        """Feed the room's circuit breaker; trip automatic slow mode when it runs hot."""
        cfg = self.config
        if cfg.auto_slow_s <= 0:
            return  # the room breaker is off
        counts = await self.settings.record_verdict(room_id, refused, now, cfg.breaker_window_ms)
        if not refused or counts.total < cfg.breaker_min_comments:
            return
        if counts.refused_share <= cfg.breaker_share:
            return
        if (await self.settings.slow_mode(room_id, now)).seconds:
            return
        until = now + cfg.auto_slow_ms
        await self.settings.set_slow_mode(room_id, cfg.auto_slow_s, until, "system")
        share = round(counts.refused_share * 100)
        await self.record(room_id, now, rule=f"{share}% refused", category="breaker",
                        action="slow_mode", by="system", until=until)  # fmt: skip
        await self.publish(room_id, {
            "t": "notice", "level": "alert", "to": sorted(STAFF_ROLES),
            "text": f"{share}% of comments were refused in the last "
                    f"{cfg.breaker_window_ms // 1000} s: slow mode {cfg.auto_slow_s} s is on",
        })  # fmt: skip

    def _record(self, found: FilterResult) -> None:
        action = found.action.value if found.action else "too_long"
        self.observe(action, _category(found))

    async def record(self, room_id: str, now: int, **fields: Any) -> None:
        """Append one decision to the room's moderation log."""
        event = {k: "" if v is None else v for k, v in fields.items()}
        await self.log.append(room_id, {"ts": now, **event})

    # -- operators' tools ----------------------------------------------------------

    async def mute(self, room_id: str, uid: str, seconds: int, by: str, reason: str) -> Mute:
        if not 1 <= seconds <= MAX_MUTE_S:
            raise BadRequest(f"seconds must be from 1 to {MAX_MUTE_S}")
        now = self.clock()
        mute = await self.mutes.mute(room_id, uid, now + seconds * 1000, by, reason, now_ms=now)
        await self.record(room_id, now, uid=uid, action="mute", by=by, rule=reason,
                        category="operator", until=mute.until_ms)  # fmt: skip
        return mute

    async def unmute(self, room_id: str, uid: str, by: str) -> bool:
        now = self.clock()
        lifted = await self.mutes.unmute(room_id, uid, now_ms=now)
        if lifted:
            await self.record(room_id, now, uid=uid, action="unmute", by=by, category="operator")
        return lifted

    async def ban(self, uid: str, seconds: int | None, by: str, reason: str) -> Ban:
        if seconds is not None and not 1 <= seconds <= 10 * 365 * 24 * 3600:
            raise BadRequest("seconds must be positive (omit it for a permanent ban)")
        now = self.clock()
        until = None if seconds is None else now + seconds * 1000
        ban = await self.mutes.ban(uid, until, by, reason, now_ms=now)
        # Every process closes the user's connections (4003).
        await self.publish(CONTROL_ROOM, {"t": "ban", "uid": uid})
        return ban

    async def unban(self, uid: str) -> bool:
        return await self.mutes.unban(uid, now_ms=self.clock())

    async def banned(self, uid: str) -> bool:
        return await self.mutes.banned(uid, self.clock())

    async def set_slow_mode(self, room_id: str, seconds: int, by: str) -> SlowMode:
        if not 0 <= seconds <= MAX_SLOW_MODE_S:
            raise BadRequest(f"seconds must be from 0 (off) to {MAX_SLOW_MODE_S}")
        now = self.clock()
        await self.settings.set_slow_mode(room_id, seconds, None, by)
        await self.record(room_id, now, action="slow_mode", by=by, category="operator",
                        rule=f"{seconds} s")  # fmt: skip
        return await self.settings.slow_mode(room_id, now)

    async def slow_mode(self, room_id: str) -> SlowMode:
        return await self.settings.slow_mode(room_id, self.clock())

    async def take_review(
        self, room_id: str, item_id: str, by: str, action: str
    ) -> dict[str, Any] | None:
        """Release or drop a held comment, exactly once; None when already handled."""
        queued = await self.review.get(room_id, item_id)
        if queued is not None and queued.get("kind") == "report":
            # Its reporters wait for an outcome: reports are resolved, not released.
            raise Conflict("that item is a viewer report: resolve it at /reports/{id}/resolve")
        item = await self.review.take(room_id, item_id)
        if item is not None:
            comment = item.get("comment", {})
            await self.record(room_id, self.clock(), uid=str(comment.get("uid", "")),
                            text=str(comment.get("text", "")), action=action, by=by,
                            category="review", item=item_id)  # fmt: skip
        return item

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task


_PACE_MESSAGES = {
    RateReason.RATE: "you are commenting too fast",
    RateReason.REPEAT: "the same comment again: wait a few seconds",
    RateReason.SLOW_MODE: "slow mode is on in this room",
    RateReason.ROOM_CAP: "the room is too busy: try again shortly",
}


def _text_key(text: str) -> str:
    """Repeats are judged on the normalised text, so spacing tricks count as the same."""
    return hashlib.blake2b(normalize_text(text).encode(), digest_size=8).hexdigest()


def _rule_name(found: FilterResult) -> str:
    return ",".join(sorted({h.rule.word for h in found.hits})) or (
        "too_long" if found.too_long else ""
    )


def _category(found: FilterResult) -> str:
    cats = sorted({h.rule.category for h in found.hits})
    return ",".join(cats) or ("length" if found.too_long else "")
