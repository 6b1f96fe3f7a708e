"""The uid and nick rules (interact.identity) shared by logins, tokens and the CLI."""

from __future__ import annotations

import pytest

from interact.identity import NICK_MAX_LEN, nick_problem, valid_nick, valid_uid


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
