"""WeChat Pay's platform-key migration end to end, on both engines: a real server process,
a fake WeChat Pay that signs with its platform certificate, its platform public key, or the
one each request names, and switches between them mid-way."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from commerce.payment import out_trade_no
from tests.e2e.harness import Api, ServerProcess, free_port
from tests.e2e.test_sales import make_sale, order
from tests.fakes.wechatpay import FakeWeChatPay, Signer, Tamper

StartServer = Callable[..., ServerProcess]
REFUNDS = "/v3/refund/domestic/refunds"
JSAPI = "/v3/pay/transactions/jsapi"


@pytest.fixture(params=["memory", "redis"])
def engine_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The server's engine settings: the embedded memory engine, or Redis with a prefix of
    this test's own (as tests/e2e/test_sales_redis.py runs it)."""
    if request.param == "memory":
        return {}
    return {
        "INTERACT_REDIS_URL": request.getfixturevalue("redis_url"),
        "INTERACT_REDIS_PREFIX": request.getfixturevalue("redis_prefix"),
    }


@dataclass
class Shop:
    server: ServerProcess
    fake: FakeWeChatPay
    op: Api
    buyer: Api
    room: str
    keys_dir: Path

    @property
    def notify_url(self) -> str:
        return self.server.base + "/api/v1/pay/wechat/notify"


ShopFactory = Callable[..., Any]


@pytest.fixture
async def open_shop(
    servers: StartServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    engine_env: dict[str, str],
) -> AsyncIterator[ShopFactory]:
    """``await open_shop(certificate=True, public_key=True, reload_interval="10")``: a server
    whose WeChat Pay keys directory holds the fake's certificate and/or public key."""
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with FakeWeChatPay(merchant_key.public_key()) as fake:

        async def start(
            *, certificate: bool = True, public_key: bool = True, reload_interval: str = "10"
        ) -> Shop:
            key_file = tmp_path / "merchant.pem"
            key_file.write_bytes(merchant_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))  # fmt: skip
            apiv3_file = tmp_path / "apiv3.key"
            apiv3_file.write_bytes(fake.apiv3_key)
            keys_dir = tmp_path / "wechatpay-keys"
            fake.write_key_files(keys_dir, certificate=certificate, public_key=public_key)
            port = free_port()
            server = servers(port=port, env={
                **engine_env,
                "INTERACT_PAY_PROVIDER": "wechat",
                "INTERACT_WECHATPAY_MCHID": fake.mchid,
                "INTERACT_WECHATPAY_APPID": fake.appid,
                "INTERACT_WECHATPAY_SERIAL": fake.merchant_serial,
                "INTERACT_WECHATPAY_PRIVATE_KEY_FILE": str(key_file),
                "INTERACT_WECHATPAY_APIV3_KEY_FILE": str(apiv3_file),
                "INTERACT_WECHATPAY_PLATFORM_KEYS_DIR": str(keys_dir),
                "INTERACT_WECHATPAY_KEYS_RELOAD_INTERVAL": reload_interval,
                "INTERACT_WECHATPAY_NOTIFY_URL": f"http://127.0.0.1:{port}/api/v1/pay/wechat/notify",
                "INTERACT_WECHATPAY_BASE_URL": fake.base_url or "",
                "INTERACT_SWEEP_INTERVAL": "0.2",
            })  # fmt: skip
            session_ = session
            op = Api(session_, server.base, server.token("ops", "operator"))
            buyer = Api(session_, server.base, server.token("o_buyer_openid"))
            room = (await op.live_room())["id"]
            return Shop(server, fake, op, buyer, room, keys_dir)

        yield start


async def reserve(shop: Shop, key: str, **sale: Any) -> dict[str, Any]:
    made = await make_sale(shop.op, shop.room, **sale)
    status, placed = await order(shop.buyer, made["id"], key)
    assert status == 201, placed
    return placed


async def reserve_and_pay(shop: Shop, key: str = "k1", **sale: Any) -> dict[str, Any]:
    placed = await reserve(shop, key, **sale)
    status, pay = await shop.buyer.call("POST", f"/api/v1/orders/{placed['id']}/pay")
    assert status == 200, pay
    return placed


async def wait_order(shop: Shop, order_id: str, within: float = 10.0, **expected: Any) -> Any:
    deadline = time.monotonic() + within
    while True:
        _, now = await shop.op.call("GET", f"/api/v1/orders/{order_id}")
        if all(now.get(k) == v for k, v in expected.items()):
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} is {now}, not {expected}")
        await asyncio.sleep(0.05)


