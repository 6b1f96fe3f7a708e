"""Accessibility basics and layout: every control has a name, nothing overflows sideways
at 1280×720 or 390×844, in both languages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import DESKTOP, PHONE, Console
from tests.console.helpers import Rest, ws_viewer
from tests.e2e.harness import ServerProcess

# Roles a person operates; each must carry a name in the accessibility tree.
_CONTROL = re.compile(
    r"^\s*- (button|textbox|combobox|checkbox|radio|spinbutton|slider|switch|link|searchbox)\b(.*)$"
)


def unnamed_controls(page: Page) -> tuple[list[str], int]:
    """Controls without an accessible name, and how many controls there are."""
    snapshot = page.locator("body").aria_snapshot()
    bad, count = [], 0
    for line in snapshot.splitlines():
        found = _CONTROL.match(line)
        if found:
            count += 1
            if not found.group(2).strip().startswith('"'):
                bad.append(line.strip())
    return bad, count


def overflow(page: Page) -> int:
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def check(console: Console, name: str, least: int) -> None:
    bad, count = unnamed_controls(console.page)
    assert bad == [], bad
    assert count >= least, f"{name}: only {count} controls in the snapshot"
    assert overflow(console.page) <= 0, f"{name} overflows sideways"
    console.shot(name)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280x720", "390x844"])
def test_every_view_is_labelled_and_fits(
    console: Console, operator: Rest, server: ServerProcess, size: dict[str, int]
) -> None:
    page = console.page
    page.set_viewport_size(size)
    tag = f"{size['width']}x{size['height']}"
    for lang in ("zh", "en"):
        console.open()
        # The sign-in forms come after the page has asked the server which it offers
        # (GET /auth/console): wait for the form that answer adds, not for the language
        # select, which is in the page from the start (a check then saw 2 controls).
        expect(page.get_by_role("form", name=re.compile("开发登录|Dev login"))).to_be_visible()
        page.get_by_label(re.compile("界面语言|Language")).select_option(lang)
        expect(page.locator("#lang")).to_have_value(lang)
        check(console, f"login-{lang}-{tag}", 8)
    page.get_by_label("Language").select_option("zh")

    room = operator.ok("POST", "/api/v1/rooms", {"title": "一个名字很长很长的直播间标题" * 3})
    operator.ok("POST", f"/api/v1/rooms/{room['id']}/start")
    console.dev_login("ops")
    expect(page.locator(f'tr[data-room="{room["id"]}"]')).to_contain_text("直播中")
    check(console, f"rooms-{tag}", 6)

    with ws_viewer(server.base, room["id"], server.token("v1", nick="看客")) as viewer:
        viewer.comment("很长的评论" * 6, "a")
        page.goto(f"{server.base}/console#/rooms/{room['id']}")
        expect(page.locator("#stream li")).to_have_count(1)
        expect(page.locator(".chart-box canvas")).to_have_count(1)
        check(console, f"room-zh-{tag}", 15)
        page.get_by_label("界面语言").select_option("en")
        expect(page.get_by_role("heading", name="Held for review")).to_be_visible()
        check(console, f"room-en-{tag}", 15)


def test_the_checks_catch_what_they_look_for(console: Console) -> None:
    console.open()
    page = console.page
    expect(page.get_by_role("button", name="使用令牌")).to_be_visible()
    assert unnamed_controls(page)[0] == []
    page.evaluate("document.body.append(document.createElement('input'))")
    page.evaluate("document.body.append(document.createElement('button'))")
    assert unnamed_controls(page)[0] == ["- textbox", "- button"]
    assert overflow(page) <= 0
    page.evaluate(
        "const d = document.createElement('div'); d.className = 'wide';"
        "d.style.width = '3000px'; d.style.height = '1px'; document.body.append(d)"
    )
    assert overflow(page) > 0


def test_the_policy_is_in_force_and_errors_are_caught(console: Console) -> None:
    console.open()
    page = console.page
    expect(page.get_by_role("button", name="使用令牌")).to_be_visible()
    assert console.errors == []
    # An inline handler, as injected markup would carry: the browser refuses to run it.
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate(
            "document.body.insertAdjacentHTML('beforeend',"
            ' \'<img alt="" src="data:," onerror="window.ran = 1">\')'
        )
    assert page.evaluate("window.ran") is None
    with page.expect_console_message(lambda m: m.text == "from the test"):
        page.evaluate("console.error('from the test')")
    assert any("Content Security Policy" in e for e in console.errors), console.errors
    assert "from the test" in console.unexpected_errors()
    console.errors.clear()
