"""A fake WeChat Pay v3 server (aiohttp) that signs its answers and sends real notifications.

Start it in-process on 127.0.0.1 and an ephemeral port, with the merchant's public key (to
check our ``Authorization`` headers, as WeChat Pay does)::

    async with FakeWeChatPay(merchant_key.public_key()) as fake:
        config = fake.merchant_config(merchant_key, notify_url=receiver_url)
        client = WeChatPayClient(config, fake.base_url)
        prepay_id = await client.prepay(...)
        await fake.pay("T0001")        # the user pays: SUCCESS + TRANSACTION.SUCCESS sent

The fake has two platform keys, as a merchant in the middle of WeChat's key migration sees
them: the platform public key (:attr:`FakeWeChatPay.platform_key`, 2048 bits; pass
``platform_key`` to reuse one) with id :attr:`FakeWeChatPay.platform_serial`
(``PUB_KEY_ID_…``), and a self-signed platform certificate (:attr:`certificate`, serial
:attr:`cert_serial`, key :attr:`cert_key`), both made here with ``cryptography``; and the
APIv3 key :attr:`FakeWeChatPay.apiv3_key`. Every answer carries ``Wechatpay-*`` signature
headers over its exact body, signed as :attr:`sign_with` says (:class:`Signer`): with the
public key (the default), the certificate, a key the merchant does not hold, or
``BY_REQUEST``: the key the request's ``Wechatpay-Serial`` names, the certificate when it
names none (WeChat's rule during the migration). Notifications follow :attr:`notify_with`
(default: as answers; ``BY_REQUEST`` there follows the last request's serial). Switch
either at any time: the next message is signed the new way. :attr:`lowercase_serial` sends
the certificate's serial in lower case. :meth:`write_key_files` writes the PEM files a
merchant configures (``<serial>.pem`` certificate, ``PUB_KEY_ID_….pem`` public key).
Every request's ``Wechatpay-Serial`` is recorded (:attr:`PayRequest.wechatpay_serial`).
A request whose Authorization is missing, malformed, from
another mchid or serial, stale, or not signed by the merchant key gets 401 ``SIGN_ERROR``.

Endpoints: ``POST /v3/pay/transactions/jsapi`` (idempotent per ``out_trade_no`` with the
same body, else 403 ``OUT_TRADE_NO_USED``), ``GET /v3/pay/transactions/out-trade-no/{no}``
(``trade_state`` NOTPAY / SUCCESS / CLOSED / REFUND; 404 ``ORDER_NOT_EXIST``),
``POST …/{no}/close`` (204), ``POST /v3/refund/domestic/refunds`` (PROCESSING, then SUCCESS
after :attr:`refund_delay` s with a REFUND.SUCCESS notification; idempotent per
``out_refund_no``) and ``GET /v3/refund/domestic/refunds/{no}``.

Controls: :meth:`fail_next` (status, code, delay, times per path or route), :attr:`delay`
(every answer), :attr:`tamper_answers` (forge, unsign, re-serial or age every answer);
notifications: :attr:`duplicate_notifications`, :attr:`hold_notifications` with
:meth:`release_notifications` (``reverse=True`` reorders), :attr:`drop_notifications`,
:meth:`resend` (a WeChat retry, or an exact replay), and for hostile input
:meth:`build_notification` / :meth:`send_notification` with a :class:`Tamper`. Every
delivery and the receiver's answer is in :attr:`deliveries`.

Signatures, Authorization checks and AES-GCM resources are built here from
``cryptography`` primitives, not with the client's own helpers (:func:`signature_headers`,
:func:`check_authorization`, :func:`encrypt_resource`), so a layout mistake in
``commerce.wechatpay`` makes the client and this fake disagree.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import json
import re
import secrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# The configuration type of the client under test, to hand it matching settings; nothing
# the fake sends or checks comes from commerce.wechatpay (see "the wire format" below).
from commerce.wechatpay import KeyKind, MerchantConfig, PlatformKey, PlatformKeys

__all__ = [
    "Delivery",
    "FakeRefund",
    "FakeTrade",
    "FakeWeChatPay",
    "PayFault",
    "Signer",
    "Tamper",
    "check_authorization",
    "encrypt_resource",
    "signature_headers",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSAPI = "/v3/pay/transactions/jsapi"
TRADE = "/v3/pay/transactions/out-trade-no/{out_trade_no}"
CLOSE = "/v3/pay/transactions/out-trade-no/{out_trade_no}/close"
REFUNDS = "/v3/refund/domestic/refunds"
REFUND = "/v3/refund/domestic/refunds/{out_refund_no}"

# --- the wire format, written here from WeChat Pay's v3 documentation ---------------------
#
# Deliberately not imported from commerce.wechatpay: a fake that shared the client's
# message layouts would agree with any mistake in them. tests/unit/test_wechatpay_vectors.py
# pins these functions, and the client's, to vectors computed with openssl and Node.

SCHEME = "WECHATPAY2-SHA256-RSA2048"
CURRENCY = "CNY"
MAX_SKEW = 300  # WeChat Pay's freshness window, seconds
CHINA_TZ = timezone(timedelta(hours=8))
H_TIMESTAMP = "Wechatpay-Timestamp"
H_NONCE = "Wechatpay-Nonce"
H_SIGNATURE = "Wechatpay-Signature"
H_SERIAL = "Wechatpay-Serial"
H_SIGNATURE_TYPE = "Wechatpay-Signature-Type"
TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
_AUTH_PARAMS = re.compile(r'\w+="[^"]*"(?:,\w+="[^"]*")*')
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
_AUTH_NAMES = frozenset({"mchid", "nonce_str", "signature", "timestamp", "serial_no"})
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# WeChat's rules (2025 pages): out_trade_no 6–32 of [0-9A-Za-z_-|*]; out_refund_no 1–64 of
# [0-9A-Za-z_-|*@]; description ≤ 127 bytes, attach ≤ 128, refund reason ≤ 80 bytes
# ("不得超过80个字节"), notify_url ≤ 256 bytes without a query string.
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_|*-]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_*|@-]{1,64}")
# The Wechatpay-Serial of the request being answered (each aiohttp handler runs in its task).
_REQUEST_SERIAL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_serial", default=None
)


def _json_body(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _sha256_rsa(key: RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def signature_headers(
    body: bytes, key: RSAPrivateKey, serial: str, nonce: str, timestamp: int
) -> dict[str, str]:
    """WeChat Pay's ``Wechatpay-*`` headers: SHA256withRSA over ``ts\\nnonce\\nbody\\n``."""
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return {
        H_TIMESTAMP: str(timestamp),
        H_NONCE: nonce,
        H_SIGNATURE: _sha256_rsa(key, message),
        H_SERIAL: serial,
        H_SIGNATURE_TYPE: SCHEME,
    }