async def test_a_payment_and_a_refund_while_wechat_switches_keys(open_shop: ShopFactory) -> None:
    shop: Shop = await open_shop()
    fake = shop.fake
    # The prepay is answered with the certificate, the payment notified with the public key.
    fake.sign_with, fake.notify_with = Signer.CERTIFICATE, Signer.PUBLIC_KEY
    placed = await reserve_and_pay(shop, stock=3, limit=1)
    # Both keys held: every request names the public key, as wechatpayv3 does in that mode.
    assert [r.wechatpay_serial for r in fake.requests] == [fake.platform_serial]
    await fake.pay(out_trade_no(placed["id"]))
    assert fake.deliveries[-1].status == 204
    await wait_order(shop, placed["id"], status="paid")
    # Switch again: the refund is answered with the public key and settled by a
    # notification signed with the certificate (its serial in lower case).
    fake.sign_with, fake.notify_with = Signer.PUBLIC_KEY, Signer.CERTIFICATE
    fake.lowercase_serial = True
    status, body = await shop.op.call(
        "POST", f"/api/v1/orders/{placed['id']}/refund", {"reason": "缺货"}
    )
    assert status == 200, body
    done = await wait_order(shop, placed["id"], refund_status="success")
    assert done["status"] == "refunded"
    refund_delivery = fake.deliveries[-1]
    assert refund_delivery.event_type == "REFUND.SUCCESS" and refund_delivery.status == 204
    assert refund_delivery.headers["Wechatpay-Serial"] == fake.cert_serial.lower()
    # By request: WeChat answers with whichever key the request names.
    fake.sign_with, fake.notify_with = Signer.BY_REQUEST, None
    second = await reserve_and_pay(shop, "k2", stock=3, limit=1)
    assert fake.requests[-1].wechatpay_serial == fake.platform_serial
    assert all(r.wechatpay_serial == fake.platform_serial for r in fake.requests)
    await fake.pay(out_trade_no(second["id"]))
    await wait_order(shop, second["id"], status="paid")
    log = shop.server.log()
    assert f"verified by the platform certificate {fake.cert_serial}" in log
    assert f"verified by the platform public_key {fake.platform_serial}" in log
    assert "BEGIN" not in log  # no key material, ever


async def test_answers_and_notifications_signed_by_an_unknown_key_are_refused(
    open_shop: ShopFactory,
) -> None:
    shop: Shop = await open_shop()
    fake = shop.fake
    placed = await reserve(shop, "k1")
    fake.sign_with = Signer.UNKNOWN
    status, body = await shop.buyer.call("POST", f"/api/v1/orders/{placed['id']}/pay")
    assert status == 503, body  # the prepay answer was not trusted
    assert fake.calls[JSAPI] == 1  # an untrusted answer is not retried
    fake.sign_with = Signer.PUBLIC_KEY
    status, body = await shop.buyer.call("POST", f"/api/v1/orders/{placed['id']}/pay")
    assert status == 200, body
    fake.notify_with = Signer.UNKNOWN
    await fake.pay(out_trade_no(placed["id"]))
    refused = fake.deliveries[-1]
    assert refused.status == 401 and json.loads(refused.answer)["message"] == "wrong_serial"
    _, after = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert after["status"] == "reserved"
    # WeChat's retry, signed with a key the server holds, goes through.
    fake.notify_with = Signer.CERTIFICATE
    again = await fake.resend(refused)
    assert again.status == 204
    await wait_order(shop, placed["id"], status="paid")


