"""RoomService: room lifecycle, comments, notices and retractions over the stores.

It publishes every change to the room's channel; whoever holds viewers (the hub)
subscribes to it. Nothing here knows about sockets or HTTP.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from interact.floor.errors import BadRequest, Code, Conflict, InteractError, NotFound
from interact.floor.moderation_policy import Action, AllowAll, ModerationPolicy
from rooms.audience import AudienceRecorder, is_staff
from rooms.broker import Broker
from rooms.danmaku import validate_comment
from rooms.danmaku_log import Appended, DanmakuLog
from rooms.models import Room, RoomStatus, valid_room_id
from rooms.presence import Presence
from rooms.room_store import RoomStore
from rooms.stats import RoomStats

NOTICE_LEVELS = ("info", "warn", "alert")
MAX_TITLE_LEN = 100
MAX_NOTICE_LEN = 500
SERVER_MESSAGE_MAX_LEN = 200


def now_ms() -> int:
    return int(time.time() * 1000)


def new_room_id() -> str:
    return "r" + secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Held:
    """A comment waiting in the review queue instead of the room."""

    item_id: str


@dataclass(frozen=True, slots=True)
class Author:
    uid: str
    nick: str
    role: str


class RoomService:
    def __init__(
        self,
        *,
        rooms: RoomStore,
        danmaku: DanmakuLog,
        broker: Broker,
        presence: Presence,
        stats: RoomStats,
        policy: ModerationPolicy | None = None,
        max_text_len: int = 40,
        rooms_per_anchor: int = 0,
        unstarted_room_ttl_ms: int = 0,
        clock: Callable[[], int] = now_ms,
        recorder: AudienceRecorder | None = None,
    ) -> None:
        self.rooms = rooms
        self.recorder = recorder  # exact audience counting (rooms.audience), if kept
        self.danmaku = danmaku
        self.broker = broker
        self.presence = presence
        self.stats = stats
        self.policy: ModerationPolicy = policy or AllowAll()
        self.max_text_len = max_text_len
        self.rooms_per_anchor = rooms_per_anchor  # 0: no cap
        self.unstarted_room_ttl_ms = unstarted_room_ttl_ms  # 0: rooms never expire
        self.clock = clock

    async def create(
        self,
        title: str,
        anchor: str | None,
        *,
        capped: bool = True,
        scheduled_at: int | None = None,
    ) -> Room:
        """A new scheduled room. ``capped``: count it against its anchor's
        ``rooms_per_anchor`` (operators create uncapped; their rooms still count).
        ``scheduled_at``: the announced start (Unix ms), checked by the caller."""
        title = title.strip()
        if not title or len(title) > MAX_TITLE_LEN:
            raise BadRequest(f"title must be 1 to {MAX_TITLE_LEN} characters")
        now = self.clock()
        room = Room(
            id=new_room_id(), title=title, anchor=anchor, created_at=now, updated_at=now,
            scheduled_at=scheduled_at,
        )  # fmt: skip
        quota = self.rooms_per_anchor if capped else 0
        await self.rooms.create(room, quota=quota, unstarted_ttl_ms=self.unstarted_room_ttl_ms)
        return room

    async def get(self, room_id: str) -> Room:
        room = await self.rooms.get(room_id) if valid_room_id(room_id) else None
        if room is None:
            raise NotFound(f"room {room_id[:64]} not found")
        return room

    async def anchor_of(self, room_id: str) -> str | None:
        """The uid of the room's anchor; None for a room without one, or no such room."""
        room = await self.rooms.get(room_id) if valid_room_id(room_id) else None
        return None if room is None else room.anchor

    async def list(self, status: RoomStatus | None, limit: int, offset: int) -> list[Room]:
        return await self.rooms.list(status, limit, offset)

    async def act(self, room_id: str, action: str) -> Room:
        """Apply a lifecycle action and tell the room."""
        await self.get(room_id)
        # room_started / room_ended reach the ledger in the transition's own step (the
        # room store is built with the ledger: rooms.room_store).
        room = await self.rooms.transition(room_id, action, self.clock())
        await self._publish(room_id, {"t": "room", **room.to_dict()})
        return room

    async def notice(self, room_id: str, text: str, level: str = "info") -> None:
        await self.get(room_id)
        text = text.strip()
        if not text or len(text) > MAX_NOTICE_LEN:
            raise BadRequest(f"notice text must be 1 to {MAX_NOTICE_LEN} characters")
        if level not in NOTICE_LEVELS:
            raise BadRequest(f"level must be one of {', '.join(NOTICE_LEVELS)}")
        await self._publish(room_id, {"t": "notice", "text": text, "level": level})

    async def comment(
        self, room_id: str, author: Author, text: str, color: int | None, mode: str | None
    ) -> Appended | Held:
        """Validate, moderate, log and publish a viewer's comment (or hold it for review)."""
        clean = validate_comment(text, color, mode, max_len=self.max_text_len)
        # Checked again atomically by the append; checked here so that nothing is held for
        # review, or counted against the sender, in a room that is not live.
        room = await self.get(room_id)
        if room.status is not RoomStatus.LIVE:
            raise Conflict(f"room is {room.status.value}", Code.ROOM_NOT_LIVE)
        verdict = await self.policy.check_comment(room_id, author.uid, author.role, clean.text)
        if verdict.action is Action.REJECT:
            code = Code(verdict.code or Code.REJECTED)
            if code is Code.REJECTED and self.recorder is not None:
                # Refused for what it says (not pacing or a mute): alerts watch for spikes.
                self.recorder.add(room_id, "refused_comments")
            raise InteractError(verdict.reason or "comment refused", code, **verdict.extra)
        final = verdict.text or clean.text  # masked, or held with its mask applied
        body = self._body(author, final, clean.color, clean.mode)
        if verdict.action is Action.REVIEW:
            # Only the sender sees it (by its ack) until an operator releases it.
            item = await self.policy.hold(room_id, body, verdict.reason)
            return Held(item)
        appended = await self.danmaku.append(room_id, body, require_live=True)
        await self.stats.commented(room_id, author.uid)
        # Staff are no audience (rooms.audience.is_staff): their comments count, not them.
        audience = not is_staff(author.role, author.uid, room.anchor)
        self._count_comment(room_id, author.uid if audience else "")
        await self.policy.after_comment(room_id, body, appended.seq)
        return appended

    async def release(self, room_id: str, body: dict[str, Any]) -> Appended:
        """Publish a comment an operator released from the review queue."""
        body = {**body, "ts": self.clock()}
        appended = await self.danmaku.append(room_id, body, require_live=False)
        uid = str(body.get("uid", ""))
        await self.stats.commented(room_id, uid)
        room = await self.rooms.get(room_id)
        staff = room is not None and is_staff(str(body.get("role", "")), uid, room.anchor)
        self._count_comment(room_id, "" if staff else uid)
        return appended

    def _count_comment(self, room_id: str, uid: str) -> None:
        """One comment for the room's figures; ``uid`` among its commenters unless empty
        (staff, or no author)."""
        if self.recorder is not None:
            if uid:
                self.recorder.mark(room_id, "comment", uid)
            self.recorder.add(room_id, "comments")

    async def server_message(self, room_id: str, author: Author, text: str) -> Appended:
        """A message published by an operator or back-end, whatever the room's state."""
        await self.get(room_id)
        clean = validate_comment(text, None, None, max_len=SERVER_MESSAGE_MAX_LEN)
        body = self._body(author, clean.text, clean.color, clean.mode)
        return await self.danmaku.append(room_id, body, require_live=False)

    async def retract(self, room_id: str, seq: int) -> None:
        await self.get(room_id)
        if not await self.danmaku.retract(room_id, seq):
            raise NotFound(f"no comment {seq} in the room's history")
        await self._publish(room_id, {"t": "retract", "seq": seq})

    async def room_stats(self, room_id: str) -> dict[str, Any]:
        room = await self.get(room_id)
        stats = await self.stats.get(room_id)
        online = await self.presence.total(room_id)
        uv = stats["uv"]
        return {
            "room": room.id,
            "status": room.status.value,
            "online": online,
            **stats,
            "participation": round(stats["participants"] / uv, 4) if uv else 0.0,
        }

    async def add_likes(self, room_id: str, n: int) -> int:
        """Add coalesced likes and publish the new total (one call per room per tick)."""
        total = await self.stats.add_likes(room_id, n)
        await self._publish(room_id, {"t": "like", "total": total})
        return total

    def _body(self, author: Author, text: str, color: int, mode: str) -> dict[str, Any]:
        return {
            "uid": author.uid,
            "nick": author.nick,
            "role": author.role,
            "text": text,
            "color": color,
            "mode": mode,
            "ts": self.clock(),
        }

    async def _publish(self, room_id: str, message: dict[str, Any]) -> None:
        await self.broker.publish(room_id, orjson.dumps(message))
