"""ReportStore contract (``moderation.report_store``) and the review queue's ``kind`` and
``get`` (``moderation.review_queue``), on every engine."""

from __future__ import annotations

import asyncio

import pytest

from interact.engine import Engine
from tests.contract.conftest import MakeEngine


def item(target: str, reporter: str = "v1") -> dict[str, object]:
    return {"kind": "report", "target": {"seq": 7}, "uid": "bad", "reason": "spam",
            "reporter": reporter, "filed_at": 1_000, "t": target}  # fmt: skip


async def test_reports_on_one_target_share_one_queue_item(engine: Engine) -> None:
    first = await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 1_000)
    assert first.new and first.opened and first.reporters == 1
    again = await engine.reports.file("r", "c7", "v1", "abuse", item("c7"), 1_001)
    assert (again.report_id, again.new, again.opened, again.reporters) == (
        first.report_id, False, False, 1)  # fmt: skip
    second = await engine.reports.file("r", "c7", "v2", "abuse", item("c7", "v2"), 1_002)
    assert (second.report_id, second.new, second.opened, second.reporters) == (
        first.report_id, True, False, 2)  # fmt: skip
    other = await engine.reports.file("r", "uBad", "v1", "fraud", item("uBad"), 1_003)
    assert other.opened and other.report_id != first.report_id
    # One item per target in the queue, the first reporter's; the reasons of each kept.
    listed = await engine.review.list("r", 10, kind="report")
    assert [(i, it["t"], it["reporter"]) for i, it in listed] == [
        (first.report_id, "c7", "v1"), (other.report_id, "uBad", "v1")]  # fmt: skip
    assert await engine.reports.reporters("r", first.report_id) == {"v1": "spam", "v2": "abuse"}
    assert await engine.review.get("r", first.report_id) == item("c7")


async def test_resolve_is_once_and_reopens_the_target(engine: Engine) -> None:
    filed = await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 1_000)
    await engine.reports.file("r", "c7", "v2", "porn", item("c7", "v2"), 1_000)
    got = await asyncio.gather(*(engine.reports.resolve("r", filed.report_id) for _ in range(20)))
    done = [g for g in got if g is not None]
    assert done == [(item("c7"), {"v1": "spam", "v2": "porn"})]
    assert await engine.reports.resolve("r", filed.report_id) is None
    assert await engine.review.get("r", filed.report_id) is None
    assert await engine.reports.reporters("r", filed.report_id) == {}
    # The same reporter may report the target again: a new report.
    again = await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 2_000)
    assert again.new and again.opened and again.reporters == 1
    assert again.report_id != filed.report_id


@pytest.mark.parametrize("kind", ["redis"])
async def test_resolve_from_two_processes_is_once(make_engine: MakeEngine) -> None:
    one, two = await make_engine(), await make_engine()
    filed = await one.reports.file("r", "uX", "v1", "abuse", item("uX"), 1_000)
    got = await asyncio.gather(*(e.reports.resolve("r", filed.report_id) for e in [one, two] * 10))
    assert len([g for g in got if g is not None]) == 1


async def test_concurrent_first_reports_open_one_item(engine: Engine) -> None:
    filed = await asyncio.gather(
        *(engine.reports.file("r", "c9", f"v{i}", "spam", item("c9", f"v{i}"), 1_000)
          for i in range(30))
    )  # fmt: skip
    assert len({f.report_id for f in filed}) == 1
    assert sum(f.opened for f in filed) == 1
    assert sorted(f.reporters for f in filed) == list(range(1, 31))
    assert await engine.review.pending("r") == 1


async def test_hold_once(engine: Engine) -> None:
    filed = await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 1_000)
    got = await asyncio.gather(*(engine.reports.hold_once("r", filed.report_id) for _ in range(10)))
    assert sorted(got) == [False] * 9 + [True]
    assert not await engine.reports.hold_once("r", "1-0")  # not open
    await engine.reports.resolve("r", filed.report_id)
    assert not await engine.reports.hold_once("r", filed.report_id)


async def test_a_report_whose_item_left_the_queue_is_not_open(engine: Engine) -> None:
    filed = await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 1_000)
    assert await engine.review.take("r", filed.report_id) is not None  # e.g. trimmed
    assert await engine.reports.reporters("r", filed.report_id) == {}
    assert await engine.reports.resolve("r", filed.report_id) is None
    again = await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 2_000)
    assert again.opened and again.new and again.reporters == 1


@pytest.mark.parametrize("report_id", ["", "nope", "1-", "0-0", "99999999999999-0"])
async def test_unknown_ids(engine: Engine, report_id: str) -> None:
    await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 1_000)
    assert await engine.reports.resolve("r", report_id) is None
    assert await engine.reports.reporters("r", report_id) == {}
    assert await engine.review.get("r", report_id) is None


async def test_a_bad_item_changes_nothing(engine: Engine) -> None:
    with pytest.raises(ValueError):
        await engine.reports.file("r", "c7", "v1", "spam", {"x": {1, 2}}, 1_000)
    assert await engine.review.pending("r") == 0
    ok = await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 1_000)
    assert ok.new and ok.opened


async def test_alerts_are_claimed_once(make_engine: MakeEngine) -> None:
    one = await make_engine()
    await one.reports.schedule_alert("r", "5-0", 300)
    await one.reports.schedule_alert("r", "3-0", 100)
    await one.reports.schedule_alert("s", "4-0", 200)
    await one.reports.schedule_alert("r", "3-0", 900)  # scheduled already: kept
    await one.reports.schedule_alert("r", "6-0", 400)
    await one.reports.cancel_alert("r", "6-0")
    assert await one.reports.due_alerts(50, 10) == []
    assert await one.reports.due_alerts(250, 10) == [("r", "3-0"), ("s", "4-0")]
    assert await one.reports.due_alerts(250, 10) == []  # each once
    assert await one.reports.due_alerts(10_000, 0) == []
    assert await one.reports.due_alerts(10_000, 10) == [("r", "5-0")]


@pytest.mark.parametrize("kind", ["redis"])
async def test_alerts_from_two_processes_are_claimed_once(make_engine: MakeEngine) -> None:
    one, two = await make_engine(), await make_engine()
    for i in range(50):
        await one.reports.schedule_alert(f"room{i % 5}", f"{i + 1}-0", i)
    claimed: list[tuple[str, str]] = []
    for _ in range(50):  # rounds of racing sweeps until the schedule is empty
        got = await asyncio.gather(*(e.reports.due_alerts(1_000, 7) for e in [one, two] * 4))
        claimed += [pair for batch in got for pair in batch]
        if not any(got):
            break
    assert len(claimed) == len(set(claimed)) == 50


async def test_review_list_by_kind(engine: Engine) -> None:
    held = [await engine.review.hold("r", {"comment": {"text": f"h{i}"}}) for i in range(150)]
    filed = await engine.reports.file("r", "c7", "v1", "spam", item("c7"), 1_000)
    more = await engine.review.hold("r", {"comment": {"text": "late"}})
    # A report behind 150 held comments is found, and the limit counts matches only.
    assert [i for i, _ in await engine.review.list("r", 1, kind="report")] == [filed.report_id]
    assert [i for i, _ in await engine.review.list("r", 200, kind="")] == [*held, more]
    assert len(await engine.review.list("r", 1000)) == 152
    assert await engine.review.list("r", 10, after=filed.report_id, kind="report") == []
    assert [i for i, _ in await engine.review.list("r", 2, after=held[-1], kind="")] == [more]
