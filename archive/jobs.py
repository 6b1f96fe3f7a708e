"""ArchiveJobs: which rooms wait to be archived, and who is archiving one right now.

Contract:
- ``schedule(room_id, due_ms)`` marks the room as waiting from ``due_ms`` on; scheduling a
  room already waiting keeps its earlier time.
- ``due(now_ms, limit)``: at most ``limit`` waiting rooms whose time has come, earliest
  first. ``done(room_id)`` stops the wait (the archive is sealed).
- ``acquire(room_id, token, ttl_ms)`` takes the room's lease when nobody holds it (or the
  holder's lease ran out): True for the one caller that got it. While held, every other
  ``acquire`` is False, in any process.
- ``renew(room_id, token, ttl_ms)`` extends the lease only for its holder (True); a lease
  lost to expiry and taken by another answers False, and the writer must stop.
- ``release(room_id, token)`` drops the lease only for its holder.

Engines: ``jobs_memory`` (one process: a lock with a deadline per room) and
``jobs_redis`` (a sorted set of waiting rooms and a ``SET NX PX`` lease per room).
"""

from __future__ import annotations

from typing import Protocol


class ArchiveJobs(Protocol):
    async def schedule(self, room_id: str, due_ms: int) -> None: ...

    async def due(self, now_ms: int, limit: int) -> list[str]: ...

    async def done(self, room_id: str) -> None: ...

    async def acquire(self, room_id: str, token: str, ttl_ms: int) -> bool: ...

    async def renew(self, room_id: str, token: str, ttl_ms: int) -> bool: ...

    async def release(self, room_id: str, token: str) -> None: ...
