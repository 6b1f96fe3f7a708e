"""Red packet and lottery records, the outcomes of their atomic steps, and their states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from commerce.coupons import is_batch_id
from commerce.draw import DrawResult, draw
from interact.floor.errors import BadRequest, Code


class ModelError(BadRequest, ValueError):
    """A prize or condition is not allowed (wire code ``bad_request``)."""


# --- red packets -------------------------------------------------------------------------


class Split(StrEnum):
    RANDOM = "random"
    EQUAL = "equal"


class PacketStatus(StrEnum):
    OPEN = "open"
    DONE = "done"  # every share was claimed
    EXPIRED = "expired"  # closed at its deadline; the rest went back to the sender


class GrabOutcome(StrEnum):
    OK = "ok"
    ALREADY_GRABBED = "already_grabbed"
    NOT_OPEN = "not_open"
    EXPIRED = "expired"
    FORBIDDEN = "forbidden"
    EMPTY = "empty"
    NOT_FOUND = "not_found"

    @property
    def code(self) -> Code | None:
        """The wire code of a refused grab (None for ``ok``); ``not_open`` is ``conflict``."""
        return _GRAB_CODES[self]


_GRAB_CODES: dict[GrabOutcome, Code | None] = {
    GrabOutcome.OK: None,
    GrabOutcome.ALREADY_GRABBED: Code.ALREADY_GRABBED,
    GrabOutcome.NOT_OPEN: Code.CONFLICT,
    GrabOutcome.EXPIRED: Code.EXPIRED,
    GrabOutcome.FORBIDDEN: Code.FORBIDDEN,
    GrabOutcome.EMPTY: Code.EMPTY,
    GrabOutcome.NOT_FOUND: Code.NOT_FOUND,
}


@dataclass(frozen=True, slots=True)
class RedPacket:
    """What the sender asked for; ``condition`` is the password a comment must carry, if any."""

    id: str
    room_id: str
    sender: str
    total_fen: int
    count: int
    split: Split
    created_at: int
    opens_at: int
    expires_at: int
    condition: str | None = None


@dataclass(frozen=True, slots=True)
class PacketClaim:
    uid: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Luckiest:
    """The largest share of a finished packet (ties: the earliest claim)."""

    uid: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class GrabResult:
    """``amount_fen`` is set for ``ok`` and ``already_grabbed`` (the first amount), else None.

    ``left`` is the shares still unclaimed after this grab; ``done`` and ``luckiest`` are set
    only on the grab that took the last share.
    """

    outcome: GrabOutcome
    amount_fen: int | None = None
    left: int = 0
    done: bool = False
    luckiest: Luckiest | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    """What went back to the sender when a packet expired: ``shares`` shares, ``amount_fen``."""

    packet_id: str
    room_id: str
    sender: str
    amount_fen: int
    shares: int


@dataclass(frozen=True, slots=True)
class PacketView:
    packet: RedPacket
    status: PacketStatus
    left: int
    claims: tuple[PacketClaim, ...]  # in claim order
    refund: Refund | None = None
    luckiest: Luckiest | None = None  # only once status is done

    @property
    def claimed_fen(self) -> int:
        return sum(c.amount_fen for c in self.claims)


# --- lotteries ---------------------------------------------------------------------------


class PrizeKind(StrEnum):
    GOODS = "goods"
    COUPON = "coupon"
    CASH = "cash"


class ConditionKind(StrEnum):
    PASSWORD = "password"  # a comment containing the password enters
    ENTER = "enter"  # an explicit ``enter``
    WATCH = "watch"  # ``minutes`` of watching, counted by the server
    INVITED = "invited"  # entered the room through someone's share token (growth)
    INVITES = "invites"  # brought ``n`` invitees who entered through their tokens (growth)


class LotteryStatus(StrEnum):
    OPEN = "open"
    DRAWING = "drawing"  # entries frozen; one process holds the draw under a lease
    DRAWN = "drawn"


class EnterOutcome(StrEnum):
    OK = "ok"
    ALREADY = "already"
    CLOSED = "closed"
    NOT_FOUND = "not_found"


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True, slots=True)
class Prize:
    title: str
    kind: PrizeKind
    amount_fen: int | None = None  # cash prizes (per winner), optional for the others
    # A coupon prize of this batch: each winner is issued one coupon after the draw.
    # None for a coupon prize handed over otherwise (owed, as goods are).
    coupon_batch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"title": self.title, "kind": self.kind.value}
        if self.amount_fen is not None:
            out["amount_fen"] = self.amount_fen
        if self.coupon_batch is not None:
            out["coupon_batch"] = self.coupon_batch
        return out

    @classmethod
    def from_dict(cls, data: object) -> Prize:
        """Parse a request's ``prize``; ``ModelError`` when it is malformed."""
        if not isinstance(data, Mapping):
            raise ModelError("prize must be an object")
        unknown = set(data) - {"title", "kind", "amount_fen", "coupon_batch"}
        if unknown:
            raise ModelError(f"unknown field 'prize.{sorted(unknown)[0][:40]}'")
        batch = data.get("coupon_batch")
        # A batch names the kind: {"coupon_batch": id} alone is a coupon prize.
        default_kind = PrizeKind.COUPON.value if batch is not None else None
        title, amount = data.get("title"), data.get("amount_fen")
        kind = data.get("kind", default_kind)
        if batch is not None:
            if kind != PrizeKind.COUPON:
                raise ModelError("prize.coupon_batch belongs to a coupon prize")
            if not is_batch_id(batch):
                raise ModelError("prize.coupon_batch must be a coupon batch id")
        if not isinstance(title, str) or not title.strip():
            raise ModelError("prize.title must be a non-empty string")
        if kind not in list(PrizeKind):
            raise ModelError(f"prize.kind must be one of {', '.join(PrizeKind)}")
        if amount is not None and not _positive_int(amount):
            raise ModelError("prize.amount_fen must be a positive integer")
        if kind == PrizeKind.CASH and amount is None:
            raise ModelError("a cash prize needs amount_fen")
        return cls(title=title, kind=PrizeKind(kind), amount_fen=amount, coupon_batch=batch)


