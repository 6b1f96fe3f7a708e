"""Signing in to the console: a password account, the dev login, a pasted token."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.console.conftest import PASSWORD, Console
from tests.e2e.harness import ServerProcess


def password_form(console: Console):  # type: ignore[no-untyped-def]
    return console.page.get_by_role("form", name=re.compile("账号密码登录|Sign in with a password"))


def test_password_sign_in_and_out(console: Console) -> None:
    page = console.page
    requests: list[tuple[str, str | None]] = []
    page.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))
    console.open()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    console.shot("login")
    form = password_form(console)
    form.get_by_label("用户名").fill("boss")
    form.get_by_label("密码").fill(PASSWORD)
    form.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="直播间", exact=True)).to_be_visible()
    expect(page.locator("#who")).to_have_text("boss（运营）")
    token = page.evaluate("sessionStorage.getItem('interact.console.token')")
    assert token and token.count(".") == 2
    # The token is never in a URL; the API calls carry it as a bearer header.
    page.get_by_role("button", name="刷新").click()
    expect(page.get_by_role("button", name="刷新")).to_be_enabled()
    assert token not in page.url
    assert all(token not in url for url, _ in requests)
    api_calls = [(u, a) for u, a in requests if "/api/v1/rooms" in u]
    assert api_calls and all(a == f"Bearer {token}" for _, a in api_calls)
    page.get_by_role("button", name="退出登录").click()
    expect(password_form(console)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('interact.console.token')") is None


def test_wrong_password_shows_the_refusal(console: Console) -> None:
    console.expected_statuses.add(401)
    console.open()
    form = password_form(console)
    form.get_by_label("用户名").fill("boss")
    form.get_by_label("密码").fill("not the password")
    form.get_by_role("button", name="登录").click()
    expect(console.page.locator("#message")).to_contain_text(
        "未登录或登录已失效（401）：wrong username or password"
    )
    assert console.page.evaluate("sessionStorage.getItem('interact.console.token')") is None


def test_pasted_tokens(console: Console, server: ServerProcess) -> None:
    page = console.page
    console.open()
    form = page.get_by_role("form", name="使用令牌")
    form.get_by_label("令牌").fill(server.token("v1", "viewer"))
    form.get_by_role("button", name="使用令牌").click()
    expect(page.locator("#message")).to_contain_text("观众令牌不能登录控制台")
    form.get_by_label("令牌").fill("not-a-token")
    form.get_by_role("button", name="使用令牌").click()
    expect(page.locator("#message")).to_contain_text("这不是有效的令牌")
    form.get_by_label("令牌").fill(server.token("a9", "anchor", nick="主播九"))
    form.get_by_role("button", name="使用令牌").click()
    expect(page.locator("#who")).to_have_text("主播九（主播）")


def test_a_forged_token_is_refused_by_the_server(console: Console, server: ServerProcess) -> None:
    console.expected_statuses.add(401)
    console.open()
    forged = server.token("ops", "operator")[:-4] + "AAAA"
    form = console.page.get_by_role("form", name="使用令牌")
    form.get_by_label("令牌").fill(forged)
    form.get_by_role("button", name="使用令牌").click()
    expect(console.page.locator("#message")).to_contain_text("（401）：invalid token")
    assert console.page.evaluate("sessionStorage.getItem('interact.console.token')") is None


def test_language_switch_in_the_header(console: Console) -> None:
    page = console.page
    console.dev_login("ops")
    page.get_by_label("界面语言").select_option("en")
    expect(page.get_by_role("heading", name="Rooms", exact=True)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#who")).to_have_text("ops (operator)")
    page.reload()
    expect(page.get_by_role("button", name="Create room")).to_be_visible()
    page.get_by_label("Language").select_option("zh")
    expect(page.get_by_role("button", name="创建直播间")).to_be_visible()


def test_console_is_served_with_a_strict_policy(server: ServerProcess) -> None:
    for path in ("/console", "/console/", "/console/app.js", "/console/vendor/uplot/uPlot.min.css"):
        r = httpx.get(server.base + path)
        assert r.status_code == 200, path
        policy = r.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy
        assert f"connect-src 'self' ws://127.0.0.1:{server.port}" in policy
        assert "frame-ancestors 'none'" in policy
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert (
        httpx.get(server.base + "/console/app.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    again = httpx.get(
        server.base + "/console/app.js",
        headers={"If-None-Match": httpx.get(server.base + "/console/app.js").headers["etag"]},
    )
    assert again.status_code == 304
    for bad in ("/console/nope.js", "/console/../interact/config.py", "/console/%2e%2e/app.py"):
        assert httpx.get(server.base + bad).status_code == 404, bad
    # A Host header that is not a plain host stays out of the policy.
    odd = httpx.get(server.base + "/console", headers={"Host": "evil; script-src *"})
    assert odd.headers["content-security-policy"].count("script-src") == 1
    assert "connect-src 'self';" in odd.headers["content-security-policy"]
