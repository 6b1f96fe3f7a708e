"""RoomService over the memory engine: the moderation hook decides before anything is logged."""

from __future__ import annotations

import pytest

from interact.engine import memory_engine
from interact.floor.errors import Code, InteractError
from interact.floor.moderation_policy import Action, Verdict
from rooms.danmaku_log import Appended
from rooms.service import Author, Held, RoomService

AUTHOR = Author("u1", "小明", "viewer")


class ScriptedPolicy:
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.seen: list[tuple[str, str, str]] = []
        self.after: list[tuple[str, str, int]] = []
        self.held: list[dict[str, object]] = []

    async def check_comment(self, room_id: str, uid: str, role: str, text: str) -> Verdict:
        self.seen.append((room_id, uid, text))
        return self.verdict

    async def after_comment(self, room_id: str, comment: dict[str, object], seq: int) -> None:
        self.after.append((str(comment["uid"]), str(comment["text"]), seq))

    async def hold(self, room_id: str, comment: dict[str, object], rule: str) -> str:
        self.held.append(comment)
        return f"item{len(self.held)}"


async def make(policy: ScriptedPolicy) -> tuple[RoomService, str]:
    engine = memory_engine(history_size=10)
    await engine.start()
    service = RoomService(
        rooms=engine.rooms,
        danmaku=engine.danmaku,
        broker=engine.broker,
        presence=engine.presence,
        stats=engine.stats,
        policy=policy,
    )
    room = await service.create("t", None)
    await service.act(room.id, "start")
    return service, room.id


async def test_policy_sees_the_cleaned_text_and_accepts() -> None:
    policy = ScriptedPolicy(Verdict.accept())
    service, rid = await make(policy)
    appended = await service.comment(rid, AUTHOR, "  hello  ", None, None)
    assert isinstance(appended, Appended) and appended.seq == 1
    assert policy.seen == [(rid, "u1", "hello")]
    assert policy.after == [("u1", "hello", 1)]


async def test_rejected_comment_is_not_logged_or_counted() -> None:
    policy = ScriptedPolicy(Verdict(Action.REJECT, code=Code.REJECTED.value, reason="spam"))
    service, rid = await make(policy)
    with pytest.raises(InteractError) as err:
        await service.comment(rid, AUTHOR, "加微信 abc123", None, None)
    assert err.value.code is Code.REJECTED and err.value.message == "spam"
    history = await service.danmaku.history(rid, None, None, 10)
    assert history.seq == 0 and history.items == []
    assert (await service.stats.get(rid))["comments"] == 0


async def test_masked_comment_goes_out_with_the_policy_text() -> None:
    policy = ScriptedPolicy(Verdict(Action.MASK, text="加** abc"))
    service, rid = await make(policy)
    appended = await service.comment(rid, AUTHOR, "加微信 abc", None, None)
    assert isinstance(appended, Appended)
    assert b'"text":"\xe5\x8a\xa0** abc"' in appended.payload


async def test_held_comment_is_not_logged_but_queued() -> None:
    policy = ScriptedPolicy(Verdict(Action.REVIEW, reason="contact"))
    service, rid = await make(policy)
    held = await service.comment(rid, AUTHOR, "私聊我", None, None)
    assert held == Held("item1")
    assert policy.held[0]["text"] == "私聊我" and policy.held[0]["uid"] == "u1"
    assert (await service.danmaku.history(rid, None, None, 10)).items == []
    released = await service.release(rid, policy.held[0])
    assert released.seq == 1


async def test_refusal_carries_its_extra_fields() -> None:
    verdict = Verdict(
        Action.REJECT, code=Code.MUTED.value, reason="muted", extra={"remaining_ms": 5000}
    )
    service, rid = await make(ScriptedPolicy(verdict))
    with pytest.raises(InteractError) as err:
        await service.comment(rid, AUTHOR, "hi", None, None)
    assert err.value.code is Code.MUTED and err.value.extra == {"remaining_ms": 5000}


async def test_invalid_text_never_reaches_the_policy() -> None:
    policy = ScriptedPolicy(Verdict.accept())
    service, rid = await make(policy)
    with pytest.raises(InteractError) as err:
        await service.comment(rid, AUTHOR, "x" * 41, None, None)
    assert err.value.code is Code.TOO_LONG and policy.seen == []
