"""The WeChat Pay v3 HTTP client: prepay, query, close, refund, every answer verified.

``WeChatPayClient(config, base_url)`` signs each request (a fresh nonce and timestamp per
attempt, over the exact body bytes sent) and checks WeChat Pay's signature on every 2xx
answer, and on every error answer that carries one, with the platform key the answer
names in ``Wechatpay-Serial`` (``config.platform_keys``: platform certificates, the
platform public key, or both during the migration): an unsigned, forged, stale answer, or
one signed by a key not held, is refused (``PayUnavailable`` with reason
``untrusted_answer``) and never acted on. Error answers without signature headers are read
as errors, as WeChat Pay's own SDKs do (gateway errors come unsigned).

Every request carries ``Wechatpay-Serial``: the platform key WeChat Pay should sign its
answer with (the public key's id once it is held, else the newest certificate's serial;
``PlatformKeys.request_serial``). During the migration WeChat picks the answer's key from
it; ``wechatpayv3`` sends the same value (it sends it in public-key mode, and in certificate
mode with encrypted fields; here always, so the answer's key is never WeChat's guess).

Transport: ``httpx.AsyncClient``. The project keeps aiohttp's client out of domain
packages; of the two choices left, httpx is asyncio-native, so there is no thread pool to
size and shut down, a caller's cancellation reaches the socket instead of leaving a thread
blocked, it has separate connect/read/write/pool timeouts and a keep-alive pool, and
``content=bytes`` sends exactly the bytes that were signed. (``requests`` off-loop, as
:mod:`moderation.content_security` does for wechatpy, would work but buys nothing here.)

Failure handling, per call:

- ``timeout`` bounds each attempt (connect to last byte).
- Network errors, timeouts, 5xx and 429 are retried ``retries`` times with exponential
  backoff and jitter. Every call here is idempotent at WeChat Pay by its key (the same
  ``out_trade_no`` with the same body returns the same prepay; the same ``out_refund_no``
  refunds once; query and close are safe), and a retry resends the very same body. 5xx
  codes WeChat documents as permanent (``OPENID_MISMATCH``, ``INVALID_TRANSACTIONID``)
  are not retried.
- One call = one :class:`~interact.floor.breaker.CircuitBreaker` outcome: a call that got a
  verified answer (2xx or a business 4xx) or 429 is a success; network errors, timeouts,
  5xx after retries, untrusted answers and cancellation are failures. While the breaker is
  open calls fail at once with ``PayUnavailable("breaker_open")`` and send nothing.

Errors::

    PayClientError
     ├── PayError(code, message, status)   WeChat Pay refused the request (4xx, or a
     │                                     permanent 5xx); the same call again won't help
     └── PayUnavailable(reason)            no usable answer: breaker_open, timeout, network,
                                           server_error, rate_limited, untrusted_answer,
                                           bad_answer, closed

Logged: the operation, outcome, HTTP status, WeChat's error code and Request-ID. Never the
Authorization header, keys, signatures, request or answer bodies (openids), or exception
texts (they may carry URLs).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx

from commerce.wechatpay import (
    H_SERIAL,
    H_SIGNATURE,
    MAX_SKEW,
    MerchantConfig,
    UntrustedMessage,
    authorization,
    encode_body,
    jsapi_body,
    new_nonce,
    refund_body,
    request_payment_params,
    valid_out_refund_no,
    valid_out_trade_no,
    verify_response,
)
from interact.floor.breaker import BreakerState, CircuitBreaker

__all__ = [
    "DEFAULT_BASE_URL",
    "PayClientError",
    "PayError",
    "PayStats",
    "PayUnavailable",
    "Unavailable",
    "WeChatPayClient",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com/"
USER_AGENT = "interact-wechatpay/1"

JSAPI = "/v3/pay/transactions/jsapi"
TRADE = "/v3/pay/transactions/out-trade-no/"
REFUNDS = "/v3/refund/domestic/refunds"

# 5xx codes WeChat Pay documents as problems with the request, not with its service.
PERMANENT_5XX = frozenset({"OPENID_MISMATCH", "INVALID_TRANSACTIONID"})
ORDER_NOT_FOUND = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST"})
REFUND_NOT_FOUND = frozenset({"RESOURCE_NOT_EXISTS"})


class Unavailable(StrEnum):
    BREAKER_OPEN = "breaker_open"
    TIMEOUT = "timeout"
    NETWORK = "network"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    UNTRUSTED = "untrusted_answer"
    BAD_ANSWER = "bad_answer"
    CLOSED = "closed"


class PayClientError(Exception):
    """Base of the WeChat Pay client's errors."""


