"""WeChat content security (``msgSecCheck`` v2) as an in-flight second opinion on comments.

``await ContentSecurity.check(openid, text)`` asks WeChat's ``wxa/msg_sec_check`` (v2,
scene 2 = comment) and answers a :class:`SecVerdict` (``pass`` / ``review`` / ``risky``),
or ``None``: "no opinion, the local filter alone decides". ``None`` comes back, quickly,
whenever WeChat can't be asked or doesn't answer well:

- the circuit breaker is open (WeChat failed or timed out ``failures`` times in a row),
- the per-minute budget is spent (WeChat allows 4,000 calls a minute per app),
- the call failed or took longer than ``timeout`` (default 1.5 s, token fetch included).

Each reason is counted in :attr:`ContentSecurity.stats` for the metrics.

wechatpy is synchronous; its calls run on a small thread pool owned by this object, never
on the event loop. The breaker and the budget are touched on the event loop only.

Content longer than :data:`MAX_CONTENT` (2,500, WeChat's limit) is cut to its first
2,500 characters (code points) before it is sent: the check then covers the start of the
text only. Comments are far shorter, so this only guards against oversized input.

Neither the content, the openid nor the access token is ever logged; exception texts from
requests are not logged either (they carry the URL and with it the token).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import requests
from wechatpy.exceptions import WeChatClientException

from interact.floor.breaker import BreakerState, CircuitBreaker, RateBudget
from interact.floor.wechat_client import (
    DEFAULT_API_BASE,
    TOKEN_ERRORS,
    WeChatApiClient,
    errcode_of,
    normalize_api_base,
)

__all__ = ["MAX_CONTENT", "ContentSecurity", "SecStats", "SecVerdict", "Suggest"]

log = logging.getLogger(__name__)

ENDPOINT = "wxa/msg_sec_check"
MAX_CONTENT = 2500
SCENE_COMMENT = 2
# v1's "risky content" error; v2 answers errcode 0 with suggest=risky instead. It carries
# no label: it is reported as 21000 ("other").
ERR_RISKY_V1 = 87014
LABEL_OTHER = 21000
# Errors about this one request (bad openid, empty or malformed content, a user who has
# not opened the mini-program in the last two hours): WeChat itself is healthy, so they
# count as errors but not against the breaker.
_REQUEST_ERRORS = frozenset({40003, 44002, 44004, 47001, 61010})
_RID = re.compile(r"rid:\s*([\w-]+)")


class Suggest(StrEnum):
    PASS = "pass"
    REVIEW = "review"
    RISKY = "risky"


_SUGGESTS = frozenset(Suggest)


@dataclass(frozen=True, slots=True)
class SecVerdict:
    """WeChat's answer: ``suggest``, its ``label`` (100 = normal, 20001.. = categories)."""

    suggest: Suggest
    label: int
    trace_id: str | None = None


@dataclass(slots=True)
class SecStats:
    """Counters since start; ``calls`` = checks sent to WeChat (a token retry is not one).

    Every check ends in exactly one of: a verdict (``passes``, ``reviews``, ``risky``),
    ``errors``, ``timeouts``, ``skipped_open``, ``skipped_budget``, ``skipped_invalid``
    (empty openid or text, nothing sent). ``calls`` = verdicts + errors + timeouts, but
    for checks cancelled by their caller or dropped by :meth:`ContentSecurity.close`.
    """

    calls: int = 0
    passes: int = 0
    reviews: int = 0
    risky: int = 0
    errors: int = 0
    timeouts: int = 0
    skipped_open: int = 0
    skipped_budget: int = 0
    skipped_invalid: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _CheckFailed(Exception):
    """The call ended without a verdict; ``wechat_down`` says whether the breaker hears it."""

    def __init__(self, wechat_down: bool) -> None:
        super().__init__()
        self.wechat_down = wechat_down


