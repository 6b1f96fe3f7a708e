"""Commerce in the live room: a red packet grabbed by viewers on real WebSockets, a
lottery drawn and verified in the page (and tampered with), a flash sale whose stock falls
as a buyer reserves over REST, the order paid and refunded, and the money ledger."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, expect

from commerce.draw import verify
from tests.console.conftest import PHONE, Console
from tests.console.helpers import Rest, ws_viewer, yuan
from tests.console.test_layout import check
from tests.console.test_live import open_room
from tests.e2e.harness import ServerProcess


def region(console: Console, name: str) -> Locator:
    return console.page.get_by_role("region", name=name, exact=True)


def test_a_red_packet_in_yuan_reaches_viewers_in_fen_and_shows_the_grabs(
    console: Console, operator: Rest, server: ServerProcess
) -> None:
    page = console.page
    room = open_room(console, operator, "红包直播间")
    with (
        ws_viewer(server.base, room["id"], server.token("g1")) as one,
        ws_viewer(server.base, room["id"], server.token("g2")) as two,
    ):
        rp = region(console, "红包")
        amount = rp.get_by_label("总金额（元）")
        # Three decimals is not an amount of fen: refused in the page, nothing is sent.
        amount.fill("12.345")
        expect(rp.locator(".money-preview")).to_have_text("金额最多两位小数（分）")
        rp.get_by_role("button", name="发红包").click()
        expect(page.locator("#message")).to_have_text(re.compile("金额有误：金额最多两位小数"))
        # 0.1 + 0.2 style sums never enter: 12.34 yuan is exactly 1234 fen.
        amount.fill("12.34")
        expect(rp.locator(".money-preview")).to_have_text("¥12.34（1234 分）")
        rp.get_by_label("份数").fill("2")
        rp.get_by_role("button", name="发红包").click()
        expect(page.locator("#message")).to_have_text(re.compile("已发出红包 ¥12.34，2 份"))
        sent = one.wait_for(lambda m: m["t"] == "rp")
        assert (sent["total_fen"], sent["count"], sent["split"]) == (1234, 2, "random")
        row = page.locator(f'#rp-list li[data-id="{sent["id"]}"]')
        expect(row).to_contain_text("¥12.34")
        expect(row.locator(".rp-left")).to_have_attribute("data-left", "2")

        shares = {}
        for uid, viewer in (("g1", one), ("g2", two)):
            viewer.send({"t": "grab", "id": sent["id"], "ref": f"grab-{uid}"})
            ack = viewer.wait_for(lambda m, u=uid: m["t"] == "ack" and m["ref"] == f"grab-{u}")
            assert ack["ok"] is True, ack
            shares[uid] = ack["amount_fen"]
        assert sum(shares.values()) == 1234
        done = one.wait_for(lambda m: m["t"] == "rp_done")
        assert done["reason"] == "empty"
        for uid, fen in shares.items():
            expect(row.locator(f'.claims li[data-uid="{uid}"]')).to_contain_text(yuan(fen))
        expect(row).to_contain_text("已抢完")
        # Nothing absent is printed as "null" or "undefined".
        expect(row).not_to_contain_text(re.compile("null|undefined"))
        lucky = done["luckiest"]
        expect(row.locator(".rp-luckiest")).to_have_text(
            f"手气最佳：{lucky['uid']} {yuan(lucky['amount_fen'])}"
        )
        # The refused amount never left the page: one packet reached the viewers.
        assert [m["total_fen"] for m in one.seen if m["t"] == "rp"] == [1234]

        ledger = region(console, "资金流水")
        expect(ledger.locator('li[data-type="rp_claim"]')).to_have_count(2)
        expect(ledger.locator(".ledger-totals")).to_contain_text("红包发出 ¥12.34 · 领取 ¥12.34")
        console.shot("red-packet")


def test_a_lottery_is_drawn_early_and_verified_in_the_page(
    console: Console, operator: Rest, server: ServerProcess
) -> None:
    page = console.page
    open_room(console, operator, "福袋直播间")
    lot = region(console, "福袋抽奖")
    lot.get_by_label("奖品", exact=True).fill("福袋")
    lot.get_by_label("中奖人数").fill("2")
    lot.get_by_label("开奖倒计时（分钟）").fill("30")
    lot.get_by_role("button", name="发起抽奖").click()
    row = page.locator("#lot-list li.item").first
    expect(row).to_contain_text("进行中")
    lottery_id = row.get_attribute("data-id")
    assert lottery_id
    record = operator.ok("GET", f"/api/v1/lotteries/{lottery_id}")
    assert record["condition"] == {"kind": "enter"} and record["winners_count"] == 2
    # The commitment is on screen before anyone enters.
    expect(row.locator(".lot-commit")).to_have_text(record["commit"])

    entrants = ["u1", "u2", "u3", "u4", "u5"]
    for uid in entrants:
        Rest(server.base, server.token(uid)).ok("POST", f"/api/v1/lotteries/{lottery_id}/entries")
    expect(row.locator(".lot-entries")).to_have_attribute("data-entries", "5")

    row.get_by_role("button", name="提前开奖：福袋").click()
    expect(row).to_contain_text("已开奖")
    drawn = operator.ok("GET", f"/api/v1/lotteries/{lottery_id}")
    assert drawn["status"] == "drawn" and len(drawn["winners"]) == 2
    expect(row.locator(".lot-winners")).to_contain_text("、".join(drawn["winners"]))
    expect(row.locator(".lot-secret")).to_have_text(drawn["proof"]["secret"])

    form = row.get_by_role("form", name="验证开奖：福袋")
    expect(form).to_have_attribute("data-ready", "1")
    expect(form.get_by_label("参与名单（每行一个用户 ID）")).to_have_value("\n".join(entrants))
    run = form.get_by_role("button", name="验证开奖：福袋")
    run.click()
    result = form.locator(".verify-result")
    expect(result).to_have_attribute("data-ok", "1")
    expect(result).to_contain_text("验证通过")
    for name in ("secret", "commit", "entries_sha256", "winners"):
        expect(result.locator(f'li[data-check="{name}"]')).to_have_class("check-pass")
    console.shot("lottery-verified")
    # The same inputs pass the command-line verifier (commerce.draw), so the page and
    # `interact verify-lottery` agree.
    report = verify(
        drawn["commit"],
        drawn["proof"]["secret"],
        lottery_id,
        entrants,
        2,
        drawn["winners"],
        drawn["proof"]["entries_sha256"],
    )
    assert report.ok and report.winners == drawn["winners"]

    # A tampered seed: the commitment check fails, and so does the whole verification.
    secret = form.get_by_label("种子（secret）")
    real = drawn["proof"]["secret"]
    secret.fill(real[:-1] + ("0" if real[-1] != "0" else "1"))
    run.click()
    expect(result).to_have_attribute("data-ok", "0")
    expect(result).to_contain_text("验证失败")
    expect(result.locator('li[data-check="commit"]')).to_have_class("check-fail")
    console.shot("lottery-tampered")
    # The right seed with an entrant left out: the list no longer hashes to the proof.
    secret.fill(real)
    form.get_by_label("参与名单（每行一个用户 ID）").fill("\n".join(entrants[:-1]))
    run.click()
    expect(result).to_have_attribute("data-ok", "0")
    expect(result.locator('li[data-check="commit"]')).to_have_class("check-pass")
    expect(result.locator('li[data-check="entries_sha256"]')).to_have_class("check-fail")

    # A "new_first" lottery: the page finds the earlier winners in the ledger.
    lot.get_by_label("奖品", exact=True).fill("第二个福袋")
    lot.get_by_label("中奖人数").fill("2")
    lot.get_by_label("未中过奖的观众优先").check()
    lot.get_by_role("button", name="发起抽奖").click()
    second = page.locator("#lot-list li.item", has_text="第二个福袋")
    expect(second).to_contain_text("进行中")
    second_id = second.get_attribute("data-id")
    for uid in ("u9", drawn["winners"][0], drawn["winners"][1]):
        Rest(server.base, server.token(uid)).ok("POST", f"/api/v1/lotteries/{second_id}/entries")
    expect(second.locator(".lot-entries")).to_have_attribute("data-entries", "3")
    second.get_by_role("button", name="提前开奖：第二个福袋").click()
    form2 = second.get_by_role("form", name="验证开奖：第二个福袋")
    expect(form2).to_have_attribute("data-ready", "1")
    expect(form2.get_by_label("此前的中奖者（每行一个）")).to_have_value(
        "\n".join(drawn["winners"])
    )
    form2.get_by_role("button", name="验证开奖：第二个福袋").click()
    expect(form2.locator(".verify-result")).to_have_attribute("data-ok", "1")
    expect(form2.locator('li[data-check="prior_winners_sha256"]')).to_have_class("check-pass")
    assert operator.ok("GET", f"/api/v1/lotteries/{second_id}")["winners"][0] == "u9"
    # Long hex proofs and the verify forms: labelled, and nothing runs off a phone's screen.
    page.set_viewport_size(PHONE)
    check(console, "lottery-390x844", 40)


def test_a_flash_sale_stock_falls_and_an_order_is_refunded(
    console: Console, operator: Rest, server: ServerProcess
) -> None:
    console.expected_statuses.add(400)
    page = console.page
    open_room(console, operator, "秒杀直播间")
    sales = region(console, "秒杀")
    sales.get_by_label("商品名称").fill("口红")
    sales.get_by_label("单价（元）").fill("99.9")
    sales.get_by_label("库存").fill("5")
    sales.get_by_label("每人限购").fill("2")
    sales.get_by_role("button", name="上架").click()
    expect(page.locator("#message")).to_have_text(re.compile("已上架「口红」¥99.90，库存 5"))
    row = page.locator("#sale-list li.item", has_text="口红")
    left = row.locator(".sale-left")
    expect(left).to_have_attribute("data-left", "5")
    sale_id = row.get_attribute("data-id")
    assert operator.ok("GET", f"/api/v1/sales/{sale_id}")["price_fen"] == 9990

    buyer = Rest(server.base, server.token("b1"))
    order = buyer.ok(
        "POST", f"/api/v1/sales/{sale_id}/orders", {"qty": 2}, headers={"Idempotency-Key": "k1"}
    )
    # Stock falls live, from the room's `stock` messages.
    expect(left).to_have_attribute("data-left", "3")
    other = Rest(server.base, server.token("b2"))
    other.ok("POST", f"/api/v1/sales/{sale_id}/orders", {}, headers={"Idempotency-Key": "k2"})
    expect(left).to_have_attribute("data-left", "2")
    expect(left).to_have_text("剩余 2/5")

    listed = page.locator(f'#order-list li[data-id="{order["id"]}"]')
    expect(listed).to_contain_text("b1")
    expect(listed).to_contain_text("¥199.80")
    expect(listed).to_have_attribute("data-status", "reserved")
    paying = buyer.ok("POST", f"/api/v1/orders/{order['id']}/pay")
    assert buyer.ok("POST", paying["confirm_url"])["status"] == "paid"
    expect(listed).to_have_attribute("data-status", "paid")
    expect(listed).to_contain_text("已付款")
    console.shot("sale-orders")

    short = order["id"].split(".", 1)[1]
    listed.get_by_role("button", name=f"退款：订单 {short}（b1）").click()
    form = listed.get_by_role("form", name=f"退款：订单 {short}（b1）")
    reason = form.get_by_label("退款原因（买家可见）")
    # 27 Chinese characters are 81 bytes of UTF-8: over WeChat Pay's limit, and the API
    # says so; the order stays paid.
    reason.fill("七" * 27)
    expect(form.locator(".byte-count")).to_have_text("81/80 字节")
    page.set_viewport_size(PHONE)
    check(console, "refund-390x844", 40)
    form.get_by_role("button", name="确认退款").click()
    expect(page.locator("#message")).to_contain_text(
        "请求有误（400）：reason must be a string of at most 80 bytes"
    )
    assert operator.ok("GET", f"/api/v1/orders/{order['id']}")["status"] == "paid"

    reason.fill("七天无理由")
    expect(form.locator(".byte-count")).to_have_text("15/80 字节")
    form.get_by_label("退回库存").check()
    form.get_by_role("button", name="确认退款").click()
    expect(page.locator("#message")).to_have_text(re.compile(f"订单 {short} 已退款 ¥199.80"))
    expect(listed).to_have_attribute("data-status", "refunded")
    refunded = operator.ok("GET", f"/api/v1/orders/{order['id']}")
    assert (refunded["status"], refunded["restocked"], refunded["refund_fen"]) == (
        "refunded",
        True,
        19980,
    )
    # The units went back on the shelf.
    expect(left).to_have_attribute("data-left", "4")
    ledger = region(console, "资金流水")
    expect(ledger.locator('li[data-type="order_refunded"]')).to_have_count(1)
    expect(ledger.locator(".ledger-totals")).to_contain_text("订单收款 ¥199.80 · 退款 ¥199.80")
    console.shot("ledger")