def encrypt_resource(
    plain: bytes, apiv3_key: bytes, *, nonce: str, associated_data: str, original_type: str
) -> dict[str, str]:
    """A notification's ``resource``: AES-256-GCM, key the APIv3 key, IV the nonce's bytes,
    AAD ``associated_data``; ``ciphertext`` is base64 of the ciphertext and its 16-byte tag."""
    sealed = AESGCM(apiv3_key).encrypt(nonce.encode(), plain, associated_data.encode())
    return {
        "original_type": original_type,
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(sealed).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def check_authorization(
    header: str,
    method: str,
    path_with_query: str,
    body: bytes,
    key: RSAPublicKey,
    *,
    now: float,
    max_skew: float = MAX_SKEW,
) -> dict[str, str] | None:
    """The parameters of a request's valid ``Authorization``, else None.

    ``WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",
    serial_no="…"``; the signature is over ``METHOD\\nPATH?QUERY\\nts\\nnonce\\nbody\\n``.
    """
    scheme, _, params = header.partition(" ")
    if scheme != SCHEME or not _AUTH_PARAMS.fullmatch(params):
        return None
    found = dict(_AUTH_PARAM.findall(params))
    if set(found) != _AUTH_NAMES or not _TIMESTAMP.fullmatch(found["timestamp"]):
        return None
    if abs(now - int(found["timestamp"])) > max_skew:
        return None
    message = (
        f"{method}\n{path_with_query}\n{found['timestamp']}\n{found['nonce_str']}\n".encode()
        + body
        + b"\n"
    )
    try:
        signature = base64.b64decode(found["signature"], validate=True)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return None
    return found


def _valid_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return False
    return True


DEFAULT_MESSAGES = {
    400: ("PARAM_ERROR", "参数错误"),
    401: ("SIGN_ERROR", "签名错误"),
    403: ("NO_AUTH", "商户无权限"),
    404: ("ORDER_NOT_EXIST", "订单不存在"),
    429: ("FREQUENCY_LIMITED", "频率超限"),
    500: ("SYSTEM_ERROR", "系统错误"),
    502: ("SYSTEM_ERROR", "系统错误"),
    503: ("SYSTEM_ERROR", "系统错误"),
}


class Tamper(StrEnum):
    """Ways to spoil an answer or a notification (the last three: notifications only)."""

    SIGNATURE = "signature"  # signed with another RSA key
    BODY = "body"  # body changed after signing
    SERIAL = "serial"  # Wechatpay-Serial names another key
    STALE = "stale"  # correctly signed ten minutes ago
    FUTURE = "future"  # correctly signed ten minutes ahead
    UNSIGNED = "unsigned"  # no Wechatpay-* headers
    NO_SIGNATURE_TYPE = "no_signature_type"  # no Wechatpay-Signature-Type, else correct
    SIGNATURE_TYPE = "signature_type"  # Wechatpay-Signature-Type another scheme, else correct
    CIPHERTEXT = "ciphertext"  # a ciphertext byte flipped, then signed correctly
    ASSOCIATED_DATA = "associated_data"  # associated_data changed, then signed correctly
    APIV3_KEY = "apiv3_key"  # encrypted with another APIv3 key, signed correctly


class Signer(StrEnum):
    """Which platform key signs an answer or notification."""

    PUBLIC_KEY = "public_key"  # the platform public key, serial PUB_KEY_ID_…
    CERTIFICATE = "certificate"  # the platform certificate, serial its hex serial number
    BY_REQUEST = "by_request"  # the one the request's Wechatpay-Serial names
    UNKNOWN = "unknown"  # a key (and serial) the merchant was never given


@dataclass(slots=True)
class PayFault:
    """A canned answer for the next call(s) to a path: ``status`` with WeChat's error body
    (``code``/``message`` default by status); ``delay`` s first; ``status=None`` only delays."""

    status: int | None = 500
    code: str | None = None
    message: str | None = None
    delay: float = 0.0
    times: int = 1


@dataclass(slots=True)
class FakeTrade:
    out_trade_no: str
    appid: str
    mchid: str
    description: str
    total: int
    currency: str
    payer_openid: str
    time_expire: str | None
    notify_url: str
    prepay_id: str
    request: dict[str, Any]
    state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    refunded: int = 0


@dataclass(slots=True)
class FakeRefund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str | None
    refund: int
    total: int
    notify_url: str
    request: dict[str, Any]
    create_time: str
    status: str = "PROCESSING"
    success_time: str | None = None


@dataclass(slots=True)
class Delivery:
    """One notification POSTed (or held back, or dropped) and what the receiver answered."""

    id: str
    event_type: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None  # None: not answered (dropped, held, or a network error)
    answer: bytes = b""
    error: str | None = None
    dropped: bool = False
    resource: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(slots=True)
class PayRequest:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    authorization: str = field(default="", repr=False)
    authorized: bool = False
    wechatpay_serial: str | None = None  # the request's Wechatpay-Serial header


def _now_rfc3339() -> str:
    return datetime.now(tz=CHINA_TZ).isoformat(timespec="seconds")


def _transaction_id() -> str:
    return "4200" + "".join(secrets.choice("0123456789") for _ in range(24))


def _new_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: RSAPrivateKey, serial: int) -> x509.Certificate:
    """A platform certificate as WeChat Pay issues them (here self-signed, for 5 years)."""
    name = x509.Name([
        x509.NameAttribute(x509.NameOID.COMMON_NAME, "Tenpay.com Root CA (fake)"),
        x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Tenpay.com"),
    ])  # fmt: skip
    now = datetime.now(tz=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )


