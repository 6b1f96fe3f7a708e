"""The report rules (``moderation.reports``) and the ``report`` client message."""

from __future__ import annotations

from typing import Any

import pytest

from archive.records import moderation_record
from interact.floor.errors import BadRequest
from interact.protocol import Codec, ProtocolError, Report, parse_client_frame
from moderation.reports import (
    REASONS,
    ReportConfig,
    Target,
    age_ms,
    check_action,
    parse_report,
    should_hold,
    target_of,
)


def test_parse_a_comment_and_a_user_report() -> None:
    assert parse_report({"seq": 5, "reason": "spam"}) == (Target(seq=5), "spam", "")
    assert parse_report({"uid": "u1", "reason": "fraud", "note": " 骗子 "}) == (
        Target(uid="u1"), "fraud", "骗子")  # fmt: skip
    assert parse_report({"uid": "u1", "reason": "other", "note": None})[2] == ""


@pytest.mark.parametrize(
    "data",
    [
        {"reason": "spam"},  # no target
        {"seq": 1, "uid": "u", "reason": "spam"},  # two
        {"seq": 0, "reason": "spam"},
        {"seq": True, "reason": "spam"},
        {"seq": "5", "reason": "spam"},
        {"seq": 2**53, "reason": "spam"},
        {"uid": "", "reason": "spam"},
        {"uid": "u" * 65, "reason": "spam"},
        {"uid": 5, "reason": "spam"},
        {"seq": 1, "reason": "boring"},
        {"seq": 1},
        {"seq": 1, "reason": "spam", "note": "x" * 201},
        {"seq": 1, "reason": "spam", "note": 5},
    ],
)
def test_bad_reports_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_report(data)


def test_the_reason_list_is_fixed() -> None:
    assert list(REASONS) == ["spam", "abuse", "porn", "politics", "fraud", "minor", "illegal",
                             "other"]  # fmt: skip


def test_hold_rule() -> None:
    assert not should_hold(2, 3, Target(seq=1))
    assert should_hold(3, 3, Target(seq=1))
    assert not should_hold(100, 3, Target(uid="u"))  # users are never held
    assert not should_hold(100, 0, Target(seq=1))  # off


def test_actions() -> None:
    assert check_action("retract", Target(seq=1)) == "retract"
    for action in ("mute", "ban", "dismiss"):
        assert check_action(action, Target(uid="u")) == action
    with pytest.raises(BadRequest):
        check_action("retract", Target(uid="u"))
    with pytest.raises(BadRequest):
        check_action("delete", Target(seq=1))


def test_items_and_age() -> None:
    assert target_of({"target": {"seq": 4}}) == Target(seq=4)
    assert target_of({"target": {"uid": "x"}}) == Target(uid="x")
    assert Target(seq=4).key == "c4" and Target(uid="x").key == "ux"
    assert age_ms({"filed_at": 1_000}, 4_000) == 3_000
    assert age_ms({"filed_at": 5_000}, 4_000) == 0
    assert age_ms({}, 4_000) == 0


def test_config_bounds() -> None:
    with pytest.raises(ValueError):
        ReportConfig(hold_after=-1)
    with pytest.raises(ValueError):
        ReportConfig(response_ms=0)


def test_the_report_message() -> None:
    got = parse_client_frame(
        b'{"t":"report","seq":3,"reason":"spam","note":"n","ref":7,"extra":1}', Codec.JSON
    )
    assert got == Report(fields={"seq": 3, "reason": "spam", "note": "n"}, ref=7)
    bad = parse_client_frame(b'{"t":"report","seq":3,"ref":[1]}', Codec.JSON)
    assert isinstance(bad, ProtocolError)


def test_report_events_become_report_records() -> None:
    assert moderation_record("1-0", {"category": "report", "action": "report"})["k"] == "report"
    assert moderation_record("1-1", {"category": "operator", "action": "mute"})["k"] == "mod"
