"""commerce.draw: the committed, HMAC-ranked lottery draw and its verification."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce.draw import (
    SECRET_BYTES,
    Check,
    DrawError,
    Status,
    commitment,
    draw,
    list_sha256,
    new_secret,
    rank_key,
    ranked,
    verify,
)

SECRET = bytes(range(32))
LOTTERY = "L1"

uids = st.text(
    alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)
entrant_lists = st.lists(uids, max_size=40)
secrets_ = st.binary(min_size=SECRET_BYTES, max_size=SECRET_BYTES)
lottery_ids = st.text(min_size=1, max_size=16)
winner_counts = st.integers(1, 50)


def status(report_checks: tuple[Check, ...], name: str) -> Status:
    return next(check.status for check in report_checks if check.name == name)


def message(report_checks: tuple[Check, ...], name: str) -> str:
    return next(check.message for check in report_checks if check.name == name)


# --- commit and rank -----------------------------------------------------------------------


def test_new_secret_is_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert isinstance(first, bytes) and len(first) == SECRET_BYTES
    assert first != second


def test_commitment_is_hex_sha256() -> None:
    assert commitment(SECRET) == hashlib.sha256(SECRET).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", commitment(new_secret()))


def test_known_answer_computed_by_hand() -> None:
    entrants = ["carol", "alice", "bob"]
    keys = {
        uid: hmac.new(SECRET, f"{LOTTERY}:{uid}".encode(), hashlib.sha256).hexdigest()
        for uid in entrants
    }
    assert {uid: rank_key(SECRET, LOTTERY, uid) for uid in entrants} == keys
    by_hand = sorted(entrants, key=lambda uid: (keys[uid], uid))
    result = draw(SECRET, LOTTERY, entrants, 2)
    assert result.winners == by_hand[:2]
    assert result.unused == 0
    assert result.proof == {
        "secret": SECRET.hex(),
        "entries_sha256": hashlib.sha256(b"alice\nbob\ncarol").hexdigest(),
        "entries": 3,
    }


def test_known_answer_literal() -> None:
    # Cross-checked with `openssl dgst -sha256 -mac HMAC -macopt hexkey:…` and sha256sum.
    assert commitment(SECRET) == "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    assert rank_key(SECRET, "L1", "bob") == (
        "8400f964dce6529921cb54659ee19e00ea7f2d8f2bed726d76e5e3aaae5d0dc3"
    )
    assert rank_key(SECRET, "L1", "carol") == (
        "eac9e8e5d36eea4f2e41eeb28dfa6f1affefbd35ee279e229161af1fe3c06493"
    )
    assert rank_key(SECRET, "L1", "alice") == (
        "ee1cf2daa8b0c6e309ffa58ba665669c016d9152ada3b697cb6a6870e193b6b5"
    )
    result = draw(SECRET, "L1", ["alice", "bob", "carol"], 3)
    assert result.winners == ["bob", "carol", "alice"]
    assert result.proof["entries_sha256"] == (
        "180fb4068fd5af9e707e2cd14ea439ac159703e1baef83af87e8cf2f1868d10f"
    )


def test_rank_key_message_is_lottery_colon_uid_in_utf8() -> None:
    expected = hmac.new(SECRET, "抽奖-7:用户😀".encode(), hashlib.sha256).hexdigest()
    assert rank_key(SECRET, "抽奖-7", "用户😀") == expected


def test_ties_are_broken_by_uid() -> None:
    same = "0" * 64
    keys = {"bob": same, "alice": same, "zed": "f" * 64, "carl": "1" + "0" * 63, "amy": same}
    assert ranked(keys) == ["alice", "amy", "bob", "carl", "zed"]


def test_rank_keys_order_as_hex_strings() -> None:
    # Lower hex first; all keys have 64 digits so string order is numeric order.
    keys = {"a": "ff" + "0" * 62, "b": "0f" + "f" * 62, "c": "10" + "0" * 62}
    assert ranked(keys) == ["b", "c", "a"]


def test_list_sha256_sorts_by_code_point_and_dedupes() -> None:
    # "Z" < "a" < "é" < "😀" by code point (and by UTF-8 bytes).
    expected = hashlib.sha256("Z\na\né\n😀".encode()).hexdigest()
    assert list_sha256(["😀", "a", "é", "Z", "a"]) == expected
    assert list_sha256([]) == hashlib.sha256(b"").hexdigest()


# --- draw properties -----------------------------------------------------------------------


@settings(max_examples=200)
@given(secrets_, lottery_ids, entrant_lists, winner_counts)
def test_draw_properties(secret: bytes, lottery_id: str, entrants: list[str], n: int) -> None:
    result = draw(secret, lottery_id, entrants, n)
    unique = set(entrants)
    assert set(result.winners) <= unique
    assert len(set(result.winners)) == len(result.winners)
    assert len(result.winners) == min(n, len(unique))
    assert result.unused == max(0, n - len(unique))
    assert result.proof["entries"] == len(unique)
    assert result.proof["entries_sha256"] == list_sha256(unique)
    assert bytes.fromhex(str(result.proof["secret"])) == secret
    # The winners are exactly the lowest (key, uid) pairs.
    keys = {uid: rank_key(secret, lottery_id, uid) for uid in unique}
    assert result.winners == sorted(unique, key=lambda uid: (keys[uid], uid))[:n]
    assert "prior_winners_sha256" not in result.proof


@given(secrets_, lottery_ids, entrant_lists, winner_counts)
def test_draw_is_deterministic(secret: bytes, lottery_id: str, entrants: list[str], n: int) -> None:
    assert draw(secret, lottery_id, entrants, n) == draw(secret, lottery_id, list(entrants), n)


@given(secrets_, entrant_lists, winner_counts, st.data())
def test_input_order_and_duplicates_do_not_matter(
    secret: bytes, entrants: list[str], n: int, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(entrants))
    doubled = entrants + data.draw(st.lists(st.sampled_from(entrants))) if entrants else []
    base = draw(secret, LOTTERY, entrants, n)
    assert draw(secret, LOTTERY, shuffled, n) == base
    assert draw(secret, LOTTERY, doubled, n) == base
    assert draw(secret, LOTTERY, iter(entrants), n) == base  # any iterable, read once


def test_every_entrant_wins_when_prizes_outnumber_them() -> None:
    result = draw(SECRET, LOTTERY, ["a", "b"], 5)
    assert sorted(result.winners) == ["a", "b"]
    assert result.unused == 3


def test_no_entrants() -> None:
    result = draw(SECRET, LOTTERY, [], 3)
    assert result.winners == []
    assert result.unused == 3
    assert result.proof["entries"] == 0
    assert result.proof["entries_sha256"] == hashlib.sha256(b"").hexdigest()


def test_changing_the_secret_changes_the_ranking() -> None:
    entrants = [f"u{i}" for i in range(20)]
    other = bytes([1]) + SECRET[1:]
    assert draw(SECRET, LOTTERY, entrants, 20).winners != draw(other, LOTTERY, entrants, 20).winners


def test_changing_the_lottery_changes_the_ranking() -> None:
    entrants = [f"u{i}" for i in range(20)]
    assert draw(SECRET, "L1", entrants, 20).winners != draw(SECRET, "L2", entrants, 20).winners


@pytest.mark.parametrize(
    ("secret", "lottery_id", "entrants", "winners", "fragment"),
    [
        (SECRET[:31], LOTTERY, ["a"], 1, "32 bytes"),
        (SECRET.hex(), LOTTERY, ["a"], 1, "32 bytes"),
        (SECRET, "", ["a"], 1, "lottery_id"),
        (SECRET, LOTTERY, ["a"], 0, "positive"),
        (SECRET, LOTTERY, ["a"], True, "positive"),
        (SECRET, LOTTERY, ["a"], 1.0, "positive"),
        (SECRET, LOTTERY, ["a", ""], 1, "non-empty"),
        (SECRET, LOTTERY, ["a\nb"], 1, "newlines"),
        (SECRET, LOTTERY, ["\ud800"], 1, "Unicode"),
        (SECRET, LOTTERY, [7], 1, "string"),
    ],
)
def test_bad_draw_inputs(
    secret: Any, lottery_id: str, entrants: list[Any], winners: Any, fragment: str
) -> None:
    with pytest.raises(DrawError, match=fragment):
        draw(secret, lottery_id, entrants, winners)


# --- "viewers who have not won yet first" --------------------------------------------------


@settings(max_examples=200)
@given(secrets_, entrant_lists, winner_counts, st.data())
def test_exclude_first_rule(
    secret: bytes, entrants: list[str], n: int, data: st.DataObject
) -> None:
    unique = sorted(set(entrants))
    prior = set(data.draw(st.lists(st.sampled_from(unique)))) if unique else set()
    outsiders = set(data.draw(st.lists(uids.filter(lambda uid: uid not in unique), max_size=3)))
    result = draw(secret, LOTTERY, entrants, n, exclude_first=prior | outsiders)
    keys = {uid: rank_key(secret, LOTTERY, uid) for uid in unique}

    def order(group: set[str]) -> list[str]:
        return sorted(group, key=lambda uid: (keys[uid], uid))

    # Fresh entrants in plain draw order, then prior winners in plain draw order.
    expected = (order(set(unique) - prior) + order(prior))[:n]
    assert result.winners == expected
    assert len(result.winners) == min(n, len(unique))
    # A prior winner wins only once every fresh entrant has.
    if any(uid in prior for uid in result.winners):
        assert set(unique) - prior <= set(result.winners)
    # Only the prior winners who entered are hashed; outsiders leave no trace.
    assert result.proof["prior_winners_sha256"] == list_sha256(prior)
    assert {k: v for k, v in result.proof.items() if k != "prior_winners_sha256"} == draw(
        secret, LOTTERY, entrants, n
    ).proof


def test_exclude_first_example() -> None:
    entrants = ["alice", "bob", "carol"]  # plain order: bob, carol, alice
    assert draw(SECRET, LOTTERY, entrants, 2).winners == ["bob", "carol"]
    result = draw(SECRET, LOTTERY, entrants, 2, exclude_first={"bob", "dave"})
    assert result.winners == ["carol", "alice"]
    assert result.proof["prior_winners_sha256"] == hashlib.sha256(b"bob").hexdigest()
    everyone = draw(SECRET, LOTTERY, entrants, 3, exclude_first={"carol", "bob"})
    assert everyone.winners == ["alice", "bob", "carol"]


def test_exclude_first_empty_matches_plain_draw_but_says_so() -> None:
    plain = draw(SECRET, LOTTERY, ["alice", "bob", "carol"], 2)
    result = draw(SECRET, LOTTERY, ["alice", "bob", "carol"], 2, exclude_first=set())
    assert result.winners == plain.winners
    assert result.proof["prior_winners_sha256"] == hashlib.sha256(b"").hexdigest()


# --- verify --------------------------------------------------------------------------------


def published(secret: bytes, entrants: list[str], n: int, **kwargs: Any) -> dict[str, Any]:
    result = draw(secret, LOTTERY, entrants, n, **kwargs)
    return {
        "commit": commitment(secret),
        "secret_hex": str(result.proof["secret"]),
        "lottery_id": LOTTERY,
        "entrants": entrants,
        "winners": n,
        "expected_winners": result.winners,
        "entries_sha256": str(result.proof["entries_sha256"]),
    }


@settings(max_examples=100)
@given(secrets_, entrant_lists, winner_counts)
def test_an_honest_draw_verifies(secret: bytes, entrants: list[str], n: int) -> None:
    report = verify(**published(secret, entrants, n))
    assert report.ok, report.lines()
    assert [check.name for check in report.checks] == [
        "secret",
        "commit",
        "entries_sha256",
        "winners",
    ]
    assert all(check.status is Status.PASS for check in report.checks)
    assert report.winners == draw(secret, LOTTERY, entrants, n).winners
    assert report.failures() == []


@given(secrets_, entrant_lists, winner_counts, st.integers(0, SECRET_BYTES - 1))
def test_a_tampered_secret_fails_the_commit(
    secret: bytes, entrants: list[str], n: int, index: int
) -> None:
    args = published(secret, entrants, n)
    tampered = bytearray(secret)
    tampered[index] ^= 0x01
    args["secret_hex"] = tampered.hex()
    report = verify(**args)
    assert not report.ok
    assert status(report.checks, "commit") is Status.FAIL
    assert commitment(bytes(tampered)) in message(report.checks, "commit")
    assert commitment(secret) in message(report.checks, "commit")


@given(secrets_, entrant_lists.filter(bool), winner_counts, uids, st.data())
def test_a_tampered_entry_list_fails(
    secret: bytes, entrants: list[str], n: int, newcomer: str, data: st.DataObject
) -> None:
    args = published(secret, entrants, n)
    if newcomer in entrants:
        # Drop every copy of one entrant instead.
        gone = data.draw(st.sampled_from(entrants))
        args["entrants"] = [uid for uid in entrants if uid != gone]
    else:
        args["entrants"] = [*entrants, newcomer]
    report = verify(**args)
    assert not report.ok
    assert status(report.checks, "commit") is Status.PASS
    assert status(report.checks, "entries_sha256") is Status.FAIL
    assert args["entries_sha256"] in message(report.checks, "entries_sha256")


def test_verify_reports_each_failure_precisely() -> None:
    args = published(SECRET, ["alice", "bob", "carol"], 2)
    args["expected_winners"] = ["bob", "mallory"]
    report = verify(**args)
    assert status(report.checks, "winners") is Status.FAIL
    assert message(report.checks, "winners") == (
        "mismatch: the draw gives ['bob', 'carol']; published ['bob', 'mallory']; "
        "should have won but not published ['carol']; published but did not win ['mallory']"
    )
    assert [check.name for check in report.failures()] == ["winners"]
    assert report.lines()[-1].startswith("FAIL  winners: mismatch")


def test_verify_winners_in_another_order_pass_with_a_note() -> None:
    args = published(SECRET, ["alice", "bob", "carol"], 2)
    args["expected_winners"] = ["carol", "bob"]
    report = verify(**args)
    assert report.ok
    assert "different order" in message(report.checks, "winners")


def test_verify_refuses_repeated_winners() -> None:
    args = published(SECRET, ["alice", "bob", "carol"], 2)
    args["expected_winners"] = ["bob", "bob"]
    report = verify(**args)
    assert status(report.checks, "winners") is Status.FAIL
    assert "repeat ['bob']" in message(report.checks, "winners")


@pytest.mark.parametrize("bad", ["", "zz" * 32, "00" * 31, "00" * 33, " " + "00" * 32])
def test_verify_bad_secret_hex(bad: str) -> None:
    args = published(SECRET, ["alice", "bob"], 1)
    args["secret_hex"] = bad
    report = verify(**args)
    assert not report.ok
    assert status(report.checks, "secret") is Status.FAIL
    assert "64 hex digits" in message(report.checks, "secret")
    assert status(report.checks, "commit") is Status.SKIP
    assert status(report.checks, "winners") is Status.SKIP
    assert report.winners == []


def test_verify_accepts_upper_case_hex() -> None:
    args = published(SECRET, ["alice", "bob"], 1)
    args["secret_hex"] = args["secret_hex"].upper()
    args["commit"] = args["commit"].upper()
    args["entries_sha256"] = args["entries_sha256"].upper()
    assert verify(**args).ok


def test_verify_malformed_commit() -> None:
    args = published(SECRET, ["alice", "bob"], 1)
    args["commit"] = "not-a-hash"
    report = verify(**args)
    assert status(report.checks, "commit") is Status.FAIL
    assert "not 64 hex digits" in message(report.checks, "commit")


def test_verify_without_optional_proof_parts_skips_them() -> None:
    report = verify(commitment(SECRET), SECRET.hex(), LOTTERY, ["alice", "bob", "carol"], 2)
    assert report.ok
    assert status(report.checks, "entries_sha256") is Status.SKIP
    assert status(report.checks, "winners") is Status.SKIP
    assert report.winners == ["bob", "carol"]


def test_verify_bad_inputs_are_reported_not_raised() -> None:
    report = verify(commitment(SECRET), SECRET.hex(), LOTTERY, ["a\nb"], 1)
    assert not report.ok
    assert status(report.checks, "inputs") is Status.FAIL
    assert "newlines" in message(report.checks, "inputs")


def test_verify_exclude_first_draw() -> None:
    entrants = ["alice", "bob", "carol"]
    result = draw(SECRET, LOTTERY, entrants, 2, exclude_first={"bob"})
    args = published(SECRET, entrants, 2, exclude_first={"bob"})
    proof_hash = str(result.proof["prior_winners_sha256"])

    # The room's full prior-winner list may be given: only those who entered count.
    report = verify(**args, prior_winners=["bob", "dave"], prior_winners_sha256=proof_hash)
    assert report.ok, report.lines()
    assert status(report.checks, "prior_winners_sha256") is Status.PASS
    assert report.winners == ["carol", "alice"]

    lied = verify(**args, prior_winners=["carol"], prior_winners_sha256=proof_hash)
    assert status(lied.checks, "prior_winners_sha256") is Status.FAIL
    assert status(lied.checks, "winners") is Status.FAIL

    missing = verify(**args, prior_winners_sha256=proof_hash)
    assert not missing.ok
    assert "no prior-winner list" in message(missing.checks, "prior_winners_sha256")

    # Without the exclude-first rule, the plain draw disagrees with what was published.
    plain = verify(**args)
    assert status(plain.checks, "winners") is Status.FAIL


# --- the report `interact verify-lottery` prints, line for line ----------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_verify_lines_of_an_honest_draw() -> None:
    report = verify(**published(SECRET, ["alice", "bob", "carol"], 2))
    assert report.lines() == [
        "PASS  secret: 32 bytes",
        f"PASS  commit: sha256(secret) = {_sha(SECRET)}",
        "PASS  entries_sha256: the entry list (3 distinct uids) hashes to "
        + _sha(b"alice\nbob\ncarol"),
        "PASS  winners: 2 winners match the draw",
    ]


def test_verify_lines_without_the_optional_parts() -> None:
    report = verify(_sha(SECRET), SECRET.hex(), LOTTERY, ["alice", "bob", "carol"], 2)
    assert report.lines()[2:] == [
        "SKIP  entries_sha256: no published entries_sha256 given",
        "SKIP  winners: no published winners given",
    ]


def test_verify_lines_without_a_usable_secret() -> None:
    args = published(SECRET, ["alice", "bob"], 1)
    args["secret_hex"] = ""
    report = verify(**args)
    assert report.lines() == [
        "FAIL  secret: secret must be 64 hex digits (32 bytes), got 0 characters",
        "SKIP  commit: not checked: no usable secret",
        "PASS  entries_sha256: the entry list (2 distinct uids) hashes to " + _sha(b"alice\nbob"),
        "SKIP  winners: not checked: no usable secret",
    ]
    assert report.winners == []


def test_verify_line_for_a_malformed_published_hash() -> None:
    args = published(SECRET, ["alice"], 1)
    args["entries_sha256"] = "xyz"
    report = verify(**args)
    assert report.checks[2] == Check(
        "entries_sha256", Status.FAIL, "published entries_sha256 is not 64 hex digits: 'xyz'"
    )


def test_verify_lines_of_an_exclude_first_draw() -> None:
    entrants = ["alice", "bob", "carol"]
    args = published(SECRET, entrants, 2, exclude_first={"bob"})
    report = verify(**args, prior_winners=["bob", "dave"], prior_winners_sha256=_sha(b"bob"))
    assert report.lines()[3] == (
        f"PASS  prior_winners_sha256: the prior winners who entered (1) hashes to {_sha(b'bob')}"
    )
    missing = verify(**args, prior_winners_sha256=_sha(b"bob"))
    assert missing.lines()[-1] == (
        "FAIL  prior_winners_sha256: the proof records an exclude-first draw but no "
        "prior-winner list was given, so the winners cannot be recomputed"
    )
    assert missing.winners == []


@pytest.mark.parametrize(
    ("lottery_id", "entrants", "message_"),
    [
        ("", ["alice"], "lottery_id must be a non-empty string"),
        (LOTTERY, [7], "entrant uid must be a string, not int"),
    ],
)
def test_verify_line_for_bad_inputs(lottery_id: str, entrants: list[Any], message_: str) -> None:
    report = verify(_sha(SECRET), SECRET.hex(), lottery_id, entrants, 1)
    assert report.checks[-1] == Check("inputs", Status.FAIL, message_)
    assert report.winners == []


def test_verify_winners_line_says_whether_the_order_differs() -> None:
    args = published(SECRET, ["alice", "bob", "carol"], 2)  # the draw: bob, carol
    assert message(verify(**args).checks, "winners") == "2 winners match the draw"
    args["expected_winners"] = ["carol", "bob"]
    assert message(verify(**args).checks, "winners") == (
        "2 winners match the draw (published in a different order)"
    )


def test_verify_fails_a_published_list_short_of_a_winner() -> None:
    # Nothing published that did not win, but a winner left out: still a mismatch.
    args = published(SECRET, ["alice", "bob", "carol"], 2)
    args["expected_winners"] = ["bob"]
    report = verify(**args)
    assert status(report.checks, "winners") is Status.FAIL
    assert "should have won but not published ['carol']" in message(report.checks, "winners")


def test_verify_names_only_the_repeated_winners() -> None:
    args = published(SECRET, ["alice", "bob", "carol"], 3)
    args["expected_winners"] = ["bob", "bob", "carol"]
    report = verify(**args)
    assert message(report.checks, "winners") == "published winners repeat ['bob']"
