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

from interact.floor.event_log import check_event, parse_id

MODLOG_MAXLEN = 100_000

__all__ = ["MODLOG_MAXLEN", "ModerationLog", "check_event", "parse_id"]


class ModerationLog(Protocol):
    async def append(self, room_id: str, event: Mapping[str, str | int]) -> str: ...

    async def read(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]: ...
