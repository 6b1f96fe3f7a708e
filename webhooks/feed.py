"""LedgerFeed: the webhook outbox is the rooms' ledger streams; a feed hands out their
new entries and takes acknowledgements.

Contract: ``pull(rooms, count, block_ms)`` returns ``(room, entry id, fields)`` not yet
pulled by this deployment's webhook group, oldest first per room; with nothing to return
a feed whose ``blocks`` is true waits up to ``block_ms`` for a first entry (the others
return at once and the caller sleeps). On Redis an entry pulled but not
``ack``ed within ``claim_idle_ms`` (its process died) is pulled again by any process:
at least once. Callers make processing idempotent (``WebhookStore.enqueue`` is).
"""

from __future__ import annotations

from typing import Protocol

Entry = tuple[str, str, dict[str, str]]


class LedgerFeed(Protocol):
    blocks: bool

    async def pull(self, rooms: list[str], count: int, block_ms: int = 0) -> list[Entry]: ...

    async def ack(self, room: str, entry_ids: list[str]) -> None: ...
