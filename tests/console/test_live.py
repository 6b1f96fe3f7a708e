"""The live room view: numbers, chart, comment stream, review queue, notices, slow mode,
mutes, each against a viewer connected over a real WebSocket."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.console.conftest import Console, console_on
from tests.console.helpers import Rest, WsViewer, ws_viewer
from tests.e2e.harness import ServerProcess, start_server

# In the shipped word list with the action "review" (moderation/words.txt).
REVIEW_WORD = "兼职日结"


def open_room(console: Console, operator: Rest, title: str) -> dict:  # type: ignore[type-arg]
    room = operator.ok("POST", "/api/v1/rooms", {"title": title})
    operator.ok("POST", f"/api/v1/rooms/{room['id']}/start")
    console.dev_login("ops")
    console.page.get_by_role("link", name=f"进入直播间 {title}").click()
    expect(console.page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    expect(console.page.locator(".socket-state")).to_have_text("实时连接正常")
    return room


def comment_row(console: Console, text: str):  # type: ignore[no-untyped-def]
    return console.page.locator("#stream li", has_text=text)


def test_comments_appear_and_a_retract_reaches_the_viewer(
    console: Console, operator: Rest, server: ServerProcess
) -> None:
    page = console.page
    room = open_room(console, operator, "评论直播间")
    with (
        ws_viewer(server.base, room["id"], server.token("v1", nick="小明")) as viewer,
        ws_viewer(server.base, room["id"], server.token("v2", nick="小红")),
    ):
        # Two viewers; the console's own connection is staff's and not counted
        # (docs/analytics.md), nor is it a unique viewer.
        expect(page.locator("#stat-online")).to_have_text("2")
        expect(page.locator("#stat-uv")).to_have_text("2")
        acks = [
            viewer.comment(text, f"c{i}") for i, text in enumerate(["第一条", "第二条", "第三条"])
        ]
        assert all(a["ok"] for a in acks), acks
        for text in ("第一条", "第二条", "第三条"):
            expect(comment_row(console, text)).to_contain_text("小明")
        # The chart counts comments from their numbering, one point a second.
        expect(page.locator(".chart-summary")).to_have_attribute("data-comments", "3")
        expect(page.locator(".chart-box canvas")).to_have_count(1)
        expect(page.locator("#stat-peak")).to_have_text("2")
        expect(page.locator("#stat-comments")).to_have_text("3")
        console.shot("room")

        second = acks[1]["seq"]
        page.get_by_role("button", name="撤回 小明 的评论：第二条").click()
        expect(comment_row(console, "第二条")).to_have_count(0)
        assert viewer.wait_for(lambda m: m["t"] == "retract")["seq"] == second
        expect(page.locator("#message")).to_have_text(re.compile(f"已撤回第 {second} 条评论"))
        expect(comment_row(console, "第一条")).to_have_count(1)
        # A retract made elsewhere (the API) leaves this screen too.
        operator.ok("DELETE", f"/api/v1/rooms/{room['id']}/messages/{acks[0]['seq']}")
        expect(comment_row(console, "第一条")).to_have_count(0)
        expect(comment_row(console, "第三条")).to_have_count(1)


def held(viewer: WsViewer, text: str, ref: str) -> None:
    ack = viewer.comment(text, ref)
    assert ack.get("held") is True and "seq" not in ack, ack


def test_held_comments_are_released_or_dropped_once(
    console: Console, operator: Rest, server: ServerProcess
) -> None:
    console.expected_statuses.add(409)
    page = console.page
    room = open_room(console, operator, "审核直播间")
    queue = page.locator("#review-list")
    with ws_viewer(server.base, room["id"], server.token("s1", nick="小红")) as viewer:
        held(viewer, f"{REVIEW_WORD}私聊我", "h1")
        held(viewer, f"{REVIEW_WORD}加我", "h2")
        held(viewer, f"{REVIEW_WORD}第三条", "h3")
        for text in ("私聊我", "加我", "第三条"):
            expect(queue.locator("li", has_text=text)).to_have_count(1)
        expect(queue).to_contain_text(f"命中规则：{REVIEW_WORD}")
        console.shot("review")

        page.get_by_role("button", name=f"放行 s1 的评论：{REVIEW_WORD}私聊我").click()
        expect(page.locator("#message")).to_have_text(re.compile(r"已放行，评论编号 \d+"))
        released = viewer.wait_for(lambda m: m["t"] == "dm")
        assert released["text"] == f"{REVIEW_WORD}私聊我" and released["uid"] == "s1"
        expect(comment_row(console, "私聊我")).to_have_count(1)
        expect(queue.locator("li", has_text="私聊我")).to_have_count(0)

        page.get_by_role("button", name=f"丢弃 s1 的评论：{REVIEW_WORD}加我").click()
        expect(queue.locator("li", has_text="加我")).to_have_count(0)
        expect(page.locator("#message")).to_have_text(re.compile("已丢弃"))

        # Handled elsewhere while this screen still shows it: the API's 409, shown as such.
        items = operator.ok("GET", f"/api/v1/rooms/{room['id']}/moderation/review")["items"]
        assert [i["comment"]["text"] for i in items] == [f"{REVIEW_WORD}第三条"]
        operator.ok("POST", f"/api/v1/rooms/{room['id']}/moderation/review/{items[0]['id']}/drop")
        page.get_by_role("button", name=f"放行 s1 的评论：{REVIEW_WORD}第三条").click()
        expect(page.locator("#message")).to_contain_text(
            "操作冲突（409）：that comment was already released or dropped, or never held"
        )
        expect(queue).to_contain_text("没有待审核的评论")

        # Nothing dropped ever reaches the viewer: a later comment comes, the dropped ones not.
        operator.ok("POST", f"/api/v1/rooms/{room['id']}/messages", {"text": "标记"})
        viewer.wait_for(lambda m: m["t"] == "dm" and m["text"] == "标记")
        texts = [m["text"] for m in viewer.seen if m["t"] == "dm"]
        assert texts == [f"{REVIEW_WORD}私聊我", "标记"]
        # The moderation log shows what was done.
        expect(page.locator("#log-list")).to_contain_text("s1")


def test_notice_slow_mode_and_mutes(
    console: Console, operator: Rest, server: ServerProcess
) -> None:
    page = console.page
    room = open_room(console, operator, "管理直播间")
    with ws_viewer(server.base, room["id"], server.token("t1", nick="troll")) as viewer:
        notice = page.get_by_role("region", name="公告")
        notice.get_by_label("公告内容").fill("抽奖马上开始")
        notice.get_by_label("级别").select_option("warn")
        notice.get_by_role("button", name="发送公告").click()
        got = viewer.wait_for(lambda m: m["t"] == "notice")
        assert (got["text"], got["level"]) == ("抽奖马上开始", "warn")
        expect(notice).to_contain_text("公告：抽奖马上开始")

        slow = page.get_by_role("region", name="慢速模式")
        slow.get_by_label("每人发言间隔（秒，0 为关闭）").fill("30")
        slow.get_by_role("button", name="设置").click()
        expect(slow).to_contain_text("当前：30 s")
        assert viewer.comment("一", "s1")["ok"] is True
        refused = viewer.comment("二", "s2")
        assert (refused["ok"], refused["code"], refused["rule"]) == (
            False,
            "rate_limited",
            "slow_mode",
        )
        slow.get_by_role("button", name="关闭慢速模式").click()
        expect(slow).to_contain_text("当前：关闭")
        assert viewer.comment("三", "s3")["ok"] is True

        # Mute from the comment: the uid is filled in, the duration chosen.
        page.get_by_role("button", name="禁言 troll").first.click()
        mutes = page.get_by_role("region", name="禁言")
        expect(mutes.get_by_label("用户 ID")).to_have_value("t1")
        mutes.get_by_label("时长").select_option("3600")
        mutes.get_by_label("原因（可选）").fill("刷屏")
        mutes.get_by_role("button", name="禁言", exact=True).click()
        expect(page.locator("#message")).to_have_text(re.compile("已禁言 t1"))
        expect(mutes.locator("#mute-list li", has_text="t1")).to_contain_text("刷屏")
        answer = viewer.comment("四", "s4")
        assert (answer["ok"], answer["code"]) == (False, "muted")
        assert 3_590_000 < answer["remaining_ms"] <= 3_600_000
        expect(page.locator("#log-list")).to_contain_text("禁言")
        console.shot("moderation")

        mutes.get_by_role("button", name="解除 t1 的禁言").click()
        expect(mutes).to_contain_text("没有禁言中的用户")
        assert viewer.comment("五", "s5")["ok"] is True


def test_a_staff_alert_shows_as_a_banner(browser: Browser, shots: Path, tmp_path: Path) -> None:
    # A server of its own whose room breaker trips after four comments.
    server = start_server(
        tmp_path,
        env={"INTERACT_BREAKER_MIN_COMMENTS": "4", "INTERACT_ESCALATE_AFTER": "100"},
    )
    try:
        operator = Rest(server.base, server.token("ops", "operator"))
        with console_on(browser, server.base, shots) as console:
            room = open_room(console, operator, "熔断直播间")
            with ws_viewer(server.base, room["id"], server.token("v1")) as viewer:
                for n in range(3):
                    assert viewer.comment(f"你好{n}", f"ok{n}")["ok"] is True
                refused = viewer.comment("加微信abc123", "bad")
                assert (refused["ok"], refused["code"]) == (False, "rejected")
                banner = console.page.locator("#alerts [role=alert]")
                expect(banner).to_contain_text(
                    "提醒：25% of comments were refused in the last 30 s: slow mode 10 s is on"
                )
                console.shot("alert")
                banner.get_by_role("button", name="关闭提醒").click()
                expect(banner).to_have_count(0)
                # Staff alerts are for staff: the viewer never gets one.
                operator.ok("POST", f"/api/v1/rooms/{room['id']}/notices", {"text": "后来"})
                viewer.wait_for(lambda m: m["t"] == "notice")
                assert [m["text"] for m in viewer.seen if m["t"] == "notice"] == ["后来"]
    finally:
        assert server.stop() == 0, server.log()
