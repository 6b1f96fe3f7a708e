"""ModerationLog: the append-only per-room log of moderation events.

Contract:
- ``append(room_id, event)`` adds one event and returns its id. An event is a flat,
  non-empty map of string fields; values are stored as strings (``str(v)``). The fields
  the moderation service writes: ``who`` (uid), ``what`` (the text), ``rule``,
  ``category``, ``action``, ``by`` (``system`` or an operator's uid) and ``ts`` (Unix ms).
- Ids are stream ids, ``"<ms>-<seq>"``, strictly increasing within a room.
- ``read(room_id, after, count)``: at most ``count`` events with ids greater than ``after``
  (from the start when None), oldest first, as ``(id, fields)``. A malformed ``after`` is
  ``ValueError``; an unknown room reads as empty.
- The log is capped at about ``maxlen`` events per room (default ``MODLOG_MAXLEN``): the
  Redis engine trims approximately (``XADD MAXLEN ~``), the memory engine exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from moderation.memory import parse_id

MODLOG_MAXLEN = 100_000

__all__ = ["MODLOG_MAXLEN", "ModerationLog", "check_event", "parse_id"]


def check_event(event: Mapping[str, object]) -> dict[str, str]:
    """The event with string values; ``ValueError`` when empty or keyed by non-strings."""
    if not event:
        raise ValueError("moderation log: an event needs at least one field")
    out: dict[str, str] = {}
    for key, value in event.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"moderation log: field names are non-empty strings: {key!r}")
        out[key] = str(value)
    return out


class ModerationLog(Protocol):
    async def append(self, room_id: str, event: Mapping[str, str | int]) -> str: ...

    async def read(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]: ...
