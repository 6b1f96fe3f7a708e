"""A fake WeChat API server (aiohttp) that answers like ``api.weixin.qq.com``.

Start it in-process on 127.0.0.1 and an ephemeral port::

    async with FakeWeChat() as fake:  # or: await fake.start() ... await fake.close()
        login = WeChatLogin(fake.appid, fake.secret, api_base=fake.base_url)
        code = fake.issue_code(openid="o_alice", unionid="u_alice")
        ...
        assert fake.calls["/cgi-bin/token"] == 1

or as a separate process (``python -m tests.fakes.wechat --port 8901``), where codes are
issued over HTTP with ``POST /_fake/codes`` (body ``{"openid"?, "unionid"?}``).

Endpoints (answers shaped like the real ones: success has no ``errcode``; errors are
``{"errcode": n, "errmsg": "..., rid: ..."}`` with HTTP 200):

- ``GET /cgi-bin/token`` – access tokens (each fetch issues a new token; the previous ones
  stay valid for five more minutes, as on WeChat).
- ``GET /sns/jscode2session`` – mini-program login; codes from :meth:`FakeWeChat.issue_code`
  work once and expire after ``code_ttl`` seconds.
- ``POST /wxa/msg_sec_check`` – content security v2 (needs an access token; ``version`` 2,
  ``scene`` 1–4, ``openid`` and ``content`` of at most 2,500 chars, else 47001). Content
  containing a key of :attr:`FakeWeChat.sec_rules` gets that suggestion (``risky`` beats
  ``review``), anything else ``pass``; busy or slow answers via :meth:`FakeWeChat.fail_next`.
- ``POST /cgi-bin/message/subscribe/send`` – subscribe messages (needs an access token).
  Templates are declared in :attr:`FakeWeChat.subscribe_templates` (id -> field key ->
  kind: ``thing`` ≤ 20 chars, ``phrase`` ≤ 5, ``character_string`` ≤ 32 ASCII, ``number``,
  ``time``/``date``); grants with :meth:`FakeWeChat.grant_subscribe` (one accept = one
  message). Errors: 40003 bad ``touser``, 40037 unknown template, 41030 a ``page`` not
  in :attr:`FakeWeChat.subscribe_pages`, 47003 bad ``data`` / ``miniprogram_state`` /
  ``lang``, 43101 no grant left. Delivered messages land in
  :attr:`FakeWeChat.subscribe_sent`.

Adding endpoints (content security, WeChat Pay, ...): add a ``(method, path, handler name)``
row to :attr:`FakeWeChat.ROUTES` and a handler method, or call :meth:`FakeWeChat.add_route`
before :meth:`FakeWeChat.start`. Handlers may use :meth:`FakeWeChat.check_access_token`,
:meth:`FakeWeChat.error` and :meth:`FakeWeChat.reply`. Every request is counted in
:attr:`FakeWeChat.calls` and recorded in :attr:`FakeWeChat.requests`; faults (an errcode,
an HTTP status, a delay) can be queued per path with :meth:`FakeWeChat.fail_next`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import secrets
import string
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

__all__ = ["FakeRequest", "FakeWeChat", "Fault", "IssuedCode"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ALNUM = string.ascii_letters + string.digits
_ID_CHARS = _ALNUM + "-_"

JSON = "application/json"
# The real jscode2session answers JSON labelled text/plain.
TEXT_PLAIN = "text/plain"

TOKEN_GRACE = 300.0  # seconds an older access token stays valid after a new one is issued

SEC_MAX_CONTENT = 2500  # msg_sec_check v2 content limit
SEC_LABEL = 20001  # label of a rule given as a bare suggestion
SEC_RANK = {"pass": 0, "review": 1, "risky": 2}

SUB_STATES = ("developer", "trial", "formal")
SUB_LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")
# Subscribe-message value limits per field kind (characters), from WeChat's docs.
SUB_LIMITS = {"thing": 20, "phrase": 5, "character_string": 32, "number": 32, "letter": 32}
SUB_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y年%m月%d日 %H:%M", "%H:%M")
SUB_DATE_FORMATS = ("%Y-%m-%d", "%Y年%m月%d日")


def _parses(value: str, formats: tuple[str, ...]) -> bool:
    for fmt in formats:
        try:
            datetime.datetime.strptime(value, fmt)
        except ValueError:
            continue
        return True
    return False


def _subscribe_data_problem(data: Any, fields: dict[str, str]) -> str | None:
    """Why ``data`` does not fit a template's fields (47003), or None."""
    if not isinstance(data, dict) or set(data) != set(fields):
        return "data keys do not match the template"
    for key, kind in fields.items():
        item = data[key]
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value:
            return f"{key}.value missing"
        limit = SUB_LIMITS.get(kind)
        if limit is not None and len(value) > limit:
            return f"{key}.value too long"
        if kind == "phrase" and not all("\u4e00" <= c <= "\u9fff" for c in value):
            return f"{key}.value must be Chinese characters"
        if kind in ("character_string", "letter") and not value.isascii():
            return f"{key}.value must be ASCII"
        if kind == "number" and not value.replace(".", "", 1).isdigit():
            return f"{key}.value must be a number"
        if kind == "time" and not _parses(value, SUB_TIME_FORMATS):
            return f"{key}.value is not a time"
        if kind == "date" and not _parses(value, SUB_DATE_FORMATS):
            return f"{key}.value is not a date"
    return None


