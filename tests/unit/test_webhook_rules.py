"""webhooks.events, signing, schedule and urls: the pure rules, checked against the
``standardwebhooks`` package where it has an answer."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from webhooks import signing
from webhooks.events import (
    EVENT_TYPES,
    MAX_PAYLOAD_BYTES,
    ORDER_SEQUENCE,
    alert_event,
    from_ledger,
)
from webhooks.schedule import MAX_ATTEMPTS, RETRY_DELAYS_S, Verdict, decide, retry_after_s
from webhooks.urls import UrlRefused, check_address, check_url

ROOM = "r9f8325a7e20b"
ORDER = {"order": f"{ROOM}.od1", "sale": f"{ROOM}.sl1", "uid": "u1", "qty": "2",
         "amount_fen": "19800", "ts": "1795657932770"}  # fmt: skip


def test_secret_round_trip_and_bounds() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(signing.secret_bytes(secret)) == 32
    for size in (23, 65):
        bad = "whsec_" + base64.b64encode(b"x" * size).decode()
        with pytest.raises(ValueError, match="24 to 64"):
            signing.secret_bytes(bad)
    with pytest.raises(ValueError):
        signing.secret_bytes("sk_" + base64.b64encode(b"x" * 32).decode())


@given(st.binary(max_size=2000), st.integers(0, 2**35), st.text("abc_-0123", min_size=1))
def test_signature_matches_standardwebhooks(body: bytes, ts: int, msg_id: str) -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(40))).decode()
    from datetime import UTC, datetime

    theirs = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body)
    assert signing.signature(secret, msg_id, ts, body) == theirs


def test_rotation_headers_verify_with_either_secret() -> None:
    import time

    old, new = signing.new_secret(), signing.new_secret()
    now = int(time.time())
    headers = signing.headers([new, old], "evt_1", now, b'{"a":1}')
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(b'{"a":1}', headers) == {"a": 1}
    with pytest.raises(Exception, match="signature"):
        Webhook(signing.new_secret()).verify(b'{"a":1}', headers)


def test_order_life_maps_with_increasing_sequence() -> None:
    life = [("order_reserved", {"deadline": "1"}), ("order_paid", {"transaction_id": "t"}),
            ("order_refunded", {"out_refund_no": "rf", "restock": "1", "late": "0"}),
            ("refund_settled", {"out_refund_no": "rf", "state": "success"})]  # fmt: skip
    seqs, types = [], []
    for i, (kind, extra) in enumerate(life):
        [event] = from_ledger(ROOM, f"17956579327{i}0-0", {"type": kind, **ORDER, **extra})
        data = orjson.loads(event.body)["data"]
        assert event.subject == ORDER["order"] and event.id == f"evt_{ROOM}_17956579327{i}0-0"
        assert data["qty"] == 2 and data["amount_fen"] == 19800
        seqs.append(data["sequence"])
        types.append(event.type)
    assert types == ["order.reserved", "order.paid", "order.refund_requested", "order.refunded"]
    assert seqs == sorted(set(seqs))


def test_dev_refund_also_settles() -> None:
    fields = {"type": "order_refunded", **ORDER, "out_refund_no": "rf", "restock": "0",
              "late": "1"}  # fmt: skip
    assert [e.type for e in from_ledger(ROOM, "1-0", fields)] == ["order.refund_requested"]
    both = from_ledger(ROOM, "1-0", fields, refund_settles_at_once=True)
    assert [e.type for e in both] == ["order.refund_requested", "order.refunded"]
    assert both[1].id == both[0].id + ".settled"
    assert orjson.loads(both[0].body)["data"]["late"] is True


def test_claims_are_not_sent_and_room_events_are() -> None:
    assert from_ledger(ROOM, "1-0", {"type": "rp_claim", "packet": "p", "uid": "u"}) == []
    [started] = from_ledger(ROOM, "5-0", {"type": "room_started", "ts": "5"})
    assert started.type == "room.started" and started.subject == ROOM


PROOF = {"commit": "9c" * 32, "secret": "4f" * 32, "entries_sha256": "9f" * 32, "entries": 9}


def test_drawn_lottery_carries_winners_and_proof() -> None:
    fields = {"type": "lot_drawn", "lottery": f"{ROOM}.lt1", "winners": "u4,u3", "entries": "5",
              "unused": "0", "prize_kind": "goods", "prize_fen": "", "ts": "7"}  # fmt: skip
    junk = {**PROOF, "prior_winners_sha256": "ab" * 32, "extra": "x", "secret2": ["no"]}
    [event] = from_ledger(ROOM, "7-0", fields, lottery_proof=junk)
    data = orjson.loads(event.body)["data"]
    assert data["winners"] == ["u4", "u3"] and data["winners_truncated"] is False
    assert data["proof"] == {**PROOF, "prior_winners_sha256": "ab" * 32}
    assert data["record"] == f"/api/v1/lotteries/{ROOM}.lt1"
    [unknown] = from_ledger(ROOM, "7-0", fields)  # the record was not found
    assert orjson.loads(unknown.body)["data"]["proof"] is None


def test_sold_out_follows_the_reservation_that_took_the_last_unit() -> None:
    sale = f"{ROOM}.sl1"
    base = {"type": "order_reserved", **ORDER, "sale": sale, "deadline": "9", "ts": "5"}
    assert [e.type for e in from_ledger(ROOM, "5-0", {**base, "left": "1"})] == ["order.reserved"]
    assert [e.type for e in from_ledger(ROOM, "5-1", base)] == ["order.reserved"]  # older entry
    reserved, sold_out = from_ledger(ROOM, "5-2", {**base, "left": "0"})
    assert sold_out.type == "sale.sold_out" and sold_out.subject == sale
    assert orjson.loads(sold_out.body)["data"] == {
        "sale": sale,
        "room": ROOM,
        "at": 5,
        "last_order": ORDER["order"],
    }
    # Sold out again after stock came back: the same id, so receivers keep one.
    again = from_ledger(ROOM, "9-0", {**base, "left": "0", "ts": "9"})[1]
    assert again.id == sold_out.id == f"evt_{sale}.sold_out" != reserved.id


@given(st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=64),
                max_size=3000))  # fmt: skip
def test_drawn_lottery_fits_the_cap(winners: list[str]) -> None:
    fields = {"type": "lot_drawn", "lottery": f"{ROOM}.lt1", "winners": ",".join(winners)}
    fields |= {"entries": "9", "unused": "0", "prize_kind": "cash", "prize_fen": "1", "ts": "7"}
    [event] = from_ledger(ROOM, "7-0", fields, lottery_proof=PROOF)
    data = orjson.loads(event.body)["data"]
    assert len(event.body) <= MAX_PAYLOAD_BYTES
    assert data["proof"] == PROOF  # never truncated: only the winners list is
    assert data["winners_count"] == len(winners)
    assert data["winners"] == winners[: len(data["winners"])]
    assert data["winners_truncated"] == (len(data["winners"]) < len(winners))


@given(st.sampled_from(sorted(ORDER_SEQUENCE)), st.integers(0, 2**41))
def test_every_event_is_typed_json_and_small(kind: str, ts: int) -> None:
    renamed = {"order.refund_requested": "order_refunded", "order.refunded": "refund_settled"}
    renamed["order.payment_late"] = "payment_late"
    ledger_kind = renamed.get(kind, kind.replace(".", "_"))
    events = from_ledger(ROOM, f"{ts}-0", {"type": ledger_kind, **ORDER, "ts": str(ts)})
    assert events and all(e.type in EVENT_TYPES for e in events)
    payload = orjson.loads(events[0].body)
    assert set(payload) == {"type", "timestamp", "data"} and payload["type"] == kind


def test_alert_hook_events() -> None:
    raised = alert_event("raised", "a1", 10, {"room": ROOM, "name": "pay_fail"})
    assert raised.type == "alert.raised" and raised.room == ROOM
    assert alert_event("cleared", "a1", 11, {}).id != raised.id
    with pytest.raises(ValueError):
        alert_event("raised", "bad id with spaces", 1, {})


def test_schedule() -> None:
    assert RETRY_DELAYS_S == (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert decide(1, 204, None, 0).verdict is Verdict.SUCCEEDED
    assert decide(1, 500, None, 1000) == decide(1, None, None, 1000)
    assert decide(1, 500, None, 1000).next_at_ms == 6000
    assert decide(2, 302, None, 0).next_at_ms == 300_000
    assert decide(MAX_ATTEMPTS, 500, None, 0).verdict is Verdict.DEAD
    gone = decide(1, 410, None, 0)
    assert gone.disable and gone.verdict is Verdict.RETRY
    assert decide(1, 503, "7", 0).next_at_ms == 7000  # above the 5 s of the schedule
    assert decide(1, 503, "1", 0).next_at_ms == 5000  # never sooner than the schedule
    assert decide(1, 500, "60", 0).next_at_ms == 5000  # only 429/502/503/504 ask to wait
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000) == 10
    assert retry_after_s("soon", 0) is None


def test_urls() -> None:
    assert check_url("https://erp.example.com/h?x=1", allow_http=False).path == "/h?x=1"
    with pytest.raises(UrlRefused, match="https"):
        check_url("http://erp.example.com/h", allow_http=True)
    with pytest.raises(UrlRefused, match="https"):
        check_url("http://localhost:8080/h", allow_http=False)
    assert check_url("http://localhost:8080/h", allow_http=True).port == 8080
    for bad in ("ftp://x/", "https://u:p@x/", "https://x/#f", "https://" + "a" * 2100, "https:///"):
        with pytest.raises(UrlRefused):
            check_url(bad, allow_http=True)
    for private in ("127.0.0.1", "10.1.2.3", "192.168.0.9", "169.254.169.254", "::1",
                    "fe80::1", "::ffff:127.0.0.1", "100.64.0.1", "fd00::1"):  # fmt: skip
        with pytest.raises(UrlRefused):
            check_address(private, allow_private=False)
    check_address("127.0.0.1", allow_private=True)
    check_address("93.184.216.34", allow_private=False)
    with pytest.raises(UrlRefused):
        check_address("0.0.0.0", allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "0.0.0.0", "::", "169.254.169.254", "fc00::1", "fdff:ffff::1", "100.64.0.1",
        "100.127.255.254", "fe80::1", "127.8.8.8", "224.0.0.1", "ff02::1",
        "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "2002:7f00:1::1",
        "2002:a9fe:a9fe::", "2001:0:4136:e378:8000:63bf:80ff:fffe", "::10.0.0.1",
        "198.18.0.1", "192.0.2.1", "240.0.0.1",
    ],
)  # fmt: skip
def test_ssrf_guard_refuses_every_non_public_form(address: str) -> None:
    with pytest.raises(UrlRefused):
        check_address(address, allow_private=False)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::5db8:d822",
                "::ffff:93.184.216.34"],
)  # fmt: skip
def test_ssrf_guard_lets_public_addresses_through(address: str) -> None:
    check_address(address, allow_private=False)


def test_allowing_private_still_refuses_non_unicast() -> None:
    for address in ("::1", "::ffff:127.0.0.1", "10.0.0.1", "fc00::1", "100.64.0.1"):
        check_address(address, allow_private=True)
    for address in ("0.0.0.0", "::", "224.0.0.1", "::ffff:0.0.0.0", "64:ff9b::e000:1"):
        with pytest.raises(UrlRefused):
            check_address(address, allow_private=True)
