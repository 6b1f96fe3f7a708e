"""WeChat Pay v3 signing, verification and AES-GCM (commerce.wechatpay): pure, no loop."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce.wechatpay import (
    H_NONCE,
    H_SERIAL,
    H_SIGNATURE,
    H_TIMESTAMP,
    SCHEME,
    DecryptError,
    KeyKind,
    MalformedMessage,
    MerchantConfig,
    MismatchError,
    NonceGuard,
    PlatformKey,
    PlatformKeys,
    RefundResult,
    ReplayedNonce,
    SignatureError,
    StaleTimestamp,
    Transaction,
    UntrustedMessage,
    WrongSerial,
    authorization,
    check_refund,
    check_transaction,
    decrypt_resource,
    encode_body,
    encrypt_resource,
    fail_body,
    jsapi_body,
    load_apiv3_key,
    load_private_key,
    load_public_key,
    new_nonce,
    parse_authorization,
    parse_notification,
    parse_time,
    refund_body,
    request_message,
    request_payment_params,
    signed_headers,
    time_expire,
    verify_authorization,
    verify_response,
    verify_signature,
)

NOW = 1_700_000_000
SERIAL = "PUB_KEY_ID_0114232134912410000000000000"
APIV3 = b"0123456789abcdef0123456789abcdef"
BODY = b'{"prepay_id":"wx201410272009395522657a690389285100"}'


@cache
def merchant_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def platform_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def other_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def config(**overrides: Any) -> MerchantConfig:
    values: dict[str, Any] = {
        "mchid": "1900000109",
        "appid": "wx0123456789fake",
        "serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "private_key": merchant_key(),
        "apiv3_key": APIV3,
        "platform_public_key": platform_key().public_key(),
        "platform_serial": SERIAL,
        "notify_url": "https://example.com/api/v1/pay/wechat/notify",
    }
    values.update(overrides)
    return MerchantConfig(**values)


def signed(body: bytes, *, ts: int = NOW, nonce: str = "N0NCE", key: Any = None) -> dict[str, str]:
    return signed_headers(body, key or platform_key(), SERIAL, nonce, ts)


def verify(headers: dict[str, str], body: bytes, now: float = NOW) -> None:
    verify_response(headers, body, platform_keys(), now)


def platform_keys() -> PlatformKeys:
    return PlatformKeys([PlatformKey(SERIAL, KeyKind.PUBLIC_KEY, platform_key().public_key())])


def pem_private(key: RSAPrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def pem_public(key: RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- request Authorization ---------------------------------------------------------------


def test_authorization_has_wechat_layout_and_verifies() -> None:
    body = encode_body({"mchid": "1900000109"})
    url = "/v3/pay/transactions/out-trade-no/T0001/close"
    header = authorization("POST", url, body, "1900000109", "ABC123", merchant_key(), "NC", NOW)
    assert header.startswith(SCHEME + ' mchid="1900000109",nonce_str="NC",signature="')
    assert header.endswith(f'",timestamp="{NOW}",serial_no="ABC123"')
    auth = parse_authorization(header)
    assert (auth.mchid, auth.nonce_str, auth.timestamp, auth.serial_no) == (
        "1900000109",
        "NC",
        NOW,
        "ABC123",
    )
    # The signature is over METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n, checkable by hand.
    message = b"POST\n" + url.encode() + f"\n{NOW}\nNC\n".encode() + body + b"\n"
    assert message == request_message("POST", url, NOW, "NC", body)
    merchant_key().public_key().verify(
        base64.b64decode(auth.signature), message, padding.PKCS1v15(), hashes.SHA256()
    )
    verify_authorization(header, "POST", url, body, merchant_key().public_key(), now=NOW + 300)


def test_get_signs_an_empty_body_and_the_query() -> None:
    url = "/v3/pay/transactions/out-trade-no/T0001?mchid=1900000109"
    header = authorization("GET", url, b"", "1900000109", "S", merchant_key(), "N", NOW)
    verify_authorization(header, "GET", url, b"", merchant_key().public_key(), now=NOW)
    with pytest.raises(SignatureError):
        verify_authorization(
            header, "GET", url.split("?")[0], b"", merchant_key().public_key(), now=NOW
        )


@pytest.mark.parametrize(
    ("method", "url", "body", "now", "error"),
    [
        ("POST", "/v3/x", b"{}", NOW, SignatureError),  # another body
        ("PUT", "/v3/x", b"", NOW, SignatureError),  # another method
        ("POST", "/v3/y", b"", NOW, SignatureError),  # another URL
        ("POST", "/v3/x", b"", NOW + 301, StaleTimestamp),
        ("POST", "/v3/x", b"", NOW - 301, StaleTimestamp),
    ],
)
def test_authorization_refused_when_anything_differs(
    method: str, url: str, body: bytes, now: int, error: type[Exception]
) -> None:
    header = authorization("POST", "/v3/x", b"", "1", "S", merchant_key(), "N", NOW)
    with pytest.raises(error):
        verify_authorization(header, method, url, body, merchant_key().public_key(), now=now)


def test_authorization_by_another_key_refused() -> None:
    header = authorization("POST", "/v3/x", b"", "1", "S", other_key(), "N", NOW)
    with pytest.raises(SignatureError):
        verify_authorization(header, "POST", "/v3/x", b"", merchant_key().public_key(), now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        SCHEME,
        SCHEME + ' mchid="1",nonce_str="N",signature="c2ln",timestamp="x",serial_no="S"',
        SCHEME + ' mchid="1",nonce_str="N",signature="c2ln",timestamp="1"',
        SCHEME + ' mchid="1" nonce_str="N"',
    ],
)
def test_malformed_authorization_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        parse_authorization(header)


# --- answers and notifications: Wechatpay-* headers ----------------------------------------


def test_response_roundtrip() -> None:
    headers = signed(BODY)
    assert headers[H_SERIAL] == SERIAL
    assert headers["Wechatpay-Signature-Type"] == SCHEME
    verify(headers, BODY)
    # Header names are case-insensitive.
    verify({k.lower(): v for k, v in headers.items()}, BODY)


def test_tampered_body_refused() -> None:
    with pytest.raises(SignatureError):
        verify(signed(BODY), BODY.replace(b"wx2014", b"wx2015"))


def test_tampered_signature_refused() -> None:
    headers = signed(BODY)
    raw = bytearray(base64.b64decode(headers[H_SIGNATURE]))
    raw[0] ^= 0x80
    headers[H_SIGNATURE] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SignatureError):
        verify(headers, BODY)


@pytest.mark.parametrize("signature", ["", "not base64!", "WECHATPAY/SIGNTEST/abc", "AAAA"])
def test_bad_signature_values_refused(signature: str) -> None:
    headers = signed(BODY)
    headers[H_SIGNATURE] = signature
    with pytest.raises(SignatureError):
        verify(headers, BODY)


def test_signature_by_another_key_refused() -> None:
    with pytest.raises(SignatureError):
        verify(signed(BODY, key=other_key()), BODY)


def test_wrong_serial_refused() -> None:
    headers = signed(BODY)
    headers[H_SERIAL] = "PUB_KEY_ID_0000000000000000000000000000"
    with pytest.raises(WrongSerial):
        verify(headers, BODY)


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_stale_or_future_timestamp_refused(offset: int) -> None:
    headers = signed(BODY, ts=NOW + offset)
    with pytest.raises(StaleTimestamp):
        verify(headers, BODY)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_within_five_minutes_accepted(offset: int) -> None:
    headers = signed(BODY, ts=NOW + offset)
    verify(headers, BODY)
    # Accepted as fresh, not waved through: at the same timestamp the signature is still
    # checked, so a changed body fails on it (not on the clock).
    with pytest.raises(SignatureError):
        verify(headers, BODY + b" ")
    # And the window is measured from the header's timestamp: a second past it, refused.
    with pytest.raises(StaleTimestamp):
        verify(headers, BODY, now=NOW + offset + 301)


@pytest.mark.parametrize("missing", [H_TIMESTAMP, H_NONCE, H_SIGNATURE, H_SERIAL])
def test_missing_header_refused(missing: str) -> None:
    headers = signed(BODY)
    del headers[missing]
    with pytest.raises(SignatureError):
        verify(headers, BODY)


def test_malformed_timestamp_refused() -> None:
    headers = signed(BODY)
    headers[H_TIMESTAMP] = "1700000000.5"
    with pytest.raises(SignatureError):
        verify(headers, BODY)


def test_errors_carry_no_secrets() -> None:
    headers = signed(BODY)
    headers[H_SIGNATURE] = headers[H_SIGNATURE][:-4] + "AAA="
    with pytest.raises(UntrustedMessage) as caught:
        verify(headers, BODY)
    assert headers[H_SIGNATURE] not in str(caught.value)
    assert BODY.decode() not in str(caught.value)
    assert caught.value.code == "bad_signature"


@settings(max_examples=40, deadline=None)
@given(body=st.binary(max_size=2048), nonce=st.text("ABCDEFXYZ0123456789", min_size=1))
def test_any_body_roundtrips_and_any_flip_is_refused(body: bytes, nonce: str) -> None:
    headers = signed(body, nonce=nonce)
    verify(headers, body)
    changed = body + b"\n" if not body else bytes([body[0] ^ 0x01]) + body[1:]
    with pytest.raises(SignatureError):
        verify(headers, changed)


# --- AES-256-GCM resources ---------------------------------------------------------------

PLAIN = {"out_trade_no": "T0001", "trade_state": "SUCCESS", "amount": {"total": 990}}


def encrypted(data: Any = None, **kwargs: Any) -> dict[str, str]:
    kwargs.setdefault("nonce", "fdasflkja484")
    kwargs.setdefault("associated_data", "transaction")
    kwargs.setdefault("original_type", "transaction")
    return encrypt_resource(PLAIN if data is None else data, APIV3, **kwargs)


def test_resource_roundtrip_has_wechat_shape() -> None:
    resource = encrypted()
    assert resource["algorithm"] == "AEAD_AES_256_GCM"
    assert set(resource) == {
        "original_type",
        "algorithm",
        "ciphertext",
        "associated_data",
        "nonce",
    }
    assert decrypt_resource(resource, APIV3) == PLAIN


def test_tampered_ciphertext_refused() -> None:
    resource = encrypted()
    raw = bytearray(base64.b64decode(resource["ciphertext"]))
    raw[3] ^= 0x01
    resource["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptError):
        decrypt_resource(resource, APIV3)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("associated_data", "refund"),
        ("associated_data", ""),
        ("nonce", "fdasflkja485"),
        ("algorithm", "AEAD_AES_128_GCM"),
        ("ciphertext", "!!!"),
        ("ciphertext", ""),
    ],
)
def test_changed_resource_fields_refused(name: str, value: str) -> None:
    resource = encrypted()
    resource[name] = value
    with pytest.raises(DecryptError):
        decrypt_resource(resource, APIV3)


def test_wrong_apiv3_key_refused() -> None:
    with pytest.raises(DecryptError):
        decrypt_resource(encrypted(), b"x" * 32)


def test_plaintext_must_be_a_json_object() -> None:
    with pytest.raises(DecryptError):
        decrypt_resource(encrypted(b"[1,2]"), APIV3)
    with pytest.raises(DecryptError):
        decrypt_resource(encrypted(b"not json"), APIV3)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    data=st.dictionaries(st.text(), json_values, max_size=6),
    associated=st.text(max_size=20),
    nonce=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=12, max_size=12),
)
def test_any_object_roundtrips(data: dict[str, Any], associated: str, nonce: str) -> None:
    resource = encrypted(data, associated_data=associated, nonce=nonce)
    assert decrypt_resource(resource, APIV3) == data


# --- notifications -----------------------------------------------------------------------


def notification(
    resource: dict[str, Any], *, event_type: str = "TRANSACTION.SUCCESS", **sign: Any
) -> tuple[dict[str, str], bytes]:
    body = encode_body(
        {
            "id": "EV-2018022511",
            "create_time": "2015-05-20T13:29:35+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功",
            "resource": encrypted(resource),
        }
    )
    return signed(body, **sign), body


def test_parse_notification_verifies_and_decrypts() -> None:
    tx = {"out_trade_no": "T0001", "trade_state": "SUCCESS"}
    headers, body = notification(tx)
    parsed = parse_notification(headers, body, config(), now=NOW)
    assert parsed.event_type == "TRANSACTION.SUCCESS"
    assert parsed.id == "EV-2018022511"
    assert parsed.original_type == "transaction"
    assert parsed.resource == tx


def test_parse_notification_refuses_a_replayed_nonce() -> None:
    guard = NonceGuard()
    headers, body = notification({"out_trade_no": "T0001"}, nonce="ONCE")
    parse_notification(headers, body, config(), now=NOW, replay_guard=guard)
    with pytest.raises(ReplayedNonce):
        parse_notification(headers, body, config(), now=NOW + 1, replay_guard=guard)
    # A forged message does not burn a nonce.
    forged_headers, forged_body = notification({"x": 1}, nonce="FRESH", key=other_key())
    with pytest.raises(SignatureError):
        parse_notification(forged_headers, forged_body, config(), now=NOW, replay_guard=guard)
    headers, body = notification({"x": 1}, nonce="FRESH")
    parse_notification(headers, body, config(), now=NOW, replay_guard=guard)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"event_type":"TRANSACTION.SUCCESS"}', b'{"resource":{}}'],
)
def test_parse_notification_refuses_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_notification(signed(body), body, config(), now=NOW)


def test_parse_notification_refuses_a_plain_resource_type() -> None:
    body = encode_body({"event_type": "X", "resource_type": "plain", "resource": {}})
    with pytest.raises(MalformedMessage):
        parse_notification(signed(body), body, config(), now=NOW)


def test_nonce_guard_forgets_after_the_window_and_stays_bounded() -> None:
    guard = NonceGuard(max_skew=300, max_entries=3)
    guard.check("a", NOW, NOW)
    with pytest.raises(ReplayedNonce):
        guard.check("a", NOW, NOW + 300)
    guard.check("a", NOW, NOW + 301)  # the freshness check refuses it by now anyway
    for nonce in "bcde":
        guard.check(nonce, NOW + 400, NOW + 400)
    assert len(guard) == 3


def test_fail_body_is_wechat_format() -> None:
    assert json.loads(fail_body("验签失败")) == {"code": "FAIL", "message": "验签失败"}


# --- transactions and refunds against the order ------------------------------------------


def transaction(**overrides: Any) -> Transaction:
    data: dict[str, Any] = {
        "mchid": "1900000109",
        "appid": "wx0123456789fake",
        "out_trade_no": "T0001",
        "transaction_id": "4200000000000000000000000001",
        "trade_state": "SUCCESS",
        "payer": {"openid": "o_payer"},
        "amount": {"total": 990, "payer_total": 890, "currency": "CNY"},
    }
    data.update(overrides)
    return Transaction.from_dict(data)


def test_transaction_matches_its_order() -> None:
    tx = transaction()
    assert tx.paid and tx.total_fen == 990 and tx.payer_total_fen == 890
    assert "o_payer" not in repr(tx)
    check_transaction(tx, config(), out_trade_no="T0001", amount_fen=990)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mchid": "1900000110"}, "mchid"),
        ({"appid": "wx_other"}, "appid"),
        ({"out_trade_no": "T0002"}, "out_trade_no"),
        ({"amount": {"total": 1, "currency": "CNY"}}, "amount"),
        ({"amount": {"total": 990, "currency": "USD"}}, "currency"),
        ({"amount": {}}, "amount"),
    ],
)
def test_transaction_mismatch_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(MismatchError) as caught:
        check_transaction(transaction(**overrides), config(), out_trade_no="T0001", amount_fen=990)
    assert caught.value.field == field


def test_transaction_needs_number_and_state() -> None:
    with pytest.raises(MalformedMessage):
        Transaction.from_dict({"trade_state": "SUCCESS"})


def test_refund_from_answer_and_notification() -> None:
    answer = RefundResult.from_dict(
        {
            "out_trade_no": "T0001",
            "out_refund_no": "R0001",
            "refund_id": "50000",
            "status": "PROCESSING",
            "amount": {"total": 990, "refund": 990},
        }
    )
    assert answer.status == "PROCESSING"
    notified = RefundResult.from_dict(
        {
            "mchid": "1900000109",
            "out_trade_no": "T0001",
            "out_refund_no": "R0001",
            "refund_status": "SUCCESS",
            "amount": {"total": 990, "refund": 990},
        }
    )
    check_refund(notified, config(), out_trade_no="T0001", out_refund_no="R0001", refund_fen=990)
    with pytest.raises(MismatchError):
        check_refund(notified, config(), out_trade_no="T0001", out_refund_no="R0001", refund_fen=1)


# --- bodies and payment parameters -------------------------------------------------------


def test_jsapi_body() -> None:
    deadline_ms = 1_700_000_000_999  # 2023-11-15T06:13:20.999+08:00
    body = jsapi_body(
        config(),
        out_trade_no="r1-od1a2b3c",
        description="直播间秒杀 · 商品",
        amount_fen=990,
        payer_openid="o_payer",
        time_expire_ms=deadline_ms,
    )
    assert body == {
        "appid": "wx0123456789fake",
        "mchid": "1900000109",
        "description": "直播间秒杀 · 商品",
        "out_trade_no": "r1-od1a2b3c",
        "time_expire": "2023-11-15T06:13:20+08:00",
        "notify_url": "https://example.com/api/v1/pay/wechat/notify",
        "amount": {"total": 990, "currency": "CNY"},
        "payer": {"openid": "o_payer"},
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"out_trade_no": "short"},
        {"out_trade_no": "has space in it"},
        {"out_trade_no": "x" * 33},
        {"amount_fen": 0},
        {"amount_fen": 9.9},
        {"amount_fen": True},
        {"description": ""},
        {"description": "x" * 128},
        {"payer_openid": ""},
    ],
)
def test_jsapi_body_refuses_what_wechat_refuses(overrides: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "out_trade_no": "T000001",
        "description": "d",
        "amount_fen": 1,
        "payer_openid": "o",
        "time_expire_ms": NOW * 1000,
    }
    args.update(overrides)
    with pytest.raises(ValueError):
        jsapi_body(config(), **args)


def test_refund_body() -> None:
    body = refund_body(
        config(refund_notify_url="https://example.com/refund"),
        out_trade_no="T000001",
        out_refund_no="R000001",
        total_fen=990,
        refund_fen=500,
        reason="订单已过期",
    )
    assert body == {
        "out_trade_no": "T000001",
        "out_refund_no": "R000001",
        "notify_url": "https://example.com/refund",
        "amount": {"refund": 500, "total": 990, "currency": "CNY"},
        "reason": "订单已过期",
    }
    with pytest.raises(ValueError):
        refund_body(config(), out_trade_no="T000001", out_refund_no="R1", total_fen=1, refund_fen=2)
    with pytest.raises(ValueError):
        refund_body(
            config(), out_trade_no="T000001", out_refund_no="R 1", total_fen=1, refund_fen=1
        )


@settings(max_examples=100)
@given(ms=st.integers(min_value=0, max_value=4_102_444_800_000))
def test_time_expire_is_beijing_rfc3339_rounded_down(ms: int) -> None:
    text = time_expire(ms)
    assert text.endswith("+08:00") and "." not in text
    assert datetime.fromisoformat(text).utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert parse_time(text) == ms // 1000 * 1000


def test_request_payment_params_verify_with_the_merchant_public_key() -> None:
    params = request_payment_params("wx0123456789fake", "wx2017", merchant_key(), "5K8264ILT", NOW)
    assert params["timeStamp"] == str(NOW)
    assert params["nonceStr"] == "5K8264ILT"
    assert params["package"] == "prepay_id=wx2017"
    assert params["signType"] == "RSA"
    message = f"wx0123456789fake\n{NOW}\n5K8264ILT\nprepay_id=wx2017\n".encode()
    assert verify_signature(merchant_key().public_key(), message, params["paySign"])
    assert not verify_signature(other_key().public_key(), message, params["paySign"])


def test_nonces_are_fresh() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(n) == 32 and n.isalnum() for n in nonces)


# --- keys and configuration --------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_private_key_pkcs8_and_pkcs1(fmt: serialization.PrivateFormat) -> None:
    pem = pem_private(merchant_key(), fmt)
    loaded = load_private_key(pem.decode())
    assert loaded.private_numbers() == merchant_key().private_numbers()


def test_refuses_keys_that_are_not_rsa_2048() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError):
        load_private_key(pem_private(small, serialization.PrivateFormat.PKCS8))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError):
        load_private_key(pem_private(ec_key, serialization.PrivateFormat.PKCS8))  # type: ignore[arg-type]


def test_key_errors_do_not_quote_the_input() -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ValueError) as caught:
        load_private_key(secret)
    assert "TOPSECRET" not in str(caught.value)
    with pytest.raises(ValueError) as caught:
        load_apiv3_key("short-secret-value")
    assert "short-secret" not in str(caught.value)


def test_public_key_from_spki_or_certificate() -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    assert load_public_key(pem_public(platform_key())).public_numbers() == (
        platform_key().public_key().public_numbers()
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(platform_key().public_key())
        .serial_number(0x5157F09E)
        .not_valid_before(datetime(2024, 1, 1))
        .not_valid_after(datetime(2030, 1, 1))
        .sign(platform_key(), hashes.SHA256())
    )
    loaded = load_public_key(cert.public_bytes(serialization.Encoding.PEM))
    assert loaded.public_numbers() == platform_key().public_key().public_numbers()
    with pytest.raises(ValueError):
        load_public_key(b"garbage")


def test_merchant_config_load_from_text_and_files(tmp_path: Path) -> None:
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_bytes(pem_private(merchant_key(), serialization.PrivateFormat.PKCS8))
    pub_file = tmp_path / "pub_key.pem"
    pub_file.write_bytes(pem_public(platform_key()))
    apiv3_file = tmp_path / "apiv3"
    apiv3_file.write_bytes(APIV3 + b"\n")
    common = {
        "mchid": "1900000109",
        "appid": "wx0123456789fake",
        "serial_no": "5157F09E",
        "platform_serial": SERIAL,
        "notify_url": "https://example.com/notify",
    }
    from_files = MerchantConfig.load(
        **common,
        private_key_file=key_file,
        apiv3_key_file=apiv3_file,
        platform_public_key_file=str(pub_file),
    )
    from_text = MerchantConfig.load(
        **common,
        private_key=key_file.read_text(),
        apiv3_key=APIV3.decode(),
        platform_public_key=pub_file.read_bytes(),
    )
    for loaded in (from_files, from_text):
        assert loaded.apiv3_key == APIV3
        assert loaded.refund_notify == "https://example.com/notify"
        text = repr(loaded)
        assert APIV3.decode() not in text and "PRIVATE" not in text
        assert "1900000109" in text
    with pytest.raises(ValueError, match="exactly one"):
        MerchantConfig.load(**common, private_key_file=key_file, apiv3_key_file=apiv3_file)
    with pytest.raises(ValueError, match="cannot read"):
        MerchantConfig.load(
            **common,
            private_key_file=tmp_path / "missing.pem",
            apiv3_key=APIV3,
            platform_public_key_file=pub_file,
        )


@pytest.mark.parametrize(
    "overrides", [{"mchid": ""}, {"apiv3_key": b"short"}, {"private_key": "pem text"}]
)
def test_merchant_config_validates(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        config(**overrides)
