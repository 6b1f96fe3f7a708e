"""ContentSecurity (msgSecCheck v2 through wechatpy) against the fake WeChat server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from interact.floor.breaker import BreakerState
from moderation.content_security import (
    MAX_CONTENT,
    ContentSecurity,
    SecStats,
    SecVerdict,
    Suggest,
)
from tests.fakes.wechat import FakeWeChat

TOKEN = "/cgi-bin/token"
SEC = "/wxa/msg_sec_check"
OPENID = "o_viewer_0001"

Make = Callable[..., Awaitable[ContentSecurity]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    async with FakeWeChat() as fake:
        yield fake


@pytest.fixture
async def make(fake: FakeWeChat) -> AsyncIterator[Make]:
    """Build a ContentSecurity against the fake; all are closed at teardown."""
    made: list[ContentSecurity] = []

    async def build(**kwargs: Any) -> ContentSecurity:
        assert fake.base_url is not None
        kwargs.setdefault("timeout", 1.0)
        sec = ContentSecurity(fake.appid, fake.secret, api_base=fake.base_url, **kwargs)
        made.append(sec)
        return sec

    yield build
    for sec in made:
        await sec.close()


@pytest.fixture
async def sec(make: Make) -> ContentSecurity:
    return await make()


def sent_bodies(fake: FakeWeChat) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in fake.requests if r.path == SEC]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def open_breaker(fake: FakeWeChat, sec: ContentSecurity) -> None:
    fake.fail_next(SEC, errcode=-1, errmsg="system error", times=sec.breaker.failures)
    for _ in range(sec.breaker.failures):
        assert await sec.check(OPENID, "hello") is None
    assert sec.breaker_state is BreakerState.OPEN


# --- verdicts ----------------------------------------------------------------------


async def test_pass_sends_a_v2_comment_check(fake: FakeWeChat, sec: ContentSecurity) -> None:
    verdict = await sec.check(OPENID, "主播好厉害 666")

    assert isinstance(verdict, SecVerdict)
    assert verdict.suggest is Suggest.PASS
    assert verdict.suggest == "pass"
    assert verdict.label == 100
    assert verdict.trace_id
    assert sent_bodies(fake) == [
        {"version": 2, "openid": OPENID, "scene": 2, "content": "主播好厉害 666"}
    ]
    request = next(r for r in fake.requests if r.path == SEC)
    assert request.method == "POST"
    assert request.query["access_token"] == fake.access_token
    assert sec.stats == SecStats(calls=1, passes=1)


async def test_review_and_risky(fake: FakeWeChat, sec: ContentSecurity) -> None:
    fake.sec_rules.update({"加微信": "review", "赌博": ("risky", 20006)})

    review = await sec.check(OPENID, "想要的加微信")
    risky = await sec.check(OPENID, "来赌博吧，加微信")  # risky beats review
    fine = await sec.check(OPENID, "晚上好")

    assert review is not None and (review.suggest, review.label) == ("review", 20001)
    assert risky is not None and (risky.suggest, risky.label) == ("risky", 20006)
    assert fine is not None and fine.suggest == "pass"
    assert sec.stats == SecStats(calls=3, passes=1, reviews=1, risky=1)
    assert fake.calls[TOKEN] == 1


async def test_v1_risky_errcode_is_risky(fake: FakeWeChat, sec: ContentSecurity) -> None:
    fake.fail_next(SEC, errcode=87014, errmsg="risky content")
    verdict = await sec.check(OPENID, "whatever")
    assert verdict == SecVerdict(Suggest.RISKY, 21000, None)
    assert sec.stats.risky == 1
    assert sec.breaker_state is BreakerState.CLOSED


async def test_long_content_is_cut_to_2500(fake: FakeWeChat, sec: ContentSecurity) -> None:
    fake.sec_rules["TAIL"] = "risky"
    text = "好" * MAX_CONTENT + "TAIL"

    verdict = await sec.check(OPENID, text)

    # The fake refuses more than 2,500 chars (47001); the cut text passes, tail unseen.
    assert verdict is not None and verdict.suggest == "pass"
    assert sent_bodies(fake)[0]["content"] == "好" * MAX_CONTENT


async def test_scene_is_configurable(fake: FakeWeChat, make: Make) -> None:
    sec = await make(scene=3)
    assert await sec.check(OPENID, "hi") is not None
    assert sent_bodies(fake)[0]["scene"] == 3
    with pytest.raises(ValueError):
        await make(scene=5)


@pytest.mark.parametrize(("openid", "text"), [("", "hi"), (OPENID, ""), (None, "hi")])
async def test_empty_input_is_not_sent(
    fake: FakeWeChat, sec: ContentSecurity, openid: Any, text: Any
) -> None:
    assert await sec.check(openid, text) is None
    assert sec.stats == SecStats(skipped_invalid=1)
    assert fake.calls[SEC] == 0


# --- failures: None, counted ------------------------------------------------------


async def test_slow_wechat_is_a_timeout(fake: FakeWeChat, make: Make) -> None:
    sec = await make(timeout=0.2)
    assert await sec.check(OPENID, "warm up the token") is not None
    fake.fail_next(SEC, delay=0.5)

    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await sec.check(OPENID, "slow") is None
    assert loop.time() - started < 0.45

    assert sec.stats.timeouts == 1
    assert sec.stats.errors == 0
    assert sec.breaker.consecutive_failures == 1


@pytest.mark.parametrize(
    "fault", [{"errcode": -1, "errmsg": "system busy"}, {"status": 502}, {"errcode": 45009}]
)
async def test_wechat_errors_are_errors(
    fake: FakeWeChat, sec: ContentSecurity, fault: dict
) -> None:
    fake.fail_next(SEC, **fault)
    assert await sec.check(OPENID, "hi") is None
    assert sec.stats == SecStats(calls=1, errors=1)
    assert sec.breaker.consecutive_failures == 1


async def test_request_errors_do_not_trip_the_breaker(fake: FakeWeChat, make: Make) -> None:
    sec = await make(failures=2)
    # 61010: the user has not opened the mini-program lately; WeChat itself is fine.
    fake.fail_next(SEC, errcode=61010, errmsg="user access record expired", times=3)
    for _ in range(3):
        assert await sec.check(OPENID, "hi") is None
    assert sec.stats.errors == 3
    assert sec.breaker_state is BreakerState.CLOSED
    assert sec.breaker.consecutive_failures == 0


async def test_unreachable_wechat_is_an_error() -> None:
    base = f"http://127.0.0.1:{closed_port()}/"
    async with ContentSecurity("wx_app", "s3cret-value", api_base=base, timeout=1.0) as sec:
        assert await sec.check(OPENID, "hi") is None
        assert sec.stats == SecStats(calls=1, errors=1)


async def test_wrong_secret_is_an_error(fake: FakeWeChat) -> None:
    assert fake.base_url is not None
    async with ContentSecurity(fake.appid, "wrong", api_base=fake.base_url) as sec:
        assert await sec.check(OPENID, "hi") is None
        assert sec.stats.errors == 1
    assert fake.calls[SEC] == 0


# --- breaker -----------------------------------------------------------------------


async def test_failures_open_the_breaker_and_stop_calls(fake: FakeWeChat, make: Make) -> None:
    sec = await make(failures=3, cooldown=60.0)
    await open_breaker(fake, sec)
    assert fake.calls[SEC] == 3

    for _ in range(5):
        assert await sec.check(OPENID, "hi") is None

    assert fake.calls[SEC] == 3  # nothing more reached WeChat
    assert sec.stats == SecStats(calls=3, errors=3, skipped_open=5)


async def test_timeouts_open_the_breaker(fake: FakeWeChat, make: Make) -> None:
    sec = await make(failures=2, cooldown=60.0, timeout=0.2)
    fake.fail_next(SEC, delay=0.4, times=2)
    assert await sec.check(OPENID, "a") is None
    assert await sec.check(OPENID, "b") is None
    assert sec.breaker_state is BreakerState.OPEN
    assert await sec.check(OPENID, "c") is None
    assert sec.stats.timeouts == 2
    assert sec.stats.skipped_open == 1


async def test_probe_after_cooldown_closes_the_breaker(fake: FakeWeChat, make: Make) -> None:
    sec = await make(failures=2, cooldown=0.2)
    await open_breaker(fake, sec)
    assert await sec.check(OPENID, "too early") is None
    calls = fake.calls[SEC]

    await asyncio.sleep(0.25)
    verdict = await sec.check(OPENID, "probe")

    assert verdict is not None and verdict.suggest == "pass"
    assert fake.calls[SEC] == calls + 1
    assert sec.breaker_state is BreakerState.CLOSED
    assert await sec.check(OPENID, "open for business") is not None
    assert sec.stats.skipped_open == 1


async def test_failed_probe_opens_again(fake: FakeWeChat, make: Make) -> None:
    sec = await make(failures=2, cooldown=0.2)
    await open_breaker(fake, sec)
    await asyncio.sleep(0.25)
    fake.fail_next(SEC, errcode=-1)

    assert await sec.check(OPENID, "probe") is None
    assert sec.breaker_state is BreakerState.OPEN
    assert await sec.check(OPENID, "still open") is None
    assert sec.stats.skipped_open == 1

    await asyncio.sleep(0.25)
    assert await sec.check(OPENID, "second probe") is not None
    assert sec.breaker_state is BreakerState.CLOSED


async def test_one_probe_at_a_time(fake: FakeWeChat, make: Make) -> None:
    sec = await make(failures=2, cooldown=0.2)
    await open_breaker(fake, sec)
    await asyncio.sleep(0.25)
    calls = fake.calls[SEC]
    fake.fail_next(SEC, delay=0.2)  # the probe is slow but answers

    results = await asyncio.gather(*(sec.check(OPENID, f"c{i}") for i in range(5)))

    assert sum(r is not None for r in results) == 1
    assert fake.calls[SEC] == calls + 1
    assert sec.stats.skipped_open == 4
    assert sec.breaker_state is BreakerState.CLOSED


async def test_cancelled_probe_frees_the_slot(fake: FakeWeChat, make: Make) -> None:
    sec = await make(failures=2, cooldown=0.2)
    await open_breaker(fake, sec)
    await asyncio.sleep(0.25)
    fake.fail_next(SEC, delay=0.5)
    probe = asyncio.create_task(sec.check(OPENID, "probe"))
    await asyncio.sleep(0.05)
    assert sec.breaker_state is BreakerState.HALF_OPEN

    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    assert sec.breaker_state is BreakerState.OPEN
    await asyncio.sleep(0.25)
    assert await sec.check(OPENID, "next probe") is not None


# --- budget ------------------------------------------------------------------------


async def test_spent_budget_skips_without_a_call(fake: FakeWeChat, make: Make) -> None:
    sec = await make(per_minute=2)
    assert await sec.check(OPENID, "one") is not None
    assert await sec.check(OPENID, "two") is not None

    assert await sec.check(OPENID, "three") is None

    assert fake.calls[SEC] == 2
    assert sec.stats == SecStats(calls=2, passes=2, skipped_budget=1)
    assert sec.breaker_state is BreakerState.CLOSED


# --- access token ------------------------------------------------------------------


async def test_rejected_token_is_refreshed_once(fake: FakeWeChat, sec: ContentSecurity) -> None:
    assert await sec.check(OPENID, "first") is not None
    old = fake.access_token
    fake.invalidate_tokens()  # the next call gets a genuine 40001

    verdict = await sec.check(OPENID, "second")

    assert verdict is not None and verdict.suggest == "pass"
    assert fake.calls[TOKEN] == 2
    sent = [r.query["access_token"] for r in fake.requests if r.path == SEC]
    assert sent == [old, old, fake.access_token]
    assert sec.stats == SecStats(calls=2, passes=2)


async def test_concurrent_token_errors_share_one_refresh(
    fake: FakeWeChat, sec: ContentSecurity
) -> None:
    assert await sec.check(OPENID, "first") is not None
    fake.invalidate_tokens()

    results = await asyncio.gather(*(sec.check(OPENID, f"c{i}") for i in range(6)))

    assert all(r is not None for r in results)
    assert fake.calls[TOKEN] == 2


async def test_persistent_token_errors_do_not_loop(fake: FakeWeChat, sec: ContentSecurity) -> None:
    fake.fail_next(SEC, errcode=42001, errmsg="access_token expired", times=10)
    assert await sec.check(OPENID, "hi") is None
    assert fake.calls[SEC] == 2
    assert sec.stats == SecStats(calls=1, errors=1)


# --- hygiene -----------------------------------------------------------------------


async def test_content_and_token_never_logged(
    fake: FakeWeChat, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="moderation")
    caplog.set_level(logging.DEBUG, logger="wechatpy")
    secret_text = "秘密内容-do-not-log"
    sec = await make(timeout=0.3)
    assert await sec.check(OPENID, secret_text) is not None
    token = fake.access_token
    assert token
    for fault in ({"errcode": -1}, {"status": 500}, {"errcode": 47001}, {"delay": 0.6}):
        fake.fail_next(SEC, **fault)
        assert await sec.check(OPENID, secret_text) is None
    fake.invalidate_tokens()
    assert await sec.check(OPENID, secret_text) is not None
    base = f"http://127.0.0.1:{closed_port()}/"
    async with ContentSecurity(fake.appid, fake.secret, api_base=base, timeout=1.0) as down:
        assert await down.check(OPENID, secret_text) is None

    records = [r for r in caplog.records if r.name.startswith(("moderation", "wechatpy"))]
    assert records, "expected some log lines"
    # urllib3's own DEBUG lines carry full URLs (token included): keep it above DEBUG.
    text = "\n".join(r.getMessage() for r in records)
    for leak in (secret_text, token, fake.access_token, fake.secret, OPENID):
        assert leak not in text
    assert fake.secret not in repr(sec)


async def test_closed_checker_answers_none(fake: FakeWeChat, make: Make) -> None:
    sec = await make()
    await sec.close()
    await sec.close()
    assert await sec.check(OPENID, "hi") is None
    assert fake.calls[SEC] == 0


async def test_close_drops_queued_checks_as_none(fake: FakeWeChat, make: Make) -> None:
    sec = await make(max_workers=1)
    assert await sec.check(OPENID, "warm up the token") is not None
    fake.fail_next(SEC, delay=0.3)
    running = asyncio.create_task(sec.check(OPENID, "on the only worker"))
    queued = asyncio.create_task(sec.check(OPENID, "waiting for a worker"))
    await asyncio.sleep(0.05)

    await sec.close()

    assert await queued is None
    await running  # the call already on the wire finishes either way
    assert fake.calls[SEC] == 2


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        ContentSecurity("", "secret")
    with pytest.raises(ValueError):
        ContentSecurity("wx", "secret", timeout=0)


# --- the fake itself ---------------------------------------------------------------


async def test_fake_validates_msg_sec_check(fake: FakeWeChat, sec: ContentSecurity) -> None:
    assert await sec.check(OPENID, "get a token") is not None
    token = fake.access_token
    good = {"version": 2, "openid": OPENID, "scene": 2, "content": "hi"}
    bad_bodies = [
        {**good, "version": 1},
        {**good, "scene": 0},
        {**good, "scene": 5},
        {**good, "scene": "2"},
        {k: v for k, v in good.items() if k != "openid"},
        {**good, "content": ""},
        {**good, "content": "x" * 2501},
    ]
    async with aiohttp.ClientSession(fake.base_url) as http:
        for body in bad_bodies:
            async with http.post(SEC[1:], params={"access_token": token}, json=body) as resp:
                assert (await resp.json())["errcode"] == 47001, body
        async with http.post(SEC[1:], params={"access_token": token}, data=b"not json") as resp:
            assert (await resp.json())["errcode"] == 47001
        async with http.post(SEC[1:], json=good) as resp:
            assert (await resp.json())["errcode"] == 41001
        async with http.post(SEC[1:], params={"access_token": "nope"}, json=good) as resp:
            assert (await resp.json())["errcode"] == 40001
        async with http.post(SEC[1:], params={"access_token": token}, json=good) as resp:
            answer = await resp.json()
    assert answer["errcode"] == 0
    assert answer["result"] == {"suggest": "pass", "label": 100}
    assert answer["detail"][0]["strategy"] == "content_model"
    assert answer["trace_id"]
