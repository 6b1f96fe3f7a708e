"""WeChatPayClient against the fake WeChat Pay server, and the fake's notifications."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from commerce.pay_client import PayError, PayUnavailable, Unavailable, WeChatPayClient
from commerce.wechatpay import (
    MerchantConfig,
    MismatchError,
    NonceGuard,
    Notification,
    RefundResult,
    Transaction,
    UntrustedMessage,
    check_transaction,
    fail_body,
    parse_authorization,
    parse_notification,
    time_expire,
    verify_signature,
)
from interact.floor.breaker import BreakerState, CircuitBreaker
from tests.fakes.wechatpay import FakeWeChatPay, Tamper

JSAPI = "/v3/pay/transactions/jsapi"
TRADE_ROUTE = "/v3/pay/transactions/out-trade-no/{out_trade_no}"
OPENID = "o_buyer_secret_openid_0001"
NOTIFY_PATH = "/api/v1/pay/wechat/notify"

Make = Callable[..., Awaitable[WeChatPayClient]]


@cache
def merchant_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def other_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Receiver:
    """A stand-in for the notify handler: verify, decrypt, check against the orders."""

    orders: dict[str, int] = field(default_factory=dict)  # out_trade_no -> amount_fen
    received: list[Notification] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    config: MerchantConfig | None = None
    guard: NonceGuard = field(default_factory=NonceGuard)
    down: bool = False
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        assert self.config is not None
        body = await request.read()
        if self.down:
            return fail(500, "busy")
        try:
            note = parse_notification(
                request.headers, body, self.config, now=time.time(), replay_guard=self.guard
            )
        except UntrustedMessage as exc:
            self.refused.append(exc.code)
            return fail(401, exc.code)
        if note.event_type == "TRANSACTION.SUCCESS":
            tx = Transaction.from_dict(note.resource)
            if tx.out_trade_no not in self.orders:
                self.refused.append("unknown_order")
                return fail(404, "unknown order")
            try:
                check_transaction(
                    tx,
                    self.config,
                    out_trade_no=tx.out_trade_no,
                    amount_fen=self.orders[tx.out_trade_no],
                )
            except MismatchError as exc:
                self.refused.append(f"mismatch:{exc.field}")
                return fail(400, exc.code)
        self.received.append(note)
        return web.Response(status=204)


def fail(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=fail_body(message), content_type="application/json")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post(NOTIFY_PATH, recv.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    recv.url = f"http://{host}:{port}{NOTIFY_PATH}"
    yield recv
    await runner.cleanup()


@pytest.fixture
async def fake(receiver: Receiver) -> AsyncIterator[FakeWeChatPay]:
    async with FakeWeChatPay(merchant_key().public_key()) as fake:
        receiver.config = fake.merchant_config(merchant_key(), notify_url=receiver.url)
        yield fake


@pytest.fixture
async def make(fake: FakeWeChatPay, receiver: Receiver) -> AsyncIterator[Make]:
    made: list[WeChatPayClient] = []

    async def build(config: MerchantConfig | None = None, **kwargs: Any) -> WeChatPayClient:
        assert fake.base_url is not None
        kwargs.setdefault("timeout", 10.0)  # generous: CI machines are shared and busy
        kwargs.setdefault("backoff", 0.01)
        base_url = kwargs.pop("base_url", fake.base_url)
        client = WeChatPayClient(config or receiver.config, base_url, **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield build
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(make: Make) -> WeChatPayClient:
    return await make()


def deadline_ms(minutes: int = 15) -> int:
    return int((time.time() + minutes * 60) * 1000)


async def prepay(client: WeChatPayClient, no: str = "T20240001", fen: int = 990) -> str:
    return await client.prepay(no, "秒杀 · 商品", fen, OPENID, deadline_ms())


# --- prepay ------------------------------------------------------------------------------


async def test_prepay_sends_a_signed_order(client: WeChatPayClient, fake: FakeWeChatPay) -> None:
    expire = deadline_ms()
    prepay_id = await client.prepay("T20240001", "秒杀 · 商品", 990, OPENID, expire)
    assert prepay_id.startswith("wx")
    [request] = fake.requests
    assert request.authorized
    body = json.loads(request.body)
    assert body["time_expire"] == time_expire(expire) and body["time_expire"].endswith("+08:00")
    assert body["amount"] == {"total": 990, "currency": "CNY"}
    assert body["payer"] == {"openid": OPENID}
    assert body["mchid"] == fake.mchid and body["appid"] == fake.appid
    assert body["notify_url"].endswith(NOTIFY_PATH)
    assert client.stats.ok == 1


async def test_prepay_is_idempotent_per_out_trade_no(client: WeChatPayClient) -> None:
    # One deadline for all three: time_expire is in whole seconds, and two deadlines taken
    # on either side of a second's boundary would be two different bodies.
    expire = deadline_ms()
    first = await client.prepay("T20240001", "秒杀 · 商品", 990, OPENID, expire)
    assert await client.prepay("T20240001", "秒杀 · 商品", 990, OPENID, expire) == first
    with pytest.raises(PayError) as caught:
        await client.prepay("T20240001", "秒杀 · 商品", 1, OPENID, expire)
    assert (caught.value.status, caught.value.code) == (403, "OUT_TRADE_NO_USED")


async def test_a_bad_authorization_is_sign_error(
    make: Make, fake: FakeWeChatPay, receiver: Receiver
) -> None:
    forger = fake.merchant_config(other_key(), notify_url=receiver.url)
    client = await make(forger)
    with pytest.raises(PayError) as caught:
        await prepay(client)
    assert (caught.value.status, caught.value.code) == (401, "SIGN_ERROR")
    assert fake.calls[JSAPI] == 1  # a refusal is not retried
    assert client.breaker_state is BreakerState.CLOSED and fake.trades == {}


async def test_a_wrong_merchant_serial_is_sign_error(
    make: Make, fake: FakeWeChatPay, receiver: Receiver
) -> None:
    assert receiver.config is not None
    client = await make(dataclasses.replace(receiver.config, serial_no="0000WRONG"))
    with pytest.raises(PayError) as caught:
        await client.query("T20240001")
    assert (caught.value.status, caught.value.code) == (401, "SIGN_ERROR")


async def test_paid_after_close_is_visible(client: WeChatPayClient, fake: FakeWeChatPay) -> None:
    # The payment that raced our close: WeChat reports it paid; the order service refunds it.
    await prepay(client)
    await client.close("T20240001")
    await fake.pay("T20240001", notify=False, force=True)
    paid = await client.query("T20240001")
    assert paid is not None and paid["trade_state"] == "SUCCESS"
    await client.refund("T20240001", "R20240001", 990, 990, "订单已过期")


async def test_payment_params_verify_with_the_merchant_key(
    client: WeChatPayClient, fake: FakeWeChatPay
) -> None:
    prepay_id = await prepay(client)
    params = client.payment_params(prepay_id)
    assert params["package"] == f"prepay_id={prepay_id}" and params["signType"] == "RSA"
    message = f"{fake.appid}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    assert verify_signature(merchant_key().public_key(), message.encode(), params["paySign"])


# --- query, close, the user pays -------------------------------------------------------


async def test_query_unknown_order_is_none(client: WeChatPayClient) -> None:
    assert await client.query("T_NEVER_SEEN") is None


async def test_pay_query_and_notification(
    client: WeChatPayClient, fake: FakeWeChatPay, receiver: Receiver
) -> None:
    await prepay(client)
    receiver.orders["T20240001"] = 990
    unpaid = await client.query("T20240001")
    assert unpaid is not None and unpaid["trade_state"] == "NOTPAY"

    await fake.pay("T20240001")
    paid = await client.query("T20240001")
    assert paid is not None
    tx = Transaction.from_dict(paid)
    assert tx.paid and tx.transaction_id and tx.total_fen == 990
    assert receiver.config is not None
    check_transaction(tx, receiver.config, out_trade_no="T20240001", amount_fen=990)

    [note] = receiver.received
    assert note.event_type == "TRANSACTION.SUCCESS" and note.original_type == "transaction"
    assert Transaction.from_dict(note.resource) == tx
    assert fake.answers == [(204, b"")]
    delivery = fake.deliveries[0]
    raw = json.loads(delivery.body)
    assert raw["resource_type"] == "encrypt-resource"
    assert raw["resource"]["associated_data"] == "transaction"
    assert set(raw) == {"id", "create_time", "resource_type", "event_type", "summary", "resource"}


async def test_close(client: WeChatPayClient, fake: FakeWeChatPay) -> None:
    await prepay(client)
    await client.close("T20240001")
    await client.close("T20240001")  # closing a closed order is fine
    closed = await client.query("T20240001")
    assert closed is not None and closed["trade_state"] == "CLOSED"
    with pytest.raises(PayError) as caught:
        await prepay(client)
    assert caught.value.code == "ORDER_CLOSED"

    await prepay(client, "T20240002")
    await fake.pay("T20240002")
    with pytest.raises(PayError) as caught:
        await client.close("T20240002")
    assert caught.value.code == "ORDERPAID"


async def test_close_unknown_order_is_an_error(client: WeChatPayClient) -> None:
    with pytest.raises(PayError) as caught:
        await client.close("T_NEVER_SEEN")
    assert (caught.value.status, caught.value.code) == (404, "ORDER_NOT_EXIST")


async def test_malformed_ids_are_refused_before_sending(
    client: WeChatPayClient, fake: FakeWeChatPay
) -> None:
    with pytest.raises(ValueError):
        await client.query("../../v3/x")
    with pytest.raises(ValueError):
        await client.query_refund("R 1")
    assert fake.requests == []


# --- refunds -------------------------------------------------------------------------


async def test_refund_then_refund_notification(
    client: WeChatPayClient, fake: FakeWeChatPay, receiver: Receiver, eventually: Any
) -> None:
    receiver.orders["T20240001"] = 990
    await prepay(client)
    await fake.pay("T20240001")
    answer = await client.refund("T20240001", "R20240001", 990, 990, "订单已过期")
    refund = RefundResult.from_dict(answer)
    assert refund.status == "PROCESSING" and refund.refund_fen == 990 and refund.refund_id

    await eventually(lambda: len(receiver.received) == 2)
    note = receiver.received[1]
    assert note.event_type == "REFUND.SUCCESS" and note.original_type == "refund"
    notified = RefundResult.from_dict(note.resource)
    assert notified.status == "SUCCESS" and notified.refund_id == refund.refund_id

    again = await client.refund("T20240001", "R20240001", 990, 990, "订单已过期")
    assert again["refund_id"] == refund.refund_id  # the same out_refund_no refunds once
    queried = await client.query_refund("R20240001")
    assert queried is not None and queried["status"] == "SUCCESS"
    trade = await client.query("T20240001")
    assert trade is not None and trade["trade_state"] == "REFUND"
    assert await client.query_refund("R_NEVER") is None


async def test_refund_of_an_unpaid_order_is_refused(client: WeChatPayClient) -> None:
    await prepay(client)
    with pytest.raises(PayError) as caught:
        await client.refund("T20240001", "R20240001", 990, 990)
    assert caught.value.code == "INVALID_REQUEST"


# --- answers that must not be trusted --------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        Tamper.SIGNATURE,
        Tamper.BODY,
        Tamper.SERIAL,
        Tamper.STALE,
        Tamper.FUTURE,
        Tamper.UNSIGNED,
    ],
)
async def test_forged_answers_are_refused(make: Make, fake: FakeWeChatPay, tamper: Tamper) -> None:
    client = await make(retries=2)
    fake.tamper_answers = tamper
    with pytest.raises(PayUnavailable) as caught:
        await prepay(client)
    assert caught.value.reason is Unavailable.UNTRUSTED
    assert fake.calls[JSAPI] == 1  # not retried
    assert client.stats.untrusted == 1
    assert client.breaker.consecutive_failures == 1
    with pytest.raises(PayUnavailable):
        await client.query("T20240001")


async def test_forged_error_answer_is_refused(make: Make, fake: FakeWeChatPay) -> None:
    client = await make()
    fake.tamper_answers = Tamper.SIGNATURE
    with pytest.raises(PayUnavailable) as caught:
        await client.query("T_NEVER_SEEN")  # a forged "404 not exist" is not believed
    assert caught.value.reason is Unavailable.UNTRUSTED


# --- retries, breaker, timeouts --------------------------------------------------------


async def test_5xx_is_retried_with_the_same_body(make: Make, fake: FakeWeChatPay) -> None:
    client = await make(retries=2)
    fake.fail_next(JSAPI, 500, times=2)
    prepay_id = await prepay(client)
    assert prepay_id
    assert fake.calls[JSAPI] == 3
    assert client.stats.retries == 2 and client.stats.ok == 1
    assert len({r.body for r in fake.requests}) == 1
    assert client.breaker.consecutive_failures == 0


async def test_retries_exhausted_is_unavailable(make: Make, fake: FakeWeChatPay) -> None:
    client = await make(retries=2)
    fake.fail_next(JSAPI, 503, times=3)
    with pytest.raises(PayUnavailable) as caught:
        await prepay(client)
    assert caught.value.reason is Unavailable.SERVER_ERROR
    assert fake.calls[JSAPI] == 3


async def test_rate_limit_is_retried(make: Make, fake: FakeWeChatPay) -> None:
    client = await make(retries=1)
    fake.fail_next(TRADE_ROUTE, 429)
    assert await client.query("T_NEVER_SEEN") is None
    assert fake.calls["/v3/pay/transactions/out-trade-no/T_NEVER_SEEN"] == 2


@pytest.mark.parametrize(("status", "code"), [(400, "PARAM_ERROR"), (500, "OPENID_MISMATCH")])
async def test_refusals_are_not_retried(
    make: Make, fake: FakeWeChatPay, status: int, code: str
) -> None:
    client = await make(retries=2)
    fake.fail_next(JSAPI, status, code=code)
    with pytest.raises(PayError) as caught:
        await prepay(client)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert fake.calls[JSAPI] == 1
    assert client.breaker.consecutive_failures == 0


async def test_breaker_opens_then_probes(make: Make, fake: FakeWeChatPay) -> None:
    clock = [1000.0]
    breaker = CircuitBreaker(failures=2, cooldown=30.0)
    client = await make(retries=0, breaker=breaker, monotonic=lambda: clock[0])
    fake.fail_next(JSAPI, 500, times=2)
    for _ in range(2):
        with pytest.raises(PayUnavailable) as caught:
            await prepay(client)
        assert caught.value.reason is Unavailable.SERVER_ERROR
    assert breaker.state is BreakerState.OPEN

    with pytest.raises(PayUnavailable) as caught:
        await prepay(client)
    assert caught.value.reason is Unavailable.BREAKER_OPEN
    assert fake.calls[JSAPI] == 2  # nothing was sent
    assert client.stats.breaker_open == 1

    clock[0] += 31.0  # cooldown over: one probe goes out and closes it
    assert await prepay(client)
    assert breaker.state is BreakerState.CLOSED


async def test_timeout(make: Make, fake: FakeWeChatPay) -> None:
    client = await make(timeout=0.1, retries=1)
    fake.delay = 0.5
    started = time.monotonic()
    with pytest.raises(PayUnavailable) as caught:
        await prepay(client)
    assert caught.value.reason is Unavailable.TIMEOUT
    assert time.monotonic() - started < 0.45
    assert client.stats.timeouts == 2


async def test_slow_answer_then_success(make: Make, fake: FakeWeChatPay) -> None:
    client = await make(timeout=0.2, retries=1)
    fake.fail_next(JSAPI, None, delay=0.5)  # delays only, then answers normally
    assert await prepay(client)
    assert fake.calls[JSAPI] == 2


async def test_network_error(make: Make) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = await make(base_url=f"http://127.0.0.1:{port}/", retries=1)
    with pytest.raises(PayUnavailable) as caught:
        await prepay(client)
    assert caught.value.reason is Unavailable.NETWORK
    assert client.stats.attempts == 2


async def test_cancelled_call_is_a_breaker_failure(make: Make, fake: FakeWeChatPay) -> None:
    client = await make(retries=0)
    fake.delay = 0.5
    task = asyncio.create_task(prepay(client))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.breaker.consecutive_failures == 1


async def test_closed_client(make: Make, fake: FakeWeChatPay) -> None:
    client = await make()
    await client.aclose()
    await client.aclose()
    with pytest.raises(PayUnavailable) as caught:
        await prepay(client)
    assert caught.value.reason is Unavailable.CLOSED
    assert fake.requests == []


async def test_each_attempt_is_signed_afresh(make: Make, fake: FakeWeChatPay) -> None:
    client = await make(retries=2)
    fake.fail_next(JSAPI, 500, times=2)
    await prepay(client)
    auths = [parse_authorization(r.authorization) for r in fake.requests]
    assert len({a.nonce_str for a in auths}) == 3
    assert all((a.mchid, a.serial_no) == (fake.mchid, fake.merchant_serial) for a in auths)
    assert [r.authorized for r in fake.requests] == [False, False, True]  # faults come first


async def test_no_secrets_or_personal_data_in_logs(
    make: Make, fake: FakeWeChatPay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await make(retries=1)
    fake.fail_next(JSAPI, 500)
    prepay_id = await prepay(client)
    fake.tamper_answers = Tamper.SIGNATURE
    with pytest.raises(PayUnavailable):
        await client.query("T20240001")
    fake.tamper_answers = None
    fake.fail_next(JSAPI, 400, code="PARAM_ERROR")
    with pytest.raises(PayError):
        await prepay(client, "T20240002")
    text = caplog.text + repr(client) + repr(client.config)
    assert "wechatpay prepay" in caplog.text
    assert fake.apiv3_key.decode() not in text
    assert OPENID not in text
    assert prepay_id not in text
    assert "PRIVATE KEY" not in text
    # Neither our Authorization headers nor their signatures (httpx and httpcore log
    # answers' headers at DEBUG, never a request's).
    assert 'signature="' not in text
    for request in fake.requests:
        assert parse_authorization(request.authorization).signature not in text


# --- notifications: duplicates, reordering, loss, hostile input --------------------------


async def test_duplicate_notifications(
    client: WeChatPayClient, fake: FakeWeChatPay, receiver: Receiver
) -> None:
    receiver.orders["T20240001"] = 990
    await prepay(client)
    fake.duplicate_notifications = True
    await fake.pay("T20240001")
    assert fake.answers == [(204, b""), (204, b"")]
    first, second = receiver.received
    assert first.id == second.id and first.resource == second.resource


async def test_held_notifications_are_released_in_reverse(
    client: WeChatPayClient, fake: FakeWeChatPay, receiver: Receiver
) -> None:
    receiver.orders.update({"T20240001": 990, "T20240002": 990})
    await prepay(client, "T20240001")
    await prepay(client, "T20240002")
    fake.hold_notifications = True
    await fake.pay("T20240001")
    await fake.pay("T20240002")
    assert receiver.received == []
    await fake.release_notifications(reverse=True)
    assert [n.resource["out_trade_no"] for n in receiver.received] == ["T20240002", "T20240001"]


async def test_dropped_notification_is_found_by_query(
    client: WeChatPayClient, fake: FakeWeChatPay, receiver: Receiver
) -> None:
    await prepay(client)
    fake.drop_notifications = True
    await fake.pay("T20240001")
    assert receiver.received == [] and fake.answers == []
    assert fake.deliveries[0].dropped
    found = await client.query("T20240001")
    assert found is not None and Transaction.from_dict(found).paid


async def test_refused_notifications_are_recorded_and_retried(
    client: WeChatPayClient, fake: FakeWeChatPay, receiver: Receiver
) -> None:
    receiver.orders["T20240001"] = 990
    await prepay(client)
    receiver.down = True
    await fake.pay("T20240001")
    [delivery] = fake.deliveries
    status, answer = fake.answers[0]
    assert status == 500 and json.loads(answer) == {"code": "FAIL", "message": "busy"}
    receiver.down = False
    retry = await fake.resend(delivery)  # WeChat's retry: the same body, signed afresh
    assert fake.answers[1] == (204, b"")
    await fake.resend(retry, same_headers=True)  # an exact replay of what was accepted
    assert fake.answers[2][0] == 401 and receiver.refused == ["replayed_nonce"]


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (Tamper.SIGNATURE, "bad_signature"),
        (Tamper.BODY, "bad_signature"),
        (Tamper.UNSIGNED, "bad_signature"),
        (Tamper.SERIAL, "wrong_serial"),
        (Tamper.STALE, "stale_timestamp"),
        (Tamper.FUTURE, "stale_timestamp"),
        (Tamper.CIPHERTEXT, "decrypt_failed"),
        (Tamper.ASSOCIATED_DATA, "decrypt_failed"),
        (Tamper.APIV3_KEY, "decrypt_failed"),
    ],
)
async def test_hostile_notifications_are_refused(
    client: WeChatPayClient, fake: FakeWeChatPay, receiver: Receiver, tamper: Tamper, code: str
) -> None:
    receiver.orders["T20240001"] = 990
    await prepay(client)
    await fake.pay("T20240001", notify=False)
    delivery = await fake.send_notification(
        receiver.url, "TRANSACTION.SUCCESS", fake.transaction_of("T20240001"), tamper=tamper
    )
    assert delivery.status == 401
    assert json.loads(delivery.answer) == {"code": "FAIL", "message": code}
    assert receiver.received == [] and receiver.refused == [code]


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"total": 1}, "mismatch:amount"),
        ({"mchid": "1900000999"}, "mismatch:mchid"),
        ({"appid": "wx_someone_else"}, "mismatch:appid"),
    ],
)
async def test_mismatched_notifications_are_refused(
    client: WeChatPayClient,
    fake: FakeWeChatPay,
    receiver: Receiver,
    overrides: dict[str, Any],
    refusal: str,
) -> None:
    receiver.orders["T20240001"] = 990
    await prepay(client)
    await fake.pay("T20240001", notify=False)
    resource = fake.transaction_of("T20240001", **overrides)
    delivery = await fake.send_notification(receiver.url, "TRANSACTION.SUCCESS", resource)
    assert delivery.status == 400 and receiver.refused == [refusal]


async def test_notification_for_an_unknown_order(fake: FakeWeChatPay, receiver: Receiver) -> None:
    resource = fake.make_transaction("T_UNKNOWN_01", 990)
    delivery = await fake.send_notification(receiver.url, "TRANSACTION.SUCCESS", resource)
    assert delivery.status == 404 and receiver.refused == ["unknown_order"]