@dataclass(frozen=True, slots=True)
class Condition:
    kind: ConditionKind
    password: str | None = None  # kind password
    minutes: int | None = None  # kind watch
    n: int | None = None  # kind invites

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.kind is ConditionKind.PASSWORD:
            out["password"] = self.password
        elif self.kind is ConditionKind.WATCH:
            out["minutes"] = self.minutes
        elif self.kind is ConditionKind.INVITES:
            out["n"] = self.n
        return out

    @classmethod
    def from_dict(cls, data: object) -> Condition:
        """Parse a request's ``condition``; ``ModelError`` when it is malformed."""
        if not isinstance(data, Mapping):
            raise ModelError("condition must be an object")
        kind = data.get("kind")
        if kind == ConditionKind.PASSWORD:
            password = data.get("password")
            if not isinstance(password, str) or not password.strip():
                raise ModelError("condition.password must be a non-empty string")
            return cls(ConditionKind.PASSWORD, password=password)
        if kind == ConditionKind.ENTER:
            return cls(ConditionKind.ENTER)
        if kind == ConditionKind.WATCH:
            minutes = data.get("minutes")
            if not _positive_int(minutes):
                raise ModelError("condition.minutes must be a positive integer")
            return cls(ConditionKind.WATCH, minutes=minutes)
        if kind == ConditionKind.INVITED:
            return cls(ConditionKind.INVITED)
        if kind == ConditionKind.INVITES:
            n = data.get("n")
            if not _positive_int(n) or n > 1000:
                raise ModelError("condition.n must be an integer from 1 to 1000")
            return cls(ConditionKind.INVITES, n=n)
        raise ModelError(f"condition.kind must be one of {', '.join(ConditionKind)}")


@dataclass(frozen=True, slots=True)
class Lottery:
    """A lucky bag; ``commit`` is hex sha256 of its secret, which the store keeps apart."""

    id: str
    room_id: str
    prize: Prize
    winners: int
    condition: Condition
    draw_at: int
    created_at: int
    commit: str
    new_first: bool = False  # viewers who have not won in this room yet rank first


@dataclass(frozen=True, slots=True)
class LotteryView:
    """A lottery and how far it got; the result fields are set only once it is drawn."""

    lottery: Lottery
    status: LotteryStatus
    entries: int
    winners: tuple[str, ...] = ()
    proof: dict[str, str | int] | None = None
    unused: int | None = None
    drawn_at: int | None = None


@dataclass(frozen=True, slots=True)
class EnterResult:
    outcome: EnterOutcome
    entries: int  # entrants after this call (0 for not_found)


@dataclass(frozen=True, slots=True)
class DrawClaim:
    """The right to draw one lottery until ``lease_until``, with everything the draw needs."""

    lottery: Lottery
    secret: bytes = field(repr=False)
    entrants: tuple[str, ...]  # sorted; frozen once the lottery left ``open``
    prior_winners: frozenset[str]  # of the room, at claim time
    lease_until: int

    def draw(self) -> DrawResult:
        """Run ``commerce.draw.draw`` on the claimed inputs (prior winners last if new_first)."""
        return draw(
            self.secret,
            self.lottery.id,
            self.entrants,
            self.lottery.winners,
            exclude_first=self.prior_winners if self.lottery.new_first else None,
        )