class ContentSecurity:
    """WeChat ``msgSecCheck`` v2 behind a circuit breaker and a per-minute budget.

    ``api_base`` is the root of the WeChat API (a fake's base URL in tests). ``timeout``
    bounds a whole check (token fetch and one token retry included) and each HTTP request.
    ``failures`` consecutive failures or timeouts open the breaker for ``cooldown``
    seconds; then one probe at a time goes out until one succeeds. ``per_minute`` is this
    object's share of the app's 4,000 calls a minute (divide it among processes).
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        api_base: str = DEFAULT_API_BASE,
        *,
        timeout: float = 1.5,
        failures: int = 5,
        cooldown: float = 30.0,
        per_minute: int = 4000,
        scene: int = SCENE_COMMENT,
        max_workers: int = 16,
    ) -> None:
        if not appid or not secret:
            raise ValueError("WeChat appid and secret are required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if scene not in (1, 2, 3, 4):
            raise ValueError("scene must be 1 (profile), 2 (comment), 3 (forum) or 4 (log)")
        self.appid = appid
        self.api_base = normalize_api_base(api_base)
        self.timeout = timeout
        self.scene = scene
        self.breaker = CircuitBreaker(failures=failures, cooldown=cooldown)
        self.budget = RateBudget(per_minute)
        self.stats = SecStats()
        self._client = WeChatApiClient(appid, secret, api_base=self.api_base, timeout=timeout)
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="wechat-seccheck"
        )
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"ContentSecurity(appid={self.appid!r}, api_base={self.api_base!r}, "
            f"breaker={self.breaker.state.value})"
        )

    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state

    async def __aenter__(self) -> ContentSecurity:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the worker threads and close the HTTP connections. Idempotent.

        After close, :meth:`check` answers ``None`` without counting.
        """
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def check(self, openid: str, text: str) -> SecVerdict | None:
        """WeChat's verdict on ``text`` written by ``openid``, or ``None`` (no opinion).

        Never raises for WeChat's sake: every failure is ``None`` and a counter.
        """
        stats = self.stats
        if self._closed:
            return None
        if not isinstance(openid, str) or not openid or not isinstance(text, str) or not text:
            stats.skipped_invalid += 1
            return None
        now = time.monotonic()
        # The budget is looked at before the breaker and spent after it: the breaker's
        # allow() may take the half-open probe slot, which must then really go out.
        if self.budget.remaining(now) <= 0:
            stats.skipped_budget += 1
            return None
        if not self.breaker.allow(now):
            stats.skipped_open += 1
            return None
        self.budget.take(now)
        stats.calls += 1
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                verdict = await loop.run_in_executor(
                    self._executor, self._call, openid, text[:MAX_CONTENT]
                )
        except TimeoutError:
            stats.timeouts += 1
            self.breaker.record_failure(time.monotonic())
            log.warning("msg_sec_check: no answer within %.2fs", self.timeout)
            return None
        except _CheckFailed as exc:
            stats.errors += 1
            if exc.wechat_down:
                self.breaker.record_failure(time.monotonic())
            else:
                self.breaker.record_success(time.monotonic())
            return None
        except BaseException:
            # Cancelled, or the pool shut down under us: the outcome is unknown, and a
            # half-open probe slot must not stay taken.
            self.breaker.record_failure(time.monotonic())
            task = asyncio.current_task()
            if self._closed and task is not None and not task.cancelling():
                return None  # close() dropped the queued call; the caller was not cancelled
            raise
        self.breaker.record_success(time.monotonic())
        if verdict.suggest is Suggest.PASS:
            stats.passes += 1
        elif verdict.suggest is Suggest.REVIEW:
            stats.reviews += 1
        else:
            stats.risky += 1
        return verdict

    # --- runs on the worker threads -------------------------------------------------

    def _call(self, openid: str, content: str) -> SecVerdict:
        data = {"version": 2, "openid": openid, "scene": self.scene, "content": content}
        try:
            token = self._client.access_token
            try:
                result = self._post(token, data)
            except WeChatClientException as exc:
                if errcode_of(exc) not in TOKEN_ERRORS:
                    raise
                log.info("msg_sec_check: access token rejected (%s); refreshing", exc.errcode)
                self._client.refresh_access_token(stale=token)
                result = self._post(self._client.access_token, data)
        except WeChatClientException as exc:
            return _map_wechat_error(exc)
        except requests.RequestException as exc:
            # str(exc) carries the URL and with it the access token: log the type only.
            log.warning("msg_sec_check: request failed (%s)", type(exc).__name__)
            raise _CheckFailed(wechat_down=True) from None
        except (ValueError, KeyError, TypeError) as exc:
            # A token answer that is not JSON, or lacks access_token.
            log.warning("msg_sec_check: unreadable token answer (%s)", type(exc).__name__)
            raise _CheckFailed(wechat_down=True) from None
        return _parse_verdict(result)

    def _post(self, token: str, data: dict[str, Any]) -> Any:
        # The token is passed explicitly so a 40001 can name the token it rejected.
        return self._client.post(
            ENDPOINT,
            params={"access_token": token},
            data=data,
            api_base_url=self._client.wxa.API_BASE_URL,
        )


def _map_wechat_error(exc: WeChatClientException) -> SecVerdict:
    errcode = errcode_of(exc)
    if errcode == ERR_RISKY_V1:
        return SecVerdict(Suggest.RISKY, LABEL_OTHER)
    if errcode is None:
        response = getattr(exc, "response", None)
        log.warning(
            "msg_sec_check: WeChat answered HTTP %s", getattr(response, "status_code", None)
        )
        raise _CheckFailed(wechat_down=True) from None
    # errmsg may quote the request; log the request id from it, nothing else.
    match = _RID.search(str(exc.errmsg or ""))
    rid = match.group(1) if match else None
    if errcode in _REQUEST_ERRORS:
        log.info("msg_sec_check: request refused, WeChat error %s (rid %s)", errcode, rid)
        raise _CheckFailed(wechat_down=False) from None
    log.warning("msg_sec_check: WeChat error %s (rid %s)", errcode, rid)
    raise _CheckFailed(wechat_down=True) from None


def _parse_verdict(answer: Any) -> SecVerdict:
    if isinstance(answer, dict):
        result = answer.get("result")
        trace_id = answer.get("trace_id")
        if isinstance(result, dict):
            suggest = result.get("suggest")
            label = result.get("label")
            if (
                isinstance(suggest, str)
                and suggest in _SUGGESTS
                and isinstance(label, int)
                and not isinstance(label, bool)
                and (trace_id is None or isinstance(trace_id, str))
            ):
                return SecVerdict(Suggest(suggest), label, trace_id or None)
    log.warning("msg_sec_check: answer without result.suggest/label")
    raise _CheckFailed(wechat_down=True)
