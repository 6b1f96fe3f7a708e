"""LotteryStore: entries, the committed secret and drawing exactly once.

Contract:
- ``create(lottery, secret)`` stores a lottery with its secret (``commitment(secret)`` must
  equal ``lottery.commit``, the id must be of ``room_id`` and ``winners ≥ 1``: else
  ``ValueError``, a caller bug); an id that exists is ``Conflict``. It joins the room's
  set of undrawn lotteries and ``lot_created`` goes to the ledger in the same atomic step;
  the global deadline index is written in a second step.
- The secret never leaves the store while the lottery is undrawn except inside a
  ``DrawClaim``; ``get`` and ``open_in_room`` never carry it (the proof reveals it once
  drawn).
- ``enter(lottery_id, uid, now_ms)`` is atomic: unknown → ``not_found``; status not open or
  ``now ≥ draw_at`` → ``closed``; else the uid is added once: ``ok`` the first time,
  ``already`` after. ``entries`` is the count after the call. Conditions (password, watch
  time) are the caller's to check before calling.
- ``claim_draw(lottery_id, now_ms, lease_ms, force=False)`` atomically moves an open
  lottery whose ``draw_at ≤ now`` (any open one with ``force``) to ``drawing`` with a lease
  until ``now + lease_ms``, or re-claims a ``drawing`` one whose lease ended, and returns
  the secret, the frozen entrants (sorted) and the room's prior winners. Otherwise (unknown,
  not due, lease held, drawn) None. Entries are frozen from the claim on, so a re-claim
  after a crash redraws the same result (unless the room's prior winners changed in
  between, which the proof records).
- ``finish_draw(lottery_id, result, now_ms)`` atomically stores the result of a lottery in
  ``drawing`` (winners, proof, unused; status ``drawn``), adds the winners to the room's
  prior winners, leaves the room's undrawn set and appends ``lot_drawn``; True. The first
  finish wins: for any other status (open, drawn, unknown) it returns False and changes
  nothing.
- ``due(now_ms, limit)``: up to ``limit`` ids of lotteries to draw now — open with
  ``draw_at ≤ now``, or drawing with a lease ended by ``now`` — earliest first; drawn ids
  are dropped from the index on the way.
- ``open_in_room``: the room's undrawn lotteries (open or drawing), oldest first.
- Coupon prizes still to issue (``Prize.coupon_batch``): ``mark_prizes(lottery_id, at_ms)``
  puts the lottery in a global index due at ``at_ms`` (or moves it there);
  ``prizes_due(now_ms, limit)`` gives up to ``limit`` ids due by ``now``, earliest first,
  without removing them; ``prizes_done(lottery_id)`` removes one. The index only says
  where to look: the issue itself is idempotent per lottery and winner (the coupon store's
  key), so an id offered twice costs a replay, never a second coupon.
"""

from __future__ import annotations

from typing import Protocol

from commerce.draw import DrawResult, commitment
from commerce.ids import room_of
from commerce.models import DrawClaim, EnterResult, Lottery, LotteryView


class LotteryStore(Protocol):
    async def create(self, lottery: Lottery, secret: bytes) -> None: ...

    async def get(self, lottery_id: str) -> LotteryView | None: ...

    async def open_in_room(self, room_id: str) -> list[LotteryView]: ...

    async def entrants(self, lottery_id: str) -> list[str]: ...

    async def enter(self, lottery_id: str, uid: str, now_ms: int) -> EnterResult: ...

    async def claim_draw(
        self, lottery_id: str, now_ms: int, lease_ms: int, *, force: bool = False
    ) -> DrawClaim | None: ...

    async def finish_draw(self, lottery_id: str, result: DrawResult, now_ms: int) -> bool: ...

    async def due(self, now_ms: int, limit: int) -> list[str]: ...

    async def mark_prizes(self, lottery_id: str, at_ms: int) -> None: ...

    async def prizes_due(self, now_ms: int, limit: int) -> list[str]: ...

    async def prizes_done(self, lottery_id: str) -> None: ...


def check_new_lottery(lottery: Lottery, secret: bytes) -> None:
    """Raise ``ValueError`` unless ``lottery`` and ``secret`` belong together and to its room."""
    if room_of(lottery.id) != lottery.room_id:
        raise ValueError(f"lottery id {lottery.id!r} is not of room {lottery.room_id!r}")
    if not isinstance(secret, bytes) or commitment(secret) != lottery.commit:
        raise ValueError("the secret does not match the lottery's commit")
    if lottery.winners < 1:
        raise ValueError("a lottery needs at least one winner")
