"""WeChat mini-program login: ``wx.login()`` code → ``jscode2session`` → openid.

The call goes through wechatpy (``client.wxa.code_to_session``). wechatpy 1.8 is
synchronous (requests), so every call runs on a small thread pool owned by
:class:`WeChatLogin`, never on the event loop.

Pointing wechatpy somewhere else than ``api.weixin.qq.com`` (a local fake in tests) needs
three things: the mini-program group's own ``client.wxa.API_BASE_URL``, the client's
``API_BASE_URL`` (cgi-bin), and ``fetch_access_token``, which wechatpy hard-codes to the
real host. wechatpy appends an access token to every call, ``jscode2session`` included,
so the first login fetches one; it is cached in memory and reused until a minute before
it expires.

Neither the app secret nor a ``session_key`` is ever logged; exception texts from
requests are not logged either, because they carry the full URL (secret included).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from wechatpy.exceptions import WeChatClientException

from interact.floor.errors import (
    BadRequest,
    Forbidden,
    InteractError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from interact.floor.wechat_client import (
    DEFAULT_API_BASE,
    TOKEN_ERRORS,
    WeChatApiClient,
    errcode_of,
    normalize_api_base,
)
from interact.identity import valid_uid

__all__ = ["DEFAULT_API_BASE", "MAX_CODE_LENGTH", "WeChatLogin", "WeChatSession"]

log = logging.getLogger(__name__)

MAX_CODE_LENGTH = 128

# WeChat error codes this module tells apart.
ERR_INVALID_CODE = 40029
ERR_CODE_USED = 40163
ERR_RATE_LIMITED = 45011
ERR_RISKY_USER = 40226


@dataclass(frozen=True, slots=True)
class WeChatSession:
    """The answer of ``jscode2session``. ``session_key`` stays out of ``repr``."""

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None


class WeChatLogin:
    """Exchanges mini-program login codes for a :class:`WeChatSession`.

    ``api_base`` is the root of the WeChat API with a trailing slash (a fake's base URL in
    tests). ``timeout`` bounds each HTTP request (connect and read); a whole login, token
    fetch and a retry included, is bounded by ``3 * timeout``.
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 5.0,
        *,
        max_workers: int = 8,
    ) -> None:
        if not appid or not secret:
            raise ValueError("WeChat appid and secret are required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        api_base = normalize_api_base(api_base)
        self.appid = appid
        self.api_base = api_base
        self.timeout = timeout
        self._client = WeChatApiClient(appid, secret, api_base=api_base, timeout=timeout)
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="wechat-login"
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"WeChatLogin(appid={self.appid!r}, api_base={self.api_base!r})"

    async def __aenter__(self) -> WeChatLogin:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the worker threads and close the HTTP connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def code_to_session(self, code: str) -> WeChatSession:
        """Exchange a ``wx.login()`` code; each code works once.

        Raises :class:`BadRequest` for a malformed code, :class:`Unauthorized` for an
        invalid or used one, :class:`RateLimited`, :class:`Forbidden` for a user WeChat
        flags as risky, and :class:`Unavailable` when WeChat can't be reached or answers
        anything else.
        """
        if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH:
            raise BadRequest(f"code must be a non-empty string of at most {MAX_CODE_LENGTH} chars")
        if self._closed:
            raise Unavailable("WeChat login unavailable")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(3 * self.timeout):
                result = await loop.run_in_executor(self._executor, self._exchange, code)
        except TimeoutError:
            log.warning("jscode2session: no answer within %.1fs", 3 * self.timeout)
            raise Unavailable("WeChat login unavailable") from None
        return _parse_session(result)

    # --- runs on the worker threads -------------------------------------------------

    def _exchange(self, code: str) -> Any:
        try:
            try:
                return self._client.wxa.code_to_session(code)
            except WeChatClientException as exc:
                if exc.errcode not in TOKEN_ERRORS:
                    raise
                log.info("jscode2session: access token rejected (%s); refreshing", exc.errcode)
                self._client.refresh_access_token()
                return self._client.wxa.code_to_session(code)
        except WeChatClientException as exc:
            raise _map_wechat_error(exc) from None
        except requests.RequestException as exc:
            # str(exc) carries the URL and with it the secret: log the type only.
            log.warning("jscode2session: request failed (%s)", type(exc).__name__)
            raise Unavailable("WeChat login unavailable") from None
        except (ValueError, KeyError, TypeError) as exc:
            # A token answer that is not JSON, or lacks access_token.
            log.warning("jscode2session: unreadable answer (%s)", type(exc).__name__)
            raise Unavailable("WeChat login unavailable") from None


def _map_wechat_error(exc: WeChatClientException) -> InteractError:
    errcode = errcode_of(exc)
    if errcode in (ERR_INVALID_CODE, ERR_CODE_USED):
        return Unauthorized("invalid or used login code")
    if errcode == ERR_RATE_LIMITED:
        log.warning("jscode2session: WeChat rate limit (45011)")
        return RateLimited("WeChat login is rate limited, try again shortly")
    if errcode == ERR_RISKY_USER:
        return Forbidden("WeChat refused the login of this account (risky user)")
    if errcode is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        log.warning("jscode2session: WeChat answered HTTP %s", status)
    else:
        # errmsg is WeChat's text ("invalid appsecret, rid: ..."), never the secret itself.
        log.error("jscode2session: WeChat error %s: %s", errcode, exc.errmsg)
    return Unavailable("WeChat login unavailable")


def _parse_session(result: Any) -> WeChatSession:
    if isinstance(result, dict):
        openid = result.get("openid")
        session_key = result.get("session_key")
        unionid = result.get("unionid")
        if (
            # The openid becomes the uid: one that breaks the uid rule would make a token
            # that verification refuses (interact.identity).
            valid_uid(openid)
            and isinstance(session_key, str)
            and session_key
            and (unionid is None or isinstance(unionid, str))
        ):
            return WeChatSession(openid=openid, session_key=session_key, unionid=unionid or None)
    log.warning("jscode2session: answer without openid/session_key")
    raise Unavailable("WeChat login unavailable")
