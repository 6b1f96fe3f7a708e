"""Operator-only tools in the console: a ban (with its duration) that closes the viewer,
and the word list edited and enforced."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.console.conftest import Console
from tests.console.helpers import Rest, ws_viewer
from tests.console.test_live import open_room
from tests.e2e.harness import ServerProcess


def test_a_ban_closes_the_viewer_and_is_lifted(
    console: Console, operator: Rest, server: ServerProcess
) -> None:
    page = console.page
    room = open_room(console, operator, "封禁直播间")
    with ws_viewer(server.base, room["id"], server.token("bad1", nick="骗子")) as viewer:
        assert viewer.comment("你好", "c1")["ok"] is True
        expect(page.locator("#stream li", has_text="你好")).to_have_count(1)
        # From the comment: the uid is filled in.
        page.get_by_role("button", name="封禁 骗子").first.click()
        bans = page.get_by_role("region", name="封禁（全站）")
        expect(bans.get_by_label("用户 ID")).to_have_value("bad1")
        bans.get_by_label("时长").select_option("604800")
        bans.get_by_label("原因（可选）").fill("诈骗")
        bans.get_by_role("button", name="封禁", exact=True).click()
        expect(page.locator("#message")).to_have_text(re.compile("已封禁 bad1"))
        assert viewer.closed() == 4003
    listed = bans.locator('#ban-list li[data-uid="bad1"]')
    expect(listed).to_contain_text("诈骗")
    expect(listed).to_contain_text("至 ")
    (ban,) = [
        b for b in operator.ok("GET", "/api/v1/moderation/bans")["bans"] if b["uid"] == "bad1"
    ]
    assert ban["until"] is not None and ban["reason"] == "诈骗"
    console.shot("bans")

    bans.get_by_role("button", name="解封 bad1").click()
    expect(page.locator("#message")).to_have_text(re.compile("已解封 bad1"))
    expect(bans.locator('#ban-list li[data-uid="bad1"]')).to_have_count(0)
    with ws_viewer(server.base, room["id"], server.token("bad1")) as back:
        assert back.welcome["user"]["uid"] == "bad1"


def test_an_anchor_has_no_ban_panel_nor_word_list(console: Console, server: ServerProcess) -> None:
    anchor = Rest(server.base, server.token("anc-1", "anchor"))
    room = anchor.ok("POST", "/api/v1/rooms", {"title": "主播的直播间"})
    console.dev_login("anc-1", "anchor")
    page = console.page
    expect(page.locator(f'tr[data-room="{room["id"]}"]')).to_be_visible()
    expect(page.get_by_role("link", name="敏感词表")).to_have_count(0)
    page.get_by_role("link", name="进入直播间 主播的直播间").click()
    expect(page.get_by_role("region", name="红包", exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="封禁（全站）")).to_have_count(0)
    expect(page.get_by_role("region", name="禁言", exact=True)).to_be_visible()


def test_the_word_list_is_edited_and_enforced(
    console: Console, operator: Rest, server: ServerProcess
) -> None:
    console.expected_statuses.add(400)
    page = console.page
    before = operator.ok("GET", "/api/v1/moderation/words")
    console.dev_login("ops")
    page.get_by_role("link", name="敏感词表").click()
    expect(page.get_by_role("heading", name="敏感词表")).to_be_visible()
    expect(page.locator("#words-version")).to_have_text(
        f"版本 {before['version']} · {len(before['words'])} 个词"
    )
    # A word the filter cannot use: refused as a whole with the API's problems.
    add = page.get_by_role("form", name="添加词")
    add.get_by_label("词", exact=True).fill("www")
    add.get_by_role("button", name="添加词").click()
    page.get_by_role("button", name="保存词表").click()
    expect(page.locator("#words-problems")).to_contain_text("folds to the single character 'w'")
    assert operator.ok("GET", "/api/v1/moderation/words")["version"] == before["version"]
    page.get_by_role("button", name="删除词「www」").click()

    add.get_by_label("词", exact=True).fill("控制台坏词")
    add.get_by_label("处理方式").select_option("reject")
    add.get_by_role("button", name="添加词").click()
    page.get_by_role("button", name="保存词表").click()
    expect(page.locator("#message")).to_have_text(re.compile(r"词表已保存：\d+ 个词"))
    after = operator.ok("GET", "/api/v1/moderation/words")
    assert after["version"] == before["version"] + 1
    assert {"word": "控制台坏词", "action": "reject", "category": "custom"} in after["words"]
    assert len(after["words"]) == len(before["words"]) + 1
    console.shot("words")

    room = operator.ok("POST", "/api/v1/rooms", {"title": "词表"})
    operator.ok("POST", f"/api/v1/rooms/{room['id']}/start")
    with ws_viewer(server.base, room["id"], server.token("wv")) as viewer:
        ack = viewer.comment("这是控制台坏词", "w1")
        assert (ack["ok"], ack["code"]) == (False, "rejected")
    # Put the list back for the module's other tests.
    operator.ok(
        "PUT", "/api/v1/moderation/words", {"words": before["words"], "allow": before["allow"]}
    )
