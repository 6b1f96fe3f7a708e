"""MuteStore: per-room mutes, global bans and the escalation counter of refusals.

Contract:
- ``mute(room_id, uid, until_ms, by, reason, now_ms=…)`` mutes a user in one room until
  ``until_ms`` (Unix ms), replacing any mute the user had there (last writer wins: callers
  that must not shorten a mute read ``muted_until`` first). ``until_ms <= now_ms`` is
  ``ValueError``. It returns the stored ``Mute``.
- ``muted_until(room_id, uid, now_ms)`` is the end of the user's mute, or None when the
  user is not muted or the mute has lapsed (``until_ms <= now_ms``). ``list_mutes`` lists
  the mutes in force, soonest to lapse first (then by uid).
- ``unmute(room_id, uid, now_ms=…)`` lifts a mute; True when one was in force.
- Bans are the same, global (every room) and possibly forever (``until_ms`` None):
  ``ban``, ``unban``, ``banned(uid, now_ms) -> bool``, ``list_bans``.
- ``record_refusal(room_id, uid, now_ms, window_ms)`` records one refusal of the user in
  the room and returns how many the user had there within the last ``window_ms``
  (timestamps ``> now_ms - window_ms``), this one included: a sliding window, trimmed on
  every call, atomic (concurrent calls each count once). The count saturates at
  ``REFUSALS_CAP`` (the oldest are forgotten), which bounds a flooder's footprint.
- Expiry is judged by the caller's ``now_ms`` on both engines. Lapsed entries are
  dropped as calls meet them; a room's mute keys and a user's refusal key carry a
  PEXPIRE, so nothing outlives its last deadline. Ban keys are global and kept (bans
  can be forever); lapsed bans are dropped by ``ban``, ``unban`` and ``list_bans``.
- Every call is one atomic step (one Lua script or one command on Redis; no await in
  between in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Refusals remembered per user and room; the counter saturates here.
REFUSALS_CAP = 1_000


@dataclass(frozen=True, slots=True)
class Mute:
    uid: str
    until_ms: int
    by: str
    reason: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Ban:
    uid: str
    until_ms: int | None  # None: forever
    by: str
    reason: str
    at_ms: int


def check_until(uid: str, until_ms: int | None, now_ms: int) -> None:
    if not uid:
        raise ValueError("mute store: uid must not be empty")
    if until_ms is not None and until_ms <= now_ms:
        raise ValueError(f"mute store: until_ms ({until_ms}) must be after now ({now_ms})")


def check_window(window_ms: int) -> None:
    if window_ms <= 0:
        raise ValueError(f"mute store: window_ms must be positive, not {window_ms}")


class MuteStore(Protocol):
    async def mute(
        self, room_id: str, uid: str, until_ms: int, by: str, reason: str, *, now_ms: int
    ) -> Mute: ...

    async def unmute(self, room_id: str, uid: str, *, now_ms: int) -> bool: ...

    async def muted_until(self, room_id: str, uid: str, now_ms: int) -> int | None: ...

    async def list_mutes(self, room_id: str, now_ms: int) -> list[Mute]: ...

    async def ban(
        self, uid: str, until_ms: int | None, by: str, reason: str, *, now_ms: int
    ) -> Ban: ...

    async def unban(self, uid: str, *, now_ms: int) -> bool: ...

    async def banned(self, uid: str, now_ms: int) -> bool: ...

    async def list_bans(self, now_ms: int) -> list[Ban]: ...

    async def record_refusal(self, room_id: str, uid: str, now_ms: int, window_ms: int) -> int: ...
