"""CommerceService: red packets and lotteries over their stores, told to the room.

It validates requests, splits packets, draws lotteries, and publishes ``rp``,
``rp_done``, ``lot`` and ``lot_result`` to the room's channel. A sweeper calls
``sweep`` so that expired packets are refunded and due lotteries drawn, each exactly
once across processes (the stores' atomic claims decide who does it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from commerce.coupon_service import CouponService
from commerce.coupons import IssueOutcome, is_batch_id, tag_of
from commerce.draw import commitment, new_secret
from commerce.ids import new_lottery_id, new_packet_id, room_of
from commerce.lottery_store import LotteryStore
from commerce.models import (
    Condition,
    ConditionKind,
    EnterOutcome,
    GrabOutcome,
    GrabResult,
    Lottery,
    LotteryStatus,
    LotteryView,
    PacketStatus,
    PacketView,
    Prize,
    PrizeKind,
    RedPacket,
    Split,
)
from commerce.redpacket_store import RedPacketStore
from commerce.split import split_equal, split_random
from interact.floor.errors import BadRequest, Code, Conflict, Forbidden, InteractError, NotFound
from rooms.audience import AudienceRecorder
from rooms.broker import Broker

log = logging.getLogger("interact.commerce")

DAY_S = 24 * 3600
MAX_OPENS_IN_S = DAY_S
MIN_DURATION_S = 1
MAX_DURATION_S = 999 * 60
MAX_WINNERS = 10_000
DRAW_LEASE_MS = 30_000
# A coupon prize left unissued (a crash, Redis away) is looked at again this much later by
# any process's sweep; the drawing process normally issues it within milliseconds.
PRIZE_RETRY_MS = 30_000
MAX_PASSWORD_LEN = 20
# Open password items of a room are cached this long, so a comment costs no Redis call.
PASSWORD_CACHE_S = 1.0
META_CACHE = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class CommerceLimits:
    max_total_fen: int = 2_000_000
    max_count: int = 2000


def _raise_for(code: Code, message: str, **extra: Any) -> None:
    if code is Code.NOT_FOUND:
        raise NotFound(message, **extra)
    if code is Code.FORBIDDEN:
        raise Forbidden(message, **extra)
    raise Conflict(message, code, **extra)


def packet_message(view: PacketView) -> dict[str, Any]:
    """The ``rp`` announcement (and welcome snapshot) of an open packet."""
    p = view.packet
    msg: dict[str, Any] = {
        "t": "rp",
        "id": p.id,
        "count": p.count,
        "total_fen": p.total_fen,
        "left": view.left,
        "opens_at": p.opens_at,
        "expires_at": p.expires_at,
        "sender": p.sender,
        "split": p.split.value,
    }
    if p.condition is not None:
        # Viewers must see the password to type it: that is the point of the condition.
        msg["condition"] = {"kind": "password", "password": p.condition}
    return msg


def packet_body(view: PacketView) -> dict[str, Any]:
    """The REST view of a packet: state, claims, refund and the luckiest."""
    p = view.packet
    return {
        "id": p.id,
        "room": p.room_id,
        "status": view.status.value,
        "sender": p.sender,
        "total_fen": p.total_fen,
        "count": p.count,
        "split": p.split.value,
        "left": view.left,
        "claimed_fen": view.claimed_fen,
        "claims": [{"uid": c.uid, "amount_fen": c.amount_fen} for c in view.claims],
        "opens_at": p.opens_at,
        "expires_at": p.expires_at,
        "created_at": p.created_at,
        "condition": None if p.condition is None else {"kind": "password", "password": p.condition},
        "refund": None if view.refund is None else {
            "amount_fen": view.refund.amount_fen, "shares": view.refund.shares},
        "luckiest": None if view.luckiest is None else {
            "uid": view.luckiest.uid, "amount_fen": view.luckiest.amount_fen},
    }  # fmt: skip


def lottery_message(view: LotteryView) -> dict[str, Any]:
    """The ``lot`` announcement (and welcome snapshot) of an open lottery."""
    lot = view.lottery
    return {
        "t": "lot",
        "id": lot.id,
        "prize": lot.prize.to_dict(),
        "winners": lot.winners,
        "condition": lot.condition.to_dict(),
        "draw_at": lot.draw_at,
        "commit": lot.commit,
        "new_first": lot.new_first,
        "entries": view.entries,
    }


def lottery_body(view: LotteryView) -> dict[str, Any]:
    lot = view.lottery
    # "drawing" is an internal step (entries frozen, a process drawing); the wire says open.
    status = "drawn" if view.status is LotteryStatus.DRAWN else "open"
    return {
        "id": lot.id,
        "room": lot.room_id,
        "status": status,
        "prize": lot.prize.to_dict(),
        "winners_count": lot.winners,
        "condition": lot.condition.to_dict(),
        "draw_at": lot.draw_at,
        "created_at": lot.created_at,
        "commit": lot.commit,
        "new_first": lot.new_first,
        "entries": view.entries,
        "winners": list(view.winners),
        "proof": view.proof,
        "unused": view.unused,
        "drawn_at": view.drawn_at,
    }


class CommerceService:
    def __init__(
        self,
        *,
        packets: RedPacketStore,
        lotteries: LotteryStore,
        broker: Broker,
        limits: CommerceLimits | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.packets = packets
        self.lotteries = lotteries
        self.broker = broker
        self.limits = limits or CommerceLimits()
        self.clock = clock
        self._passwords: dict[str, tuple[float, list[tuple[str, str, str]]]] = {}
        self._meta: dict[str, Lottery] = {}
        # Exact audience counting (rooms.audience): grabbers and entrants, if kept.
        self.recorder: AudienceRecorder | None = None
        # (invited, invites) of a uid in a room: whether they entered through someone's
        # share token, and how many entered through theirs. Growth's figures, handed in
        # by the application (commerce does not import growth); None: such lotteries
        # cannot be entered.
        self.invite_facts: Callable[[str, str], Awaitable[tuple[bool, int]]] | None = None
        # Coupon prizes (``Prize.coupon_batch``), set by the application; None: lotteries
        # with one cannot be created.
        self.coupons: CouponService | None = None
        # Coupon prizes a batch could not give (sold out, ended, the winner at its limit).
        self.prizes_refused = 0

    # -- red packets -------------------------------------------------------------

    async def create_packet(
        self,
        room_id: str,
        sender: str,
        *,
        total_fen: object,
        count: object,
        split: object = "random",
        expires_in: object = DAY_S,
        opens_in: object = 0,
        condition: object = None,
    ) -> PacketView:
        try:
            kind = Split(split)
        except ValueError:
            raise BadRequest("split must be random or equal") from None
        expires_s = _seconds(expires_in, "expires_in", 1, 7 * DAY_S)
        opens_s = _seconds(opens_in, "opens_in", 0, MAX_OPENS_IN_S)
        if opens_s >= expires_s:
            raise BadRequest("opens_in must be shorter than expires_in")
        password = _password(condition)
        divide = split_random if kind is Split.RANDOM else split_equal
        shares = divide(
            total_fen,  # type: ignore[arg-type]  # validated inside, SplitError otherwise
            count,  # type: ignore[arg-type]
            max_total_fen=self.limits.max_total_fen,
            max_count=self.limits.max_count,
        )
        now = self.clock()
        packet = RedPacket(
            id=new_packet_id(room_id),
            room_id=room_id,
            sender=sender,
            total_fen=sum(shares),
            count=len(shares),
            split=kind,
            created_at=now,
            opens_at=now + opens_s * 1000,
            expires_at=now + expires_s * 1000,
            condition=password,
        )
        await self.packets.create(packet, shares)
        view = PacketView(packet=packet, status=PacketStatus.OPEN, left=len(shares), claims=())
        self._passwords.pop(room_id, None)
        await self._publish(room_id, packet_message(view))
        return view

    async def get_packet(self, packet_id: str) -> PacketView:
        view = await self.packets.get(packet_id)
        if view is None:
            raise NotFound(f"no red packet {packet_id[:80]}")
        return view

    async def grab(self, packet_id: str, uid: str, room_id: str | None = None) -> GrabResult:
        """One grab; ``room_id`` (over WebSocket) must be the packet's room."""
        if room_of(packet_id) is None or (room_id is not None and room_of(packet_id) != room_id):
            raise NotFound(f"no red packet {packet_id[:80]} in this room")
        result = await self.packets.grab(packet_id, uid, self.clock())
        if result.outcome is not GrabOutcome.OK:
            code = result.outcome.code or Code.CONFLICT
            extra = {} if result.amount_fen is None else {"amount_fen": result.amount_fen}
            _raise_for(code, _GRAB_MESSAGES[result.outcome], **extra)
        if self.recorder is not None:
            room = room_of(packet_id) or ""
            self.recorder.mark(room, "grab", uid)
            self.recorder.add(room, "grabs")
            self.recorder.add(room, "grab_fen", result.amount_fen or 0)
        if result.done:
            luckiest = None if result.luckiest is None else {
                "uid": result.luckiest.uid, "amount_fen": result.luckiest.amount_fen}  # fmt: skip
            await self._publish(
                room_of(packet_id) or "",
                {"t": "rp_done", "id": packet_id, "reason": "empty", "luckiest": luckiest},
            )
        return result

    # -- lotteries --------------------------------------------------------------

    async def create_lottery(
        self,
        room_id: str,
        *,
        prize: object,
        winners: object,
        condition: object,
        duration: object,
        new_first: object = False,
    ) -> LotteryView:
        if isinstance(prize, str):
            if not prize.strip():
                raise BadRequest("prize must be a title or an object with title and kind")
            parsed_prize = Prize(title=prize.strip(), kind=PrizeKind.GOODS)
        else:
            parsed_prize = Prize.from_dict(await self._titled(prize))
        if not _int_in(winners, 1, MAX_WINNERS):
            raise BadRequest(f"winners must be an integer from 1 to {MAX_WINNERS}")
        parsed_condition = Condition.from_dict(condition)
        seconds = _seconds(duration, "duration", MIN_DURATION_S, MAX_DURATION_S)
        if parsed_prize.coupon_batch is not None:
            count = winners if isinstance(winners, int) else 0
            draw_at = self.clock() + seconds * 1000
            await self._check_coupon_prize(parsed_prize.coupon_batch, room_id, count, draw_at)
        if parsed_condition.kind is ConditionKind.PASSWORD:
            parsed_condition = Condition(ConditionKind.PASSWORD, password=_password(condition))
        if parsed_condition.kind is ConditionKind.WATCH and (
            (parsed_condition.minutes or 0) * 60 > seconds
        ):
            raise BadRequest("watch minutes must fit within the lottery's duration")
        if not isinstance(new_first, bool):
            raise BadRequest("new_first must be true or false")
        secret = new_secret()
        now = self.clock()
        lottery = Lottery(
            id=new_lottery_id(room_id),
            room_id=room_id,
            prize=parsed_prize,
            winners=winners,  # type: ignore[arg-type]
            condition=parsed_condition,
            draw_at=now + seconds * 1000,
            created_at=now,
            commit=commitment(secret),
            new_first=new_first,
        )
        await self.lotteries.create(lottery, secret)
        view = LotteryView(lottery=lottery, status=LotteryStatus.OPEN, entries=0)
        self._passwords.pop(room_id, None)
        await self._publish(room_id, lottery_message(view))
        return view

    async def _titled(self, prize: object) -> object:
        """``{"coupon_batch": id}`` without a title takes the batch's title."""
        if not isinstance(prize, dict) or "coupon_batch" not in prize:
            return prize
        if self.coupons is None:
            raise BadRequest("coupon prizes are not available on this server")
        if "title" in prize:
            return prize
        batch = prize.get("coupon_batch")
        if not is_batch_id(batch):
            return prize  # Prize.from_dict names the problem
        try:
            view = await self.coupons.batch(batch)  # type: ignore[arg-type]
        except NotFound:
            raise BadRequest("prize.coupon_batch: no such coupon batch") from None
        return {**prize, "title": view.batch.title or "优惠券"}

    async def _check_coupon_prize(
        self, batch_id: str, room_id: str, winners: int, draw_at: int
    ) -> None:
        if self.coupons is None:
            raise BadRequest("coupon prizes are not available on this server")
        try:
            view = await self.coupons.batch(batch_id)
        except NotFound:
            raise BadRequest("prize.coupon_batch: no such coupon batch") from None
        tag = tag_of(batch_id)
        if tag not in (room_id, "~m"):
            raise BadRequest("prize.coupon_batch must be this room's batch or merchant-wide")
        if view.batch.terms.ends_at <= draw_at:
            raise BadRequest("prize.coupon_batch: the batch's validity ends before the draw")
        left = view.batch.total - view.issued
        if left < winners:
            # Checked now as a courtesy: issues meanwhile can still leave winners without
            # one (each such prize is refused, logged and counted, docs/fairness.md).
            raise BadRequest(
                f"prize.coupon_batch has {left} coupon(s) left, fewer than the winners",
                left=left,
            )

    async def entrants(self, lottery_id: str) -> list[str]:
        """The entrant list, published once drawn so anyone can re-run the draw."""
        view = await self.get_lottery(lottery_id)
        if view.status is not LotteryStatus.DRAWN:
            raise Conflict("entrants are published once the lottery is drawn")
        return await self.lotteries.entrants(lottery_id)

    async def get_lottery(self, lottery_id: str) -> LotteryView:
        view = await self.lotteries.get(lottery_id)
        if view is None:
            raise NotFound(f"no lottery {lottery_id[:80]}")
        return view

    async def enter(
        self,
        lottery_id: str,
        uid: str,
        *,
        room_id: str | None = None,
        watched_ms: int | None = None,
    ) -> int:
        """A click to join; ``watched_ms`` is the viewer's time in the room, server-counted."""
        if room_of(lottery_id) is None or (room_id is not None and room_of(lottery_id) != room_id):
            raise NotFound(f"no lottery {lottery_id[:80]} in this room")
        cond = (await self._lottery_meta(lottery_id)).condition
        if cond.kind is ConditionKind.PASSWORD:
            raise Forbidden("this lottery is entered by sending its password as a comment")
        if cond.kind is ConditionKind.WATCH:
            needed = (cond.minutes or 0) * 60_000
            if watched_ms is None or watched_ms < needed:
                raise Forbidden(
                    f"watch the room for {cond.minutes} minute(s) first",
                    watched_ms=watched_ms or 0,
                )
        if cond.kind in (ConditionKind.INVITED, ConditionKind.INVITES):
            if self.invite_facts is None:
                raise Forbidden("invite conditions are not available")
            invited, invites = await self.invite_facts(room_of(lottery_id) or "", uid)
            if cond.kind is ConditionKind.INVITED and not invited:
                raise Forbidden("enter the room through someone's invitation first")
            if cond.kind is ConditionKind.INVITES and invites < (cond.n or 0):
                raise Forbidden(f"invite {cond.n} viewer(s) into the room first", invites=invites)
        return await self._enter(lottery_id, uid)

    async def _lottery_meta(self, lottery_id: str) -> Lottery:
        """A lottery's record, which never changes once created: cached, so an entry costs
        one store step (the entry script itself checks that it is still open)."""
        lottery = self._meta.get(lottery_id)
        if lottery is None:
            lottery = (await self.get_lottery(lottery_id)).lottery
            if len(self._meta) >= META_CACHE:
                self._meta.clear()
            self._meta[lottery_id] = lottery
        return lottery

    async def _enter(self, lottery_id: str, uid: str) -> int:
        result = await self.lotteries.enter(lottery_id, uid, self.clock())
        if result.outcome is EnterOutcome.NOT_FOUND:
            raise NotFound(f"no lottery {lottery_id[:80]}")
        if result.outcome is EnterOutcome.CLOSED:
            raise Conflict("the lottery is closed", Code.EXPIRED)
        if result.outcome is EnterOutcome.ALREADY:
            raise Conflict("already entered", Code.CONFLICT, entries=result.entries)
        if self.recorder is not None:
            room = room_of(lottery_id) or ""
            self.recorder.mark(room, "lottery", uid)
            self.recorder.add(room, "lottery_entries")
        return result.entries

    async def draw(self, lottery_id: str, *, force: bool) -> LotteryView | None:
        """Draw once; None when another process holds or finished the draw."""
        claim = await self.lotteries.claim_draw(
            lottery_id, self.clock(), DRAW_LEASE_MS, force=force
        )
        if claim is None:
            return None
        result = claim.draw()
        coupon_prize = claim.lottery.prize.coupon_batch is not None
        if coupon_prize:
            # Before the result is stored: a crash after it leaves the lottery in the index,
            # and a sweep issues what is owed (idempotently), so no winner goes without.
            await self.lotteries.mark_prizes(lottery_id, self.clock() + PRIZE_RETRY_MS)
        if not await self.lotteries.finish_draw(lottery_id, result, self.clock()):
            return None
        view = await self.get_lottery(lottery_id)
        await self._publish(view.lottery.room_id, {
            "t": "lot_result",
            "id": lottery_id,
            "winners": list(view.winners),
            "proof": view.proof,
            "unused": view.unused,
            "entries": view.entries,
        })  # fmt: skip
        if coupon_prize:
            try:
                await self.issue_prizes(view)
            except Exception:
                # The draw stands; the sweep issues the prizes once the store answers.
                log.exception("coupon prizes of lottery %s left to the sweep", lottery_id)
        return view

    async def issue_prizes(self, view: LotteryView) -> int:
        """One coupon of the prize's batch to each winner of a drawn lottery, then out of
        the index; idempotent per lottery and winner. Returns the coupons issued now."""
        lottery = view.lottery
        batch = lottery.prize.coupon_batch
        if batch is None or self.coupons is None or view.status is not LotteryStatus.DRAWN:
            return 0
        issued = 0
        for uid in view.winners:
            result = await self.coupons.issue(
                batch, uid, reason="lottery", idem=f"lot:{lottery.id}:{uid}",
                ledger_room=lottery.room_id,
            )  # fmt: skip
            if result.outcome is IssueOutcome.OK:
                issued += 1
            elif result.outcome is not IssueOutcome.REPLAY:
                self.prizes_refused += 1
                log.warning(
                    "lottery %s: no coupon of %s for winner %s (%s)",
                    lottery.id, batch, uid, result.outcome.value,
                )  # fmt: skip
        await self.lotteries.prizes_done(lottery.id)
        return issued

    async def draw_now(self, lottery_id: str) -> LotteryView:
        """The operator's early draw; drawing a drawn lottery is a conflict."""
        view = await self.get_lottery(lottery_id)
        if view.status is not LotteryStatus.OPEN:
            raise Conflict("the lottery is already drawn or being drawn")
        drawn = await self.draw(lottery_id, force=True)
        if drawn is None:
            raise Conflict("the lottery is already drawn or being drawn")
        return drawn

    # -- comments, snapshots and the sweeper --------------------------------------

    async def on_comment(self, room_id: str, uid: str, text: str) -> None:
        """An accepted comment: it may carry the password of a packet or lottery."""
        for kind, item_id, password in await self._open_passwords(room_id):
            if password not in text:
                continue
            try:
                if kind == "rp":
                    await self.packets.add_eligible(item_id, uid)
                else:
                    await self._enter(item_id, uid)
            except InteractError:
                pass  # already entered, or closed meanwhile: the comment still stands

    async def _open_passwords(self, room_id: str) -> list[tuple[str, str, str]]:
        cached = self._passwords.get(room_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        items: list[tuple[str, str, str]] = []
        for packet in await self.packets.open_in_room(room_id):
            if packet.packet.condition:
                items.append(("rp", packet.packet.id, packet.packet.condition))
        for lot in await self.lotteries.open_in_room(room_id):
            cond = lot.lottery.condition
            if cond.kind is ConditionKind.PASSWORD and cond.password:
                items.append(("lot", lot.lottery.id, cond.password))
        self._passwords[room_id] = (now + PASSWORD_CACHE_S, items)
        return items

    async def snapshot(self, room_id: str) -> dict[str, list[dict[str, Any]]]:
        """Open packets and lotteries, for a late joiner's welcome."""
        now = self.clock()
        packets = [
            packet_message(v) for v in await self.packets.open_in_room(room_id)
            if v.packet.expires_at > now and v.left > 0
        ]  # fmt: skip
        lots = [lottery_message(v) for v in await self.lotteries.open_in_room(room_id)]
        return {"rp": packets, "lot": lots}

    async def sweep(self, limit: int = 100) -> int:
        """Refund expired packets and draw due lotteries; returns how many it closed."""
        now = self.clock()
        closed = 0
        for packet_id in await self.packets.due(now, limit):
            refund = await self.packets.expire(packet_id, now)
            if refund is not None:
                closed += 1
                await self._publish(refund.room_id, {
                    "t": "rp_done", "id": packet_id, "reason": "expired",
                    "refund_fen": refund.amount_fen, "left": refund.shares,
                })  # fmt: skip
        for lottery_id in await self.lotteries.due(now, limit):
            if await self.draw(lottery_id, force=False) is not None:
                closed += 1
        for lottery_id in await self.lotteries.prizes_due(now, limit):
            view = await self.lotteries.get(lottery_id)
            if view is None:
                await self.lotteries.prizes_done(lottery_id)
            elif view.status is not LotteryStatus.DRAWN:
                # Marked just before a draw that did not finish: the draw's retry comes first.
                await self.lotteries.mark_prizes(lottery_id, now + PRIZE_RETRY_MS)
            else:
                try:
                    await self.issue_prizes(view)
                except Exception:
                    log.exception("coupon prizes of lottery %s: retried later", lottery_id)
                    await self.lotteries.mark_prizes(lottery_id, now + PRIZE_RETRY_MS)
        return closed

    async def _publish(self, room_id: str, message: dict[str, Any]) -> None:
        await self.broker.publish(room_id, orjson.dumps(message))


_GRAB_MESSAGES = {
    GrabOutcome.ALREADY_GRABBED: "you already grabbed this red packet",
    GrabOutcome.NOT_OPEN: "the red packet is not open yet",
    GrabOutcome.EXPIRED: "the red packet has expired",
    GrabOutcome.FORBIDDEN: "send the red packet's password as a comment first",
    GrabOutcome.EMPTY: "the red packet is empty",
    GrabOutcome.NOT_FOUND: "no such red packet",
}


def _int_in(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _seconds(value: object, name: str, lo: int, hi: int) -> int:
    if not _int_in(value, lo, hi):
        raise BadRequest(f"{name} must be an integer number of seconds from {lo} to {hi}")
    return value  # type: ignore[return-value]


def _password(condition: object) -> str | None:
    if condition is None:
        return None
    parsed = Condition.from_dict(condition)
    if parsed.kind is not ConditionKind.PASSWORD:
        raise BadRequest("this condition can only be a password")
    password = (parsed.password or "").strip()
    if len(password) > MAX_PASSWORD_LEN:
        # It is typed as a comment, so it must fit in one.
        raise BadRequest(f"the password must be at most {MAX_PASSWORD_LEN} characters")
    return password
