"""ReviewQueue: comments of a room held for a human decision (release or drop).

Contract:
- ``hold(room_id, item)`` queues a non-empty JSON-able map (the comment and why it is
  held) and returns its id; items read back as ``orjson`` round-trips them on both engines
  (tuples become lists, keys must be strings; anything else is ``ValueError``).
- Ids are stream ids, ``"<ms>-<seq>"``, strictly increasing within a room, never reused.
- ``list(room_id, limit, after=None)``: at most ``limit`` items still queued, oldest first,
  as ``(item_id, item)``, with ids greater than ``after`` when given (for paging).
- ``take(room_id, item_id)`` removes an item and returns it, exactly once across every
  process: of any number of concurrent ``take`` calls for one item, one gets the item and
  the others None, so two operators releasing and dropping at once resolve it once. An
  unknown or malformed id is None.
- ``get(room_id, item_id)``: a queued item without taking it (None when not queued).
- ``list(..., kind=k)`` lists only items whose ``kind`` field is ``k`` (``"report"``: the
  viewer reports of ``moderation.report_store``; held comments carry no ``kind``, and
  ``kind=""`` lists only them). The limit counts the items answered, not those skipped.
- ``pending(room_id)``: how many items are queued.
- At most about ``max_items`` per room (default ``REVIEW_MAXLEN``): past it the oldest
  unreviewed items are dropped (the Redis engine trims approximately, the memory engine
  exactly), so a flood of held comments cannot grow without bound.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

REVIEW_MAXLEN = 10_000


def encode_item(item: Mapping[str, Any]) -> bytes:
    if not item:
        raise ValueError("review queue: an item needs at least one field")
    try:
        return orjson.dumps(dict(item))
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise ValueError(f"review queue: item is not JSON-able: {exc}") from None


class ReviewQueue(Protocol):
    async def hold(self, room_id: str, item: Mapping[str, Any]) -> str: ...

    async def take(self, room_id: str, item_id: str) -> dict[str, Any] | None: ...

    async def get(self, room_id: str, item_id: str) -> dict[str, Any] | None: ...

    async def pending(self, room_id: str) -> int: ...

    async def list(
        self, room_id: str, limit: int = 100, after: str | None = None, kind: str | None = None
    ) -> builtins.list[tuple[str, dict[str, Any]]]: ...


def kind_matches(item: Mapping[str, Any], kind: str | None) -> bool:
    """Whether ``list(..., kind=kind)`` answers ``item``."""
    return kind is None or item.get("kind", "") == kind
