"""Webhook events: the types, and the pure mapping from a ledger entry to the event a
merchant receives (docs/webhooks.md has every payload).

A ledger entry is ``(room, id, fields)`` as the money ledger stores it (string fields,
see docs/ledger.md); an event is a frozen ``WebhookEvent`` whose ``body`` is the exact
JSON bytes sent and signed, the same on every retry. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# Standard Webhooks advises small payloads; a receiver fetches anything bigger over REST.
MAX_PAYLOAD_BYTES = 20 * 1024

ORDER_TYPES = (
    "order.reserved",
    "order.paid",
    "order.cancelled",
    "order.expired",
    "order.payment_late",
    "order.refund_requested",
    "order.refunded",
)
ALERT_TYPES = ("alert.raised", "alert.cleared")
EVENT_TYPES: tuple[str, ...] = (
    *ORDER_TYPES,
    "red_packet.sent",
    "red_packet.finished",
    "lottery.opened",
    "lottery.drawn",
    "sale.opened",
    "sale.sold_out",
    "sale.closed",
    "room.started",
    "room.ended",
    *ALERT_TYPES,
)
# Sent only by POST /webhooks/{id}/test, to that endpoint, whatever it subscribed to.
TEST_TYPE = "webhook.test"

# Where an event stands in its order's life; fixed per type so that every endpoint, every
# retry and every replay carries the same number. Strictly increasing along each path:
#   reserved 1 → paid 2 → refund_requested 4 → refunded 5
#   reserved 1 → cancelled | expired 2 → payment_late 3 → refund_requested 4 → refunded 5
ORDER_SEQUENCE = {
    "order.reserved": 1,
    "order.paid": 2,
    "order.cancelled": 2,
    "order.expired": 2,
    "order.payment_late": 3,
    "order.refund_requested": 4,
    "order.refunded": 5,
}

_EVENT_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event as delivered: ``id`` is the ``webhook-id`` header, ``body`` the payload."""

    id: str
    type: str
    room: str | None
    # Events of one subject (an order, a packet, a lottery, a sale, a room) reach an
    # endpoint in the order they happened.
    subject: str
    ts_ms: int
    body: bytes


def valid_event_id(event_id: str) -> bool:
    return isinstance(event_id, str) and bool(_EVENT_ID_RE.fullmatch(event_id))


def ledger_event_id(room: str, entry_id: str) -> str:
    """The webhook id of a ledger entry: stable, and unique across rooms."""
    return f"evt_{room}_{entry_id}"


def iso_ms(ts_ms: int) -> str:
    """Unix ms as RFC 3339 UTC with milliseconds (Standard Webhooks' ``timestamp``)."""
    import datetime as _dt

    moment = _dt.datetime.fromtimestamp(ts_ms / 1000, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def encode(event_type: str, ts_ms: int, data: Mapping[str, Any]) -> bytes:
    """The payload: Standard Webhooks' ``{"type", "timestamp", "data"}``."""
    return orjson.dumps({"type": event_type, "timestamp": iso_ms(ts_ms), "data": dict(data)})


def make_event(
    event_id: str,
    event_type: str,
    *,
    room: str | None,
    subject: str,
    ts_ms: int,
    data: Mapping[str, Any],
) -> WebhookEvent:
    """An event with its payload; a payload over ``MAX_PAYLOAD_BYTES`` is ``ValueError``."""
    body = encode(event_type, ts_ms, data)
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"{event_type} payload is {len(body)} bytes, over {MAX_PAYLOAD_BYTES}")
    return WebhookEvent(event_id, event_type, room, subject, ts_ms, body)


def _int(fields: Mapping[str, str], name: str) -> int | None:
    raw = fields.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _order_data(fields: Mapping[str, str], room: str, event_type: str) -> dict[str, Any]:
    return {
        "order": fields.get("order", ""),
        "sale": fields.get("sale", ""),
        "room": room,
        "uid": fields.get("uid", ""),
        "qty": _int(fields, "qty"),
        "amount_fen": _int(fields, "amount_fen"),
        "sequence": ORDER_SEQUENCE[event_type],
    }


