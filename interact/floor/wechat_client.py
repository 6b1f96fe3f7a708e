"""wechatpy's client, pointed at a configurable WeChat API base, for use off the event loop.

wechatpy 1.8 is synchronous (requests): callers run its calls on a thread pool of their
own. Pointing it somewhere else than ``api.weixin.qq.com`` (a local fake in tests) takes
three things: the client's ``API_BASE_URL`` (cgi-bin), the mini-program group's own
``client.wxa.API_BASE_URL``, and ``fetch_access_token``, which wechatpy hard-codes to the
real host. :class:`WeChatApiClient` does all three, gives the token fetch a timeout, and
fetches one token at a time.

Exception texts from requests carry the full URL (app secret or access token included):
log their type only.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

__all__ = [
    "DEFAULT_API_BASE",
    "TOKEN_ERRORS",
    "TimeoutSession",
    "WeChatApiClient",
    "errcode_of",
    "normalize_api_base",
]

DEFAULT_API_BASE = "https://api.weixin.qq.com/"
# Access-token errors (invalid, not latest, expired): fetch a fresh token and retry once.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})


def normalize_api_base(api_base: str) -> str:
    """The API root with exactly the trailing slash wechatpy's URL joining expects."""
    return api_base if api_base.endswith("/") else api_base + "/"


def errcode_of(exc: WeChatClientException) -> int | None:
    """WeChat's errcode as an int; None for an HTTP error status, -1 when unreadable."""
    try:
        return None if exc.errcode is None else int(exc.errcode)
    except (TypeError, ValueError):
        return -1


class TimeoutSession(requests.Session):
    """A requests session with a default timeout.

    wechatpy passes its timeout to API calls but not to the token fetch, which would
    otherwise wait forever on a silent server.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)


class WeChatApiClient(WeChatClient):
    """wechatpy's client, with every URL under ``api_base`` and a thread-safe token.

    ``api_base`` is the API root with a trailing slash; ``timeout`` bounds each HTTP
    request, the token fetch included. wechatpy's own retry on token errors is off (it
    recurses for as long as the server answers 40001): callers retry once, after
    :meth:`refresh_access_token`.
    """

    def __init__(self, appid: str, secret: str, *, api_base: str, timeout: float) -> None:
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        api_base = normalize_api_base(api_base)
        self._api_base = api_base
        self._token_lock = threading.Lock()
        self._http.close()
        self._http = TimeoutSession(timeout)
        self.API_BASE_URL = api_base + "cgi-bin/"
        self.wxa.API_BASE_URL = api_base

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(
            url=self._api_base + "cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
            },
        )

    @property
    def access_token(self) -> str:
        # One fetch at a time: concurrent first calls must not each fetch a token
        # (every fetch starts to invalidate the previous token on WeChat's side).
        with self._token_lock:
            return super().access_token

    def refresh_access_token(self, stale: str | None = None) -> None:
        """Fetch a new token; with ``stale``, only if that is still the cached one.

        Passing the token a call was rejected with lets many concurrent callers that saw
        the same 40001 share one fetch instead of each invalidating the last one's token.
        """
        with self._token_lock:
            if stale is None or self.session.get(self.access_token_key) == stale:
                self.fetch_access_token()

    def close(self) -> None:
        self._http.close()
