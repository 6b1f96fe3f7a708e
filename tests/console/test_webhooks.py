"""The webhooks view (operators): an endpoint made in the page delivers to a real receiver
that verifies every signature with ``standardwebhooks``; the page shows the deliveries as
the API reports them, replays one, deletes an endpoint, and fits a phone."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.console.conftest import PHONE, Console, users_file
from tests.console.helpers import Rest
from tests.console.test_layout import check
from tests.e2e.harness import ServerProcess, start_server
from tests.fakes.webhook_receiver import Receiver
from webhooks.events import EVENT_TYPES

CONSOLE = Path(__file__).resolve().parents[2] / "interact" / "console"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The console's server, allowed to deliver to a receiver on this machine."""
    directory = tmp_path_factory.mktemp("console-webhooks")
    proc = start_server(
        directory,
        env={
            "INTERACT_CONSOLE_USERS_FILE": str(users_file(directory)),
            "INTERACT_WEBHOOK_ALLOW_HTTP": "1",
            "INTERACT_WEBHOOK_ALLOW_PRIVATE": "1",
        },
    )
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A receiver on a real socket, served by its own event loop in a thread (Playwright's
    sync API holds this thread's). It accepts only what the secrets it is given sign."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webhook-receiver", daemon=True)
    thread.start()
    found = asyncio.run_coroutine_threadsafe(Receiver(secrets=[]).start(), loop).result(10)
    yield found
    asyncio.run_coroutine_threadsafe(found.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def open_webhooks(console: Console) -> None:
    console.dev_login("ops")
    console.page.get_by_role("link", name="消息推送（Webhook）").click()
    expect(console.page.get_by_role("heading", name="消息推送（Webhook）", level=1)).to_be_visible()


def add_endpoint(console: Console, url: str, event: str) -> str:
    """Add an endpoint in the page; the secret it shows once."""
    page = console.page
    page.get_by_label("接收地址（URL）").fill(url)
    page.get_by_role("checkbox", name=event, exact=True).check()
    page.get_by_role("button", name="添加", exact=True).click()
    expect(page.locator("#message")).to_contain_text(f"已添加推送地址 {url}")
    secret = page.get_by_role("textbox", name="签名密钥")
    expect(secret).to_have_value(re.compile(r"^whsec_"))
    return secret.input_value()


def test_an_endpoint_made_here_delivers_a_signed_test_event(
    console: Console, operator: Rest, receiver: Receiver
) -> None:
    page = console.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.base)
    open_webhooks(console)
    expect(page.locator("#wh-list")).to_contain_text("还没有推送地址")

    secret = add_endpoint(console, receiver.url, "room.started")
    page.get_by_role("button", name="复制密钥").click()
    expect(page.locator("#message")).to_have_text(re.compile("密钥已复制"))
    assert page.evaluate("navigator.clipboard.readText()") == secret
    [made] = operator.ok("GET", "/api/v1/webhooks")["webhooks"]
    assert (made["url"], made["events"], made["room"]) == (receiver.url, ["room.started"], None)
    assert "secret" not in made
    row = page.locator(f'#wh-list li[data-id="{made["id"]}"]')
    expect(row).to_contain_text(receiver.url)
    expect(row).to_contain_text("启用")
    expect(row).to_contain_text("事件：room.started")
    expect(row).to_contain_text("直播间：全部")
    # Shown once: dismissed, it is gone from the page, and the API never shows it again.
    page.get_by_role("button", name="我已保存").click()
    expect(page.locator("#wh-secret")).to_be_hidden()
    assert secret not in page.content()

    # The receiver trusts what this secret signs, and nothing else.
    receiver.secrets.append(secret)
    page.get_by_role("button", name=f"向 {receiver.url} 发送测试事件").click()
    until(lambda: len(receiver.unique) == 1, "the test event never reached the receiver")
    [got] = receiver.unique.values()
    assert got.payload["type"] == "webhook.test"
    assert got.payload["data"]["endpoint"] == made["id"]
    delivery = page.locator(f'#wh-deliveries li[data-id="{got.id}"]')
    expect(page.get_by_role("heading", name=f"投递记录：{receiver.url}")).to_be_visible()
    expect(delivery).to_have_attribute("data-status", "succeeded")
    expect(delivery).to_contain_text("成功")
    expect(delivery.locator(".wh-d-code")).to_have_text("响应：204")
    expect(delivery.locator(".wh-d-attempts")).to_have_text("尝试 1 次")
    expect(delivery.locator(".wh-d-latency")).to_have_text(re.compile(r"^耗时 \d+ ms$"))

    # Replayed from the page: the same event, the same id, delivered again.
    delivery.get_by_role("button", name=f"重新投递事件 {got.id}").click()
    expect(page.locator("#message")).to_contain_text(f"事件 {got.id} 已重新排队")
    until(lambda: len(receiver.all) == 2, "the replay never reached the receiver")
    assert [r.id for r in receiver.all] == [got.id, got.id]
    expect(delivery).to_have_attribute("data-status", "succeeded")

    # An endpoint whose secret the receiver does not know: the 401 shows, still pending.
    other = receiver.url + "?second"
    add_endpoint(console, other, "room.ended")
    page.get_by_role("button", name=f"向 {other} 发送测试事件").click()
    failed = page.locator("#wh-deliveries li").first
    expect(failed.locator(".wh-d-code")).to_have_text("响应：401")
    expect(failed).to_have_attribute("data-status", "pending")
    expect(failed).to_contain_text("下次尝试")
    assert len(receiver.unique) == 1

    # The whole view fits a phone and every control has a name, in both languages.
    page.set_viewport_size(PHONE)
    check(console, "webhooks-zh-390x844", 25)
    page.get_by_label("界面语言").select_option("en")
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    check(console, "webhooks-en-390x844", 25)
    page.get_by_label("Language").select_option("zh")

    # Deleting takes a second click; the endpoint and its queue go.
    delete = page.get_by_role("button", name=f"删除推送地址 {other}")
    delete.click()
    page.get_by_role("button", name=f"确认删除推送地址 {other}（待投递的事件一并删除）").click()
    expect(page.locator("#message")).to_contain_text(f"已删除推送地址 {other}")
    expect(page.locator("#wh-list li")).to_have_count(1)
    assert [e["url"] for e in operator.ok("GET", "/api/v1/webhooks")["webhooks"]] == [receiver.url]


def test_a_refused_endpoint_shows_the_api_error(console: Console) -> None:
    console.expected_statuses.add(400)
    open_webhooks(console)
    page = console.page
    page.get_by_label("接收地址（URL）").fill("http://example.com/hook")
    page.get_by_role("button", name="添加", exact=True).click()
    # No event chosen: the API's 400 is shown as it gave it, and no secret appears.
    expect(page.locator("#message")).to_have_attribute("role", "alert")
    expect(page.locator("#message")).to_contain_text("events")
    expect(page.locator("#wh-secret")).to_be_hidden()


def test_anchors_have_no_webhooks_view(console: Console) -> None:
    console.dev_login("anc", "anchor")
    page = console.page
    expect(page.get_by_role("link", name="消息推送（Webhook）")).to_have_count(0)
    page.goto(f"{console.base}/console#/webhooks")
    expect(page.get_by_role("heading", name="直播间", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="消息推送（Webhook）")).to_have_count(0)


def test_the_page_offers_every_event_type_the_server_knows() -> None:
    source = (CONSOLE / "webhooks.js").read_text()
    listed = re.search(r"export const EVENT_TYPES = \[(.*?)\];", source, re.S)
    assert listed is not None
    assert tuple(re.findall(r"'([a-z_.]+)'", listed.group(1))) == EVENT_TYPES
