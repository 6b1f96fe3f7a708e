"""WeChat Pay API v3 without I/O: signatures, verification, AES-GCM resources, request bodies.

Everything here is a function of its arguments: the caller passes the time, the nonces and
the keys. :mod:`commerce.pay_client` drives it over HTTP; the notify handler calls
:func:`parse_notification`; the fake WeChat Pay server of the tests uses the inverse helpers
(:func:`sign_message`, :func:`signed_headers`, :func:`encrypt_resource`,
:func:`verify_authorization`), so client, handler and fake share one format.

Why ``cryptography`` directly and not ``wechatpayv3``: the v3 protocol is two primitives
(SHA256withRSA PKCS#1 v1.5 and AES-256-GCM) over fixed message layouts, about a hundred
lines. ``wechatpayv3``'s ``callback()`` does not check timestamp freshness (a day-old
notification passes) and answers a bare ``None`` for every failure, its gateway URL is a
private attribute, it wants the merchant key as PKCS#8 only, it fetches platform
certificates over the network unless given ``public_key`` and ``public_key_id``, and it has
no inverse helpers for a fake server. Here: typed errors, a freshness window, a replay
guard, PKCS#1 or PKCS#8 keys, a platform public key or certificate, and no network.

Messages signed (each line ends with ``\\n``)::

    request (Authorization)     METHOD, URL path with query, TIMESTAMP, NONCE, BODY
    answer and notification     TIMESTAMP, NONCE, BODY       (Wechatpay-* headers)
    wx.requestPayment paySign   appId, timeStamp, nonceStr, package

Exceptions carry a fixed message and a ``code`` for metrics, never key material, signatures,
bodies or values taken from the message::

    UntrustedMessage         -- an answer or notification that must not be acted on
     ├── SignatureError      -- signature headers missing or malformed, or no match
     ├── WrongSerial         -- Wechatpay-Serial is not the platform key we hold
     ├── StaleTimestamp      -- Wechatpay-Timestamp more than ``max_skew`` s from now
     ├── ReplayedNonce       -- a nonce already seen within the freshness window
     ├── DecryptError        -- the resource is not AEAD_AES_256_GCM or fails authentication
     ├── MalformedMessage    -- verified, but not the JSON shape WeChat Pay sends
     └── MismatchError       -- a transaction or refund that is not the order's (``field``)
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ALGORITHM",
    "CURRENCY",
    "H_NONCE",
    "H_SERIAL",
    "H_SIGNATURE",
    "H_SIGNATURE_TYPE",
    "H_TIMESTAMP",
    "MAX_SKEW",
    "SCHEME",
    "AuthorizationHeader",
    "DecryptError",
    "EventType",
    "MalformedMessage",
    "MerchantConfig",
    "MismatchError",
    "NonceGuard",
    "Notification",
    "RefundResult",
    "RefundStatus",
    "ReplayedNonce",
    "SignatureError",
    "StaleTimestamp",
    "TradeState",
    "Transaction",
    "UntrustedMessage",
    "WrongSerial",
    "amount",
    "authorization",
    "check_refund",
    "check_transaction",
    "decrypt_resource",
    "encode_body",
    "encrypt_resource",
    "fail_body",
    "jsapi_body",
    "load_apiv3_key",
    "load_private_key",
    "load_public_key",
    "new_nonce",
    "parse_authorization",
    "parse_notification",
    "parse_time",
    "refund_body",
    "request_message",
    "request_payment_params",
    "response_message",
    "sign_message",
    "signed_headers",
    "time_expire",
    "valid_out_refund_no",
    "valid_out_trade_no",
    "verify_authorization",
    "verify_response",
    "verify_signature",
]

SCHEME = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM = "AEAD_AES_256_GCM"
CURRENCY = "CNY"
MAX_SKEW = 300  # seconds a signed timestamp may be away from our clock
CHINA_TZ = timezone(timedelta(hours=8))
APIV3_KEY_LEN = 32
MIN_RSA_BITS = 2048

H_TIMESTAMP = "Wechatpay-Timestamp"
H_NONCE = "Wechatpay-Nonce"
H_SIGNATURE = "Wechatpay-Signature"
H_SERIAL = "Wechatpay-Serial"
H_SIGNATURE_TYPE = "Wechatpay-Signature-Type"

# WeChat's rules: out_trade_no 6–32 of [0-9A-Za-z_-*]; out_refund_no 1–64 of [0-9A-Za-z_-|*@].
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_*-]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_*|@-]{1,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_AUTH_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*(?:,|$)')
_NONCE_CHARS = string.ascii_uppercase + string.digits
MAX_DESCRIPTION = 127
MAX_REASON = 80


# --- errors ----------------------------------------------------------------------------


class UntrustedMessage(ValueError):
    """An answer or notification from "WeChat Pay" that must not be acted on."""

    code = "untrusted"
    default = "untrusted WeChat Pay message"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default)


class SignatureError(UntrustedMessage):
    code = "bad_signature"
    default = "WeChat Pay signature missing, malformed or not matching"


class WrongSerial(UntrustedMessage):
    code = "wrong_serial"
    default = "Wechatpay-Serial is not the configured platform key id"


class StaleTimestamp(UntrustedMessage):
    code = "stale_timestamp"
    default = "Wechatpay-Timestamp outside the allowed window"


class ReplayedNonce(UntrustedMessage):
    code = "replayed_nonce"
    default = "Wechatpay-Nonce already seen"


class DecryptError(UntrustedMessage):
    code = "decrypt_failed"
    default = "resource could not be decrypted and authenticated"


class MalformedMessage(UntrustedMessage):
    code = "malformed"
    default = "not a WeChat Pay message"


class MismatchError(UntrustedMessage):
    """The message is authentic but not about this order; ``field`` names what differs."""

    code = "mismatch"

    def __init__(self, field_name: str) -> None:
        super().__init__(f"WeChat Pay message does not match the order: {field_name}")
        self.field = field_name


# --- keys and the merchant's configuration ---------------------------------------------


def _pem_bytes(pem: str | bytes) -> bytes:
    return pem.encode() if isinstance(pem, str) else bytes(pem)


def load_private_key(pem: str | bytes) -> RSAPrivateKey:
    """An RSA private key (≥ 2048 bits) from PEM, PKCS#1 or PKCS#8, unencrypted."""
    try:
        key = serialization.load_pem_private_key(_pem_bytes(pem), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The library's message may quote the input: say nothing about it.
        raise ValueError("merchant private key: not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise ValueError(f"merchant private key: must be RSA of at least {MIN_RSA_BITS} bits")
    return key


def load_public_key(pem: str | bytes) -> RSAPublicKey:
    """An RSA public key from PEM: ``PUBLIC KEY``, ``RSA PUBLIC KEY`` or a ``CERTIFICATE``.

    WeChat Pay's platform "public key" (id ``PUB_KEY_ID_…``) is a ``PUBLIC KEY``; merchants
    on the older scheme have a platform certificate, whose key works the same way.
    """
    data = _pem_bytes(pem)
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("platform public key: not a PEM public key or certificate") from None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise ValueError(f"platform public key: must be RSA of at least {MIN_RSA_BITS} bits")
    return key


def load_apiv3_key(key: str | bytes) -> bytes:
    """The APIv3 key as the 32 bytes AES-256 uses (it is set as 32 ASCII characters)."""
    raw = key.encode() if isinstance(key, str) else bytes(key)
    raw = raw.strip()
    if len(raw) != APIV3_KEY_LEN:
        raise ValueError(f"APIv3 key: must be {APIV3_KEY_LEN} bytes")
    return raw


def _secret_source(name: str, value: Any, path: str | Path | None) -> bytes:
    if (value is None) == (path is None):
        raise ValueError(f"{name}: give exactly one of {name} and {name}_file")
    if path is not None:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"{name}_file: cannot read ({type(exc).__name__})") from None
    return _pem_bytes(value)


@dataclass(frozen=True, slots=True, eq=False)
class MerchantConfig:
    """A merchant's WeChat Pay v3 identity and keys; the keys never appear in ``repr``.

    ``serial_no`` is the merchant API certificate's serial (sent in Authorization);
    ``platform_serial`` is the id of WeChat Pay's key (``PUB_KEY_ID_…``, or the platform
    certificate's serial) that signs answers and notifications. Refund notifications go to
    ``refund_notify_url`` when set, else to ``notify_url``.
    """

    mchid: str
    appid: str
    serial_no: str
    private_key: RSAPrivateKey = field(repr=False)
    apiv3_key: bytes = field(repr=False)
    platform_public_key: RSAPublicKey = field(repr=False)
    platform_serial: str
    notify_url: str
    refund_notify_url: str | None = None

    def __post_init__(self) -> None:
        for name in ("mchid", "appid", "serial_no", "platform_serial", "notify_url"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"merchant config: {name} is required")
        if not isinstance(self.private_key, RSAPrivateKey):
            raise ValueError("merchant config: private_key must be an RSA private key")
        if not isinstance(self.platform_public_key, RSAPublicKey):
            raise ValueError("merchant config: platform_public_key must be an RSA public key")
        if not isinstance(self.apiv3_key, bytes) or len(self.apiv3_key) != APIV3_KEY_LEN:
            raise ValueError(f"merchant config: apiv3_key must be {APIV3_KEY_LEN} bytes")

    @property
    def refund_notify(self) -> str:
        return self.refund_notify_url or self.notify_url

    @classmethod
    def load(
        cls,
        *,
        mchid: str,
        appid: str,
        serial_no: str,
        platform_serial: str,
        notify_url: str,
        private_key: str | bytes | None = None,
        private_key_file: str | Path | None = None,
        apiv3_key: str | bytes | None = None,
        apiv3_key_file: str | Path | None = None,
        platform_public_key: str | bytes | None = None,
        platform_public_key_file: str | Path | None = None,
        refund_notify_url: str | None = None,
    ) -> MerchantConfig:
        """Build from PEM text or files; each secret is given as a value or as a ``*_file``.

        Errors name the setting, never its content.
        """
        return cls(
            mchid=mchid,
            appid=appid,
            serial_no=serial_no,
            private_key=load_private_key(
                _secret_source("private_key", private_key, private_key_file)
            ),
            apiv3_key=load_apiv3_key(_secret_source("apiv3_key", apiv3_key, apiv3_key_file)),
            platform_public_key=load_public_key(
                _secret_source("platform_public_key", platform_public_key, platform_public_key_file)
            ),
            platform_serial=platform_serial,
            notify_url=notify_url,
            refund_notify_url=refund_notify_url or None,
        )


# --- signatures --------------------------------------------------------------------------


def new_nonce(length: int = 32) -> str:
    """A random nonce of upper-case letters and digits, as WeChat's own SDKs make them."""
    return "".join(secrets.choice(_NONCE_CHARS) for _ in range(length))


def sign_message(key: RSAPrivateKey, message: bytes) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5) signature of ``message``."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify_signature(key: RSAPublicKey, message: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``key``'s SHA256withRSA signature of ``message``."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def request_message(method: str, url: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """What Authorization signs: ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n``."""
    return f"{method.upper()}\n{url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def response_message(timestamp: int | str, nonce: str, body: bytes) -> bytes:
    """What Wechatpay-Signature signs: ``TIMESTAMP\\nNONCE\\nBODY\\n``."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization(
    method: str,
    url_path_with_query: str,
    body: bytes,
    mchid: str,
    serial: str,
    key: RSAPrivateKey,
    nonce: str,
    timestamp: int,
) -> str:
    """The ``Authorization`` header of a request to WeChat Pay.

    ``url_path_with_query`` is exactly what goes on the request line (``/v3/…?mchid=…``);
    ``body`` is exactly the bytes sent (empty for GET).
    """
    signature = sign_message(
        key, request_message(method, url_path_with_query, timestamp, nonce, body)
    )
    return (
        f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial}"'
    )


@dataclass(frozen=True, slots=True)
class AuthorizationHeader:
    mchid: str
    nonce_str: str
    signature: str = field(repr=False)
    timestamp: int
    serial_no: str


def parse_authorization(header: str) -> AuthorizationHeader:
    """The parts of an Authorization header; :class:`SignatureError` when malformed."""
    scheme, _, params = header.partition(" ")
    if scheme != SCHEME:
        raise SignatureError("Authorization: not " + SCHEME)
    found: dict[str, str] = {}
    pos = 0
    while pos < len(params):
        m = _AUTH_PARAM.match(params, pos)
        if m is None or m.end() == pos:
            raise SignatureError("Authorization: malformed parameters")
        found[m.group(1)] = m.group(2)
        pos = m.end()
    names = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
    if any(not found.get(n) for n in names) or not _TIMESTAMP.fullmatch(found["timestamp"]):
        raise SignatureError("Authorization: missing or malformed parameters")
    return AuthorizationHeader(
        mchid=found["mchid"],
        nonce_str=found["nonce_str"],
        signature=found["signature"],
        timestamp=int(found["timestamp"]),
        serial_no=found["serial_no"],
    )


def verify_authorization(
    header: str,
    method: str,
    url_path_with_query: str,
    body: bytes,
    key: RSAPublicKey,
    *,
    now: float,
    max_skew: float = MAX_SKEW,
) -> AuthorizationHeader:
    """Check a request's Authorization as WeChat Pay does (the fake server uses this)."""
    auth = parse_authorization(header)
    if abs(now - auth.timestamp) > max_skew:
        raise StaleTimestamp()
    message = request_message(method, url_path_with_query, auth.timestamp, auth.nonce_str, body)
    if not verify_signature(key, message, auth.signature):
        raise SignatureError()
    return auth


def signed_headers(
    body: bytes, key: RSAPrivateKey, serial: str, nonce: str, timestamp: int
) -> dict[str, str]:
    """The ``Wechatpay-*`` headers WeChat Pay puts on an answer or notification."""
    return {
        H_TIMESTAMP: str(timestamp),
        H_NONCE: nonce,
        H_SIGNATURE: sign_message(key, response_message(timestamp, nonce, body)),
        H_SERIAL: serial,
        H_SIGNATURE_TYPE: SCHEME,
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lower:
                return candidate
    return value


def verify_response(
    headers: Mapping[str, str],
    body: bytes,
    platform_key: RSAPublicKey,
    platform_serial: str,
    now: float,
    max_skew: float = MAX_SKEW,
) -> None:
    """Check the platform signature over ``body`` exactly as received; raise if untrusted.

    Order: headers present, serial, freshness (|now − timestamp| ≤ ``max_skew``), then the
    signature. WeChat sends deliberately bad "WECHATPAY/SIGNTEST/" signatures to probe that
    merchants verify; they fail here like any other.
    """
    timestamp = _header(headers, H_TIMESTAMP)
    nonce = _header(headers, H_NONCE)
    signature = _header(headers, H_SIGNATURE)
    serial = _header(headers, H_SERIAL)
    if not timestamp or not nonce or not signature or not serial:
        raise SignatureError("WeChat Pay signature headers missing")
    if serial != platform_serial:
        raise WrongSerial()
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("Wechatpay-Timestamp malformed")
    if abs(now - int(timestamp)) > max_skew:
        raise StaleTimestamp()
    if not verify_signature(platform_key, response_message(timestamp, nonce, body), signature):
        raise SignatureError()


class NonceGuard:
    """Refuses a notification nonce seen before, for as long as its timestamp is fresh.

    A nonce is remembered until its message's timestamp + ``max_skew``: after that the
    freshness check refuses the message anyway, so memory stays bounded by the traffic of
    one window (and by ``max_entries``, oldest forgotten first). One process only: several
    processes share this through Redis instead (``SET nonce 1 NX EXAT timestamp+max_skew``).
    Pure; the caller passes the time.
    """

    def __init__(self, *, max_skew: float = MAX_SKEW, max_entries: int = 100_000) -> None:
        self.max_skew = max_skew
        self.max_entries = max_entries
        self._until: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._until)

    def check(self, nonce: str, timestamp: float, now: float) -> None:
        """Record ``nonce``; :class:`ReplayedNonce` if it is already recorded."""
        self._expire(now)
        if nonce in self._until:
            raise ReplayedNonce()
        while len(self._until) >= self.max_entries and self._heap:
            _, old = heapq.heappop(self._heap)
            self._until.pop(old, None)
        until = timestamp + self.max_skew
        self._until[nonce] = until
        heapq.heappush(self._heap, (until, nonce))

    def _expire(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] < now:
            _, nonce = heapq.heappop(heap)
            self._until.pop(nonce, None)


# --- AES-256-GCM resources ---------------------------------------------------------------


def decrypt_resource(resource: Mapping[str, Any], apiv3_key: bytes) -> dict[str, Any]:
    """The JSON object inside a notification's ``resource`` (AEAD_AES_256_GCM)."""
    if not isinstance(resource, Mapping) or resource.get("algorithm") != ALGORITHM:
        raise DecryptError("resource: not " + ALGORITHM)
    nonce, ciphertext = resource.get("nonce"), resource.get("ciphertext")
    associated = resource.get("associated_data") or ""
    if not isinstance(nonce, str) or not nonce or not isinstance(ciphertext, str):
        raise DecryptError("resource: nonce or ciphertext missing")
    if not isinstance(associated, str):
        raise DecryptError("resource: associated_data malformed")
    try:
        raw = base64.b64decode(ciphertext, validate=True)
        plain = AESGCM(apiv3_key).decrypt(nonce.encode(), raw, associated.encode())
    except (binascii.Error, InvalidTag, ValueError):
        raise DecryptError() from None
    try:
        data = json.loads(plain)
    except ValueError:
        raise DecryptError("resource: plaintext is not JSON") from None
    if not isinstance(data, dict):
        raise DecryptError("resource: plaintext is not a JSON object")
    return data


def encrypt_resource(
    data: Mapping[str, Any] | bytes,
    apiv3_key: bytes,
    *,
    nonce: str,
    associated_data: str,
    original_type: str,
) -> dict[str, str]:
    """The ``resource`` object WeChat Pay puts in a notification (inverse of decrypt)."""
    plain = data if isinstance(data, bytes) else encode_body(data)
    ciphertext = AESGCM(apiv3_key).encrypt(nonce.encode(), plain, associated_data.encode())
    return {
        "original_type": original_type,
        "algorithm": ALGORITHM,
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


# --- notifications -----------------------------------------------------------------------


class EventType(StrEnum):
    TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
    REFUND_SUCCESS = "REFUND.SUCCESS"
    REFUND_ABNORMAL = "REFUND.ABNORMAL"
    REFUND_CLOSED = "REFUND.CLOSED"


class TradeState(StrEnum):
    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"


class RefundStatus(StrEnum):
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    PROCESSING = "PROCESSING"
    ABNORMAL = "ABNORMAL"


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified, decrypted notification; ``resource`` is the decrypted object."""

    id: str
    event_type: str
    create_time: str
    summary: str
    original_type: str
    resource: dict[str, Any] = field(repr=False)


def parse_notification(
    headers: Mapping[str, str],
    body: bytes,
    config: MerchantConfig,
    *,
    now: float,
    replay_guard: NonceGuard | None = None,
    max_skew: float = MAX_SKEW,
) -> Notification:
    """Verify the signature over the exact ``body``, refuse stale or replayed, decrypt.

    The nonce is recorded only once the signature is verified, so forged requests cannot
    use up nonces. Raises an :class:`UntrustedMessage` subclass.
    """
    verify_response(
        headers, body, config.platform_public_key, config.platform_serial, now, max_skew
    )
    if replay_guard is not None:
        nonce = _header(headers, H_NONCE) or ""
        replay_guard.check(nonce, int(_header(headers, H_TIMESTAMP) or 0), now)
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedMessage("notification: body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("notification: body is not a JSON object")
    resource = data.get("resource")
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not isinstance(resource, dict):
        raise MalformedMessage("notification: event_type or resource missing")
    if data.get("resource_type", "encrypt-resource") != "encrypt-resource":
        raise MalformedMessage("notification: resource_type is not encrypt-resource")
    plain = decrypt_resource(resource, config.apiv3_key)
    return Notification(
        id=str(data.get("id", "")),
        event_type=event_type,
        create_time=str(data.get("create_time", "")),
        summary=str(data.get("summary", "")),
        original_type=str(resource.get("original_type", "")),
        resource=plain,
    )


def fail_body(message: str) -> bytes:
    """The body of a notification answer that refuses it (with a 4xx/5xx status).

    Success is 200 or 204 with no body; WeChat Pay retries refused ones for about 24 h.
    """
    return encode_body({"code": "FAIL", "message": message})


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Transaction:
    """A transaction as a notification's resource or a query answer gives it."""

    mchid: str | None
    appid: str | None
    out_trade_no: str
    trade_state: str
    total_fen: int | None
    currency: str | None
    transaction_id: str | None = None
    payer_total_fen: int | None = None
    payer_openid: str | None = field(default=None, repr=False)
    success_time: str | None = None

    @property
    def paid(self) -> bool:
        """Money was taken (a later refund does not undo that: REFUND counts as paid)."""
        return self.trade_state in (TradeState.SUCCESS, TradeState.REFUND)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transaction:
        out_trade_no, state = _str(data.get("out_trade_no")), _str(data.get("trade_state"))
        if out_trade_no is None or state is None:
            raise MalformedMessage("transaction: out_trade_no or trade_state missing")
        amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
        payer = data.get("payer") if isinstance(data.get("payer"), dict) else {}
        return cls(
            mchid=_str(data.get("mchid")),
            appid=_str(data.get("appid")),
            out_trade_no=out_trade_no,
            trade_state=state,
            total_fen=_int(amount.get("total")),
            currency=_str(amount.get("currency")),
            transaction_id=_str(data.get("transaction_id")),
            payer_total_fen=_int(amount.get("payer_total")),
            payer_openid=_str(payer.get("openid")),
            success_time=_str(data.get("success_time")),
        )


def check_transaction(
    tx: Transaction, config: MerchantConfig, *, out_trade_no: str, amount_fen: int
) -> None:
    """:class:`MismatchError` unless ``tx`` is this merchant's, this app's, this order's.

    The amount compared is the order ``total`` (what we asked for); ``payer_total`` may be
    less when a WeChat coupon paid part of it.
    """
    if tx.mchid != config.mchid:
        raise MismatchError("mchid")
    if tx.appid != config.appid:
        raise MismatchError("appid")
    if tx.out_trade_no != out_trade_no:
        raise MismatchError("out_trade_no")
    if tx.total_fen != amount_fen:
        raise MismatchError("amount")
    if tx.currency not in (None, CURRENCY):
        raise MismatchError("currency")


@dataclass(frozen=True, slots=True)
class RefundResult:
    """A refund as the refund API answers or a refund notification's resource gives it."""

    out_trade_no: str
    out_refund_no: str
    status: str
    refund_id: str | None
    refund_fen: int | None
    total_fen: int | None
    mchid: str | None = None
    transaction_id: str | None = None
    success_time: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RefundResult:
        # The API answers "status"; the notification's resource says "refund_status".
        status = _str(data.get("refund_status")) or _str(data.get("status"))
        out_trade_no = _str(data.get("out_trade_no"))
        out_refund_no = _str(data.get("out_refund_no"))
        if status is None or out_trade_no is None or out_refund_no is None:
            raise MalformedMessage("refund: status, out_trade_no or out_refund_no missing")
        amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
        return cls(
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            status=status,
            refund_id=_str(data.get("refund_id")),
            refund_fen=_int(amount.get("refund")),
            total_fen=_int(amount.get("total")),
            mchid=_str(data.get("mchid")),
            transaction_id=_str(data.get("transaction_id")),
            success_time=_str(data.get("success_time")),
        )


def check_refund(
    refund: RefundResult,
    config: MerchantConfig,
    *,
    out_trade_no: str,
    out_refund_no: str,
    refund_fen: int,
) -> None:
    """:class:`MismatchError` unless ``refund`` is the one we asked for."""
    if refund.mchid is not None and refund.mchid != config.mchid:
        raise MismatchError("mchid")
    if refund.out_trade_no != out_trade_no:
        raise MismatchError("out_trade_no")
    if refund.out_refund_no != out_refund_no:
        raise MismatchError("out_refund_no")
    if refund.refund_fen != refund_fen:
        raise MismatchError("amount")


# --- request bodies and payment parameters -----------------------------------------------


def encode_body(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are signed and sent."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def amount(fen: int) -> dict[str, Any]:
    return {"total": fen, "currency": CURRENCY}


def time_expire(ms: int) -> str:
    """RFC 3339 in Beijing time, whole seconds rounded down (never past our deadline)."""
    dt = datetime.fromtimestamp(ms // 1000, tz=CHINA_TZ)
    return dt.isoformat(timespec="seconds")


def parse_time(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 time WeChat Pay sends (``…+08:00``)."""
    try:
        dt = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError("not an RFC 3339 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def valid_out_trade_no(value: object) -> bool:
    return isinstance(value, str) and _OUT_TRADE_NO.fullmatch(value) is not None


def valid_out_refund_no(value: object) -> bool:
    return isinstance(value, str) and _OUT_REFUND_NO.fullmatch(value) is not None


def _check_fen(name: str, value: object) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive whole number of fen")
    return value


def jsapi_body(
    config: MerchantConfig,
    *,
    out_trade_no: str,
    description: str,
    amount_fen: int,
    payer_openid: str,
    time_expire_ms: int,
    attach: str | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v3/pay/transactions/jsapi``; ValueError on what WeChat refuses."""
    if not valid_out_trade_no(out_trade_no):
        raise ValueError("out_trade_no must be 6-32 of [0-9A-Za-z_-*]")
    if not isinstance(description, str) or not 1 <= len(description) <= MAX_DESCRIPTION:
        raise ValueError(f"description must be 1-{MAX_DESCRIPTION} characters")
    if not isinstance(payer_openid, str) or not payer_openid:
        raise ValueError("payer_openid is required")
    body: dict[str, Any] = {
        "appid": config.appid,
        "mchid": config.mchid,
        "description": description,
        "out_trade_no": out_trade_no,
        "time_expire": time_expire(time_expire_ms),
        "notify_url": config.notify_url,
        "amount": amount(_check_fen("amount_fen", amount_fen)),
        "payer": {"openid": payer_openid},
    }
    if attach:
        body["attach"] = attach
    return body


def refund_body(
    config: MerchantConfig,
    *,
    out_trade_no: str,
    out_refund_no: str,
    total_fen: int,
    refund_fen: int,
    reason: str | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v3/refund/domestic/refunds``; ValueError on what WeChat refuses."""
    if not valid_out_trade_no(out_trade_no):
        raise ValueError("out_trade_no must be 6-32 of [0-9A-Za-z_-*]")
    if not valid_out_refund_no(out_refund_no):
        raise ValueError("out_refund_no must be 1-64 of [0-9A-Za-z_-|*@]")
    total = _check_fen("total_fen", total_fen)
    refund = _check_fen("refund_fen", refund_fen)
    if refund > total:
        raise ValueError("refund_fen must not exceed total_fen")
    body: dict[str, Any] = {
        "out_trade_no": out_trade_no,
        "out_refund_no": out_refund_no,
        "notify_url": config.refund_notify,
        "amount": {"refund": refund, "total": total, "currency": CURRENCY},
    }
    if reason:
        if len(reason) > MAX_REASON:
            raise ValueError(f"reason must be at most {MAX_REASON} characters")
        body["reason"] = reason
    return body


def request_payment_params(
    appid: str, prepay_id: str, key: RSAPrivateKey, nonce: str, timestamp: int
) -> dict[str, str]:
    """``wx.requestPayment``'s parameters for a prepay id.

    ``paySign`` signs ``appId\\ntimeStamp\\nnonceStr\\npackage\\n`` with the merchant key.
    """
    package = f"prepay_id={prepay_id}"
    message = f"{appid}\n{timestamp}\n{nonce}\n{package}\n".encode()
    return {
        "timeStamp": str(timestamp),
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": sign_message(key, message),
    }
