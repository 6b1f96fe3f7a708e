"""The uid and nick rules (interact.identity) shared by logins, tokens and the CLI."""

from __future__ import annotations

import pytest

from interact.identity import NICK_MAX_LEN, NICK_RULE, nick_problem, valid_nick, valid_uid


@pytest.mark.parametrize("uid", ["u1", "o_abc-DEF", "a.b:c@d", "x" * 64])
def test_good_uids(uid: str) -> None:
    assert valid_uid(uid)


@pytest.mark.parametrize(
    "uid", ["", "ok\n", "ok\r", "ok\x00", "a b", "x" * 65, "١٢٣", "ｕ1", "a{b}", 5, None]
)
def test_bad_uids(uid: object) -> None:
    assert not valid_uid(uid)


@pytest.mark.parametrize(
    "nick",
    ["小明", "Zoë", "a b", "🎉", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "👍🏽", "x" * NICK_MAX_LEN,
     "Tiếng Việt", "สวัสดี", "김철수", "ｆｕｌｌ"],
)  # fmt: skip
def test_good_nicks(nick: str) -> None:
    assert nick_problem(nick) is None, nick_problem(nick)
    assert valid_nick(nick)


@pytest.mark.parametrize(
    "nick",
    [
        "", " ", "x" * (NICK_MAX_LEN + 1), " lead", "trail ",
        "a\x00b", "a\nb", "a\u2028b", "a\x1b[31m",
        "evil\u202egnp", "a\u202ab", "a\u2066b\u2069", "a\u200fb", "a\u061cb",
        "ad\u200dmin", "\u200d🎉", "🎉\u200d", "a\u200bb", "a\ufeffb", "a\u2060b", "a\u00adb",
        "\u3164", "\u115f", "a\u2800", "\ue000", "a\U000e0041",
        "e\u0301\u0301\u0301\u0301", "\u0301a",
        None, 5,
    ],
)  # fmt: skip
def test_bad_nicks(nick: object) -> None:
    assert not valid_nick(nick)


def test_interact_token_refuses_what_verification_would(capsys: pytest.CaptureFixture[str]) -> None:
    from interact.cli import main

    assert main(["token", "--uid", "ok\n", "--secret", "k" * 32]) == 2
    assert "uid must be" in capsys.readouterr().err
    assert main(["token", "--uid", "ok", "--nick", "a\u202eb", "--secret", "k" * 32]) == 2
    assert main(["token", "--uid", "ok", "--secret", "k" * 32]) == 0


# --- found by mutation testing (docs/testing.md) ---------------------------------------


@pytest.mark.parametrize(
    "nick",
    [
        "🧑🏻\u200d💻",  # skin tones at both ends of their range before a joiner
        "🧑🏿\u200d💻",
        "a\u0301\u0302\u0303",  # three marks in a row: the most allowed
        "a\u0301b\u0301\u0302\u0303",  # the count starts again after each letter
    ],
)
def test_good_nicks_at_the_edges(nick: str) -> None:
    assert nick_problem(nick) is None


BANNED = "must not hold control, format (bidi, zero-width) or separator characters"


@pytest.mark.parametrize(
    ("nick", "problem"),
    [
        ("x" * (NICK_MAX_LEN + 1), f"must be {NICK_RULE}"),
        (" lead", "must not start or end with spaces"),
        ("a\u200d🎉", "may hold a zero-width joiner only inside an emoji"),
        ("a\u202eb", BANNED),
        ("👨\u200d👩\u202eabc", BANNED),  # what follows an emoji sequence is still checked
        ("a\u3164", "must not hold invisible characters"),
        ("a\u0301\u0302\u0303\u0304", "must not stack combining marks"),
        ("a\u20dd\u20dd\u20dd\u20dd", "must not stack combining marks"),  # enclosing marks
        ("\u20dda", "must not stack combining marks"),
    ],
)  # fmt: skip
def test_nick_problems_are_named(nick: str, problem: str) -> None:
    # The problem is the message a login answers with (after "nick ").
    assert nick_problem(nick) == problem
    assert not valid_nick(nick)
