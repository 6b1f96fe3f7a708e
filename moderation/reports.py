"""Viewer reports: the rules (pure, no I/O) shared by the report store and service.

A viewer reports a comment of the room (by ``seq``) or a user (by ``uid``) with one reason
from ``REASONS``. Reports on one target (``target_key``) while it is open share one item
of the room's review queue (``kind: "report"``); each reporter counts once on it. When
``hold_after`` distinct reporters have reported one comment it is held: retracted from
every viewer pending the operator's decision. An operator resolves the item once with one
of ``ACTIONS``; every reporter is told the outcome. An item still open after the response
target alerts the room's staff once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interact.floor.errors import BadRequest

# The fixed list of reasons (docs/moderation.md §Viewer reports), in the order a client
# shows them. Changing a name breaks clients: add, never rename.
REASONS: dict[str, str] = {
    "spam": "垃圾广告 / 引流",
    "abuse": "辱骂 / 人身攻击",
    "porn": "色情低俗",
    "politics": "政治敏感",
    "fraud": "诈骗 / 虚假信息",
    "minor": "危害未成年人",
    "illegal": "其他违法违规",
    "other": "其他",
}
# How an operator resolves a report: ``retract`` only for a comment.
ACTIONS = ("retract", "mute", "ban", "dismiss")
MAX_NOTE_LEN = 200
MAX_UID_LEN = 64
MAX_SEQ = 2**53 - 1
KIND = "report"
DEFAULT_MUTE_S = 600


@dataclass(frozen=True, slots=True)
class ReportConfig:
    hold_after: int = 3  # distinct reporters that hold a comment; 0 = never automatically
    response_ms: int = 15 * 60 * 1000  # the response target (客诉响应 < 15 min)
    rate_per_s: float = 0.2  # reports per user and room: one every 5 s ...
    burst: int = 5  # ... after a burst of this many

    def __post_init__(self) -> None:
        if self.hold_after < 0 or self.response_ms < 1 or self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError(
                "reports: hold_after must be >= 0, response_ms, rate_per_s and burst positive"
            )


@dataclass(frozen=True, slots=True)
class Target:
    """What is reported: a comment (``seq``) or a user (``uid``)."""

    seq: int | None = None
    uid: str | None = None

    @property
    def key(self) -> str:
        return target_key(self)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq} if self.seq is not None else {"uid": self.uid}


def target_key(target: Target) -> str:
    """The target as one string: ``c<seq>`` or ``u<uid>`` (store keys and hash fields)."""
    return f"c{target.seq}" if target.seq is not None else f"u{target.uid}"


def parse_report(data: dict[str, Any]) -> tuple[Target, str, str]:
    """A report's target, reason and note from a client's fields; ``BadRequest`` naming
    what is wrong (the WebSocket message and the REST body share the fields)."""
    seq, uid = data.get("seq"), data.get("uid")
    if (seq is None) == (uid is None):
        raise BadRequest("a report names exactly one of 'seq' (a comment) or 'uid' (a user)")
    if seq is not None:
        if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_SEQ:
            raise BadRequest("'seq' must be a comment's sequence number (a positive integer)")
        target = Target(seq=seq)
    else:
        if not isinstance(uid, str) or not 0 < len(uid) <= MAX_UID_LEN:
            raise BadRequest(f"'uid' must be a user id of 1 to {MAX_UID_LEN} characters")
        target = Target(uid=uid)
    reason = data.get("reason")
    if not isinstance(reason, str) or reason not in REASONS:
        raise BadRequest(f"'reason' must be one of {', '.join(REASONS)}")
    note = data.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str) or len(note) > MAX_NOTE_LEN:
        raise BadRequest(f"'note' must be text of at most {MAX_NOTE_LEN} characters")
    return target, reason, note.strip()


def should_hold(reporters: int, hold_after: int, target: Target) -> bool:
    """Whether a comment's report has reached the number of reporters that holds it."""
    return target.seq is not None and hold_after > 0 and reporters >= hold_after


def check_action(action: Any, target: Target) -> str:
    if action not in ACTIONS:
        raise BadRequest(f"'action' must be one of {', '.join(ACTIONS)}")
    if action == "retract" and target.seq is None:
        raise BadRequest("only a reported comment can be retracted: mute, ban or dismiss a user")
    return str(action)


def target_of(item: dict[str, Any]) -> Target:
    """The target of a report item as the store keeps it."""
    raw = item.get("target") or {}
    seq = raw.get("seq")
    return Target(seq=seq) if isinstance(seq, int) else Target(uid=str(raw.get("uid", "")))


def age_ms(item: dict[str, Any], now_ms: int) -> int:
    filed = item.get("filed_at")
    return max(0, now_ms - filed) if isinstance(filed, int) else 0
