"""The operator console: its static files under ``/console`` and its sign-in routes.

The page is plain files shipped inside the package (``interact/console``), read once at
start and served with a strict Content-Security-Policy. It drives the same REST API and
WebSocket as any client (docs/console.md).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
import re
from importlib.resources.abc import Traversable

from aiohttp import web

from interact import tokens
from interact.api.common import body, caller, ctx, field_str, json_response
from interact.api.middleware import error_body
from interact.config import Config
from interact.console_login import MAX_PASSWORD_LEN, ConsoleLogin, load_users
from interact.floor.errors import BadRequest, Code, Unauthorized
from interact.identity import UID_MAX_LEN
from interact.tokens import Role, User

routes = web.RouteTableDef()

LOGIN: web.AppKey[ConsoleLogin] = web.AppKey("console_login", ConsoleLogin)
FILES: web.AppKey[dict[str, tuple[bytes, str, str]]] = web.AppKey("console_files", dict)

# A WebSocket ticket lives long enough to open one connection: the socket URL (where a
# browser must put it) never carries the long-lived token.
TICKET_TTL = 60

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
# A Host header is the client's to choose: only a plain host[:port] goes into the policy.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


def setup(app: web.Application, config: Config) -> None:
    """Serve the console and back its sign-in (called by ``interact.app.build_app``)."""
    app[LOGIN] = ConsoleLogin(load_users(config.console_users_file))
    app[FILES] = _read_files()
    app.router.add_get("/console", _index)
    app.router.add_get("/console/", _index)
    app.router.add_get("/console/{path:.+}", _asset)


def _read_files() -> dict[str, tuple[bytes, str, str]]:
    """Every file of the console by its path under ``/console/``: bytes, type, ETag."""
    found: dict[str, tuple[bytes, str, str]] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            name = prefix + child.name
            if child.is_dir():
                walk(child, name + "/")
                continue
            kind = _TYPES.get("." + child.name.rpartition(".")[2])
            if kind is None:
                continue
            data = child.read_bytes()
            found[name] = (data, kind, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')

    walk(importlib.resources.files("interact") / "console", "")
    return found


def security_headers(request: web.Request) -> dict[str, str]:
    host = request.headers.get("Host", "")
    sockets = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'{sockets}; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'; object-src 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        # Revalidated every time (cheap with the ETag): an upgrade shows at the next load.
        "Cache-Control": "no-cache",
    }


def _serve(request: web.Request, name: str) -> web.Response:
    found = request.app[FILES].get(name)
    if found is None:
        raise web.HTTPNotFound()
    data, kind, etag = found
    headers = {**security_headers(request), "ETag": etag}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers={**headers, "Content-Type": kind})


async def _index(request: web.Request) -> web.Response:
    return _serve(request, "index.html")


async def _asset(request: web.Request) -> web.Response:
    return _serve(request, request.match_info["path"])


@routes.get("/auth/console")
async def console_options(request: web.Request) -> web.Response:
    """What the sign-in page offers: dev login, password sign-in."""
    return json_response(
        {
            "dev_login": ctx(request).config.dev_login_enabled,
            "password_login": bool(request.app[LOGIN].accounts),
        }
    )


@routes.post("/auth/console")
async def console_login(request: web.Request) -> web.Response:
    login = request.app[LOGIN]
    data = await body(request, max_bytes=4096)
    username = field_str(data, "username", max_len=UID_MAX_LEN) or ""
    password = field_str(data, "password", max_len=MAX_PASSWORD_LEN) or ""
    if not username or not password:
        raise BadRequest("'username' and 'password' must not be empty")
    address = request.remote or ""
    wait = login.retry_after(address, username)
    if wait > 0:
        return _too_many(math.ceil(wait), wait)
    account = await login.check(address, username, password)
    if account is None:
        raise Unauthorized("wrong username or password")
    cfg = ctx(request).config
    user = User(uid=account.username, nick=account.username[:32], role=account.role)
    token = tokens.issue(cfg.secret, user, cfg.token_ttl)
    return json_response({"token": token, "user": user.to_dict()})


def _too_many(seconds: int, wait: float) -> web.Response:
    response = json_response(
        error_body(
            Code.RATE_LIMITED.value,
            f"too many sign-in attempts; try again in {seconds} s",
            retry_after_ms=math.ceil(wait * 1000),
        ),
        429,
    )
    response.headers["Retry-After"] = str(seconds)
    return response


@routes.post("/auth/ticket")
async def ticket(request: web.Request) -> web.Response:
    """A one-minute token for the caller, to open a WebSocket with (its URL is logged by
    proxies; the long-lived token stays in the Authorization header)."""
    user = caller(request, Role.OPERATOR, Role.ANCHOR)
    cfg = ctx(request).config
    token = tokens.issue(cfg.secret, user, TICKET_TTL)
    return json_response({"ticket": token, "expires_in": TICKET_TTL})
