"""``/auth``: tokens for dev logins and WeChat mini-program logins."""

from __future__ import annotations

import re

from aiohttp import web

from interact import tokens
from interact.api.common import body, ctx, field_str, json_response
from interact.errors import BadRequest, Forbidden, Unavailable
from interact.tokens import Role, User

routes = web.RouteTableDef()

UID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
MAX_NICK_LEN = 32


def _token_answer(request: web.Request, user: User, **extra: object) -> web.Response:
    cfg = ctx(request).config
    token = tokens.issue(cfg.secret, user, cfg.token_ttl)
    return json_response({"token": token, "user": user.to_dict(), **extra})


@routes.post("/auth/dev")
async def dev_login(request: web.Request) -> web.Response:
    if not ctx(request).config.dev_login_enabled:
        raise Forbidden("dev login is off")
    data = await body(request)
    uid = field_str(data, "uid", max_len=64) or ""
    if not UID_RE.match(uid):
        raise BadRequest("'uid' must be 1-64 letters, digits or _.:@-")
    nick = field_str(data, "nick", required=False, max_len=MAX_NICK_LEN) or uid
    try:
        role = Role(field_str(data, "role", required=False, max_len=16) or "viewer")
    except ValueError:
        raise BadRequest("'role' must be viewer, anchor or operator") from None
    return _token_answer(request, User(uid=uid, nick=nick, role=role))


@routes.post("/auth/wechat")
async def wechat_login(request: web.Request) -> web.Response:
    wechat = ctx(request).wechat
    if wechat is None:
        raise Unavailable("WeChat login is not configured")
    data = await body(request)
    code = field_str(data, "code", max_len=128) or ""
    nick = field_str(data, "nick", required=False, max_len=MAX_NICK_LEN) or ""
    session = await wechat.code_to_session(code)
    # The openid is the stable per-app identity; session_key never leaves the server.
    user = User(uid=session.openid, nick=nick or "微信用户", role=Role.VIEWER)
    return _token_answer(request, user, unionid=session.unionid)
