"""Pre-live reminders end to end in one process: ``growth.service.ReminderService`` on
each engine's store, the real ``SubscribeSender`` against the fake WeChat server, and a
clock the test drives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from growth.alerts import Alert
from growth.reminders import Job, Mark, Stage
from growth.service import ReminderService, ReminderSettings, RoomInfo
from growth.subscribe_sender import SubscribeSender
from tests.contract.growth_fixtures import MakeStores, make_stores_fixture  # noqa: F401
from tests.fakes.wechat import FakeWeChat

R = "r1"
HOUR = 3600 * 1000
T0 = 1_800_000_000_000  # "now" at the start of each test
START = T0 + 5 * HOUR
TPL = "tpl-live"
PAGE = "pages/room/room"


@dataclass
class World:
    fake: FakeWeChat
    service: ReminderService
    rooms: dict[str, RoomInfo]
    now: list[int]
    alerts: list[Alert] = field(default_factory=list)

    def sent_to(self) -> list[str]:
        return [m["touser"] for m in self.fake.subscribe_sent]

    async def subscribe(self, uid: str, n: int = 2, grants: int | None = None) -> None:
        self.fake.grant_subscribe(uid, TPL, n if grants is None else grants)
        await self.service.subscribe(R, uid, [TPL] * n)

    async def at(self, ms: int) -> int:
        self.now[0] = ms
        return await self.service.run_due()


@pytest.fixture
async def world(make_stores: MakeStores) -> AsyncIterator[World]:
    _, store = make_stores()
    async with FakeWeChat() as fake:
        fake.subscribe_templates[TPL] = {"thing1": "thing", "time2": "time"}
        fake.subscribe_pages.add(PAGE)
        sender = SubscribeSender(fake.appid, fake.secret, fake.base_url or "", timeout=2.0)
        rooms = {R: RoomInfo("scheduled", START, "春季新品发布会 · 限时秒杀专场直播间")}
        now = [T0]

        async def room_of(room_id: str) -> RoomInfo | None:
            return rooms.get(room_id)

        service = ReminderService(
            store,
            room_of,
            ReminderSettings(templates=(TPL,), page=PAGE, per_s=1000.0, retry_ms=10_000),
            sender=sender,
            clock=lambda: now[0],
        )
        w = World(fake, service, rooms, now)
        service.alerts.subscribe(w.alerts.append)
        try:
            yield w
        finally:
            await sender.close()


async def test_each_subscriber_gets_one_message_per_stage_and_credit(world: World) -> None:
    await world.subscribe("u1", 2)
    await world.subscribe("u2", 1)
    await world.subscribe("u3", 2)
    assert await world.at(START - 3 * HOUR - 1) == 0
    assert world.fake.subscribe_sent == []
    await world.at(START - 3 * HOUR)
    assert sorted(world.sent_to()) == ["u1", "u2", "u3"]
    first = world.fake.subscribe_sent[0]
    assert first["template_id"] == TPL
    assert first["page"] == f"{PAGE}?room={R}"
    assert first["miniprogram_state"] == "formal" and first["lang"] == "zh_CN"
    # Beijing time, and the title cut to WeChat's 20 characters for a thing.
    assert first["data"]["time2"]["value"] == "2027-01-15 21:00"
    assert first["data"]["thing1"]["value"] == "春季新品发布会 · 限时秒杀专场直播间"[:20]
    assert await world.at(START - HOUR) == 0  # nothing due until the start
    await world.at(START)
    # u2 spent its only credit on the first reminder.
    assert sorted(world.sent_to()) == ["u1", "u1", "u2", "u3", "u3"]
    await world.at(START + 60_000)
    assert len(world.fake.subscribe_sent) == 5
    assert await world.service.store.due_jobs() == {}
    assert world.service.stats.sent == 5


async def test_a_reschedule_never_sends_for_the_old_time(world: World) -> None:
    await world.subscribe("u1", 2)
    later = START + 24 * HOUR
    world.rooms[R] = RoomInfo("scheduled", later, "t")
    # The API plans the new start's jobs and drops the old ones; a job of the old start
    # left behind (here: not dropped) is dropped by the worker when it comes due.
    await world.service.plan(R, later, None)
    await world.at(START)
    assert world.fake.subscribe_sent == []
    assert world.service.stats.jobs_dropped == 2
    await world.at(later - 3 * HOUR)
    await world.at(later)
    assert world.sent_to() == ["u1", "u1"]
    assert {m["data"]["time2"]["value"] for m in world.fake.subscribe_sent} == {"2027-01-16 21:00"}


async def test_an_ended_room_is_not_reminded(world: World) -> None:
    await world.subscribe("u1", 2)
    world.rooms[R] = RoomInfo("ended", START, "t")
    await world.at(START)
    assert world.fake.subscribe_sent == []


async def test_43101_drops_the_credit_and_is_not_retried(world: World) -> None:
    await world.subscribe("u1", 2, grants=0)  # WeChat holds no grant (unsubscribed)
    await world.subscribe("u2", 2)
    await world.at(START - 3 * HOUR)
    assert world.sent_to() == ["u2"]
    lead = Job(R, Stage.LEAD, START)
    assert await world.service.store.mark_of(lead, "u1") is Mark.REFUSED
    assert await world.service.store.credits(R, "u1") == {}
    await world.at(START)
    assert world.sent_to() == ["u2", "u2"]
    assert world.fake.calls["/cgi-bin/message/subscribe/send"] == 3
    assert world.service.stats.refused == 1
    assert world.alerts == []


@pytest.mark.parametrize("errcode", [47003, 41030])
async def test_configuration_errors_alert_once_and_keep_the_credits(
    world: World, errcode: int
) -> None:
    if errcode == 47003:
        world.fake.subscribe_templates[TPL] = {"thing1": "thing", "date9": "date"}
    else:
        world.fake.subscribe_pages.clear()
    await world.subscribe("u1", 1)
    await world.subscribe("u2", 1)
    await world.at(START - 3 * HOUR)
    assert world.fake.subscribe_sent == []
    assert [(a.kind, a.errcode, a.room_id) for a in world.alerts] == [
        ("reminder_config", errcode, R)
    ]
    lead = Job(R, Stage.LEAD, START)
    for uid in ("u1", "u2"):
        assert await world.service.store.mark_of(lead, uid) is Mark.FAILED
        assert await world.service.store.credits(R, uid) == {TPL: 1}
    # Fixed before the start: the credit kept serves the start's reminder.
    world.fake.subscribe_templates[TPL] = {"thing1": "thing", "time2": "time"}
    world.fake.subscribe_pages.add(PAGE)
    await world.at(START)
    assert sorted(world.sent_to()) == ["u1", "u2"]


@pytest.mark.parametrize("token_error", ["invalid", "expired"])
async def test_40001_and_42001_refresh_the_token_once(world: World, token_error: str) -> None:
    await world.subscribe("u1", 2)
    await world.subscribe("u2", 2)
    await world.at(START - 3 * HOUR)
    assert world.fake.calls["/cgi-bin/token"] == 1
    if token_error == "invalid":
        world.fake.invalidate_tokens()  # 40001
    else:
        world.fake.expire_tokens()  # 42001
    await world.at(START)
    assert sorted(world.sent_to()) == ["u1", "u1", "u2", "u2"]
    # One refresh for the first rejected call; the second used the new token.
    assert world.fake.calls["/cgi-bin/token"] == 2
    assert world.fake.calls["/cgi-bin/message/subscribe/send"] == 5


async def test_a_refusal_that_proves_nothing_went_out_is_retried(world: World) -> None:
    await world.subscribe("u1", 2)
    world.fake.fail_next("/cgi-bin/message/subscribe/send", -1, "system error")
    await world.at(START - 3 * HOUR)
    assert world.fake.subscribe_sent == []
    lead = Job(R, Stage.LEAD, START)
    assert await world.service.store.mark_of(lead, "u1") is None
    assert await world.service.store.credits(R, "u1") == {TPL: 2}
    assert await world.at(START - 3 * HOUR + 9_999) == 0  # retried after retry_ms
    await world.at(START - 3 * HOUR + 10_000)
    assert world.sent_to() == ["u1"]


async def test_a_lost_answer_is_never_sent_again(world: World) -> None:
    await world.subscribe("u1", 2)
    world.fake.fail_next("/cgi-bin/message/subscribe/send", status=502)
    await world.at(START - 3 * HOUR)
    lead = Job(R, Stage.LEAD, START)
    assert await world.service.store.mark_of(lead, "u1") is Mark.UNKNOWN
    assert await world.service.store.credits(R, "u1") == {TPL: 1}
    await world.at(START - 3 * HOUR + 60_000)
    assert world.fake.calls["/cgi-bin/message/subscribe/send"] == 1
    await world.at(START)
    assert world.sent_to() == ["u1"]  # the start's reminder, with the second credit


async def test_subscriptions_are_bounded_and_checked(world: World) -> None:
    from interact.floor.errors import BadRequest, Conflict

    with pytest.raises(BadRequest):
        world.service.check_templates(["other"])
    with pytest.raises(BadRequest):
        world.service.check_templates([TPL] * 11)
    with pytest.raises(BadRequest):
        world.service.check_templates("tpl")
    assert await world.service.subscribe(R, "u1", [TPL] * 10) == (4, {TPL: 4})
    world.rooms[R] = RoomInfo("live", START, "t")
    with pytest.raises(Conflict):
        await world.service.subscribe(R, "u2", [TPL])
    world.rooms[R] = RoomInfo("scheduled", None, "t")
    with pytest.raises(Conflict):
        await world.service.subscribe(R, "u2", [TPL])
