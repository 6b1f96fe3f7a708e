"""Viewer reports end to end over each engine's real stores (``moderation.report_service``):
filing, deduplication, the per-user rate, the automatic hold, resolution once with the
reporters told, and the overdue alert, with time driven by the test (no sleeping)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from interact.engine import Engine
from interact.floor.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from interact.reports_setup import comment_lookup
from moderation.report_service import ReportService
from moderation.reports import ReportConfig, Target
from moderation.service import ModerationService
from moderation.wordfilter import default_filter
from rooms.models import Room

T0 = 1_800_000_000_000
MIN = 60_000


class World:
    def __init__(self, engine: Engine, **config: Any) -> None:
        self.engine = engine
        self.now = T0
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.mod = ModerationService(
            limiter=engine.limiter, mutes=engine.mutes, log_store=engine.modlog,
            review=engine.review, settings=engine.mod_settings, words=default_filter(),
            publish=self.publish, clock=lambda: self.now,
        )  # fmt: skip
        self.mod.retract = self.retract
        self.reports = ReportService(
            store=engine.reports, moderation=self.mod, lookup=comment_lookup(engine),
            config=ReportConfig(**config),
        )  # fmt: skip

    async def publish(self, room_id: str, message: dict[str, Any]) -> None:
        self.published.append((room_id, message))

    async def retract(self, room_id: str, seq: int) -> None:
        if not await self.engine.danmaku.retract(room_id, seq):
            raise NotFound(f"no comment {seq}")
        await self.publish(room_id, {"t": "retract", "seq": seq})

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.published if m.get("t") == kind]

    async def log(self, room_id: str) -> list[dict[str, str]]:
        return [ev for _, ev in await self.engine.modlog.read(room_id, None, 1000)]

    async def visible(self, room_id: str) -> list[int]:
        hist = await self.engine.danmaku.history(room_id, None, None, 100)
        return [orjson.loads(i)["seq"] for i in hist.items]


async def live_room(engine: Engine, rid: str = "room1", comments: int = 5) -> None:
    await engine.rooms.create(Room(id=rid, title="t", anchor="a1", created_at=T0))
    await engine.rooms.transition(rid, "start", T0)
    for i in range(1, comments + 1):
        body = {"uid": f"author{i}", "nick": "n", "role": "viewer", "text": f"c{i}",
                "color": 0xFFFFFF, "mode": "scroll", "ts": T0 + i}  # fmt: skip
        await engine.danmaku.append(rid, body)


@pytest.fixture
async def world(engine: Engine) -> World:
    await live_room(engine)
    return World(engine, hold_after=3, burst=5)


async def test_a_report_joins_the_review_queue_with_its_age(world: World) -> None:
    filed = await world.reports.report("room1", "v1", Target(seq=2), "spam", "广告")
    assert filed["duplicate"] is False
    world.now += 90_000
    [listed] = await world.reports.list("room1")
    assert listed["id"] == filed["report"]
    assert listed["age_ms"] == 90_000 and listed["overdue"] is False
    assert listed["target"] == {"seq": 2} and listed["uid"] == "author2"
    assert listed["comment"]["text"] == "c2" and listed["reason"] == "spam"
    assert listed["reporters"] == 1 and listed["reasons"] == {"spam": 1}
    # It is in the review queue with the held comments, marked as a report.
    assert [(i, it["kind"]) for i, it in await world.engine.review.list("room1")] == [
        (filed["report"], "report")]  # fmt: skip
    [event] = await world.log("room1")
    assert event["action"] == "report" and event["category"] == "report"
    assert (event["by"], event["uid"], event["seq"], event["rule"]) == (
        "v1",
        "author2",
        "2",
        "spam",
    )


async def test_duplicates_count_once(world: World) -> None:
    first = await world.reports.report("room1", "v1", Target(seq=2), "spam")
    again = await world.reports.report("room1", "v1", Target(seq=2), "abuse")
    assert again == {"report": first["report"], "duplicate": True}
    [listed] = await world.reports.list("room1")
    assert listed["reporters"] == 1
    assert len(await world.log("room1")) == 1


async def test_reports_are_rate_limited_per_user(world: World) -> None:
    for seq in range(1, 6):
        await world.reports.report("room1", "v1", Target(seq=seq), "spam")
    with pytest.raises(RateLimited) as exc:
        await world.reports.report("room1", "v1", Target(uid="author1"), "spam")
    assert "too many reports" in exc.value.message
    assert exc.value.extra["retry_after_ms"] > 0
    await world.reports.report("room1", "v2", Target(uid="author1"), "spam")  # others may
    world.now += 5_000  # one more after 5 s
    await world.reports.report("room1", "v1", Target(uid="author1"), "spam")


async def test_refused_reports(world: World) -> None:
    with pytest.raises(NotFound):
        await world.reports.report("room1", "v1", Target(seq=99), "spam")
    with pytest.raises(BadRequest):
        await world.reports.report("room1", "author3", Target(seq=3), "spam")
    with pytest.raises(BadRequest):
        await world.reports.report("room1", "v1", Target(uid="v1"), "spam")
    await world.retract("room1", 4)
    with pytest.raises(NotFound):
        await world.reports.report("room1", "v1", Target(seq=4), "spam")
    assert await world.engine.review.pending("room1") == 0


async def test_enough_reporters_hold_a_comment_once(world: World) -> None:
    for uid in ("v1", "v2"):
        await world.reports.report("room1", uid, Target(seq=3), "abuse")
    assert 3 in await world.visible("room1")
    assert world.sent("retract") == []
    await world.reports.report("room1", "v3", Target(seq=3), "abuse")
    assert 3 not in await world.visible("room1")
    assert world.sent("retract") == [{"t": "retract", "seq": 3}]
    with pytest.raises(NotFound):  # held: no longer shown, so nothing more to report
        await world.reports.report("room1", "v4", Target(seq=3), "porn")
    assert world.sent("retract") == [{"t": "retract", "seq": 3}]
    [listed] = await world.reports.list("room1")
    assert listed["reporters"] == 3
    holds = [e for e in await world.log("room1") if e["action"] == "hold"]
    assert [(h["seq"], h["rule"], h["by"]) for h in holds] == [("3", "3 reporters", "system")]
    # Users are never held automatically, however many report them.
    for uid in ("v1", "v2", "v3", "v4"):
        await world.reports.report("room1", uid, Target(uid="author1"), "abuse")
    assert len([e for e in await world.log("room1") if e["action"] == "hold"]) == 1


async def test_concurrent_reporters_hold_once(engine: Engine) -> None:
    await live_room(engine)
    world = World(engine, hold_after=3)
    got = await asyncio.gather(
        *(world.reports.report("room1", f"v{i}", Target(seq=1), "spam") for i in range(12)),
        return_exceptions=True,
    )
    assert world.sent("retract") == [{"t": "retract", "seq": 1}]
    # Those who came after the hold find the comment gone.
    assert all(isinstance(g, dict | NotFound) for g in got)
    assert len([g for g in got if isinstance(g, dict)]) >= 3


async def test_hold_after_zero_never_holds(engine: Engine) -> None:
    await live_room(engine)
    world = World(engine, hold_after=0)
    for i in range(5):
        await world.reports.report("room1", f"v{i}", Target(seq=1), "spam")
    assert 1 in await world.visible("room1")


async def test_resolve_once_and_the_reporters_are_told(world: World) -> None:
    filed = await world.reports.report("room1", "v1", Target(seq=2), "spam")
    await world.reports.report("room1", "v2", Target(seq=2), "fraud")
    world.now += 4 * MIN
    done = await world.reports.resolve(
        "room1", filed["report"], "retract", by="op", role="operator"
    )
    assert done == {"report": filed["report"], "outcome": "retract", "applied": True,
                    "reporters": 2, "waited_ms": 4 * MIN}  # fmt: skip
    assert 2 not in await world.visible("room1")
    with pytest.raises(Conflict):
        await world.reports.resolve("room1", filed["report"], "dismiss", by="op", role="operator")
    [told] = world.sent("report_result")
    assert told == {"t": "report_result", "to": [], "uids": ["v1", "v2"], "outcome": "retract",
                    "report": filed["report"], "target": {"seq": 2}}  # fmt: skip
    [resolved] = [e for e in await world.log("room1") if e["action"] == "resolve"]
    assert (resolved["by"], resolved["rule"], resolved["reporters"], resolved["waited_ms"]) == (
        "op", "retract", "2", str(4 * MIN))  # fmt: skip
    assert await world.reports.list("room1") == []


async def test_concurrent_resolutions_happen_once(world: World) -> None:
    filed = await world.reports.report("room1", "v1", Target(uid="author1"), "abuse")
    got = await asyncio.gather(
        *(world.reports.resolve("room1", filed["report"], a, by="op", role="operator")
          for a in ["mute", "dismiss"] * 10),
        return_exceptions=True,
    )  # fmt: skip
    assert len([g for g in got if isinstance(g, dict)]) == 1
    assert all(isinstance(g, Conflict) for g in got if not isinstance(g, dict))
    assert len(world.sent("report_result")) == 1


async def test_mute_and_ban(world: World) -> None:
    muted = await world.reports.report("room1", "v1", Target(seq=1), "abuse")
    await world.reports.resolve("room1", muted["report"], "mute", by="a1", role="anchor",
                                seconds=120)  # fmt: skip
    assert (
        await world.engine.mutes.muted_until("room1", "author1", world.now) == world.now + 120_000
    )
    banned = await world.reports.report("room1", "v1", Target(uid="author5"), "fraud")
    with pytest.raises(Forbidden):  # an anchor cannot ban everywhere; nothing is taken
        await world.reports.resolve("room1", banned["report"], "ban", by="a1", role="anchor")
    with pytest.raises(BadRequest):  # a user cannot be retracted
        await world.reports.resolve("room1", banned["report"], "retract", by="o", role="operator")
    assert len(await world.reports.list("room1")) == 1
    await world.reports.resolve("room1", banned["report"], "ban", by="o", role="operator")
    assert await world.engine.mutes.banned("author5", world.now)
    assert world.sent("ban") == [{"t": "ban", "uid": "author5"}]


async def test_a_report_is_not_released_as_a_held_comment(world: World) -> None:
    filed = await world.reports.report("room1", "v1", Target(seq=1), "spam")
    with pytest.raises(Conflict):
        await world.mod.take_review("room1", filed["report"], "op", "drop")
    assert len(await world.reports.list("room1")) == 1


async def test_an_overdue_report_alerts_the_staff_once(world: World) -> None:
    late = await world.reports.report("room1", "v1", Target(seq=1), "spam")
    world.now += 5 * MIN
    quick = await world.reports.report("room1", "v1", Target(seq=2), "spam")
    world.now += 9 * MIN
    await world.reports.resolve("room1", quick["report"], "dismiss", by="op", role="operator")
    assert await world.reports.sweep() == 0  # 14 minutes: not yet
    world.now += MIN + 1  # 15 minutes and 1 ms
    assert await world.reports.sweep() == 1
    [alert] = world.sent("notice")
    assert alert["to"] == ["anchor", "operator"] and alert["level"] == "alert"
    assert alert["report"] == late["report"] and "waited 15 min" in alert["text"]
    [listed] = await world.reports.list("room1")
    assert listed["overdue"] is True
    world.now += 10 * MIN
    assert await world.reports.sweep() == 0  # once
    world.now += 20 * MIN  # the one resolved in time never alerts
    assert await world.reports.sweep() == 0
    [overdue] = [e for e in await world.log("room1") if e["action"] == "overdue"]
    assert overdue["item"] == late["report"] and overdue["waited_ms"] == str(15 * MIN + 1)
