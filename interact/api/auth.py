"""``/auth``: tokens for dev logins and WeChat mini-program logins."""

from __future__ import annotations

import re

from aiohttp import web

from interact import tokens
from interact.api.common import body, ctx, field_str, json_response
from interact.floor.errors import BadRequest, Forbidden, Unavailable
from interact.identity import NICK_MAX_LEN, UID_MAX_LEN, UID_RULE, nick_problem, valid_uid
from interact.tokens import Role, User

routes = web.RouteTableDef()

# For callers that ``.match`` a uid (interact.api.moderation): anchored at both ends with
# \Z, which, unlike $, lets no trailing newline through. New code: identity.valid_uid.
UID_RE = re.compile(rf"[A-Za-z0-9_.:@-]{{1,{UID_MAX_LEN}}}\Z")


def _nick(data: dict[str, object]) -> str | None:
    """The client's nick, trimmed and checked (``interact.identity``), or None."""
    # Read with room for surrounding spaces: they are trimmed, not counted.
    raw = field_str(data, "nick", required=False, max_len=4 * NICK_MAX_LEN)
    if not raw:
        return None  # absent or "": the default nick
    nick = raw.strip()
    problem = nick_problem(nick)
    if problem is not None:
        raise BadRequest(f"'nick' {problem}")
    return nick


def _token_answer(request: web.Request, user: User, **extra: object) -> web.Response:
    cfg = ctx(request).config
    token = tokens.issue(cfg.secret, user, cfg.token_ttl)
    return json_response({"token": token, "user": user.to_dict(), **extra})


@routes.post("/auth/dev")
async def dev_login(request: web.Request) -> web.Response:
    if not ctx(request).config.dev_login_enabled:
        raise Forbidden("dev login is off")
    data = await body(request)
    uid = field_str(data, "uid", max_len=UID_MAX_LEN) or ""
    if not valid_uid(uid):
        raise BadRequest(f"'uid' must be {UID_RULE}")
    nick = _nick(data) or uid[:NICK_MAX_LEN]
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
    nick = _nick(data)
    session = await wechat.code_to_session(code)
    # The openid is the stable per-app identity; session_key never leaves the server.
    user = User(uid=session.openid, nick=nick or "微信用户", role=Role.VIEWER)
    return _token_answer(request, user, unionid=session.unionid)