def _random(chars: str, n: int) -> str:
    return "".join(secrets.choice(chars) for _ in range(n))


def _new_openid() -> str:
    return "o" + _random(_ID_CHARS, 27)


class _Auto:
    """Marker: let the fake make up a value."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()


@dataclass(slots=True)
class IssuedCode:
    code: str
    openid: str
    unionid: str | None
    session_key: str
    expires_at: float  # time.monotonic()
    used: bool = False


@dataclass(slots=True)
class FakeRequest:
    method: str
    path: str
    query: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Fault:
    """A canned failure for the next call(s) to a path.

    ``errcode`` answers ``{"errcode", "errmsg"}`` with HTTP 200; ``status`` answers that
    HTTP status with a plain body; ``delay`` (seconds) comes first and alone just slows the
    call down (the normal handler answers after it).
    """

    errcode: int | None = None
    errmsg: str = "system error"
    status: int | None = None
    delay: float = 0.0
    times: int = 1


@dataclass(slots=True)
class _Token:
    expires_at: float


class FakeWeChat:
    """State and routes of the fake; one instance is one server."""

    ROUTES: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("GET", "/cgi-bin/token", "handle_token"),
        ("GET", "/sns/jscode2session", "handle_jscode2session"),
        ("POST", "/wxa/msg_sec_check", "handle_msg_sec_check"),
        ("POST", "/cgi-bin/message/subscribe/send", "handle_subscribe_send"),
        ("POST", "/_fake/codes", "handle_fake_issue_code"),
        ("POST", "/_fake/subscribe/grants", "handle_fake_grant"),
        ("GET", "/_fake/subscribe/sent", "handle_fake_subscribe_sent"),
        ("GET", "/_fake/calls", "handle_fake_calls"),
    )

    def __init__(
        self,
        appid: str = "wx0123456789fake",
        secret: str = "fake-app-secret-0123456789abcdef",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: int = 7200,
        code_ttl: float = 300.0,
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.host = host
        self.port = port
        self.token_ttl = token_ttl
        self.code_ttl = code_ttl

        # switches
        self.rate_limited = False  # jscode2session answers 45011
        self.risky_openids: set[str] = set()  # jscode2session answers 40226 for these
        # msg_sec_check: substring -> "risky" / "review", or (suggest, label)
        self.sec_rules: dict[str, str | tuple[str, int]] = {}

        # subscribe messages: template id -> field key -> kind; valid pages (no query)
        self.subscribe_templates: dict[str, dict[str, str]] = {}
        self.subscribe_pages: set[str] = {"pages/index/index"}

        # state
        self.subscribe_grants: Counter[tuple[str, str]] = Counter()  # (openid, tpl) -> n
        self.subscribe_sent: list[dict[str, Any]] = []
        self.codes: dict[str, IssuedCode] = {}
        self.tokens: dict[str, _Token] = {}
        self.access_token: str | None = None  # the latest one issued
        self.calls: Counter[str] = Counter()  # path -> number of requests
        self.requests: list[FakeRequest] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._extra_routes: list[tuple[str, str, Handler]] = []

        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None

    # --- lifecycle -------------------------------------------------------------------

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve one more endpoint; call before :meth:`start`."""
        if self._runner is not None:
            raise RuntimeError("add routes before start()")
        self._extra_routes.append((method, path, handler))

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        for method, path, name in self.ROUTES:
            app.router.add_route(method, path, getattr(self, name))
        for method, path, handler in self._extra_routes:
            app.router.add_route(method, path, handler)
        return app

    async def start(self) -> str:
        """Listen and return the base URL, with a trailing slash (``http://127.0.0.1:N/``)."""
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
        host, port = runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{host}:{port}/"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeWeChat:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- test controls ---------------------------------------------------------------

    def issue_code(
        self,
        openid: str | None = None,
        unionid: str | None = AUTO,
        *,
        session_key: str | None = None,
    ) -> str:
        """Issue a login code as ``wx.login()`` would; it works once.

        ``openid`` defaults to a new random one; ``unionid`` defaults to a random one and
        ``None`` leaves it out of the answer (an app not bound to an open-platform account).
        """
        code = _random(_ALNUM, 32)
        self.codes[code] = IssuedCode(
            code=code,
            openid=openid or _new_openid(),
            unionid=_new_openid() if unionid is AUTO else unionid,
            session_key=session_key or base64.b64encode(secrets.token_bytes(16)).decode(),
            expires_at=time.monotonic() + self.code_ttl,
        )
        return code

    def fail_next(
        self,
        path: str,
        errcode: int | None = None,
        errmsg: str = "system error",
        *,
        status: int | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a fault for the next ``times`` calls to ``path`` (e.g. ``-1`` system busy)."""
        fault = Fault(errcode=errcode, errmsg=errmsg, status=status, delay=delay, times=times)
        self._faults.setdefault(path, deque()).append(fault)

    def invalidate_tokens(self) -> None:
        """Make every issued access token invalid (answers 40001 from then on)."""
        self.tokens.clear()

    def expire_tokens(self) -> None:
        """Make every issued access token expired (answers 42001 from then on)."""
        for token in self.tokens.values():
            token.expires_at = 0.0

    def grant_subscribe(self, openid: str, template_id: str, times: int = 1) -> None:
        """The user tapped "allow" for the template ``times`` times (one message each)."""
        self.subscribe_grants[(openid, template_id)] += times

    def reset_calls(self) -> None:
        self.calls.clear()
        self.requests.clear()

    # --- helpers for handlers --------------------------------------------------------

    @staticmethod
    def rid() -> str:
        return "-".join(secrets.token_hex(4) for _ in range(3))

    @staticmethod
    def reply(data: Any, *, content_type: str = JSON, status: int = 200) -> web.Response:
        return web.Response(
            body=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(),
            status=status,
            content_type=content_type,
            charset="utf-8",
        )

    def error(self, errcode: int, errmsg: str, *, content_type: str = JSON) -> web.Response:
        """WeChat's error shape; errors come with HTTP 200 and a request id in the text."""
        return self.reply(
            {"errcode": errcode, "errmsg": f"{errmsg}, rid: {self.rid()}"},
            content_type=content_type,
        )

    def check_access_token(self, request: web.Request) -> web.Response | None:
        """The error answer for a missing, unknown or expired ``access_token``, else None."""
        token = request.query.get("access_token")
        if not token:
            return self.error(41001, "access_token missing")
        known = self.tokens.get(token)
        if known is None:
            return self.error(40001, "invalid credential, access_token is invalid or not latest")
        if known.expires_at <= time.monotonic():
            return self.error(42001, "access_token expired")
        return None

    # --- middleware ------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read() if request.can_read_body else b""
        self.calls[request.path] += 1
        self.requests.append(FakeRequest(request.method, request.path, dict(request.query), body))
        queue = self._faults.get(request.path)
        if queue:
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.popleft()
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return web.Response(status=fault.status, text=f"fake fault {fault.status}")
            if fault.errcode is not None:
                return self.error(fault.errcode, fault.errmsg)
        return await handler(request)

    # --- WeChat endpoints ------------------------------------------------------------

    async def handle_token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return self.error(40002, "invalid grant_type")
        if not q.get("appid"):
            return self.error(41002, "appid missing")
        if q["appid"] != self.appid:
            return self.error(40013, "invalid appid")
        if not q.get("secret"):
            return self.error(41004, "appsecret missing")
        if q["secret"] != self.secret:
            return self.error(40125, "invalid appsecret")
        now = time.monotonic()
        for old in self.tokens.values():  # older tokens keep working for five minutes
            old.expires_at = min(old.expires_at, now + TOKEN_GRACE)
        token = _random(_ID_CHARS, 136)
        self.tokens[token] = _Token(expires_at=now + self.token_ttl)
        self.access_token = token
        return self.reply({"access_token": token, "expires_in": self.token_ttl})

    async def handle_jscode2session(self, request: web.Request) -> web.Response:
        # The real endpoint ignores access_token (wechatpy sends one anyway).
        q = request.query

        def fail(errcode: int, errmsg: str) -> web.Response:
            return self.error(errcode, errmsg, content_type=TEXT_PLAIN)

        if self.rate_limited:
            return fail(45011, "api minute-quota reach limit  mustslower  retry next minute")
        if q.get("appid") != self.appid:
            return fail(40013, "invalid appid")
        if q.get("secret") != self.secret:
            return fail(40125, "invalid appsecret")
        if q.get("grant_type") != "authorization_code":
            return fail(40002, "invalid grant_type")
        js_code = q.get("js_code")
        if not js_code:
            return fail(41008, "missing code")
        issued = self.codes.get(js_code)
        if issued is None or issued.expires_at <= time.monotonic():
            return fail(40029, "invalid code")
        if issued.used:
            return fail(40163, "code been used")
        issued.used = True
        if issued.openid in self.risky_openids:
            return fail(40226, "high risk user")
        answer = {"session_key": issued.session_key, "openid": issued.openid}
        if issued.unionid is not None:
            answer["unionid"] = issued.unionid
        return self.reply(answer, content_type=TEXT_PLAIN)

    async def handle_msg_sec_check(self, request: web.Request) -> web.Response:
        refused = self.check_access_token(request)
        if refused is not None:
            return refused
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self.error(47001, "data format error")
        version, scene = data.get("version"), data.get("scene")
        openid, content = data.get("openid"), data.get("content")
        if (
            version != 2
            or type(scene) is not int
            or not 1 <= scene <= 4
            or not isinstance(openid, str)
            or not openid
            or not isinstance(content, str)
            or not content
            or len(content) > SEC_MAX_CONTENT
        ):
            return self.error(47001, "data format error")
        suggest, label, keyword = "pass", 100, None
        for word, rule in self.sec_rules.items():
            if word not in content:
                continue
            rule_suggest, rule_label = rule if isinstance(rule, tuple) else (rule, SEC_LABEL)
            if SEC_RANK[rule_suggest] > SEC_RANK[suggest]:
                suggest, label, keyword = rule_suggest, rule_label, word
        detail: list[dict[str, Any]] = [
            {"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label}
        ]
        if keyword is not None:
            detail.append(
                {
                    "strategy": "keyword",
                    "errcode": 0,
                    "suggest": suggest,
                    "label": label,
                    "level": 90,
                    "keyword": keyword,
                }
            )
        return self.reply(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": {"suggest": suggest, "label": label},
                "detail": detail,
                "trace_id": f"{secrets.token_hex(4)}-{secrets.token_hex(6)}",
            }
        )

    async def handle_subscribe_send(self, request: web.Request) -> web.Response:
        refused = self.check_access_token(request)
        if refused is not None:
            return refused
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self.error(47001, "data format error")
        touser, template_id = data.get("touser"), data.get("template_id")
        if not isinstance(touser, str) or not 1 <= len(touser) <= 64:
            return self.error(40003, "invalid openid")
        fields = self.subscribe_templates.get(template_id) if isinstance(template_id, str) else None
        if fields is None:
            return self.error(40037, "invalid template_id")
        page = data.get("page")
        if page is not None and (
            not isinstance(page, str) or page.partition("?")[0] not in self.subscribe_pages
        ):
            return self.error(41030, "invalid page")
        if data.get("miniprogram_state", "formal") not in SUB_STATES:
            return self.error(47003, "argument invalid! miniprogram_state invalid")
        if data.get("lang", "zh_CN") not in SUB_LANGS:
            return self.error(47003, "argument invalid! lang invalid")
        problem = _subscribe_data_problem(data.get("data"), fields)
        if problem is not None:
            return self.error(47003, f"argument invalid! {problem}")
        if self.subscribe_grants[(touser, template_id)] <= 0:
            return self.error(43101, "user refuse to accept the msg")
        self.subscribe_grants[(touser, template_id)] -= 1
        self.subscribe_sent.append(data)
        return self.reply({"errcode": 0, "errmsg": "ok", "msgid": secrets.randbits(60)})

    # --- control endpoints (for a fake running in another process) ------------------

    async def handle_fake_grant(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self.reply({"error": "body must be a JSON object"}, status=400)
        self.grant_subscribe(data["openid"], data["template_id"], int(data.get("times", 1)))
        return self.reply({"ok": True})

    async def handle_fake_subscribe_sent(self, request: web.Request) -> web.Response:
        return self.reply(self.subscribe_sent)

    async def handle_fake_issue_code(self, request: web.Request) -> web.Response:
        body = await request.read()  # already read (and cached) by the middleware
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self.reply({"error": "body must be a JSON object"}, status=400)
        code = self.issue_code(data.get("openid"), data.get("unionid", AUTO))
        issued = self.codes[code]
        return self.reply(
            {
                "code": code,
                "openid": issued.openid,
                "unionid": issued.unionid,
                "session_key": issued.session_key,
            }
        )

    async def handle_fake_calls(self, request: web.Request) -> web.Response:
        return self.reply(dict(self.calls))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake WeChat API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--appid", default="wx0123456789fake")
    parser.add_argument("--secret", default="fake-app-secret-0123456789abcdef")
    args = parser.parse_args(argv)

    async def serve() -> None:
        async with FakeWeChat(args.appid, args.secret, host=args.host, port=args.port) as fake:
            print(fake.base_url, flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
