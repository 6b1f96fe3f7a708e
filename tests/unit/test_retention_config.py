"""Retention settings (docs/archive.md section 11): bounds, and the policy they build."""

from __future__ import annotations

import pytest

from interact.config import MIN_ARCHIVED_RETENTION_DAYS, Config
from rooms.retention import DAY_MS, RetentionPolicy


def test_defaults_keep_money_for_the_refund_window() -> None:
    config = Config()
    config.validate()
    policy = RetentionPolicy.of_days(config.retention_days, config.refund_window_days)
    assert policy.hot_ms == 7 * DAY_MS and policy.money_ms == 400 * DAY_MS


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"retention_days": 0}, "retention_days must be positive"),
        ({"retention_days": float("nan")}, "retention_days must be positive"),
        ({"retention_days": 8, "refund_window_days": 7}, "at most refund_window_days"),
        ({"archive_dir": "/tmp/a", "retention_days": 0.5}, "with archiving on"),
        ({"retention_sweep": 0}, "retention_sweep must be in"),
        ({"retention_sweep": float("nan")}, "retention_sweep must be in"),
        ({"retention_sweep": 3601}, "retention_sweep must be in"),
    ],
)
def test_bad_retention_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config(**fields).validate()  # type: ignore[arg-type]


def test_archiving_allows_a_day_and_more() -> None:
    Config(archive_dir="/tmp/a", retention_days=MIN_ARCHIVED_RETENTION_DAYS).validate()


def test_policy_refuses_hot_longer_than_money() -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(hot_ms=2, money_ms=1)
