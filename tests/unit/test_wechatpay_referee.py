"""``wechatpayv3`` as the independent referee of the key migration.

The same fake WeChat Pay is spoken to by wechatpayv3 (2.x, sync, run off the loop) and by
our client: both must name the same platform key in ``Wechatpay-Serial`` (the public key's
id in public-key mode; the certificate that expires last otherwise), and wechatpayv3 must
accept the fake's notifications signed with either key, so the fake signs as WeChat does.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from wechatpayv3 import WeChatPay, WeChatPayType

from commerce.pay_client import WeChatPayClient
from commerce.platform_keys import read_platform_keys
from commerce.wechatpay import MerchantConfig
from tests.fakes.wechatpay import FakeWeChatPay, Signer, Tamper


@cache
def merchant_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def merchant_pem() -> str:
    return (
        merchant_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChatPay]:
    async with FakeWeChatPay(merchant_key().public_key()) as fake:
        yield fake


def referee(fake: FakeWeChatPay, **keys: Any) -> WeChatPay:
    """wechatpayv3 pointed at the fake; ``keys``: public_key/public_key_id or cert_dir."""
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=fake.mchid,
        private_key=merchant_pem(),
        cert_serial_no=fake.merchant_serial,
        appid=fake.appid,
        apiv3_key=fake.apiv3_key.decode(),
        notify_url="https://example.com/notify",
        **keys,
    )
    pay._core._gate_way = (fake.base_url or "").rstrip("/")  # its gateway is private
    return pay


def older_certificate(folder: Path) -> None:
    """A second platform certificate, expiring before the fake's: not the one to name."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "older platform cert")])
    now = datetime.now(tz=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(156) | (1 << 155))
        .not_valid_before(now - timedelta(days=10))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    (folder / "older.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


async def our_request_serial(fake: FakeWeChatPay, config: MerchantConfig) -> str | None:
    async with WeChatPayClient(config, fake.base_url or "") as client:
        await client.query("T|00001")
    return fake.requests[-1].wechatpay_serial


async def referee_request_serial(fake: FakeWeChatPay, pay: WeChatPay, **kw: Any) -> str | None:
    path = f"/v3/pay/transactions/out-trade-no/T00001?mchid={fake.mchid}"
    await asyncio.to_thread(pay._core.request, path, **kw)
    return fake.requests[-1].wechatpay_serial


async def test_public_key_mode_names_the_same_key(fake: FakeWeChatPay) -> None:
    pay = referee(
        fake, public_key=fake.platform_public_key_pem.decode(), public_key_id=fake.platform_serial
    )
    theirs = await referee_request_serial(fake, pay)
    ours = await our_request_serial(
        fake,
        fake.merchant_config(merchant_key(), keys=(Signer.CERTIFICATE, Signer.PUBLIC_KEY)),
    )
    assert theirs == ours == fake.platform_serial


# wechatpayv3 compares certificates' naive not_valid_after, which cryptography deprecates.
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
async def test_certificate_mode_names_the_certificate_expiring_last(
    fake: FakeWeChatPay, tmp_path: Path
) -> None:
    fake.sign_with = Signer.BY_REQUEST  # answers with the certificate the request names
    fake.write_key_files(tmp_path, public_key=False)
    older_certificate(tmp_path)
    pay = referee(fake, cert_dir=str(tmp_path))
    # wechatpayv3 sends the header in certificate mode only with encrypted fields.
    theirs = await referee_request_serial(fake, pay, cipher_data=True)
    config = fake.merchant_config(merchant_key())
    config = MerchantConfig(
        mchid=config.mchid,
        appid=config.appid,
        serial_no=config.serial_no,
        private_key=merchant_key(),
        apiv3_key=config.apiv3_key,
        notify_url=config.notify_url,
        platform_keys=read_platform_keys(keys_dir=tmp_path),
    )
    ours = await our_request_serial(fake, config)
    assert theirs == ours == fake.cert_serial


@pytest.mark.parametrize("signer", [Signer.PUBLIC_KEY, Signer.CERTIFICATE])
async def test_the_referee_accepts_the_fakes_notifications(
    fake: FakeWeChatPay, tmp_path: Path, signer: Signer
) -> None:
    fake.notify_with = signer
    if signer is Signer.PUBLIC_KEY:
        pay = referee(
            fake,
            public_key=fake.platform_public_key_pem.decode(),
            public_key_id=fake.platform_serial,
        )
    else:
        fake.write_key_files(tmp_path, public_key=False)
        pay = referee(fake, cert_dir=str(tmp_path))
    resource = fake.make_transaction("T00001", total=100)
    headers, body = fake.build_notification("TRANSACTION.SUCCESS", resource)
    result = pay.callback(headers, body)
    assert result is not None and result["resource"] == resource
    headers, body = fake.build_notification(
        "TRANSACTION.SUCCESS", resource, tamper=Tamper.SIGNATURE_TYPE
    )
    with pytest.raises(Exception, match="does not support"):
        pay.callback(headers, body)
    assert json.loads(body)["event_type"] == "TRANSACTION.SUCCESS"
