"""WeChat Pay end to end: a real server process, a fake WeChat Pay with real keys."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from commerce.payment import out_trade_no
from tests.e2e.harness import Api, ServerProcess, free_port
from tests.e2e.test_sales import make_sale, order
from tests.fakes.wechatpay import FakeWeChatPay, Tamper

StartServer = Callable[..., ServerProcess]


@dataclass
class Shop:
    server: ServerProcess
    fake: FakeWeChatPay
    op: Api
    buyer: Api
    room: str
    merchant_key: rsa.RSAPrivateKey


@pytest.fixture
async def shop(
    servers: StartServer, session: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[Shop]:
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with FakeWeChatPay(merchant_key.public_key()) as fake:
        key_file = tmp_path / "merchant.pem"
        key_file.write_bytes(merchant_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))  # fmt: skip
        platform_file = tmp_path / "platform.pem"
        platform_file.write_bytes(fake.platform_public_key_pem)
        apiv3_file = tmp_path / "apiv3.key"
        apiv3_file.write_bytes(fake.apiv3_key)
        port = free_port()
        server = servers(port=port, env={
            "INTERACT_PAY_PROVIDER": "wechat",
            "INTERACT_WECHATPAY_MCHID": fake.mchid,
            "INTERACT_WECHATPAY_APPID": fake.appid,
            "INTERACT_WECHATPAY_SERIAL": fake.merchant_serial,
            "INTERACT_WECHATPAY_PRIVATE_KEY_FILE": str(key_file),
            "INTERACT_WECHATPAY_APIV3_KEY_FILE": str(apiv3_file),
            "INTERACT_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": str(platform_file),
            "INTERACT_WECHATPAY_PLATFORM_SERIAL": fake.platform_serial,
            "INTERACT_WECHATPAY_NOTIFY_URL": f"http://127.0.0.1:{port}/api/v1/pay/wechat/notify",
            "INTERACT_WECHATPAY_BASE_URL": fake.base_url or "",
            "INTERACT_SWEEP_INTERVAL": "0.2",
        })  # fmt: skip
        op = Api(session, server.base, server.token("ops", "operator"))
        buyer = Api(session, server.base, server.token("o_buyer_openid"))
        room = (await op.live_room())["id"]
        yield Shop(server, fake, op, buyer, room, merchant_key)


async def reserve_and_pay(shop: Shop, **sale: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    made = await make_sale(shop.op, shop.room, **sale)
    status, placed = await order(shop.buyer, made["id"], "key-1")
    assert status == 201, placed
    status, pay = await shop.buyer.call("POST", f"/api/v1/orders/{placed['id']}/pay")
    assert status == 200, pay
    return placed, pay


async def test_pay_with_wechat_exactly_once(shop: Shop) -> None:
    placed, pay = await reserve_and_pay(shop)
    assert pay["provider"] == "wechat"
    params = pay["params"]
    assert params["signType"] == "RSA" and params["package"].startswith("prepay_id=")
    message = (f"{shop.fake.appid}\n{params['timeStamp']}\n{params['nonceStr']}\n"
               f"{params['package']}\n").encode()  # fmt: skip
    shop.merchant_key.public_key().verify(
        base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256()
    )
    assert out_trade_no(placed["id"]) in shop.fake.trades  # prepaid at WeChat
    shop.fake.duplicate_notifications = True
    await shop.fake.pay(out_trade_no(placed["id"]))
    _, after = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert after["status"] == "paid" and after["transaction_id"]
    assert [d.status for d in shop.fake.deliveries] == [204, 204]  # the duplicate too
    _, ledger = await shop.op.call("GET", f"/api/v1/rooms/{shop.room}/ledger?count=100")
    assert [e["type"] for e in ledger["events"]].count("order_paid") == 1


@pytest.mark.parametrize("tamper", list(Tamper))
async def test_forged_and_spoilt_notifications_change_nothing(shop: Shop, tamper: Tamper) -> None:
    placed, _ = await reserve_and_pay(shop)
    no = out_trade_no(placed["id"])
    resource = shop.fake.make_transaction(no, total=placed["amount_fen"])
    delivery = await shop.fake.send_notification(
        shop.server.base + "/api/v1/pay/wechat/notify",
        "TRANSACTION.SUCCESS",
        resource,
        tamper=tamper,
    )
    assert delivery.status is not None and 400 <= delivery.status < 500
    assert b'"code":"FAIL"' in delivery.answer
    _, after = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert after["status"] == "reserved"


async def test_replays_mismatches_and_unknown_orders_change_nothing(shop: Shop) -> None:
    placed, _ = await reserve_and_pay(shop)
    no = out_trade_no(placed["id"])
    url = shop.server.base + "/api/v1/pay/wechat/notify"
    for resource, expected in [
        (shop.fake.make_transaction(no, total=placed["amount_fen"] - 1), 400),
        (shop.fake.make_transaction(no, total=placed["amount_fen"], mchid="1999999999"), 400),
        (
            shop.fake.make_transaction(
                f"{shop.room}_od0000000000000000", total=placed["amount_fen"]
            ),
            404,
        ),
    ]:
        delivery = await shop.fake.send_notification(url, "TRANSACTION.SUCCESS", resource)
        assert delivery.status == expected
    _, after = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert after["status"] == "reserved"
    # A genuine notification, then the very same request replayed: the replay is refused.
    trade = await shop.fake.pay(no)
    first = shop.fake.deliveries[-1]
    assert first.status == 204 and trade.transaction_id
    replay = await shop.fake.resend(first, same_headers=True)
    assert replay.status == 401


async def test_late_payment_is_refunded_and_the_stock_not_sold_twice(shop: Shop) -> None:
    placed, _ = await reserve_and_pay(shop, stock=1, limit=1, reserve_seconds=1)
    no = out_trade_no(placed["id"])
    await asyncio.sleep(2.0)
    _, expired = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert expired["status"] == "expired"
    other = Api(shop.buyer.session, shop.server.base, shop.server.token("o_second"))
    sale_id = placed["sale"]
    status, _ = await order(other, sale_id, "k2")
    assert status == 201  # the released unit sold again
    await shop.fake.pay(no, force=True)  # the first buyer's money arrives after all
    for _ in range(50):
        _, late = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
        if late["status"] == "refunded":
            break
        await asyncio.sleep(0.1)
    assert late["status"] == "refunded" and late["restocked"] is False
    assert any(r.out_trade_no == no for r in shop.fake.refunds.values())
    _, view = await shop.op.call("GET", f"/api/v1/sales/{sale_id}")
    assert view["left"] + view["reserved"] + view["paid"] + view["refunded"] == 1
    assert view["reserved"] == 1  # the second buyer's unit, untouched


async def test_a_lost_notification_is_found_by_reconciliation(shop: Shop) -> None:
    placed, _ = await reserve_and_pay(shop, reserve_seconds=30)
    shop.fake.drop_notifications = True
    await shop.fake.pay(out_trade_no(placed["id"]))
    for _ in range(100):
        _, after = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
        if after["status"] == "paid":
            break
        await asyncio.sleep(0.1)
    assert after["status"] == "paid"


async def test_wechat_down_keeps_the_reservation(shop: Shop) -> None:
    made = await make_sale(shop.op, shop.room)
    status, placed = await order(shop.buyer, made["id"], "down")
    assert status == 201
    shop.fake.fail_next("/v3/pay/transactions/jsapi", status=500, times=10)
    status, body = await shop.buyer.call("POST", f"/api/v1/orders/{placed['id']}/pay")
    assert status == 503 and body["error"]["code"] == "overloaded"
    _, after = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert after["status"] == "reserved"


async def test_a_failed_late_refund_is_retried_on_redelivery(shop: Shop) -> None:
    placed, _ = await reserve_and_pay(shop, stock=1, limit=1, reserve_seconds=1)
    no = out_trade_no(placed["id"])
    await asyncio.sleep(2.0)
    shop.fake.fail_next("/v3/refund/domestic/refunds", status=500, times=10)
    await shop.fake.pay(no, force=True)
    first = shop.fake.deliveries[-1]
    assert first.status is not None and first.status >= 500  # WeChat will redeliver
    _, mid = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert mid["status"] == "paid_late"
    shop.fake._faults.clear()
    again = await shop.fake.resend(first)  # WeChat's retry: re-signed, a new nonce
    assert again.status == 204
    _, done = await shop.buyer.call("GET", f"/api/v1/orders/{placed['id']}")
    assert done["status"] == "refunded" and done["restocked"] is False


async def paid_order(shop: Shop) -> dict[str, Any]:
    placed, _ = await reserve_and_pay(shop, stock=3, limit=1)
    await shop.fake.pay(out_trade_no(placed["id"]))
    return placed


async def wait_order(shop: Shop, order_id: str, **expected: Any) -> dict[str, Any]:
    for _ in range(100):
        _, now = await shop.op.call("GET", f"/api/v1/orders/{order_id}")
        if all(now.get(k) == v for k, v in expected.items()):
            return now
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} is {now}, not {expected}")


async def test_a_refund_is_processing_until_its_notification_settles_it(shop: Shop) -> None:
    placed = await paid_order(shop)
    shop.fake.auto_complete_refunds = False
    status, body = await shop.op.call(
        "POST", f"/api/v1/orders/{placed['id']}/refund", {"restock": True, "reason": "缺货"}
    )
    assert status == 200, body
    assert body["status"] == "refunded" and body["refund_status"] == "processing"
    assert body["restocked"] is True and body["refund_settled_at"] is None
    assert list(shop.fake.refunds) == [body["out_refund_no"]]
    await shop.fake.complete_refund(body["out_refund_no"])
    assert shop.fake.deliveries[-1].status == 204
    done = await wait_order(shop, placed["id"], refund_status="success")
    assert done["refund_settled_at"] >= done["refunded_at"]
    # WeChat redelivers: success again, nothing changes, one event in the ledger.
    again = await shop.fake.resend(shop.fake.deliveries[-1])
    assert again.status == 204
    _, ledger = await shop.op.call("GET", f"/api/v1/rooms/{shop.room}/ledger?count=100")
    settled = [e for e in ledger["events"] if e["type"] == "refund_settled"]
    assert [e["state"] for e in settled] == ["success"]


async def test_an_abnormal_refund_is_recorded_for_an_operator(shop: Shop) -> None:
    placed = await paid_order(shop)
    shop.fake.auto_complete_refunds = False
    status, body = await shop.op.call("POST", f"/api/v1/orders/{placed['id']}/refund", {})
    assert status == 200 and body["refund_status"] == "processing"
    (out_refund_no,) = list(shop.fake.refunds)
    await shop.fake.complete_refund(out_refund_no, "ABNORMAL")
    done = await wait_order(shop, placed["id"], refund_status="abnormal")
    assert done["status"] == "refunded"
    # A later contradicting notification does not overwrite what was settled.
    resource = shop.fake.refund_resource(out_refund_no)
    resource["refund_status"] = "SUCCESS"
    late = await shop.fake.send_notification(
        shop.server.base + "/api/v1/pay/wechat/notify", "REFUND.SUCCESS", resource
    )
    assert late.status == 204
    assert (await wait_order(shop, placed["id"]))["refund_status"] == "abnormal"


async def test_refund_notifications_that_do_not_match_change_nothing(shop: Shop) -> None:
    placed = await paid_order(shop)
    shop.fake.auto_complete_refunds = False
    await shop.op.call("POST", f"/api/v1/orders/{placed['id']}/refund", {})
    (out_refund_no,) = list(shop.fake.refunds)
    url = shop.server.base + "/api/v1/pay/wechat/notify"
    good = shop.fake.refund_resource(out_refund_no)
    good["refund_status"] = "SUCCESS"
    wrong_amount = {**good, "amount": {**good["amount"], "refund": good["amount"]["refund"] - 1}}
    for resource, expected in [
        (wrong_amount, 400),
        ({**good, "mchid": "1999999999"}, 400),
        ({**good, "out_refund_no": "rf-someone-else"}, 400),
        ({**good, "out_trade_no": f"{shop.room}_od0000000000000000"}, 404),
        ({k: v for k, v in good.items() if k != "out_refund_no"}, 400),
    ]:
        delivery = await shop.fake.send_notification(url, "REFUND.SUCCESS", resource)
        assert delivery.status == expected, resource
    _, after = await shop.op.call("GET", f"/api/v1/orders/{placed['id']}")
    assert after["refund_status"] == "processing"
    # A refund notification for an order that was never refunded: WeChat must retry later.
    other = await paid_order(shop)
    resource = {**good, "out_trade_no": out_trade_no(other["id"])}
    delivery = await shop.fake.send_notification(url, "REFUND.SUCCESS", resource)
    assert delivery.status == 409
    _, still = await shop.op.call("GET", f"/api/v1/orders/{other['id']}")
    assert still["status"] == "paid"
