"""WeChatLogin (wechatpy's code_to_session) against the fake WeChat server."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from interact.floor.errors import (
    BadRequest,
    Code,
    Forbidden,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from interact.wechat_login import WeChatLogin, WeChatSession
from tests.fakes.wechat import FakeWeChat

TOKEN = "/cgi-bin/token"
JSCODE = "/sns/jscode2session"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    async with FakeWeChat() as fake:
        yield fake


@pytest.fixture
async def login(fake: FakeWeChat) -> AsyncIterator[WeChatLogin]:
    assert fake.base_url is not None
    async with WeChatLogin(fake.appid, fake.secret, api_base=fake.base_url, timeout=2.0) as login:
        yield login


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_success_returns_openid_unionid_session_key(
    fake: FakeWeChat, login: WeChatLogin
) -> None:
    code = fake.issue_code(openid="o_alice", unionid="u_alice")

    session = await login.code_to_session(code)

    assert isinstance(session, WeChatSession)
    assert session.openid == "o_alice"
    assert session.unionid == "u_alice"
    assert session.session_key == fake.codes[code].session_key
    assert session.session_key not in repr(session)
    # wechatpy sends the real parameters (and an access token it fetched first).
    sent = next(r for r in fake.requests if r.path == JSCODE).query
    assert sent["appid"] == fake.appid
    assert sent["js_code"] == code
    assert sent["grant_type"] == "authorization_code"
    assert sent["access_token"] == fake.access_token


async def test_unionid_absent_is_none(fake: FakeWeChat, login: WeChatLogin) -> None:
    session = await login.code_to_session(fake.issue_code(unionid=None))
    assert session.unionid is None
    assert session.openid.startswith("o")


async def test_token_fetched_once_across_logins(fake: FakeWeChat, login: WeChatLogin) -> None:
    first = await login.code_to_session(fake.issue_code(openid="o_a"))
    second = await login.code_to_session(fake.issue_code(openid="o_b"))

    assert (first.openid, second.openid) == ("o_a", "o_b")
    assert fake.calls[TOKEN] == 1
    assert fake.calls[JSCODE] == 2
    tokens = {r.query["access_token"] for r in fake.requests if r.path == JSCODE}
    assert tokens == {fake.access_token}


async def test_concurrent_first_logins_fetch_one_token(
    fake: FakeWeChat, login: WeChatLogin
) -> None:
    codes = [fake.issue_code(openid=f"o_{i}") for i in range(6)]
    sessions = await asyncio.gather(*(login.code_to_session(c) for c in codes))
    assert [s.openid for s in sessions] == [f"o_{i}" for i in range(6)]
    assert fake.calls[TOKEN] == 1


async def test_unknown_code_is_unauthorized(login: WeChatLogin) -> None:
    with pytest.raises(Unauthorized) as info:
        await login.code_to_session("0" * 32)
    assert info.value.code == Code.UNAUTHORIZED
    assert info.value.status == 401
    assert info.value.message == "invalid or used login code"


async def test_used_code_is_unauthorized(fake: FakeWeChat, login: WeChatLogin) -> None:
    code = fake.issue_code()
    await login.code_to_session(code)
    with pytest.raises(Unauthorized) as info:
        await login.code_to_session(code)
    assert info.value.code == Code.UNAUTHORIZED
    assert info.value.message == "invalid or used login code"
    assert fake.calls[JSCODE] == 2


async def test_expired_code_is_unauthorized(fake: FakeWeChat, login: WeChatLogin) -> None:
    fake.code_ttl = 0.0
    with pytest.raises(Unauthorized):
        await login.code_to_session(fake.issue_code())


async def test_rate_limit_is_rate_limited(fake: FakeWeChat, login: WeChatLogin) -> None:
    fake.rate_limited = True
    with pytest.raises(RateLimited) as info:
        await login.code_to_session(fake.issue_code())
    assert info.value.code == Code.RATE_LIMITED
    assert info.value.status == 429


async def test_risky_user_is_forbidden(fake: FakeWeChat, login: WeChatLogin) -> None:
    fake.risky_openids.add("o_risky")
    with pytest.raises(Forbidden) as info:
        await login.code_to_session(fake.issue_code(openid="o_risky"))
    assert info.value.code == Code.FORBIDDEN
    assert info.value.status == 403


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        (JSCODE, {"errcode": -1, "errmsg": "system error"}),
        (JSCODE, {"errcode": 40125, "errmsg": "invalid appsecret"}),
        (JSCODE, {"status": 502}),
        (TOKEN, {"errcode": -1, "errmsg": "system error"}),
        (TOKEN, {"status": 500}),
    ],
)
async def test_other_failures_are_unavailable(
    fake: FakeWeChat, login: WeChatLogin, path: str, fault: dict
) -> None:
    fake.fail_next(path, **fault)
    with pytest.raises(Unavailable) as info:
        await login.code_to_session(fake.issue_code())
    assert info.value.code == Code.OVERLOADED
    assert info.value.status == 503
    assert info.value.message == "WeChat login unavailable"


async def test_wrong_secret_is_unavailable(fake: FakeWeChat) -> None:
    assert fake.base_url is not None
    async with WeChatLogin(fake.appid, "wrong-secret", api_base=fake.base_url) as login:
        with pytest.raises(Unavailable):
            await login.code_to_session(fake.issue_code())
    assert fake.calls[TOKEN] == 1
    assert fake.calls[JSCODE] == 0


async def test_slow_wechat_times_out_as_unavailable(fake: FakeWeChat) -> None:
    assert fake.base_url is not None
    fake.fail_next(JSCODE, delay=0.6)
    async with WeChatLogin(fake.appid, fake.secret, api_base=fake.base_url, timeout=0.2) as login:
        with pytest.raises(Unavailable):
            await login.code_to_session(fake.issue_code())


async def test_unreachable_wechat_is_unavailable() -> None:
    base = f"http://127.0.0.1:{closed_port()}/"
    async with WeChatLogin("wx_app", "s3cret-value", api_base=base, timeout=1.0) as login:
        with pytest.raises(Unavailable) as info:
            await login.code_to_session("some-code")
    assert info.value.code == Code.OVERLOADED
    assert info.value.status == 503


async def test_rejected_token_is_refreshed_once(fake: FakeWeChat, login: WeChatLogin) -> None:
    await login.code_to_session(fake.issue_code())
    fake.invalidate_tokens()
    fake.fail_next(JSCODE, errcode=40001, errmsg="invalid credential")
    session = await login.code_to_session(fake.issue_code(openid="o_retry"))
    assert session.openid == "o_retry"
    assert fake.calls[TOKEN] == 2


async def test_persistent_token_errors_do_not_loop(fake: FakeWeChat, login: WeChatLogin) -> None:
    fake.fail_next(JSCODE, errcode=42001, errmsg="access_token expired", times=10)
    with pytest.raises(Unavailable):
        await login.code_to_session(fake.issue_code())
    assert fake.calls[JSCODE] == 2


@pytest.mark.parametrize("code", ["", "x" * 129, None, 12345, b"bytes"])
async def test_bad_code_input_is_bad_request(
    fake: FakeWeChat, login: WeChatLogin, code: object
) -> None:
    with pytest.raises(BadRequest) as info:
        await login.code_to_session(code)  # type: ignore[arg-type]
    assert info.value.code == Code.BAD_REQUEST
    assert info.value.status == 400
    assert sum(fake.calls.values()) == 0


async def test_longest_allowed_code_reaches_wechat(fake: FakeWeChat, login: WeChatLogin) -> None:
    with pytest.raises(Unauthorized):
        await login.code_to_session("x" * 128)
    assert fake.calls[JSCODE] == 1


async def test_secret_and_session_key_never_logged(
    fake: FakeWeChat, login: WeChatLogin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="interact")
    caplog.set_level(logging.DEBUG, logger="wechatpy")
    session = await login.code_to_session(fake.issue_code())
    for fault in ({"errcode": -1}, {"status": 500}):
        fake.fail_next(JSCODE, **fault)
        with pytest.raises(Unavailable):
            await login.code_to_session(fake.issue_code())
    base = f"http://127.0.0.1:{closed_port()}/"
    async with WeChatLogin(fake.appid, fake.secret, api_base=base, timeout=1.0) as down:
        with pytest.raises(Unavailable):
            await down.code_to_session("code")
    ours = [r for r in caplog.records if r.name.startswith(("interact", "wechatpy"))]
    assert ours, "expected some log lines"
    text = "\n".join(r.getMessage() for r in ours)
    assert fake.secret not in text
    assert session.session_key not in text
    assert fake.secret not in repr(login)


async def test_closed_login_is_unavailable(fake: FakeWeChat) -> None:
    assert fake.base_url is not None
    login = WeChatLogin(fake.appid, fake.secret, api_base=fake.base_url)
    await login.close()
    await login.close()
    with pytest.raises(Unavailable):
        await login.code_to_session(fake.issue_code())


async def test_api_base_without_trailing_slash(fake: FakeWeChat) -> None:
    assert fake.base_url is not None
    base = fake.base_url.rstrip("/")
    async with WeChatLogin(fake.appid, fake.secret, api_base=base) as login:
        session = await login.code_to_session(fake.issue_code(openid="o_slash"))
    assert session.openid == "o_slash"


async def test_fake_token_endpoint_checks_credentials(fake: FakeWeChat) -> None:
    async with aiohttp.ClientSession(fake.base_url) as http:
        params = {"grant_type": "client_credential", "appid": fake.appid, "secret": "nope"}
        async with http.get("cgi-bin/token", params=params) as resp:
            assert (await resp.json())["errcode"] == 40125
        params = {"grant_type": "client_credential", "appid": "wx_other", "secret": fake.secret}
        async with http.get("cgi-bin/token", params=params) as resp:
            assert (await resp.json())["errcode"] == 40013
        params = {"grant_type": "client_credential", "appid": fake.appid, "secret": fake.secret}
        async with http.get("cgi-bin/token", params=params) as resp:
            body = await resp.json()
        assert body["expires_in"] == 7200
        assert body["access_token"] == fake.access_token
        async with http.post("_fake/codes", json={"openid": "o_ctl"}) as resp:
            issued = await resp.json()
        assert fake.codes[issued["code"]].openid == "o_ctl"
