"""The moderation hook on the comment path, and the no-op policy that fills it for now.

A policy sees a comment before it is logged and answers with a ``Verdict``: accept it
as is, accept it with new text (masked), or refuse it with a wire error code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Action(StrEnum):
    ACCEPT = "accept"
    MASK = "mask"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    text: str | None = None
    code: str | None = None
    reason: str = ""

    @classmethod
    def accept(cls) -> Verdict:
        return _ACCEPT


_ACCEPT = Verdict(Action.ACCEPT)


class ModerationPolicy(Protocol):
    async def check_comment(self, room_id: str, uid: str, text: str) -> Verdict: ...


class AllowAll:
    """The no-op policy: every comment passes."""

    async def check_comment(self, room_id: str, uid: str, text: str) -> Verdict:
        return _ACCEPT
