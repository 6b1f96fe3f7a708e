"""The live room view against two ``interact serve`` processes on one private Redis: the
console on process A, the viewer on process B; comments, retractions, the review queue and
the online count all cross processes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.console.conftest import PASSWORD, Console, console_on, users_file
from tests.console.helpers import Rest, ws_viewer, yuan
from tests.console.test_live import REVIEW_WORD
from tests.e2e.harness import ServerProcess, start_server
from tests.redis_server import start_redis_server, stop_redis_server


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    directory = tmp_path_factory.mktemp("console-redis")
    redis, port = start_redis_server(directory)
    env = {
        "INTERACT_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "INTERACT_REDIS_PREFIX": "console-test:",
        "INTERACT_CONSOLE_USERS_FILE": str(users_file(directory)),
        "INTERACT_ONLINE_INTERVAL": "0.3",
    }
    a = start_server(directory, env=env)
    try:
        b = start_server(directory, env=env)
    except BaseException:
        a.stop()
        stop_redis_server(redis)
        raise
    yield a, b
    codes = (a.stop(), b.stop())
    stop_redis_server(redis)
    assert codes == (0, 0), a.log() + b.log()


def sign_in(console: Console) -> None:
    """Dev login is off on Redis: the console signs in with a password account."""
    console.open()
    form = console.page.get_by_role("form", name="账号密码登录")
    form.get_by_label("用户名").fill("boss")
    form.get_by_label("密码").fill(PASSWORD)
    form.get_by_role("button", name="登录").click()
    expect(console.page.get_by_role("heading", name="直播间", exact=True)).to_be_visible()


def test_the_live_room_across_two_processes(
    browser: Browser, shots: Path, pair: tuple[ServerProcess, ServerProcess]
) -> None:
    a, b = pair
    on_a = Rest(a.base, a.token("ops", "operator"))
    room = on_a.ok("POST", "/api/v1/rooms", {"title": "双进程直播间"})
    on_a.ok("POST", f"/api/v1/rooms/{room['id']}/start")
    with console_on(browser, a.base, shots) as console:
        page = console.page
        sign_in(console)
        page.get_by_role("link", name="进入直播间 双进程直播间").click()
        expect(page.locator(".socket-state")).to_have_text("实时连接正常")
        with ws_viewer(b.base, room["id"], b.token("v-b", nick="访客")) as viewer:
            # The viewer on B, counted by the console on A: presence is summed over both
            # processes, and the console's own connection is staff, not a viewer.
            expect(page.locator("#stat-online")).to_have_text("1")
            seqs = [
                viewer.comment(text, f"c{i}")["seq"] for i, text in enumerate(["甲", "乙", "丙"])
            ]
            for text in ("甲", "乙", "丙"):
                expect(page.locator("#stream li", has_text=text)).to_have_count(1)

            # Retracted on A, gone for the viewer on B.
            page.get_by_role("button", name="撤回 访客 的评论：乙").click()
            assert viewer.wait_for(lambda m: m["t"] == "retract")["seq"] == seqs[1]
            expect(page.locator("#stream li", has_text="乙")).to_have_count(0)

            # Held on B, released from A's queue, published to B.
            ack = viewer.comment(f"{REVIEW_WORD}联系我", "held")
            assert ack.get("held") is True
            queue = page.locator("#review-list")
            expect(queue.locator("li", has_text="联系我")).to_have_count(1)
            page.get_by_role("button", name=f"放行 v-b 的评论：{REVIEW_WORD}联系我").click()
            released = viewer.wait_for(lambda m: m["t"] == "dm" and "联系我" in m["text"])
            assert released["seq"] > seqs[-1]
            expect(page.locator("#stream li", has_text="联系我")).to_have_count(1)
            expect(queue.locator("li", has_text="联系我")).to_have_count(0)

            # A red packet sent from A, grabbed on B; the grab shows on A.
            rp = page.get_by_role("region", name="红包", exact=True)
            rp.get_by_label("总金额（元）").fill("0.5")
            rp.get_by_label("份数").fill("1")
            rp.get_by_role("button", name="发红包").click()
            sent = viewer.wait_for(lambda m: m["t"] == "rp")
            assert sent["total_fen"] == 50
            viewer.send({"t": "grab", "id": sent["id"], "ref": "g"})
            got = viewer.wait_for(lambda m: m["t"] == "ack" and m["ref"] == "g")
            assert got["amount_fen"] == 50
            row = page.locator(f'#rp-list li[data-id="{sent["id"]}"]')
            expect(row.locator('.claims li[data-uid="v-b"]')).to_contain_text(yuan(50))
            expect(page.locator("#message")).to_have_text(re.compile("已发出红包 ¥0.50"))
            console.shot("room-two-processes")