def _winners_fitting(head: dict[str, Any], winners: list[str], ts_ms: int) -> dict[str, Any]:
    """``head`` with as many winners as fit under the cap (all of them when they do)."""
    full = {**head, "winners": winners, "winners_count": len(winners), "winners_truncated": False}
    if len(encode("lottery.drawn", ts_ms, full)) <= MAX_PAYLOAD_BYTES:
        return full
    lo, hi = 0, len(winners)  # the largest prefix that fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        trial = {**full, "winners": winners[:mid], "winners_truncated": True}
        if len(encode("lottery.drawn", ts_ms, trial)) <= MAX_PAYLOAD_BYTES:
            lo = mid
        else:
            hi = mid - 1
    return {**full, "winners": winners[:lo], "winners_truncated": True}


def sold_out_event_id(sale: str) -> str:
    """``sale.sold_out``'s id is the sale's: however often its stock runs out (units come
    back when unpaid orders expire), a receiver's dedupe keeps one per sale."""
    return f"evt_{sale}.sold_out"


def from_ledger(
    room: str,
    entry_id: str,
    fields: Mapping[str, str],
    *,
    refund_settles_at_once: bool = False,
    lottery_proof: Mapping[str, Any] | None = None,
) -> list[WebhookEvent]:
    """The webhook events of one ledger entry (none for entries merchants are not sent,
    such as a single red packet claim).

    ``refund_settles_at_once``: the dev payment provider settles a refund when it accepts
    it and writes no ``refund_settled``, so its ``order_refunded`` also yields the
    ``order.refunded`` (id suffixed ``.settled``).
    ``lottery_proof``: for ``lot_drawn``, the drawn lottery's ``commit`` and revealed
    ``proof`` (docs/fairness.md), read from the lottery's record by the caller.
    """
    kind = fields.get("type", "")
    ts = _int(fields, "ts") or int(entry_id.partition("-")[0] or 0)
    event_id = ledger_event_id(room, entry_id)

    def one(
        event_type: str, subject: str, data: dict[str, Any], *, eid: str = event_id
    ) -> list[WebhookEvent]:
        return [make_event(eid, event_type, room=room, subject=subject, ts_ms=ts, data=data)]

    order = fields.get("order", "")
    if kind == "order_reserved":
        data = {**_order_data(fields, room, "order.reserved"), "deadline": _int(fields, "deadline")}
        events = one("order.reserved", order, data)
        sale = fields.get("sale", "")
        # "left" is the sale's stock after this reservation, counted in the reserving
        # script: exactly one reservation takes it to 0, however many race for the last.
        if fields.get("left") == "0" and valid_event_id(sold_out_event_id(sale)):
            sold_out = {"sale": sale, "room": room, "at": ts, "last_order": order}
            events += one("sale.sold_out", sale, sold_out, eid=sold_out_event_id(sale))
        return events
    if kind in ("order_paid", "order_cancelled", "order_expired"):
        event_type = "order." + kind.removeprefix("order_")
        data = _order_data(fields, room, event_type)
        if kind == "order_paid":
            data["transaction_id"] = fields.get("transaction_id", "")
        return one(event_type, order, data)
    if kind == "payment_late":
        data = {
            **_order_data(fields, room, "order.payment_late"),
            "transaction_id": fields.get("transaction_id", ""),
            "status": fields.get("status", ""),
        }
        return one("order.payment_late", order, data)
    if kind == "order_refunded":
        data = {
            **_order_data(fields, room, "order.refund_requested"),
            "out_refund_no": fields.get("out_refund_no", ""),
            "restock": fields.get("restock") == "1",
            "late": fields.get("late") == "1",
        }
        events = one("order.refund_requested", order, data)
        if refund_settles_at_once:
            settled = {
                **_order_data(fields, room, "order.refunded"),
                "out_refund_no": data["out_refund_no"],
                "state": "success",
            }
            events += one("order.refunded", order, settled, eid=event_id + ".settled")
        return events
    if kind == "refund_settled":
        data = {
            **_order_data(fields, room, "order.refunded"),
            "out_refund_no": fields.get("out_refund_no", ""),
            "state": fields.get("state", ""),
        }
        return one("order.refunded", order, data)
    packet = fields.get("packet", "")
    if kind == "rp_created":
        data = {
            "packet": packet,
            "room": room,
            "sender": fields.get("sender", ""),
            "total_fen": _int(fields, "total_fen"),
            "count": _int(fields, "count"),
            "split": fields.get("split", ""),
        }
        return one("red_packet.sent", packet, data)
    if kind == "rp_done":
        data = {
            "packet": packet,
            "room": room,
            "outcome": "claimed",
            "luckiest": fields.get("luckiest", ""),
            "luckiest_fen": _int(fields, "amount_fen"),
            "refund_fen": 0,
            "unclaimed_shares": 0,
        }
        return one("red_packet.finished", packet, data)
    if kind == "rp_refund":
        data = {
            "packet": packet,
            "room": room,
            "outcome": "expired",
            "sender": fields.get("sender", ""),
            "refund_fen": _int(fields, "amount_fen"),
            "unclaimed_shares": _int(fields, "shares"),
        }
        return one("red_packet.finished", packet, data)
    lottery = fields.get("lottery", "")
    if kind == "lot_created":
        data = {
            "lottery": lottery,
            "room": room,
            "commit": fields.get("commit", ""),
            "winners_count": _int(fields, "winners"),
            "prize_kind": fields.get("prize_kind", ""),
            "prize_fen": _int(fields, "prize_fen"),
            "draw_at": _int(fields, "draw_at"),
        }
        return one("lottery.opened", lottery, data)
    if kind == "lot_drawn":
        raw = fields.get("winners", "")
        head = {
            "lottery": lottery,
            "room": room,
            "entries": _int(fields, "entries"),
            "unused": _int(fields, "unused"),
            "prize_kind": fields.get("prize_kind", ""),
            "prize_fen": _int(fields, "prize_fen"),
            "proof": _proof(lottery_proof),
            "record": f"/api/v1/lotteries/{lottery}",
        }
        return one(
            "lottery.drawn", lottery, _winners_fitting(head, raw.split(",") if raw else [], ts)
        )
    sale = fields.get("sale", "")
    if kind == "sale_created":
        data = {
            "sale": sale,
            "room": room,
            "sku": fields.get("sku", ""),
            "price_fen": _int(fields, "price_fen"),
            "stock": _int(fields, "stock"),
            "limit": _int(fields, "limit"),
            "starts_at": _int(fields, "starts_at"),
            "ends_at": _int(fields, "ends_at"),
            "reserve_ms": _int(fields, "reserve_ms"),
        }
        return one("sale.opened", sale, data)
    if kind == "sale_closed":
        return one(
            "sale.closed", sale, {"sale": sale, "room": room, "ends_at": _int(fields, "ends_at")}
        )
    if kind in ("room_started", "room_ended"):
        event_type = "room." + kind.removeprefix("room_")
        return one(event_type, room, {"room": room, "at": ts})
    return []


