"""The rooms view: create, start, a refused transition, and what an anchor may see."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.console.conftest import Console
from tests.console.helpers import Rest, ws_viewer
from tests.e2e.harness import ServerProcess


def row(console: Console, room_id: str):  # type: ignore[no-untyped-def]
    return console.page.locator(f'tr[data-room="{room_id}"]')


def wait_online(rest: Rest, room_id: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while rest.ok("GET", f"/api/v1/rooms/{room_id}/stats")["online"] != count:
        assert time.monotonic() < deadline, f"online never reached {count}"
        time.sleep(0.05)


def test_create_and_start_a_room(console: Console, operator: Rest, server: ServerProcess) -> None:
    page = console.page
    console.dev_login("ops")
    form = page.get_by_role("form", name="创建直播间")
    form.get_by_label("标题").fill("新品首发 A")
    form.get_by_label("主播 ID（可选）").fill("anchor-x")
    form.get_by_role("button", name="创建直播间").click()
    expect(page.locator("#message")).to_have_text(re.compile("已创建直播间「新品首发 A」"))
    created = page.locator("tr", has_text="新品首发 A")
    expect(created).to_contain_text("未开始")
    expect(created).to_contain_text("anchor-x")
    room_id = created.get_attribute("data-room")
    assert room_id
    assert operator.ok("GET", f"/api/v1/rooms/{room_id}")["anchor"] == "anchor-x"

    created.get_by_role("button", name="开播：新品首发 A").click()
    expect(page.locator("#message")).to_contain_text("「新品首发 A」：开播成功")
    expect(row(console, room_id)).to_contain_text("直播中")
    assert operator.ok("GET", f"/api/v1/rooms/{room_id}")["status"] == "live"

    # The online count is the room's, read from its stats.
    with ws_viewer(server.base, room_id, server.token("v1")):
        wait_online(operator, room_id, 1)
        page.get_by_role("button", name="刷新").click()
        expect(row(console, room_id).locator(".online")).to_have_text("1")
        console.shot("rooms")


def test_a_forbidden_transition_shows_its_message(console: Console, operator: Rest) -> None:
    console.expected_statuses.add(409)
    room = operator.ok("POST", "/api/v1/rooms", {"title": "过期视图"})
    console.dev_login("ops")
    expect(row(console, room["id"])).to_contain_text("未开始")
    # Someone else ends the room; this screen still shows it scheduled.
    operator.ok("POST", f"/api/v1/rooms/{room['id']}/end")
    row(console, room["id"]).get_by_role("button", name="开播：过期视图").click()
    message = console.page.locator("#message")
    refusal = "无法开播：直播间当前状态是「已结束」（cannot start a room that is ended）"
    expect(message).to_have_text(re.compile(re.escape(f"操作冲突（409）：{refusal}")))
    expect(row(console, room["id"])).to_contain_text("已结束")
    console.shot("conflict")
    # The same refusal in English.
    console.page.get_by_label("界面语言").select_option("en")
    operator.ok("POST", "/api/v1/rooms", {"title": "second"})
    second = operator.ok("GET", "/api/v1/rooms?limit=1")["rooms"][0]
    operator.ok("POST", f"/api/v1/rooms/{second['id']}/start")
    console.page.get_by_role("button", name="Refresh").click()
    operator.ok("POST", f"/api/v1/rooms/{second['id']}/end")
    row(console, second["id"]).get_by_role("button", name="Pause: second").click()
    expect(message).to_have_text(re.compile(r"Conflict \(409\): Cannot pause: the room is ended"))


def test_an_anchor_sees_only_their_rooms(console: Console, server: ServerProcess) -> None:
    console.expected_statuses.update({403, 404})
    mine = Rest(server.base, server.token("anchor-b", "anchor"))
    theirs = Rest(server.base, server.token("anchor-a", "anchor"))
    own = mine.ok("POST", "/api/v1/rooms", {"title": "B 的直播间"})
    other = theirs.ok("POST", "/api/v1/rooms", {"title": "A 的直播间"})
    page = console.page
    console.dev_login("anchor-b", "anchor")
    expect(row(console, own["id"])).to_be_visible()
    expect(row(console, other["id"])).to_have_count(0)
    # No field for another anchor: an anchor's rooms are their own.
    expect(page.get_by_label("主播 ID（可选）")).to_have_count(0)

    page.goto(f"{server.base}/console#/rooms/{other['id']}")
    expect(page.get_by_role("heading", name="无法打开这个直播间")).to_be_visible()
    expect(page.locator(".denied")).to_contain_text(
        "无权操作（403）：only an operator or the room's anchor may do this"
    )
    expect(page.locator("#stream")).to_have_count(0)
    console.shot("denied")

    page.goto(f"{server.base}/console#/rooms/r000000000000")
    expect(page.locator(".denied")).to_contain_text("未找到（404）")

    page.goto(f"{server.base}/console#/rooms/{own['id']}")
    expect(page.get_by_role("heading", name="B 的直播间")).to_be_visible()
