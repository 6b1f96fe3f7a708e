"""interact.console_login: the users file and the sliding attempt limits (no I/O)."""

from __future__ import annotations

import pytest

from interact.console_login import SlidingLimit, parse_users
from interact.tokens import Role

HASH = "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def test_parse_users_reads_accounts() -> None:
    text = f"# staff\n\nboss operator {HASH}\n  anchor1   anchor  {HASH}  \n"
    accounts = parse_users(text)
    assert [(a.username, a.role) for a in accounts.values()] == [
        ("boss", Role.OPERATOR),
        ("anchor1", Role.ANCHOR),
    ]
    assert accounts["boss"].hash == HASH


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("boss operator", "expected 'username role hash'"),
        (f"a b operator {HASH}", "expected 'username role hash'"),
        (f"bo$s operator {HASH}", "the username must be"),
        (f"boss viewer {HASH}", "the role must be operator or anchor"),
        ("boss operator hunter2", "the hash must be an Argon2 hash"),
    ],
)
def test_parse_users_names_the_bad_line(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=f"users line 2: {problem}"):
        parse_users(f"ok operator {HASH}\n{line}\n", "users")


def test_parse_users_refuses_a_name_twice() -> None:
    with pytest.raises(ValueError, match="boss is listed twice"):
        parse_users(f"boss operator {HASH}\nboss anchor {HASH}\n")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_limit_opens_again_as_old_hits_leave_the_window() -> None:
    clock = Clock()
    limit = SlidingLimit(3, 60.0, clock=clock)
    for step in range(3):
        assert limit.retry_after("a") == 0
        limit.hit("a")
        clock.now += 10 if step < 2 else 0
    # Hits at 1000, 1010, 1020: the first leaves the window at 1060.
    assert limit.retry_after("a") == pytest.approx(40.0)
    assert limit.retry_after("b") == 0
    clock.now = 1059.9
    assert limit.retry_after("a") == pytest.approx(0.1)
    clock.now = 1060.0
    assert limit.retry_after("a") == 0
    limit.hit("a")
    assert limit.retry_after("a") == pytest.approx(10.0)  # 1010 leaves at 1070


def test_sliding_limit_forgets_the_stalest_keys_past_its_size() -> None:
    clock = Clock()
    limit = SlidingLimit(1, 60.0, max_keys=100, clock=clock)
    for n in range(1000):
        limit.hit(f"k{n}")
    assert len(limit._log) == 100
    assert limit.retry_after("k999") > 0
    assert limit.retry_after("k0") == 0  # forgotten: the cost of a bounded table
