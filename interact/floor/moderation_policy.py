"""The moderation hook on the comment path, and the no-op policy that fills it by default.

A policy sees a comment before it is logged and answers with a ``Verdict``: accept it
as is, accept it with new text (masked), hold it for review (only its sender sees it),
or refuse it with a wire error code. After a comment is logged the policy hears of it
again (``after_comment``) for checks that run in flight, off the sender's path.

It lives on the floor because both sides need it and neither may import the other:
``rooms.service`` calls the hook, ``moderation.service`` implements it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Action(StrEnum):
    ACCEPT = "accept"
    MASK = "mask"
    REVIEW = "review"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    text: str | None = None
    code: str | None = None
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def accept(cls) -> Verdict:
        return _ACCEPT


_ACCEPT = Verdict(Action.ACCEPT)


class ModerationPolicy(Protocol):
    async def check_comment(self, room_id: str, uid: str, role: str, text: str) -> Verdict: ...

    async def after_comment(self, room_id: str, comment: dict[str, Any], seq: int) -> None: ...

    async def hold(self, room_id: str, comment: dict[str, Any], rule: str) -> str: ...


class AllowAll:
    """The no-op policy: every comment passes."""

    async def check_comment(self, room_id: str, uid: str, role: str, text: str) -> Verdict:
        return _ACCEPT

    async def after_comment(self, room_id: str, comment: dict[str, Any], seq: int) -> None:
        return None

    async def hold(self, room_id: str, comment: dict[str, Any], rule: str) -> str:
        raise NotImplementedError("AllowAll never holds a comment")
