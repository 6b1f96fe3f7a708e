"""WeChat subscribe messages (``cgi-bin/message/subscribe/send``), off the event loop,
behind the floor's circuit breaker.

wechatpy's ``send_subscribe_message`` lacks ``miniprogram_state`` and ``lang``, so the
call is a direct ``client.post`` through the floor's :class:`WeChatApiClient` (the same
client content security uses), run on this object's small thread pool. 40001/42001
(the access token invalid or expired) fetch a new token once and send again.

Every send ends in one :class:`Sent` outcome, and the caller's credit bookkeeping
follows from it (``growth.reminders``): only an answer that proves nothing went out
(an errcode, a refused connection, HTTP 429/503) lets a credit be tried again; a lost
answer (read timeout, reset) is UNKNOWN and never sent again (at most once).

Neither openids, message data nor access tokens are logged (request exceptions carry the
URL and its token: their type only).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from wechatpy.exceptions import WeChatClientException

from interact.floor.breaker import BreakerState, CircuitBreaker
from interact.floor.wechat_client import (
    DEFAULT_API_BASE,
    TOKEN_ERRORS,
    WeChatApiClient,
    errcode_of,
    normalize_api_base,
)

__all__ = ["CONFIG_ERRORS", "REFUSED_ERRORS", "SendResult", "Sent", "SubscribeSender"]

log = logging.getLogger(__name__)

ENDPOINT = "message/subscribe/send"
# The user refused or unsubscribed (no grant left); 40003: the openid is not this app's.
REFUSED_ERRORS = frozenset({43101, 40003})
# Our configuration is wrong (data fields, page, template id): alert someone.
CONFIG_ERRORS = frozenset({47003, 41030, 40037})
MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")
_RID = re.compile(r"rid:\s*([\w-]+)")


class Sent(StrEnum):
    SENT = "sent"
    REFUSED = "refused"  # 43101 / 40003: the user holds no grant
    CONFIG = "config"  # 47003 / 41030 / 40037: nothing went out, our setup is wrong
    RETRY = "retry"  # WeChat said no, or was not reached: nothing went out
    UNKNOWN = "unknown"  # the answer was lost: it may have gone out
    OPEN = "open"  # the breaker is open: nothing tried


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Sent
    errcode: int | None = None


class _Failed(Exception):
    def __init__(self, result: SendResult, wechat_down: bool) -> None:
        super().__init__(result.outcome.value)
        self.result = result
        self.wechat_down = wechat_down


class SubscribeSender:
    """Sends one subscribe message at a time per worker thread.

    ``timeout`` bounds each HTTP request; a whole send (token fetch and one retry) is
    bounded by ``3 * timeout`` on the event loop. ``failures`` consecutive failures
    open the breaker for ``cooldown`` seconds (half-open: one probe at a time).
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        api_base: str = DEFAULT_API_BASE,
        *,
        miniprogram_state: str = "formal",
        lang: str = "zh_CN",
        timeout: float = 5.0,
        failures: int = 5,
        cooldown: float = 30.0,
        max_workers: int = 4,
    ) -> None:
        if not appid or not secret:
            raise ValueError("WeChat appid and secret are required")
        if miniprogram_state not in MINIPROGRAM_STATES:
            raise ValueError(f"miniprogram_state must be one of {', '.join(MINIPROGRAM_STATES)}")
        if lang not in LANGS:
            raise ValueError(f"lang must be one of {', '.join(LANGS)}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.appid = appid
        self.api_base = normalize_api_base(api_base)
        self.miniprogram_state = miniprogram_state
        self.lang = lang
        self.timeout = timeout
        self.breaker = CircuitBreaker(failures=failures, cooldown=cooldown)
        self._client = WeChatApiClient(appid, secret, api_base=self.api_base, timeout=timeout)
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="wechat-subscribe"
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"SubscribeSender(appid={self.appid!r}, breaker={self.breaker.state.value})"

    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def ready(self) -> bool:
        """Whether a send may go out now (takes the half-open probe slot if so)."""
        return not self._closed and self.breaker.allow(time.monotonic())

    async def send(
        self, openid: str, template_id: str, page: str, data: dict[str, Any]
    ) -> SendResult:
        """One message; call after :meth:`ready` answered True. Never raises for WeChat."""
        payload = {
            "touser": openid,
            "template_id": template_id,
            "page": page,
            "data": data,
            "miniprogram_state": self.miniprogram_state,
            "lang": self.lang,
        }
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(3 * self.timeout):
                await loop.run_in_executor(self._executor, self._call, payload)
        except TimeoutError:
            self.breaker.record_failure(time.monotonic())
            log.warning("subscribe/send: no answer within %.1fs", 3 * self.timeout)
            return SendResult(Sent.UNKNOWN)
        except _Failed as exc:
            if exc.wechat_down:
                self.breaker.record_failure(time.monotonic())
            else:
                self.breaker.record_success(time.monotonic())
            return exc.result
        except BaseException:
            self.breaker.record_failure(time.monotonic())
            raise
        self.breaker.record_success(time.monotonic())
        return SendResult(Sent.SENT)

    # --- runs on the worker threads -------------------------------------------------

    def _call(self, payload: dict[str, Any]) -> None:
        try:
            token = self._client.access_token
        except requests.RequestException as exc:
            log.warning("subscribe/send: token fetch failed (%s)", type(exc).__name__)
            raise _Failed(SendResult(Sent.RETRY), wechat_down=True) from None
        except (WeChatClientException, ValueError, KeyError, TypeError) as exc:
            log.warning("subscribe/send: no access token (%s)", type(exc).__name__)
            raise _Failed(SendResult(Sent.RETRY), wechat_down=True) from None
        try:
            try:
                self._post(token, payload)
            except WeChatClientException as exc:
                if errcode_of(exc) not in TOKEN_ERRORS:
                    raise
                log.info("subscribe/send: access token rejected (%s); refreshing", exc.errcode)
                self._client.refresh_access_token(stale=token)
                self._post(self._client.access_token, payload)
        except WeChatClientException as exc:
            raise _map_error(exc) from None
        except requests.RequestException as exc:
            raise _map_request_error(exc) from None
        except (ValueError, KeyError, TypeError) as exc:
            # A token answer that is not JSON or lacks access_token: nothing was sent.
            log.warning("subscribe/send: unreadable token answer (%s)", type(exc).__name__)
            raise _Failed(SendResult(Sent.RETRY), wechat_down=True) from None

    def _post(self, token: str, payload: dict[str, Any]) -> Any:
        return self._client.post(ENDPOINT, params={"access_token": token}, data=payload)


def _map_error(exc: WeChatClientException) -> _Failed:
    errcode = errcode_of(exc)
    if errcode is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        log.warning("subscribe/send: WeChat answered HTTP %s", status)
        # 429 and 503 say the request was not taken; any other status may hide a send.
        outcome = Sent.RETRY if status in (429, 503) else Sent.UNKNOWN
        return _Failed(SendResult(outcome), wechat_down=True)
    match = _RID.search(str(exc.errmsg or ""))
    rid = match.group(1) if match else None
    if errcode in REFUSED_ERRORS:
        log.info("subscribe/send: no grant, WeChat error %s (rid %s)", errcode, rid)
        return _Failed(SendResult(Sent.REFUSED, errcode), wechat_down=False)
    if errcode in CONFIG_ERRORS:
        log.error("subscribe/send: configuration refused, WeChat error %s (rid %s)", errcode, rid)
        return _Failed(SendResult(Sent.CONFIG, errcode), wechat_down=False)
    log.warning("subscribe/send: WeChat error %s (rid %s)", errcode, rid)
    return _Failed(SendResult(Sent.RETRY, errcode), wechat_down=True)


def _map_request_error(exc: requests.RequestException) -> _Failed:
    # str(exc) carries the URL and with it the access token: log the type only.
    log.warning("subscribe/send: request failed (%s)", type(exc).__name__)
    never_sent = isinstance(exc, requests.ConnectTimeout) or (
        isinstance(exc, requests.ConnectionError) and _refused(exc)
    )
    return _Failed(SendResult(Sent.RETRY if never_sent else Sent.UNKNOWN), wechat_down=True)


def _refused(exc: BaseException) -> bool:
    """Whether the connection was never made (so no request went out)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError) or type(cur).__name__ == "NewConnectionError":
            return True
        reason = getattr(cur, "reason", None)
        cur = reason if isinstance(reason, BaseException) else (cur.__cause__ or cur.__context__)
    args = getattr(exc, "args", ())
    return any(_refused(a) for a in args if isinstance(a, BaseException) and a is not exc)