class FakeWeChatPay:
    """WeChat Pay v3 on 127.0.0.1: prepay, query, close, refund, signed notifications."""

    def __init__(
        self,
        merchant_public_key: RSAPublicKey,
        *,
        mchid: str = "1900000109",
        appid: str = "wx0123456789fake",
        merchant_serial: str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        apiv3_key: bytes | None = None,
        platform_key: RSAPrivateKey | None = None,
        platform_serial: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        refund_delay: float = 0.05,
        max_skew: float = MAX_SKEW,
    ) -> None:
        self.merchant_public_key = merchant_public_key
        self.mchid = mchid
        self.appid = appid
        self.merchant_serial = merchant_serial
        self.apiv3_key = apiv3_key or secrets.token_hex(16).encode()
        self.platform_key = platform_key or _new_key()
        self.platform_serial = platform_serial or "PUB_KEY_ID_01" + secrets.token_hex(14).upper()
        self.cert_key = _new_key()
        # 40 hex digits, as WeChat's platform certificate serials are; top nibble non-zero.
        self.certificate = _certificate(self.cert_key, secrets.randbits(156) | (1 << 155))
        self.cert_serial = format(self.certificate.serial_number, "X")
        self.unknown_key = _new_key()
        self.unknown_serial = "PUB_KEY_ID_01" + secrets.token_hex(14).upper()
        self.host = host
        self.port = port
        self.refund_delay = refund_delay
        self.max_skew = max_skew
        self.base_url: str | None = None

        self.trades: dict[str, FakeTrade] = {}
        self.refunds: dict[str, FakeRefund] = {}
        self.calls: Counter[str] = Counter()
        self.requests: list[PayRequest] = []
        self.deliveries: list[Delivery] = []
        self.held: list[Delivery] = []

        # switches
        self.delay = 0.0
        self.tamper_answers: Tamper | None = None
        self.duplicate_notifications = False
        self.hold_notifications = False
        self.drop_notifications = False
        self.auto_complete_refunds = True
        self.sign_with = Signer.PUBLIC_KEY
        self.notify_with: Signer | None = None  # None: as sign_with
        self.lowercase_serial = False
        self.last_request_serial: str | None = None

        self._faults: dict[str, deque[PayFault]] = {}
        self._forger: RSAPrivateKey | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------

    @property
    def platform_public_key(self) -> RSAPublicKey:
        return self.platform_key.public_key()

    @property
    def platform_public_key_pem(self) -> bytes:
        return self.platform_public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_key_files(
        self, folder: Path, *, certificate: bool = True, public_key: bool = True
    ) -> dict[str, Path]:
        """Write the platform key files a merchant downloads into ``folder``, as a keys
        directory holds them: ``<cert serial>.pem`` and ``<PUB_KEY_ID_…>.pem``."""
        folder.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        if certificate:
            written["certificate"] = folder / f"{self.cert_serial}.pem"
            written["certificate"].write_bytes(self.certificate_pem)
        if public_key:
            written["public_key"] = folder / f"{self.platform_serial}.pem"
            written["public_key"].write_bytes(self.platform_public_key_pem)
        return written

    def merchant_config(
        self,
        private_key: RSAPrivateKey,
        *,
        notify_url: str = "http://127.0.0.1:9/notify",
        keys: tuple[Signer, ...] = (Signer.PUBLIC_KEY,),
    ) -> MerchantConfig:
        """The merchant's config that matches this fake (ids, APIv3 key, and the platform
        ``keys`` named: the public key, the certificate, or both)."""
        held = {
            Signer.PUBLIC_KEY: PlatformKey(
                self.platform_serial, KeyKind.PUBLIC_KEY, self.platform_public_key
            ),
            Signer.CERTIFICATE: PlatformKey(
                self.cert_serial,
                KeyKind.CERTIFICATE,
                self.cert_key.public_key(),
                self.certificate.not_valid_after_utc,
            ),
        }
        return MerchantConfig(
            mchid=self.mchid,
            appid=self.appid,
            serial_no=self.merchant_serial,
            private_key=private_key,
            apiv3_key=self.apiv3_key,
            platform_keys=PlatformKeys(held[k] for k in keys),
            notify_url=notify_url,
        )

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(JSAPI, self.handle_jsapi)
        app.router.add_get(TRADE, self.handle_query)
        app.router.add_post(CLOSE, self.handle_close)
        app.router.add_post(REFUNDS, self.handle_refund)
        app.router.add_get(REFUND, self.handle_query_refund)
        return app

    async def start(self) -> str:
        """Listen and return the base URL (``http://127.0.0.1:N/``)."""
        if self._runner is not None:
            raise RuntimeError("already started")
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0))
        host, port = runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{host}:{port}/"
        return self.base_url

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeWeChatPay:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- test controls: faults ---------------------------------------------------------

    def fail_next(
        self,
        path: str,
        status: int | None = 500,
        times: int = 1,
        *,
        code: str | None = None,
        message: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` calls to ``path`` with ``status`` (after ``delay`` s).

        ``path`` is a request path (``/v3/pay/transactions/jsapi``) or a route template
        (``/v3/pay/transactions/out-trade-no/{out_trade_no}``).
        """
        fault = PayFault(status=status, code=code, message=message, delay=delay, times=times)
        self._faults.setdefault(path, deque()).append(fault)

    # --- test controls: the user pays, refunds complete ----------------------------------

    async def pay(
        self, out_trade_no: str, *, notify: bool = True, force: bool = False
    ) -> FakeTrade:
        """The user pays: SUCCESS, and a TRANSACTION.SUCCESS notification (unless held,
        dropped or ``notify=False``). The order's ``time_expire`` is not looked at: this is
        also the payment that lands at the deadline, after the merchant expired the order;
        ``force=True`` even pays a CLOSED one (the payment raced the merchant's close).
        """
        trade = self.trades[out_trade_no]
        if trade.state != "NOTPAY" and not (force and trade.state == "CLOSED"):
            raise RuntimeError(f"trade {out_trade_no} is {trade.state}, not NOTPAY")
        trade.state = "SUCCESS"
        trade.transaction_id = _transaction_id()
        trade.success_time = _now_rfc3339()
        if notify:
            await self.notify(trade.notify_url, TRANSACTION_SUCCESS, self.transaction_of(trade))
        return trade

    async def complete_refund(self, out_refund_no: str, status: str = "SUCCESS") -> None:
        """Finish a PROCESSING refund (SUCCESS, CLOSED or ABNORMAL) and notify it."""
        refund = self.refunds[out_refund_no]
        if refund.status != "PROCESSING":
            return
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = _now_rfc3339()
            self.trades[refund.out_trade_no].state = "REFUND"
        else:
            self.trades[refund.out_trade_no].refunded -= refund.refund
        await self.notify(refund.notify_url, f"REFUND.{status}", self.refund_resource(refund))

    # --- resources, as WeChat Pay shows them ---------------------------------------------

    def transaction_of(self, trade: FakeTrade | str, **overrides: Any) -> dict[str, Any]:
        """The transaction resource (query answer and notification plaintext).

        ``overrides`` replace top-level fields; ``total`` replaces ``amount.total``.
        """
        if isinstance(trade, str):
            trade = self.trades[trade]
        paid = trade.state in ("SUCCESS", "REFUND")
        data: dict[str, Any] = {
            "appid": trade.appid,
            "mchid": trade.mchid,
            "out_trade_no": trade.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": trade.state,
            "trade_state_desc": {"NOTPAY": "订单未支付", "CLOSED": "订单已关闭"}.get(
                trade.state, "支付成功"
            ),
            "attach": "",
            "payer": {"openid": trade.payer_openid},
            "amount": {"total": trade.total, "currency": trade.currency},
        }
        if paid:
            data.update(
                transaction_id=trade.transaction_id,
                bank_type="OTHERS",
                success_time=trade.success_time,
            )
            data["amount"].update(payer_total=trade.total, payer_currency=trade.currency)
        total = overrides.pop("total", None)
        if total is not None:
            data["amount"]["total"] = total
            if "payer_total" in data["amount"]:
                data["amount"]["payer_total"] = total
        data.update(overrides)
        return data

    def make_transaction(
        self, out_trade_no: str, total: int, *, openid: str = "o_fake_payer", **overrides: Any
    ) -> dict[str, Any]:
        """A SUCCESS transaction resource for an order this fake never saw."""
        data: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": out_trade_no,
            "transaction_id": _transaction_id(),
            "trade_type": "JSAPI",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": _now_rfc3339(),
            "payer": {"openid": openid},
            "amount": {
                "total": total,
                "payer_total": total,
                "currency": CURRENCY,
                "payer_currency": CURRENCY,
            },
        }
        data.update(overrides)
        return data

    def refund_resource(self, refund: FakeRefund | str) -> dict[str, Any]:
        if isinstance(refund, str):
            refund = self.refunds[refund]
        data: dict[str, Any] = {
            "mchid": self.mchid,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": refund.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
            },
        }
        if refund.success_time:
            data["success_time"] = refund.success_time
        return data

    # --- notifications -------------------------------------------------------------------

    def build_notification(
        self,
        event_type: str,
        resource: dict[str, Any],
        *,
        tamper: Tamper | None = None,
        notification_id: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of a notification as WeChat Pay sends it, optionally spoiled."""
        refund = event_type.startswith("REFUND.")
        original_type = "refund" if refund else "transaction"
        key = self.apiv3_key if tamper is not Tamper.APIV3_KEY else secrets.token_hex(16).encode()
        encrypted = encrypt_resource(
            _json_body(resource),
            key,
            nonce=secrets.token_hex(6),
            associated_data=original_type,
            original_type=original_type,
        )
        if tamper is Tamper.CIPHERTEXT:
            raw = bytearray(base64.b64decode(encrypted["ciphertext"]))
            raw[len(raw) // 2] ^= 0x01
            encrypted["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        elif tamper is Tamper.ASSOCIATED_DATA:
            encrypted["associated_data"] = "certificate"
        body = _json_body(
            {
                "id": notification_id or str(uuid.uuid4()),
                "create_time": _now_rfc3339(),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": "退款成功" if refund else "支付成功",
                "resource": encrypted,
            }
        )
        headers, body = self._sign(
            body, tamper=tamper, timestamp=timestamp, nonce=nonce, notification=True
        )
        headers["Content-Type"] = "application/json"
        return headers, body

    async def notify(self, url: str, event_type: str, resource: dict[str, Any]) -> list[Delivery]:
        """Send (or hold, or drop) a notification as the switches say; the deliveries."""
        headers, body = self.build_notification(event_type, resource)
        delivery = Delivery(
            id=json.loads(body)["id"],
            event_type=event_type,
            url=url,
            headers=headers,
            body=body,
            resource=resource,
        )
        if self.drop_notifications:
            delivery.dropped = True
            self.deliveries.append(delivery)
            return [delivery]
        copies = [delivery]
        if self.duplicate_notifications:
            copies.append(self._resigned(delivery))
        if self.hold_notifications:
            self.held.extend(copies)
            return copies
        for copy in copies:
            await self._deliver(copy)
        return copies

    async def release_notifications(self, *, reverse: bool = False) -> list[Delivery]:
        """Send the held notifications, oldest first (or newest first: reordered)."""
        held, self.held = self.held, []
        if reverse:
            held.reverse()
        for delivery in held:
            await self._deliver(delivery)
        return held

    async def resend(self, delivery: Delivery, *, same_headers: bool = False) -> Delivery:
        """Send a notification again: WeChat's retry (re-signed), or an exact replay."""
        again = self._resigned(delivery) if not same_headers else _copy(delivery)
        await self._deliver(again)
        return again

    async def send_notification(
        self,
        url: str,
        event_type: str,
        resource: dict[str, Any],
        *,
        tamper: Tamper | None = None,
    ) -> Delivery:
        """Build one (possibly spoiled) notification and POST it now, switches ignored."""
        headers, body = self.build_notification(event_type, resource, tamper=tamper)
        delivery = Delivery(
            id=json.loads(body)["id"],
            event_type=event_type,
            url=url,
            headers=headers,
            body=body,
            resource=resource,
        )
        await self._deliver(delivery)
        return delivery

    def _resigned(self, delivery: Delivery) -> Delivery:
        headers, _ = self._sign(delivery.body, notification=True)
        headers["Content-Type"] = "application/json"
        again = _copy(delivery)
        again.headers = headers
        return again

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._session is not None, "start() the fake first"
        self.deliveries.append(delivery)
        try:
            async with self._session.post(
                delivery.url, data=delivery.body, headers=delivery.headers
            ) as resp:
                delivery.status = resp.status
                delivery.answer = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery.error = type(exc).__name__

    @property
    def answers(self) -> list[tuple[int | None, bytes]]:
        """The receiver's answers to every delivery sent, in order."""
        return [(d.status, d.answer) for d in self.deliveries if not d.dropped]

    # --- signing -------------------------------------------------------------------------

    def _sign(
        self,
        body: bytes,
        *,
        tamper: Tamper | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        notification: bool = False,
        request_serial: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        if tamper is Tamper.UNSIGNED:
            return {}, body
        ts = int(time.time()) if timestamp is None else timestamp
        if tamper is Tamper.STALE:
            ts -= 2 * int(self.max_skew)
        elif tamper is Tamper.FUTURE:
            ts += 2 * int(self.max_skew)
        key, serial = self._signer(notification, request_serial)
        if tamper is Tamper.SIGNATURE:
            if self._forger is None:
                self._forger = _new_key()
            key = self._forger
        nonce = nonce or secrets.token_hex(16).upper()
        headers = signature_headers(body, key, serial, nonce, ts)
        if tamper is Tamper.SERIAL:
            headers[H_SERIAL] = "PUB_KEY_ID_01" + "0" * 28
        elif tamper is Tamper.NO_SIGNATURE_TYPE:
            del headers[H_SIGNATURE_TYPE]
        elif tamper is Tamper.SIGNATURE_TYPE:
            headers[H_SIGNATURE_TYPE] = "WECHATPAY2-SM2-WITH-SM3"
        elif tamper is Tamper.BODY:
            body = body + b" " if not body.endswith(b"}") else body[:-1] + b',"x":1}'
        return headers, body

    def _signer(self, notification: bool, request_serial: str | None) -> tuple[RSAPrivateKey, str]:
        """The key and serial to sign with, per :attr:`sign_with` / :attr:`notify_with`."""
        mode = self.sign_with
        if notification:
            mode = self.notify_with or self.sign_with
            request_serial = self.last_request_serial
        if mode is Signer.BY_REQUEST:
            named = (request_serial or "").upper()
            mode = (
                Signer.PUBLIC_KEY if named == self.platform_serial.upper() else Signer.CERTIFICATE
            )
        if mode is Signer.PUBLIC_KEY:
            return self.platform_key, self.platform_serial
        if mode is Signer.CERTIFICATE:
            serial = self.cert_serial.lower() if self.lowercase_serial else self.cert_serial
            return self.cert_key, serial
        return self.unknown_key, self.unknown_serial

    def _answer(
        self, status: int, data: dict[str, Any] | None = None, request_serial: str | None = None
    ) -> web.Response:
        body = _json_body(data) if data is not None else b""
        tamper = self.tamper_answers
        if tamper in (Tamper.CIPHERTEXT, Tamper.ASSOCIATED_DATA, Tamper.APIV3_KEY):
            tamper = None
        if request_serial is None:
            request_serial = _REQUEST_SERIAL.get()
        headers, body = self._sign(body, tamper=tamper, request_serial=request_serial)
        headers["Request-ID"] = secrets.token_hex(16)
        if data is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return web.Response(status=status, body=body, headers=headers)

    def error(
        self, status: int, code: str | None = None, message: str | None = None
    ) -> web.Response:
        default_code, default_message = DEFAULT_MESSAGES.get(status, ("PARAM_ERROR", "错误"))
        return self._answer(
            status, {"code": code or default_code, "message": message or default_message}
        )

    # --- middleware: record, delay, faults, Authorization ------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read() if request.can_read_body else b""
        record = PayRequest(
            request.method,
            request.path,
            dict(request.query),
            body,
            authorization=request.headers.get("Authorization", ""),
            wechatpay_serial=request.headers.get(H_SERIAL),
        )
        self.requests.append(record)
        self.last_request_serial = record.wechatpay_serial
        _REQUEST_SERIAL.set(record.wechatpay_serial)  # this request's task only
        self.calls[request.path] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        fault = self._take_fault(request)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return self.error(fault.status, fault.code, fault.message)
        refused = self._check_authorization(request, body)
        if refused is not None:
            return refused
        record.authorized = True
        return await handler(request)

    def _take_fault(self, request: web.Request) -> PayFault | None:
        route = request.match_info.route.resource
        canonical = route.canonical if route is not None else None
        for key in (request.path, canonical):
            queue = self._faults.get(key) if key else None
            if queue:
                fault = queue[0]
                fault.times -= 1
                if fault.times <= 0:
                    queue.popleft()
                return fault
        return None

    def _check_authorization(self, request: web.Request, body: bytes) -> web.Response | None:
        auth = check_authorization(
            request.headers.get("Authorization", ""),
            request.method,
            request.raw_path,
            body,
            self.merchant_public_key,
            now=time.time(),
            max_skew=self.max_skew,
        )
        if auth is None:
            return self.error(401, "SIGN_ERROR", "签名错误，请检查后再试")
        if auth["mchid"] != self.mchid:
            return self.error(401, "SIGN_ERROR", "商户号与签名不匹配")
        if auth["serial_no"] != self.merchant_serial:
            return self.error(401, "SIGN_ERROR", "商户证书序列号有误")
        return None

    # --- WeChat Pay endpoints ------------------------------------------------------------

    async def _json(self, request: web.Request) -> dict[str, Any] | None:
        try:
            data = json.loads(await request.read())
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def handle_jsapi(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        if data is None:
            return self.error(400, "PARAM_ERROR", "请求体不是合法的JSON")
        problem = self._check_jsapi(data)
        if problem is not None:
            return self.error(400, "PARAM_ERROR", problem)
        if data["appid"] != self.appid or data["mchid"] != self.mchid:
            return self.error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        no = data["out_trade_no"]
        trade = self.trades.get(no)
        if trade is not None:
            if trade.state in ("SUCCESS", "REFUND"):
                return self.error(400, "ORDERPAID", "该订单已支付")
            if trade.state == "CLOSED":
                return self.error(400, "ORDER_CLOSED", "订单已关闭")
            if trade.request != data:
                return self.error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
            return self._answer(200, {"prepay_id": trade.prepay_id})
        trade = FakeTrade(
            out_trade_no=no,
            appid=data["appid"],
            mchid=data["mchid"],
            description=data["description"],
            total=data["amount"]["total"],
            currency=data["amount"].get("currency", CURRENCY),
            payer_openid=data["payer"]["openid"],
            time_expire=data.get("time_expire"),
            notify_url=data["notify_url"],
            prepay_id="wx" + secrets.token_hex(16),
            request=data,
        )
        self.trades[no] = trade
        return self._answer(200, {"prepay_id": trade.prepay_id})

    @staticmethod
    def _check_jsapi(data: dict[str, Any]) -> str | None:
        for name in ("appid", "mchid", "description", "out_trade_no", "notify_url"):
            if not isinstance(data.get(name), str) or not data[name]:
                return f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败"
        if len(data["description"].encode()) > 127:
            return "description 过长"
        attach = data.get("attach")
        if attach is not None and (not isinstance(attach, str) or len(attach.encode()) > 128):
            return "attach 过长"
        if len(data["notify_url"].encode()) > 256 or "?" in data["notify_url"]:
            return "notify_url 格式错误"
        if not _OUT_TRADE_NO.fullmatch(data["out_trade_no"]):
            return "out_trade_no 格式错误"
        expire = data.get("time_expire")
        if expire is not None:
            if not isinstance(expire, str) or not _valid_time(expire):
                return "time_expire 格式错误"
            if not expire.endswith("+08:00"):
                return "time_expire 时区错误"
        amount, payer = data.get("amount"), data.get("payer")
        if not isinstance(amount, dict) or type(amount.get("total")) is not int:
            return "amount.total 必填"
        if amount["total"] < 1 or amount.get("currency", CURRENCY) != CURRENCY:
            return "amount 错误"
        if not isinstance(payer, dict) or not isinstance(payer.get("openid"), str):
            return "payer.openid 必填"
        return None

    async def handle_query(self, request: web.Request) -> web.Response:
        if request.query.get("mchid") != self.mchid:
            return self.error(400, "PARAM_ERROR", "mchid 错误")
        trade = self.trades.get(request.match_info["out_trade_no"])
        if trade is None:
            return self.error(404, "ORDER_NOT_EXIST", "订单不存在")
        return self._answer(200, self.transaction_of(trade))

    async def handle_close(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        if data is None or data.get("mchid") != self.mchid:
            return self.error(400, "PARAM_ERROR", "mchid 错误")
        trade = self.trades.get(request.match_info["out_trade_no"])
        if trade is None:
            return self.error(404, "ORDER_NOT_EXIST", "订单不存在")
        if trade.state in ("SUCCESS", "REFUND"):
            return self.error(400, "ORDERPAID", "该订单已支付")
        trade.state = "CLOSED"
        return self._answer(204)

    async def handle_refund(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        if data is None:
            return self.error(400, "PARAM_ERROR", "请求体不是合法的JSON")
        no, out_refund_no = data.get("out_trade_no"), data.get("out_refund_no")
        amount = data.get("amount")
        valid_no = isinstance(out_refund_no, str) and _OUT_REFUND_NO.fullmatch(out_refund_no)
        if not valid_no or not isinstance(amount, dict):
            return self.error(400, "PARAM_ERROR", "out_refund_no 或 amount 错误")
        reason = data.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason.encode()) > 80):
            return self.error(400, "PARAM_ERROR", "退款原因不得超过80个字节")
        refund_fen, total = amount.get("refund"), amount.get("total")
        if type(refund_fen) is not int or type(total) is not int or refund_fen < 1:
            return self.error(400, "PARAM_ERROR", "amount 错误")
        existing = self.refunds.get(out_refund_no)
        if existing is not None:
            if existing.request != data:
                return self.error(400, "INVALID_REQUEST", "退款单号重复，请求参数与原请求不一致")
            return self._answer(200, self._refund_answer(existing))
        trade = self.trades.get(no) if isinstance(no, str) else None
        if trade is None:
            return self.error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if trade.state not in ("SUCCESS", "REFUND"):
            return self.error(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if total != trade.total:
            return self.error(400, "INVALID_REQUEST", "订单金额与原订单不一致")
        if refund_fen > trade.total - trade.refunded:
            return self.error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        trade.refunded += refund_fen
        refund = FakeRefund(
            out_refund_no=out_refund_no,
            refund_id="50" + "".join(secrets.choice("0123456789") for _ in range(27)),
            out_trade_no=trade.out_trade_no,
            transaction_id=trade.transaction_id,
            refund=refund_fen,
            total=total,
            notify_url=data.get("notify_url") or trade.notify_url,
            request=data,
            create_time=_now_rfc3339(),
        )
        self.refunds[out_refund_no] = refund
        if self.auto_complete_refunds:
            task = asyncio.get_running_loop().create_task(self._complete_later(out_refund_no))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return self._answer(200, self._refund_answer(refund))

    async def _complete_later(self, out_refund_no: str) -> None:
        await asyncio.sleep(self.refund_delay)
        await self.complete_refund(out_refund_no)

    def _refund_answer(self, refund: FakeRefund) -> dict[str, Any]:
        data: dict[str, Any] = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund.create_time,
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
                "settlement_total": refund.total,
                "settlement_refund": refund.refund,
                "discount_refund": 0,
                "currency": CURRENCY,
            },
        }
        if refund.success_time:
            data["success_time"] = refund.success_time
        return data

    async def handle_query_refund(self, request: web.Request) -> web.Response:
        refund = self.refunds.get(request.match_info["out_refund_no"])
        if refund is None:
            return self.error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return self._answer(200, self._refund_answer(refund))


def _copy(delivery: Delivery) -> Delivery:
    return Delivery(
        id=delivery.id,
        event_type=delivery.event_type,
        url=delivery.url,
        headers=dict(delivery.headers),
        body=delivery.body,
        resource=delivery.resource,
    )