# What a drawn lottery's proof holds (docs/fairness.md §"The proof"), all short strings or
# integers, so a payload always has room for them: only the winners list is truncated.
PROOF_FIELDS = ("commit", "secret", "entries_sha256", "entries", "prior_winners_sha256")


def _proof(found: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not found:
        return None
    return {
        k: v
        for k in PROOF_FIELDS
        if isinstance(v := found.get(k), str | int) and len(str(v)) <= 128
    }


def alert_event(state: str, alert_id: str, ts_ms: int, data: Mapping[str, Any]) -> WebhookEvent:
    """``alert.raised`` or ``alert.cleared`` (``state`` ``raised``/``cleared``) for the
    alert ``alert_id``; ``data`` is the alert as its producer describes it."""
    if state not in ("raised", "cleared"):
        raise ValueError("an alert is raised or cleared")
    room = data.get("room")
    room = room if isinstance(room, str) and room else None
    event_id = f"alert_{alert_id}_{state}"
    if not valid_event_id(event_id):
        raise ValueError(f"bad alert id {alert_id!r}")
    payload = {**data, "alert": alert_id, "state": state}
    return make_event(
        event_id, f"alert.{state}", room=room, subject=f"alert:{alert_id}", ts_ms=ts_ms,
        data=payload,
    )  # fmt: skip


def test_event(event_id: str, endpoint_id: str, ts_ms: int) -> WebhookEvent:
    """The event of ``POST /webhooks/{id}/test``."""
    data = {"endpoint": endpoint_id, "message": "a test event from Interact"}
    return make_event(event_id, TEST_TYPE, room=None, subject=event_id, ts_ms=ts_ms, data=data)
