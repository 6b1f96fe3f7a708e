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

Platform keys: WeChat Pay signs answers and notifications with a platform certificate
(serial: the certificate's hex serial number) or, since the move to the platform public
key, with that key (id ``PUB_KEY_ID_…``); during a merchant's migration with either.
:class:`PlatformKeys` holds any number of both and finds the one a message names in
``Wechatpay-Serial`` (certificate serials case-insensitively and as numbers, the way
``wechatpayv3`` compares them); :meth:`PlatformKeys.request_serial` is the serial a request
names so that WeChat picks the key for its answer (the public key's id when one is held,
else the newest certificate's serial, as ``wechatpayv3`` sends it). Anything that can
``find`` a key by serial will do (:class:`PlatformKeySource`): the server's
:class:`commerce.platform_keys.PlatformKeyring` re-reads its key files when a message names
a serial it does not know.

Messages signed (each line ends with ``\\n``)::

    request (Authorization)     METHOD, URL path with query, TIMESTAMP, NONCE, BODY
    answer and notification     TIMESTAMP, NONCE, BODY       (Wechatpay-* headers)
    wx.requestPayment paySign   appId, timeStamp, nonceStr, package

Exceptions carry a fixed message and a ``code`` for metrics, never key material, signatures,
bodies or values taken from the message::

    UntrustedMessage         -- an answer or notification that must not be acted on
     ├── SignatureError      -- signature headers missing or malformed, or no match
     │    └── SignatureTypeError -- Wechatpay-Signature-Type missing (notifications)
     │                              or not WECHATPAY2-SHA256-RSA2048
     ├── WrongSerial         -- Wechatpay-Serial names none of the platform keys we hold
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
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

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
    "MAX_ATTACH_BYTES",
    "MAX_DESCRIPTION_BYTES",
    "MAX_NOTIFY_URL_BYTES",
    "MAX_REASON_BYTES",
    "MAX_SKEW",
    "PUBLIC_KEY_ID_PREFIX",
    "SCHEME",
    "AuthorizationHeader",
    "DecryptError",
    "EventType",
    "KeyKind",
    "MalformedMessage",
    "MerchantConfig",
    "MismatchError",
    "NonceGuard",
    "Notification",
    "PlatformKey",
    "PlatformKeySource",
    "PlatformKeys",
    "RefundResult",
    "RefundStatus",
    "ReplayedNonce",
    "SignatureError",
    "SignatureTypeError",
    "StaleTimestamp",
    "TradeState",
    "Transaction",
    "UntrustedMessage",
    "WrongSerial",
    "amount",
    "authorization",
    "check_refund",
    "check_transaction",
    "cut_utf8",
    "decrypt_resource",
    "encode_body",
    "encrypt_resource",
    "fail_body",
    "jsapi_body",
    "load_apiv3_key",
    "load_platform_key",
    "load_private_key",
    "load_public_key",
    "new_nonce",
    "normalize_serial",
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
    "utf8_len",
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

# WeChat's rules (JSAPI prepay and refund pages, 2025): out_trade_no 6–32 of
# [0-9A-Za-z_-|*]; out_refund_no 1–64 of [0-9A-Za-z_-|*@]. Both ASCII: characters = bytes.
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_|*-]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_*|@-]{1,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_AUTH_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*(?:,|$)')
_NONCE_CHARS = string.ascii_uppercase + string.digits
# Field limits of the spec, counted in bytes of UTF-8. The refund page says it outright for
# reason ("不得超过80个字节"); the prepay page writes description as string(127) and says
# "127个字符", but WeChat's string(n) types count bytes elsewhere (out_refund_no "64个字节"),
# and 127 bytes is within 127 characters either way: the reading that is never refused.
MAX_DESCRIPTION_BYTES = 127
MAX_ATTACH_BYTES = 128
MAX_REASON_BYTES = 80
MAX_NOTIFY_URL_BYTES = 256
MAX_OPENID_BYTES = 128
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"


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


class SignatureTypeError(SignatureError):
    code = "bad_signature_type"
    default = "Wechatpay-Signature-Type missing or not " + SCHEME


class WrongSerial(UntrustedMessage):
    code = "wrong_serial"
    default = "Wechatpay-Serial names no configured platform key"


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


class KeyKind(StrEnum):
    CERTIFICATE = "certificate"
    PUBLIC_KEY = "public_key"


def normalize_serial(serial: str) -> str:
    """The form serials are compared in: upper case, and a certificate's hex serial without
    leading zeros (``wechatpayv3`` compares them as numbers: ``int(serial, 16)``)."""
    text = serial.strip().upper()
    if text.startswith(PUBLIC_KEY_ID_PREFIX):
        return text
    if text and all(c in string.hexdigits for c in text):
        return text.lstrip("0") or "0"
    return text


@dataclass(frozen=True, slots=True)
class PlatformKey:
    """One key WeChat Pay signs with: its serial as WeChat names it, and where it came from
    (a file name, for logs; never the key)."""

    serial: str
    kind: KeyKind
    public_key: RSAPublicKey = field(repr=False, compare=False)
    not_after: datetime | None = None  # certificates only
    source: str = ""


def load_platform_key(pem: str | bytes, serial: str | None = None, source: str = "") -> PlatformKey:
    """A platform key from PEM: a ``CERTIFICATE`` (its serial read from it; ``serial``, if
    given, must match) or a ``PUBLIC KEY`` (``serial`` required: its ``PUB_KEY_ID_…``)."""
    data = _pem_bytes(pem)
    key = load_public_key(data)
    if b"-----BEGIN CERTIFICATE-----" in data:
        cert = x509.load_pem_x509_certificate(data)
        own = format(cert.serial_number, "X")
        if serial and normalize_serial(serial) != normalize_serial(own):
            raise ValueError(f"platform certificate {source}: its serial is not {serial}")
        return PlatformKey(own, KeyKind.CERTIFICATE, key, cert.not_valid_after_utc, source)
    if not serial or not serial.isascii() or not serial.strip():
        raise ValueError(f"platform public key {source}: its id (PUB_KEY_ID_...) is required")
    # A bare key under a certificate's serial: a certificate's key given without the rest.
    kind = _kind_of(serial)
    return PlatformKey(serial.strip(), kind, key, None, source)


def _kind_of(serial: str) -> KeyKind:
    if serial.strip().upper().startswith(PUBLIC_KEY_ID_PREFIX):
        return KeyKind.PUBLIC_KEY
    return KeyKind.CERTIFICATE


class PlatformKeySource(Protocol):
    """Where verification finds the platform key a message names."""

    def find(self, serial: str) -> PlatformKey | None:
        """The key whose serial is ``serial`` (compared with :func:`normalize_serial`)."""
        ...

    def request_serial(self) -> str:
        """The serial to send as a request's ``Wechatpay-Serial``."""
        ...

    def verified(self, key: PlatformKey, purpose: str) -> None:
        """Told which key verified a message (``purpose``: the operation, ``notification``)."""
        ...


class PlatformKeys:
    """An immutable set of platform keys, found by serial. Pure; counts what each verified.

    At least one key; two keys with one serial are refused (which would verify is not
    clear). :meth:`request_serial` is the public key's id when one is held (the newest
    source wins if several), else the serial of the certificate that expires last.
    """

    def __init__(self, keys: Iterable[PlatformKey]) -> None:
        by_serial: dict[str, PlatformKey] = {}
        for key in keys:
            norm = normalize_serial(key.serial)
            if not norm:
                raise ValueError("platform key: empty serial")
            if norm in by_serial:
                raise ValueError(f"platform keys: serial {key.serial} is given twice")
            by_serial[norm] = key
        if not by_serial:
            raise ValueError("platform keys: at least one platform key is required")
        self._by_serial = by_serial
        self.verified_count: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"PlatformKeys({', '.join(self.describe())})"

    def __iter__(self) -> Any:
        return iter(self._by_serial.values())

    def __len__(self) -> int:
        return len(self._by_serial)

    def describe(self) -> list[str]:
        """``kind:serial`` of every key, for logs (no key material)."""
        return [f"{k.kind.value}:{k.serial}" for k in self._by_serial.values()]

    def find(self, serial: str) -> PlatformKey | None:
        return self._by_serial.get(normalize_serial(serial))

    def request_serial(self) -> str:
        public = [k for k in self._by_serial.values() if k.kind is KeyKind.PUBLIC_KEY]
        if public:
            return public[-1].serial
        never = datetime.max.replace(tzinfo=UTC)
        newest = max(self._by_serial.values(), key=lambda k: k.not_after or never)
        return normalize_serial(newest.serial)

    def verified(self, key: PlatformKey, purpose: str) -> None:
        self.verified_count[key.serial] += 1


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
    ``platform_keys`` finds the WeChat Pay key (platform certificates, the platform public
    key, or both during the migration) that signed an answer or notification. A single key
    may be given instead as ``platform_public_key`` with ``platform_serial`` (its
    ``PUB_KEY_ID_…`` or certificate serial). Refund notifications go to
    ``refund_notify_url`` when set, else to ``notify_url``.
    """

    mchid: str
    appid: str
    serial_no: str
    private_key: RSAPrivateKey = field(repr=False)
    apiv3_key: bytes = field(repr=False)
    notify_url: str
    refund_notify_url: str | None = None
    platform_keys: PlatformKeySource = field(default=None, repr=False)  # type: ignore[assignment]
    platform_public_key: RSAPublicKey | None = field(default=None, repr=False)
    platform_serial: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("mchid", "appid", "serial_no", "notify_url"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"merchant config: {name} is required")
        if not isinstance(self.private_key, RSAPrivateKey):
            raise ValueError("merchant config: private_key must be an RSA private key")
        if not isinstance(self.apiv3_key, bytes) or len(self.apiv3_key) != APIV3_KEY_LEN:
            raise ValueError(f"merchant config: apiv3_key must be {APIV3_KEY_LEN} bytes")
        for url in (self.notify_url, self.refund_notify_url):
            if url is not None and (utf8_len(url) > MAX_NOTIFY_URL_BYTES or "?" in url):
                raise ValueError(
                    f"merchant config: a notify URL has at most {MAX_NOTIFY_URL_BYTES} bytes "
                    "and no query string"
                )
        if self.platform_keys is None:
            if not isinstance(self.platform_public_key, RSAPublicKey):
                raise ValueError("merchant config: platform_keys or platform_public_key needed")
            if not isinstance(self.platform_serial, str) or not self.platform_serial:
                raise ValueError("merchant config: platform_serial is required")
            kind = _kind_of(self.platform_serial)
            keys = PlatformKeys([PlatformKey(self.platform_serial, kind, self.platform_public_key)])
            # Held once, in platform_keys (so dataclasses.replace copies a valid config).
            object.__setattr__(self, "platform_keys", keys)
            object.__setattr__(self, "platform_public_key", None)
            object.__setattr__(self, "platform_serial", None)
        elif self.platform_public_key is not None:
            raise ValueError("merchant config: give platform_keys or platform_public_key")

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
        notify_url: str,
        platform_serial: str | None = None,
        private_key: str | bytes | None = None,
        private_key_file: str | Path | None = None,
        apiv3_key: str | bytes | None = None,
        apiv3_key_file: str | Path | None = None,
        platform_public_key: str | bytes | None = None,
        platform_public_key_file: str | Path | None = None,
        platform_keys: PlatformKeySource | None = None,
        refund_notify_url: str | None = None,
    ) -> MerchantConfig:
        """Build from PEM text or files; each secret is given as a value or as a ``*_file``.

        The platform keys come as ``platform_keys``, or as one key (``platform_public_key``
        or its file, with ``platform_serial``). Errors name the setting, never its content.
        """
        if platform_keys is None:
            platform_keys = PlatformKeys([
                load_platform_key(
                    _secret_source(
                        "platform_public_key", platform_public_key, platform_public_key_file
                    ),
                    platform_serial,
                    source="platform_public_key",
                )
            ])  # fmt: skip
        return cls(
            mchid=mchid,
            appid=appid,
            serial_no=serial_no,
            private_key=load_private_key(
                _secret_source("private_key", private_key, private_key_file)
            ),
            apiv3_key=load_apiv3_key(_secret_source("apiv3_key", apiv3_key, apiv3_key_file)),
            notify_url=notify_url,
            refund_notify_url=refund_notify_url or None,
            platform_keys=platform_keys,
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
    keys: PlatformKeySource,
    now: float,
    max_skew: float = MAX_SKEW,
    *,
    require_signature_type: bool = False,
    purpose: str = "answer",
) -> PlatformKey:
    """Check the platform signature over ``body`` exactly as received; the key that verified.

    Order: headers present, the signature type, the serial (a key ``keys`` holds),
    freshness (|now − timestamp| ≤ ``max_skew``), then the signature. A
    ``Wechatpay-Signature-Type`` other than WECHATPAY2-SHA256-RSA2048 is refused; a missing
    one only with ``require_signature_type`` (notifications: the spec lists it among their
    headers). WeChat sends deliberately bad "WECHATPAY/SIGNTEST/" signatures to probe that
    merchants verify; they fail here like any other. ``keys.verified`` is told the key and
    ``purpose`` once the signature matched.
    """
    timestamp = _header(headers, H_TIMESTAMP)
    nonce = _header(headers, H_NONCE)
    signature = _header(headers, H_SIGNATURE)
    serial = _header(headers, H_SERIAL)
    if not timestamp or not nonce or not signature or not serial:
        raise SignatureError("WeChat Pay signature headers missing")
    signature_type = _header(headers, H_SIGNATURE_TYPE)
    if signature_type is None and require_signature_type:
        raise SignatureTypeError("Wechatpay-Signature-Type missing")
    if signature_type is not None and signature_type != SCHEME:
        raise SignatureTypeError()
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("Wechatpay-Timestamp malformed")
    if abs(now - int(timestamp)) > max_skew:
        # Before the key lookup: a stale message must not make the key source re-read.
        raise StaleTimestamp()
    key = keys.find(serial)
    if key is None:
        raise WrongSerial()
    message = response_message(timestamp, nonce, body)
    if not verify_signature(key.public_key, message, signature):
        raise SignatureError()
    keys.verified(key, purpose)
    return key


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
    key_serial: str = ""  # the platform key that verified it


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
    key = verify_response(
        headers,
        body,
        config.platform_keys,
        now,
        max_skew,
        require_signature_type=True,
        purpose="notification",
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
        key_serial=key.serial,
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


def utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8, the unit of WeChat Pay's field limits."""
    return len(text.encode("utf-8"))


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` of at most ``max_bytes`` UTF-8 bytes, cut between
    characters (never inside one: WeChat refuses invalid UTF-8, and the buyer's bill would
    show a broken character)."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


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
        raise ValueError("out_trade_no must be 6-32 of [0-9A-Za-z_-|*]")
    if not isinstance(description, str) or not 1 <= utf8_len(description) <= (
        MAX_DESCRIPTION_BYTES
    ):
        raise ValueError(f"description must be 1-{MAX_DESCRIPTION_BYTES} bytes of UTF-8")
    if not isinstance(payer_openid, str) or not 1 <= utf8_len(payer_openid) <= MAX_OPENID_BYTES:
        raise ValueError(f"payer_openid must be 1-{MAX_OPENID_BYTES} bytes")
    if attach is not None and utf8_len(attach) > MAX_ATTACH_BYTES:
        raise ValueError(f"attach must be at most {MAX_ATTACH_BYTES} bytes of UTF-8")
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
        raise ValueError("out_trade_no must be 6-32 of [0-9A-Za-z_-|*]")
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
        if utf8_len(reason) > MAX_REASON_BYTES:
            raise ValueError(f"reason must be at most {MAX_REASON_BYTES} bytes of UTF-8")
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