async def test_a_hot_reload_adds_the_public_key_without_a_restart(open_shop: ShopFactory) -> None:
    shop: Shop = await open_shop(public_key=False, reload_interval="0.3")
    fake = shop.fake
    pid = shop.server.proc.pid
    fake.sign_with = Signer.BY_REQUEST
    placed = await reserve_and_pay(shop, stock=3, limit=1)
    # Only the certificate held: requests name it, WeChat answers with it.
    assert [r.wechatpay_serial for r in fake.requests] == [fake.cert_serial]
    # WeChat moves the merchant's notifications to the public key before the file is there.
    fake.notify_with = Signer.PUBLIC_KEY
    await fake.pay(out_trade_no(placed["id"]))
    first = fake.deliveries[-1]
    assert first.status == 401
    # The operator drops the public key into the directory; WeChat retries: accepted, once
    # the re-read (at most every 0.3 s here) has picked it up.
    fake.write_key_files(shop.keys_dir, certificate=False, public_key=True)
    deadline = time.monotonic() + 10
    while (again := await fake.resend(first)).status != 204:
        assert again.status == 401 and time.monotonic() < deadline, again
        await asyncio.sleep(0.1)
    await wait_order(shop, placed["id"], status="paid")
    assert shop.server.proc.pid == pid and shop.server.proc.poll() is None  # no restart
    # From now on requests name the public key, and WeChat answers with it.
    second = await reserve_and_pay(shop, "k2", stock=3, limit=1)
    assert fake.requests[-1].wechatpay_serial == fake.platform_serial
    await fake.pay(out_trade_no(second["id"]))
    assert fake.deliveries[-1].status == 204
    assert f"public_key:{fake.platform_serial}" in shop.server.log()  # the reload, logged


async def test_byte_limits_refund_reason_and_description(open_shop: ShopFactory) -> None:
    shop: Shop = await open_shop()
    fake = shop.fake
    title = "限量款口红礼盒" * 14  # 98 characters, 294 bytes: past WeChat's 127 bytes
    placed = await reserve_and_pay(shop, title=title, stock=3, limit=1)
    trade = fake.trades[out_trade_no(placed["id"])]
    assert len(trade.description.encode()) <= 127 and title.startswith(trade.description)
    assert len(trade.description) == 42  # 126 bytes: the 43rd character would not fit
    await fake.pay(out_trade_no(placed["id"]))
    await wait_order(shop, placed["id"], status="paid")
    # 33 Chinese characters are 99 bytes: refused before WeChat is called.
    too_long = "因库存不足无法发货敬请谅解" * 2 + "我们深表歉意望见谅"
    assert len(too_long) == 35 and len(too_long[:33].encode()) == 99
    status, body = await shop.op.call(
        "POST", f"/api/v1/orders/{placed['id']}/refund", {"reason": too_long[:33]}
    )
    assert status == 400 and "80 bytes" in body["error"]["message"], body
    assert fake.calls[REFUNDS] == 0 and fake.refunds == {}
    _, still = await shop.op.call("GET", f"/api/v1/orders/{placed['id']}")
    assert still["status"] == "paid"
    # 26 Chinese characters (78 bytes) go through, unchanged.
    status, body = await shop.op.call(
        "POST", f"/api/v1/orders/{placed['id']}/refund", {"reason": too_long[:26]}
    )
    assert status == 200, body
    [refund] = fake.refunds.values()
    assert refund.request["reason"] == too_long[:26]


@pytest.mark.parametrize("tamper", [Tamper.NO_SIGNATURE_TYPE, Tamper.SIGNATURE_TYPE])
async def test_a_notification_without_the_rsa_signature_type_is_refused(
    open_shop: ShopFactory, tamper: Tamper
) -> None:
    shop: Shop = await open_shop()
    placed = await reserve_and_pay(shop)
    no = out_trade_no(placed["id"])
    resource = shop.fake.transaction_of(no, trade_state="SUCCESS", transaction_id="4200" + "1" * 24)
    delivery = await shop.fake.send_notification(
        shop.notify_url, "TRANSACTION.SUCCESS", resource, tamper=tamper
    )
    assert delivery.status == 401
    assert json.loads(delivery.answer) == {"code": "FAIL", "message": "bad_signature_type"}
    _, after = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert after["status"] == "reserved"


@pytest.mark.parametrize("signer", [Signer.CERTIFICATE, Signer.PUBLIC_KEY])
async def test_reconciliation_finds_a_lost_payment_with_either_key(
    open_shop: ShopFactory, signer: Signer
) -> None:
    shop: Shop = await open_shop()
    fake = shop.fake
    placed = await reserve_and_pay(shop, reserve_seconds=30)
    fake.sign_with = signer  # the query answers come signed with this key
    fake.drop_notifications = True
    await fake.pay(out_trade_no(placed["id"]))
    done = await wait_order(shop, placed["id"], status="paid")
    assert done["transaction_id"] == fake.trades[out_trade_no(placed["id"])].transaction_id
    queries = [r for r in fake.requests if r.method == "GET"]
    assert queries and all(r.wechatpay_serial == fake.platform_serial for r in queries)
    serial = fake.cert_serial if signer is Signer.CERTIFICATE else fake.platform_serial
    assert f"query: verified by the platform {signer.value} {serial}" in shop.server.log()
