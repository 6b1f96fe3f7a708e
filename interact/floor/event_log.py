"""Append-only per-room event logs (the money ledger, the moderation log): the rules
both engines share.

An event is a flat, non-empty map of string fields (values stored as ``str(v)``); ids are
Redis stream ids, ``"<ms>-<seq>"``, strictly increasing within a room; ``read(room, after,
count)`` gives the events after ``after``, oldest first. ``event_log_memory`` and
``event_log_redis`` hold the two engines; ``commerce.ledger`` and
``moderation.moderation_log`` state each log's own contract.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

_ID_RE = re.compile(r"(\d+)-(\d+)")


def parse_id(entry_id: str) -> tuple[int, int]:
    """A stream id ``"<ms>-<seq>"`` as a pair; ``ValueError`` for anything else."""
    m = _ID_RE.fullmatch(entry_id) if isinstance(entry_id, str) else None
    if m is None:
        raise ValueError(f"not a stream id: {entry_id!r}")
    return int(m[1]), int(m[2])


def format_id(entry_id: tuple[int, int]) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def check_event(event: Mapping[str, object]) -> dict[str, str]:
    """The event with string values; ``ValueError`` when empty or keyed by non-strings."""
    if not event:
        raise ValueError("an event needs at least one field")
    out: dict[str, str] = {}
    for key, value in event.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"event field names are non-empty strings: {key!r}")
        out[key] = str(value)
    return out


class StreamIds:
    """Ids like a Redis stream's: wall-clock ms and a sequence within the ms.

    Ids only name entries (nothing is decided by them), so reading the clock here is
    fine; the sequence also grows when the clock steps back, so ids only ever grow.
    """

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = (0, 0)

    def next(self) -> tuple[int, int]:
        ms = time.time_ns() // 1_000_000
        last_ms, last_seq = self.last
        self.last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return self.last
