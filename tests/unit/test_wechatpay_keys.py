"""Platform keys during WeChat Pay's certificate → public key migration, and the spec's limits.

Pure rules (commerce.wechatpay: PlatformKeys, verify_response, byte limits), the keyring
that re-reads key files (commerce.platform_keys), and the client against the fake WeChat Pay
(Wechatpay-Serial on every request, answers by either key). Certificates and signatures are
made here and in tests/fakes/wechatpay.py with ``cryptography``, not with the code under test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from hypothesis import given
from hypothesis import strategies as st

from commerce.pay_client import PayUnavailable, Unavailable, WeChatPayClient
from commerce.platform_keys import PlatformKeyring, read_platform_keys
from commerce.wechatpay import (
    H_SERIAL,
    H_SIGNATURE_TYPE,
    KeyKind,
    MerchantConfig,
    PlatformKey,
    PlatformKeys,
    SignatureError,
    SignatureTypeError,
    StaleTimestamp,
    WrongSerial,
    cut_utf8,
    jsapi_body,
    load_platform_key,
    normalize_serial,
    parse_notification,
    refund_body,
    valid_out_trade_no,
    verify_response,
)
from interact.config import Config
from tests.fakes.wechatpay import FakeWeChatPay, Signer, Tamper, signature_headers

NOW = 1_700_000_000
PUB_ID = "PUB_KEY_ID_0114232134912410000000000000"
BODY = b'{"prepay_id":"wx201410272009395522657a690389285100"}'


@cache
def rsa_key(n: int) -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: RSAPrivateKey, serial: int, days: int = 365) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Tenpay.com platform")])
    now = datetime.now(tz=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def cert_pem(key: RSAPrivateKey, serial: int, days: int = 365) -> bytes:
    return certificate(key, serial, days).public_bytes(serialization.Encoding.PEM)


def pub_pem(key: RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


CERT_SERIAL = 0x3C0F7B2E5A9D1E4B6C8A0F2D4E6B8C0A1E3F5A7B
OLD_CERT_SERIAL = 0x0A1B2C3D4E5F60718293A4B5C6D7E8F901234567  # a leading zero in hex


def both_keys() -> PlatformKeys:
    return PlatformKeys([
        load_platform_key(cert_pem(rsa_key(1), CERT_SERIAL), source="cert.pem"),
        load_platform_key(pub_pem(rsa_key(2)), PUB_ID, source="pub.pem"),
    ])  # fmt: skip


# --- finding keys by serial --------------------------------------------------------------


def test_certificate_serials_are_compared_case_insensitively_and_as_numbers() -> None:
    keys = both_keys()
    hex_serial = format(CERT_SERIAL, "X")
    for named in (hex_serial, hex_serial.lower(), "00" + hex_serial):
        key = keys.find(named)
        assert key is not None and key.kind is KeyKind.CERTIFICATE
    assert keys.find(PUB_ID.lower()) is not None
    assert keys.find("PUB_KEY_ID_0114232134912410000000000001") is None
    assert keys.find(format(CERT_SERIAL + 1, "X")) is None
    assert normalize_serial("00ab") == "AB" and normalize_serial("pub_key_id_01") == "PUB_KEY_ID_01"


def test_request_serial_is_the_public_key_else_the_newest_certificate() -> None:
    assert both_keys().request_serial() == PUB_ID
    certs = PlatformKeys([
        load_platform_key(cert_pem(rsa_key(1), CERT_SERIAL, days=30)),
        load_platform_key(cert_pem(rsa_key(3), OLD_CERT_SERIAL, days=700)),
    ])  # fmt: skip
    # wechatpayv3 sends hex(serial)[2:].upper() of the certificate expiring last.
    assert certs.request_serial() == hex(OLD_CERT_SERIAL)[2:].upper()


def test_platform_keys_refuse_nothing_or_a_serial_twice() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PlatformKeys([])
    twice = load_platform_key(pub_pem(rsa_key(2)), PUB_ID)
    with pytest.raises(ValueError, match="twice"):
        PlatformKeys([twice, load_platform_key(pub_pem(rsa_key(3)), PUB_ID.lower())])


def test_loading_a_platform_key() -> None:
    cert = load_platform_key(cert_pem(rsa_key(1), CERT_SERIAL))
    assert cert.serial == format(CERT_SERIAL, "X") and cert.not_after is not None
    with pytest.raises(ValueError, match="serial"):
        load_platform_key(cert_pem(rsa_key(1), CERT_SERIAL), "ABCDEF")
    with pytest.raises(ValueError, match="PUB_KEY_ID"):
        load_platform_key(pub_pem(rsa_key(2)))
    assert "BEGIN" not in repr(cert) and "public_key=" not in repr(cert)


# --- verification with several keys -----------------------------------------------------


def test_answers_by_either_key_verify_and_say_which() -> None:
    keys = both_keys()
    by_cert = signature_headers(BODY, rsa_key(1), format(CERT_SERIAL, "x"), "N1", NOW)
    by_pub = signature_headers(BODY, rsa_key(2), PUB_ID, "N2", NOW)
    assert verify_response(by_cert, BODY, keys, NOW).kind is KeyKind.CERTIFICATE
    assert verify_response(by_pub, BODY, keys, NOW).kind is KeyKind.PUBLIC_KEY
    assert sorted(keys.verified_count.values()) == [1, 1]
    # The public key's signature under the certificate's serial: no.
    crossed = signature_headers(BODY, rsa_key(2), format(CERT_SERIAL, "X"), "N3", NOW)
    with pytest.raises(SignatureError):
        verify_response(crossed, BODY, keys, NOW)
    unknown = signature_headers(
        BODY, rsa_key(4), "PUB_KEY_ID_0199999999999999999999999999", "N", NOW
    )
    with pytest.raises(WrongSerial):
        verify_response(unknown, BODY, keys, NOW)


def test_signature_type_is_checked() -> None:
    keys = both_keys()
    headers = signature_headers(BODY, rsa_key(2), PUB_ID, "N1", NOW)
    other = {**headers, H_SIGNATURE_TYPE: "WECHATPAY2-SM2-WITH-SM3"}
    with pytest.raises(SignatureTypeError) as caught:
        verify_response(other, BODY, keys, NOW)
    assert caught.value.code == "bad_signature_type"
    missing = {k: v for k, v in headers.items() if k != H_SIGNATURE_TYPE}
    verify_response(missing, BODY, keys, NOW)  # an answer may come without it
    with pytest.raises(SignatureTypeError):
        verify_response(missing, BODY, keys, NOW, require_signature_type=True)


def test_a_notification_needs_the_signature_type() -> None:
    config = MerchantConfig(
        mchid="1900000109",
        appid="wx0123456789fake",
        serial_no="5157F09E",
        private_key=rsa_key(5),
        apiv3_key=b"0123456789abcdef0123456789abcdef",
        notify_url="https://example.com/notify",
        platform_keys=both_keys(),
    )
    body = b'{"id":"1","event_type":"TRANSACTION.SUCCESS","resource":{}}'
    headers = signature_headers(body, rsa_key(2), PUB_ID, "N1", NOW)
    del headers[H_SIGNATURE_TYPE]
    with pytest.raises(SignatureTypeError):
        parse_notification(headers, body, config, now=NOW)


class CountingKeys(PlatformKeys):
    def __init__(self, keys: PlatformKeys) -> None:
        super().__init__(keys)
        self.lookups = 0

    def find(self, serial: str) -> PlatformKey | None:
        self.lookups += 1
        return super().find(serial)


def test_a_stale_message_is_refused_before_any_key_lookup() -> None:
    keys = CountingKeys(both_keys())
    headers = signature_headers(BODY, rsa_key(4), "PUB_KEY_ID_0177", "N", NOW - 3600)
    with pytest.raises(StaleTimestamp):
        verify_response(headers, BODY, keys, NOW)
    assert keys.lookups == 0  # a replayed old message cannot make the keyring re-read


# --- the spec's limits ---------------------------------------------------------------------


@given(st.text(max_size=80), st.integers(min_value=0, max_value=200))
def test_cut_utf8_cuts_between_characters(text: str, limit: int) -> None:
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        return  # lone surrogates are not text
    cut = cut_utf8(text, limit)
    assert text.startswith(cut) and len(cut.encode()) <= limit
    if size > limit:  # the longest such prefix: one more character would not fit
        assert len(text[: len(cut) + 1].encode()) > limit
    else:
        assert cut == text


def merchant() -> MerchantConfig:
    return MerchantConfig(
        mchid="1900000109",
        appid="wx0123456789fake",
        serial_no="5157F09E",
        private_key=rsa_key(5),
        apiv3_key=b"0123456789abcdef0123456789abcdef",
        notify_url="https://example.com/notify",
        platform_keys=both_keys(),
    )


def test_byte_limits_of_prepay_and_refund_bodies() -> None:
    config = merchant()
    ok = {"out_trade_no": "r1_od0001", "amount_fen": 1, "payer_openid": "o", "time_expire_ms": 0}
    jsapi_body(config, description="好" * 42 + "a", **ok)  # 127 bytes
    with pytest.raises(ValueError, match="127 bytes"):
        jsapi_body(config, description="好" * 43, **ok)  # 43 characters, 129 bytes
    with pytest.raises(ValueError, match="128 bytes"):
        jsapi_body(config, description="d", attach="附" * 43, **ok)
    refund = {"out_trade_no": "r1_od0001", "out_refund_no": "rf1", "total_fen": 9, "refund_fen": 9}
    assert refund_body(config, reason="退" * 26, **refund)["reason"] == "退" * 26  # 78 bytes
    with pytest.raises(ValueError, match="80 bytes"):
        refund_body(config, reason="退" * 27, **refund)  # 81 bytes
    with pytest.raises(ValueError, match="80 bytes"):
        refund_body(config, reason="退" * 33, **refund)  # 99 bytes, 33 characters


def test_out_trade_no_charset_follows_the_spec() -> None:
    for good in ("r1_od|0001", "A*b-c_9|", "123456", "x" * 32):
        assert valid_out_trade_no(good), good
    for bad in ("12345", "x" * 33, "r1@od0001", "r1 od0001", "订单000001", "r1.od0001"):
        assert not valid_out_trade_no(bad), bad


@pytest.mark.parametrize(
    "url", ["https://example.com/notify?x=1", "https://example.com/" + "n" * 240]
)
def test_a_notify_url_wechat_would_refuse_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValueError, match="notify URL"):
        MerchantConfig(
            mchid="1900000109",
            appid="wx0123456789fake",
            serial_no="5157F09E",
            private_key=rsa_key(5),
            apiv3_key=b"0123456789abcdef0123456789abcdef",
            notify_url=url,
            platform_keys=both_keys(),
        )


# --- the keyring: files, and the re-read on an unknown serial ------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_keys_dir_holds_certificates_and_the_public_key(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_bytes(cert_pem(rsa_key(1), CERT_SERIAL))
    (tmp_path / f"{PUB_ID}.pem").write_bytes(pub_pem(rsa_key(2)))
    (tmp_path / "README.txt").write_text("ignored: not .pem")
    keys = read_platform_keys(keys_dir=tmp_path)
    assert sorted(keys.describe()) == sorted(
        [f"certificate:{format(CERT_SERIAL, 'X')}", f"public_key:{PUB_ID}"]
    )
    # The same public key also given as the file with its id: held once.
    again = read_platform_keys(
        public_key_file=tmp_path / f"{PUB_ID}.pem", public_key_id=PUB_ID, keys_dir=tmp_path
    )
    assert len(again) == 2


def test_a_bad_keys_dir_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "pub_key.pem").write_bytes(pub_pem(rsa_key(2)))
    with pytest.raises(ValueError, match=r"pub_key\.pem is neither"):
        read_platform_keys(keys_dir=tmp_path)
    (tmp_path / "pub_key.pem").unlink()
    (tmp_path / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nxx\n")
    with pytest.raises(ValueError) as caught:
        read_platform_keys(keys_dir=tmp_path)
    assert "xx" not in str(caught.value)
    with pytest.raises(ValueError, match="cannot list"):
        read_platform_keys(keys_dir=tmp_path / "missing")


def test_an_unknown_serial_rereads_the_files_at_most_once_per_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "cert.pem").write_bytes(cert_pem(rsa_key(1), CERT_SERIAL))
    clock = Clock()
    ring = PlatformKeyring(keys_dir=tmp_path, reload_interval=5.0, monotonic=clock)
    assert ring.request_serial() == format(CERT_SERIAL, "X")
    (tmp_path / f"{PUB_ID}.pem").write_bytes(pub_pem(rsa_key(2)))
    clock.now += 1  # within the interval: the files are not read again
    assert ring.find(PUB_ID) is None and ring.reloads == 0
    clock.now += 5
    with caplog.at_level(logging.INFO, logger="interact.wechatpay.keys"):
        key = ring.find(PUB_ID)
    assert key is not None and key.kind is KeyKind.PUBLIC_KEY and ring.reloads == 1
    assert ring.request_serial() == PUB_ID  # requests now name the public key
    assert f"public_key:{PUB_ID}" in caplog.text and "BEGIN" not in caplog.text
    # A forged serial right after: no read (rate-limited), and the keys stay.
    assert ring.find("PUB_KEY_ID_0199") is None and ring.reloads == 1


def test_a_failed_reload_keeps_the_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cert.pem").write_bytes(cert_pem(rsa_key(1), CERT_SERIAL))
    clock = Clock()
    ring = PlatformKeyring(keys_dir=tmp_path, reload_interval=1.0, monotonic=clock)
    (tmp_path / "new.pem").write_bytes(b"not a key")
    clock.now += 2
    with caplog.at_level(logging.WARNING, logger="interact.wechatpay.keys"):
        assert ring.find("PUB_KEY_ID_0177") is None
    assert ring.failed_reloads == 1 and "new.pem" in caplog.text
    assert ring.find(format(CERT_SERIAL, "X")) is not None


def test_reload_interval_zero_never_rereads(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_bytes(cert_pem(rsa_key(1), CERT_SERIAL))
    clock = Clock()
    ring = PlatformKeyring(keys_dir=tmp_path, reload_interval=0, monotonic=clock)
    (tmp_path / f"{PUB_ID}.pem").write_bytes(pub_pem(rsa_key(2)))
    clock.now += 3600
    assert ring.find(PUB_ID) is None and ring.reloads == 0


# --- the client against the fake ---------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChatPay]:
    async with FakeWeChatPay(rsa_key(5).public_key()) as fake:
        yield fake


def deadline_ms() -> int:
    return int((time.time() + 900) * 1000)


async def every_call(client: WeChatPayClient, no: str) -> None:
    await client.prepay(no, "商品", 100, "o_openid", deadline_ms())
    await client.query(no)
    await client.close(no)
    await client.query_refund("rf_none")


@pytest.mark.parametrize(
    ("held", "named"),
    [
        ((Signer.PUBLIC_KEY, Signer.CERTIFICATE), "public"),
        ((Signer.CERTIFICATE,), "certificate"),
        ((Signer.PUBLIC_KEY,), "public"),
    ],
)
async def test_every_request_names_the_key_to_answer_with(
    fake: FakeWeChatPay, held: tuple[Signer, ...], named: str
) -> None:
    fake.sign_with = Signer.BY_REQUEST
    async with WeChatPayClient(
        fake.merchant_config(rsa_key(5), keys=held), fake.base_url or ""
    ) as client:
        await every_call(client, "T|0001")
    expected = fake.platform_serial if named == "public" else fake.cert_serial
    assert [r.wechatpay_serial for r in fake.requests] == [expected] * 4
    assert all(r.authorized for r in fake.requests)


async def test_answers_by_either_key_while_wechat_switches(fake: FakeWeChatPay) -> None:
    config = fake.merchant_config(rsa_key(5), keys=(Signer.CERTIFICATE, Signer.PUBLIC_KEY))
    async with WeChatPayClient(config, fake.base_url or "") as client:
        fake.sign_with = Signer.CERTIFICATE
        fake.lowercase_serial = True
        await client.prepay("T00002", "商品", 100, "o_openid", deadline_ms())
        fake.sign_with = Signer.PUBLIC_KEY
        assert (await client.query("T00002") or {})["trade_state"] == "NOTPAY"
        fake.sign_with = Signer.UNKNOWN
        with pytest.raises(PayUnavailable) as caught:
            await client.query("T00002")
        assert caught.value.reason is Unavailable.UNTRUSTED and client.stats.untrusted == 1
    counts = config.platform_keys.verified_count  # type: ignore[attr-defined]
    assert counts == {fake.cert_serial: 1, fake.platform_serial: 1}


async def test_an_answer_with_another_signature_type_is_refused(fake: FakeWeChatPay) -> None:
    async with WeChatPayClient(fake.merchant_config(rsa_key(5)), fake.base_url or "") as client:
        fake.tamper_answers = Tamper.NO_SIGNATURE_TYPE
        await client.prepay("T00003", "商品", 100, "o_openid", deadline_ms())  # tolerated
        fake.tamper_answers = Tamper.SIGNATURE_TYPE
        with pytest.raises(PayUnavailable):
            await client.query("T00003")
    assert fake.requests[-1].wechatpay_serial == fake.platform_serial
    assert H_SERIAL == "Wechatpay-Serial"


# --- settings ----------------------------------------------------------------------------


def wechat_settings(**overrides: object) -> Config:
    values: dict[str, object] = {
        "pay_provider": "wechat",
        "wechatpay_mchid": "1900000109",
        "wechatpay_appid": "wx0123456789fake",
        "wechatpay_serial": "5157F09E",
        "wechatpay_private_key_file": "/etc/interact/apiclient_key.pem",
        "wechatpay_apiv3_key_file": "/etc/interact/apiv3.key",
        "wechatpay_notify_url": "https://example.com/api/v1/pay/wechat/notify",
        **overrides,
    }
    return Config(**values)  # type: ignore[arg-type]


def test_settings_take_a_keys_dir_a_public_key_or_both() -> None:
    wechat_settings(wechatpay_platform_keys_dir="/etc/interact/wechatpay-keys").validate()
    wechat_settings(
        wechatpay_platform_public_key_file="/k/pub.pem", wechatpay_platform_serial=PUB_ID
    ).validate()
    with pytest.raises(ValueError, match="wechatpay_platform_keys_dir"):
        wechat_settings().validate()
    with pytest.raises(ValueError, match="wechatpay_platform_serial"):
        wechat_settings(wechatpay_platform_public_key_file="/k/pub.pem").validate()
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="reload_interval"):
            wechat_settings(
                wechatpay_platform_keys_dir="/k", wechatpay_keys_reload_interval=bad
            ).validate()
    shown = wechat_settings(wechatpay_platform_keys_dir="/k", wechatpay_apiv3_key="x" * 32)
    assert shown.redacted()["wechatpay_apiv3_key"] == "***"
    assert shown.redacted()["wechatpay_platform_keys_dir"] == "/k"