class PayError(PayClientError):
    """WeChat Pay refused the request: ``code`` and ``message`` are WeChat's own."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"WeChat Pay refused ({status} {code}): {message}")
        self.code = code
        self.message = message
        self.status = status


class PayUnavailable(PayClientError):
    """WeChat Pay could not be asked or gave no usable answer; ``reason`` says which."""

    def __init__(self, reason: Unavailable) -> None:
        super().__init__(f"WeChat Pay unavailable: {reason.value}")
        self.reason = reason


@dataclass(slots=True)
class PayStats:
    """Counters since start. ``calls`` = calls made; each ends in exactly one of ``ok``,
    ``refused`` (PayError) or ``unavailable`` (of which ``breaker_open``, ``untrusted``).
    ``attempts`` counts HTTP requests sent, ``retries`` the repeated ones."""

    calls: int = 0
    ok: int = 0
    refused: int = 0
    unavailable: int = 0
    breaker_open: int = 0
    untrusted: int = 0
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    data: dict[str, Any] | None


class _Retryable(Exception):
    def __init__(self, reason: Unavailable) -> None:
        super().__init__(reason.value)
        self.reason = reason


class WeChatPayClient:
    """WeChat Pay v3 for one merchant, behind timeouts, retries and a circuit breaker.

    ``base_url`` is the API root (a fake's in tests). ``timeout`` bounds each attempt,
    ``retries`` is the number of extra attempts after a network error, timeout, 5xx or
    429, waiting ``backoff`` × 2^n seconds (at most ``max_backoff``, with jitter) between
    them. ``breaker`` defaults to 5 consecutive failed calls → open for 30 s. ``clock``
    (epoch seconds) stamps requests and judges answer freshness (``max_skew``).
    ``transport`` replaces httpx's (proxies, tests).

    Close it with :meth:`aclose` (or ``async with``); :meth:`close` closes a WeChat order.
    """

    def __init__(
        self,
        config: MerchantConfig,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        max_backoff: float = 2.0,
        max_skew: float = MAX_SKEW,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries must not be negative")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("backoff must not be negative")
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_skew = max_skew
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self.stats = PayStats()
        self._clock = clock
        self._monotonic = monotonic
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"WeChatPayClient(mchid={self.config.mchid!r}, base_url={self.base_url!r}, "
            f"breaker={self.breaker.state.value})"
        )

    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state

    async def __aenter__(self) -> WeChatPayClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections. Idempotent; later calls raise ``closed``."""
        if not self._closed:
            self._closed = True
            await self._http.aclose()

    # --- WeChat Pay operations ----------------------------------------------------------

    async def prepay(
        self,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        payer_openid: str,
        time_expire_ms: int,
        *,
        attach: str | None = None,
    ) -> str:
        """Place the JSAPI order and return its ``prepay_id``; WeChat closes it at
        ``time_expire_ms`` (epoch ms, sent as RFC 3339 +08:00, rounded down to the second).
        """
        body = jsapi_body(
            self.config,
            out_trade_no=out_trade_no,
            description=description,
            amount_fen=amount_fen,
            payer_openid=payer_openid,
            time_expire_ms=time_expire_ms,
            attach=attach,
        )
        answer = await self._call("prepay", "POST", JSAPI, body, require="prepay_id")
        return str((answer.data or {})["prepay_id"])

    async def query(self, out_trade_no: str) -> dict[str, Any] | None:
        """The transaction (``trade_state``, ``amount``, ``payer``, ...), or None if WeChat
        Pay has no such order (never prepaid). Read it with ``Transaction.from_dict``."""
        path = f"{TRADE}{_id(out_trade_no, valid_out_trade_no)}?mchid={quote(self.config.mchid)}"
        try:
            answer = await self._call("query", "GET", path, None, require="trade_state")
        except PayError as exc:
            if exc.status == 404 and exc.code in ORDER_NOT_FOUND:
                return None
            raise
        return answer.data or {}

    async def close(self, out_trade_no: str) -> None:
        """Close an unpaid order at WeChat Pay (closing a closed one is fine).

        A paid one answers ``PayError("ORDERPAID")``: query it and confirm instead.
        """
        path = f"{TRADE}{_id(out_trade_no, valid_out_trade_no)}/close"
        await self._call("close", "POST", path, {"mchid": self.config.mchid})

    async def refund(
        self,
        out_trade_no: str,
        out_refund_no: str,
        total_fen: int,
        refund_fen: int,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Ask for a refund; the answer's ``status`` is usually ``PROCESSING``, the outcome
        comes as a REFUND.* notification (or :meth:`query_refund`). The same
        ``out_refund_no`` again returns the same refund."""
        body = refund_body(
            self.config,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            total_fen=total_fen,
            refund_fen=refund_fen,
            reason=reason,
        )
        answer = await self._call("refund", "POST", REFUNDS, body, require="status")
        return answer.data or {}

    async def query_refund(self, out_refund_no: str) -> dict[str, Any] | None:
        """The refund (``status``, ``amount``, ...), or None if WeChat Pay has no such one."""
        path = f"{REFUNDS}/{_id(out_refund_no, valid_out_refund_no)}"
        try:
            answer = await self._call("query_refund", "GET", path, None, require="status")
        except PayError as exc:
            if exc.status == 404 and exc.code in REFUND_NOT_FOUND:
                return None
            raise
        return answer.data or {}

    def payment_params(
        self, prepay_id: str, *, nonce: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """``wx.requestPayment``'s parameters for ``prepay_id`` (no I/O)."""
        return request_payment_params(
            self.config.appid,
            prepay_id,
            self.config.private_key,
            nonce or new_nonce(),
            int(self._clock()) if timestamp is None else timestamp,
        )

    # --- one call: breaker, retries, verification ---------------------------------------

    async def _call(
        self,
        op: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        require: str | None = None,
    ) -> _Answer:
        """One call; a 2xx answer must be an object with a non-empty string ``require``."""
        stats = self.stats
        if self._closed:
            raise PayUnavailable(Unavailable.CLOSED)
        stats.calls += 1
        if not self.breaker.allow(self._monotonic()):
            stats.breaker_open += 1
            raise self._unavailable(op, Unavailable.BREAKER_OPEN, quiet=True)
        content = encode_body(body) if body is not None else b""
        healthy = False
        try:
            answer = await self._with_retries(op, method, path, content)
            healthy = True
        except PayUnavailable as exc:
            healthy = exc.reason is Unavailable.RATE_LIMITED
            raise
        finally:
            # Cancellation lands here too: an unknown outcome is a failure, and a half-open
            # probe slot must not stay taken.
            if healthy:
                self.breaker.record_success(self._monotonic())
            else:
                before = self.breaker.state
                self.breaker.record_failure(self._monotonic())
                if before is not BreakerState.OPEN and self.breaker.state is BreakerState.OPEN:
                    log.warning(
                        "wechatpay: circuit open for %.0fs after %s failed",
                        self.breaker.cooldown,
                        op,
                    )
        if 200 <= answer.status < 300:
            if require is not None:
                value = answer.data.get(require) if answer.data is not None else None
                if not isinstance(value, str) or not value:
                    raise self._unavailable(op, Unavailable.BAD_ANSWER)
            stats.ok += 1
            return answer
        data = answer.data or {}
        code = data.get("code") if isinstance(data.get("code"), str) else f"HTTP_{answer.status}"
        message = data.get("message") if isinstance(data.get("message"), str) else ""
        stats.refused += 1
        log.info("wechatpay %s: refused (%d %s)", op, answer.status, code)
        raise PayError(code, message, answer.status)

    async def _with_retries(self, op: str, method: str, path: str, content: bytes) -> _Answer:
        attempts = 1 + self.retries
        reason = Unavailable.NETWORK
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            try:
                return await self._attempt(op, method, path, content)
            except _Retryable as exc:
                reason = exc.reason
                log.warning(
                    "wechatpay %s: %s (attempt %d of %d)", op, reason.value, attempt + 1, attempts
                )
        raise self._unavailable(op, reason, quiet=True)

    async def _attempt(self, op: str, method: str, path: str, content: bytes) -> _Answer:
        self.stats.attempts += 1
        url = httpx.URL(self.base_url + path)
        signed_path = url.raw_path.decode("ascii")
        timestamp, nonce = int(self._clock()), new_nonce()
        config = self.config
        headers = {
            "Authorization": authorization(
                method, signed_path, content, config.mchid, config.serial_no,
                config.private_key, nonce, timestamp,
            ),
            H_SERIAL: config.platform_keys.request_serial(),
        }  # fmt: skip
        if content:
            headers["Content-Type"] = "application/json"
        try:
            async with asyncio.timeout(self.timeout):
                resp = await self._http.request(
                    method, url, content=content or None, headers=headers
                )
        except (TimeoutError, httpx.TimeoutException):
            self.stats.timeouts += 1
            raise _Retryable(Unavailable.TIMEOUT) from None
        except httpx.TransportError:
            raise _Retryable(Unavailable.NETWORK) from None
        status, body = resp.status_code, resp.content
        request_id = resp.headers.get("Request-ID", "-")
        if status == 429 or status >= 500:
            if status < 500 or _error_code(body) not in PERMANENT_5XX:
                log.info("wechatpay %s: HTTP %d, request %s", op, status, request_id)
                raise _Retryable(
                    Unavailable.RATE_LIMITED if status == 429 else Unavailable.SERVER_ERROR
                )
        if 200 <= status < 300 or H_SIGNATURE in resp.headers:
            try:
                verify_response(
                    resp.headers,
                    body,
                    config.platform_keys,
                    self._clock(),
                    self.max_skew,
                    purpose=op,
                )
            except UntrustedMessage as exc:
                self.stats.untrusted += 1
                log.warning(
                    "wechatpay %s: answer refused (%s), HTTP %d, request %s, serial %s",
                    op, exc.code, status, request_id, resp.headers.get(H_SERIAL, "-")[:64],
                )  # fmt: skip
                raise self._unavailable(op, Unavailable.UNTRUSTED, quiet=True) from None
        if 300 <= status < 400:
            raise self._unavailable(op, Unavailable.BAD_ANSWER)
        if not body:
            return _Answer(status, None)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if 200 <= status < 300:
                raise self._unavailable(op, Unavailable.BAD_ANSWER)
            data = None
        return _Answer(status, data)

    def _unavailable(self, op: str, reason: Unavailable, *, quiet: bool = False) -> PayUnavailable:
        self.stats.unavailable += 1
        if not quiet:
            log.warning("wechatpay %s: %s", op, reason.value)
        return PayUnavailable(reason)


def _id(value: str, valid: Callable[[object], bool]) -> str:
    if not valid(value):
        raise ValueError("malformed WeChat Pay order or refund number")
    return value


def _error_code(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None
