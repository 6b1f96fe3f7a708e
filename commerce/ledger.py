"""Ledger: the append-only per-room log of money-moving steps (DESIGN.md §6).

Contract:
- ``append(room_id, event)`` adds one event and returns its id. An event is a flat,
  non-empty map of string fields; values are stored as strings (``str(v)``), so integer
  fen read back as decimal strings. Every event the commerce stores write has ``type``
  (below) and ``ts`` (Unix ms of the step).
- Ids are Redis stream ids, ``"<ms>-<seq>"``, strictly increasing within a room.
- ``read(room_id, after, count)``: at most ``count`` events with ids greater than ``after``
  (from the start when None), oldest first, as ``(id, fields)``. A malformed ``after`` is
  ``ValueError``; an unknown room reads as empty.
- The log is capped at about ``maxlen`` events per room (default ``LEDGER_MAXLEN``): the
  Redis engine trims approximately (``XADD MAXLEN ~``, whole stream nodes, so a little more
  may stay), the memory engine exactly. A consumer that falls further behind than that
  loses the oldest events, so a merchant back-end should read continuously (or raise
  the cap).
- The red packet and lottery stores append their events in the same atomic step as the
  change they record (one Lua script on Redis; no await in between in memory), so the
  log never shows a step that did not happen, nor misses one that did.

Event types and fields (all values strings, money in fen):
- ``rp_created``: packet, sender, total_fen, count, split, ts
- ``rp_claim``: packet, uid, amount_fen, ts
- ``rp_done``: packet, luckiest, amount_fen (the luckiest share), ts
- ``rp_refund``: packet, sender, amount_fen, shares, ts
- ``lot_created``: lottery, commit, winners, prize_kind, prize_fen ("" if none), draw_at, ts
- ``lot_drawn``: lottery, winners (uids joined by ","), entries, unused, prize_kind,
  prize_fen, ts
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from interact.floor.event_log import check_event, parse_id

# About a week of a busy room's grabs; a default only, the deployment's config passes its own.
LEDGER_MAXLEN = 100_000

__all__ = ["LEDGER_MAXLEN", "Ledger", "check_event", "parse_id"]


class Ledger(Protocol):
    async def append(self, room_id: str, event: Mapping[str, object]) -> str: ...

    async def read(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]: ...
