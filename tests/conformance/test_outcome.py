"""The pure rules of the conformance run: reading a case report, judging an outcome."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.outcome import (
    CLIENT,
    EMPTY,
    MALFORMED,
    NOBODY,
    SERVER,
    VIOLATION_CODES,
    Outcome,
    allowed_server_close,
    differences,
    outcome,
    reply_codes,
    valid_close_code,
    violations,
)
from tests.conformance.report import AIOHTTP, DIRECT, REFERENCE, analyse, markdown, replace_section
from tests.conformance.report import Memory as Mem


def tf(opcode: int, payload: str = "", length: int | None = None) -> list[Any]:
    n = len(payload) if length is None else length
    return ["TF", [n, payload], opcode, True, 0, "00000000", None, None, False]


def rf(opcode: int, payload: str = "", length: int | None = None) -> list[Any]:
    n = len(payload) if length is None else length
    return ["RF", [n, payload], opcode, True, 0, False, None]


def report(wirelog: list[list[Any]], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "closedByMe": False,
        "wasClean": True,
        "localCloseCode": None,
        "remoteCloseCode": None,
        "txFrameStats": {},
        "rxFrameStats": {},
        "wirelog": wirelog,
    }
    return {**base, **fields}


def out(**fields: Any) -> Outcome:
    base: dict[str, Any] = {
        "closed_by": CLIENT,
        "client_close": 1000,
        "server_close": 1000,
        "clean": True,
        "pings": 0,
        "pongs": 0,
        "stray_pongs": 0,
        "after_close": 0,
        "hung": None,
    }
    return Outcome(**{**base, **fields})


def test_a_server_that_fails_the_connection_is_read_as_closing_first() -> None:
    o = outcome(
        report(
            [tf(1, "Hello"), rf(1, "[welcome]"), rf(8, "0x03ea", 2), tf(8, "0x03e8", 2)],
            localCloseCode=1000,
            remoteCloseCode=1002,
        )
    )
    assert (o.closed_by, o.client_close, o.server_close, o.clean) == (SERVER, 1000, 1002, True)
    assert o.after_close == 0 and o.hung is None


def test_pongs_count_only_when_they_answer_the_pings_in_order() -> None:
    log = [tf(9, "a"), tf(9, "b"), rf(10, "a"), rf(10, "x"), rf(10, "b"), tf(8, "", 0)]
    o = outcome(report(log, closedByMe=True, txFrameStats={"9": 2}, rxFrameStats={"10": 3}))
    assert (o.pings, o.pongs, o.stray_pongs) == (2, 2, 1)
    assert (o.closed_by, o.client_close, o.server_close) == (CLIENT, EMPTY, None)


def test_frames_after_the_servers_close_frame_are_counted() -> None:
    log = [tf(1, "x"), rf(8, "0x03f1", 2), rf(1, "late"), rf(10, "late")]
    o = outcome(report(log, remoteCloseCode=1009))
    assert o.after_close == 2


def test_a_close_body_of_one_byte_is_malformed_and_a_close_with_the_log_off_still_counts() -> None:
    o = outcome(report([tf(8, "a", 1)], closedByMe=True))
    assert o.client_close == MALFORMED and o.server_close is None
    quiet = outcome(report([], closedByMe=True, rxFrameStats={"8": 1}))
    assert quiet.server_close == EMPTY and quiet.closed_by == CLIENT
    dropped = outcome(report([], wasClean=False, wasCloseHandshakeTimeout=True))
    assert (dropped.closed_by, dropped.clean, dropped.hung) == (NOBODY, False, "closing handshake")


@pytest.mark.parametrize(
    ("code", "valid"),
    [(1000, True), (1003, True), (1004, False), (1005, False), (1006, False), (1007, True),
     (1014, True), (1015, False), (1016, False), (2999, False), (3000, True), (4999, True),
     (5000, False), (0, False), (65535, False)],
)  # fmt: skip
def test_valid_close_codes_follow_rfc_6455_and_the_registry(code: int, valid: bool) -> None:
    assert valid_close_code(code) is valid


def test_a_close_is_answered_with_its_code_or_1000_and_a_bad_one_with_1002() -> None:
    assert reply_codes(3000) == {3000, 1000}
    assert reply_codes(EMPTY) == {EMPTY, 1000}
    assert reply_codes(1006) == {1002}
    assert reply_codes(MALFORMED) == {1002}
    assert reply_codes(None) == frozenset()


def test_the_rfc_not_the_reference_decides_an_invalid_close_code() -> None:
    # aiohttp answers 1000 to 1006 (7.9.5): the correct answer is 1002 all the same.
    reference = out(client_close=1006, server_close=1000)
    assert allowed_server_close(reference, out(client_close=1006, server_close=1002)) == {1002}
    assert violations("7.9.5", reference, out(client_close=1006, server_close=1002)) == []
    assert violations("7.9.5", reference, out(client_close=1006, server_close=1000)) == [
        "server close 1000 to client close 1006 (correct: 1002)"
    ]


def test_where_the_reference_fails_the_connection_its_code_is_the_answer() -> None:
    reference = out(closed_by=SERVER, server_close=1009)
    assert violations("1.1.6", reference, out(closed_by=SERVER, server_close=1009)) == []
    got = out(closed_by=CLIENT, client_close=1001, server_close=1001)
    assert violations("1.1.6", reference, got) == [
        "first close by client (correct: server)",
        "server close 1001 to client close 1001 (correct: 1009)",
    ]
    # In 9.* the case closes on its first message (the welcome): who closes first is a race.
    assert violations("9.1.1", reference, out(client_close=1000, server_close=1009)) == []


def test_a_reference_answer_to_a_bad_close_frame_stands() -> None:
    # 7.5.1: the reason is not UTF-8; the reference answers 1007, not the echo.
    reference = out(client_close=1000, server_close=1007)
    assert allowed_server_close(reference, out()) == {1007}


def test_an_unclean_reference_leaves_the_verdict_to_the_rfc() -> None:
    reference = out(closed_by=NOBODY, client_close=None, server_close=None, clean=False)
    got = out(client_close=1000, server_close=1009)
    assert allowed_server_close(reference, got) == VIOLATION_CODES | {1000}
    assert violations("9.3.2", reference, got) == []
    lost = out(client_close=1000, server_close=None, clean=False)
    assert violations("9.3.2", reference, lost) == [
        "unclean close",
        "server close none to client close 1000 (correct: 1000 or 1002 or 1007 or 1009)",
    ]


def test_pongs_frames_after_close_and_timeouts_are_violations() -> None:
    reference = out(pings=1, pongs=1)
    got = out(pings=1, pongs=0, after_close=1, hung="closing handshake", stray_pongs=1)
    assert violations("2.2", reference, got) == [
        "closing handshake timed out",
        "1 frame(s) after its close frame",
        "1 pong(s) that answer no ping",
        "answered 0 of 1 pings (reference 1)",
    ]


def test_an_echo_and_1000_differ_between_paths_but_not_from_the_reference() -> None:
    echo = out(client_close=1001, server_close=1001)
    normal = out(client_close=1001, server_close=1000)
    assert differences("7.7.2", echo, normal) == ["close 1001→1001 / 1001→1000"]
    assert differences("7.7.2", echo, normal, strict=False) == []
    # The client's own code says nothing about the server: 1000→1000 is an echo too.
    assert differences("1.1.1", echo, out(client_close=1000, server_close=1000)) == []
    assert differences(
        "7.9.5", out(client_close=1006, server_close=1002), out(client_close=1006)
    ) == ["close 1006→1002 / 1006→1000"]


def test_the_write_up_lists_the_cases_that_are_wrong_or_differ() -> None:
    outcomes = {
        DIRECT: {"7.9.5": out(client_close=1006, server_close=1002), "1.1.1": out()},
        AIOHTTP: {"7.9.5": out(client_close=1006, server_close=1000), "1.1.1": out()},
        REFERENCE: {"7.9.5": out(client_close=1006, server_close=1000), "1.1.1": out()},
    }
    a = analyse(outcomes)
    assert a.wrong == {DIRECT: {}, AIOHTTP: {"7.9.5": [
        "server close 1000 to client close 1006 (correct: 1002)"]}}  # fmt: skip
    assert list(a.paths_disagree) == ["7.9.5"]
    text = markdown(outcomes, {DIRECT: Mem(1024, 2048)}, "header")
    assert "| 7.9.5 | client 1006→1002 | client 1006→1000 | client 1006→1000 |" in text
    assert "| direct | 1.0 | 2.0 | 1.0 |" in text
    assert "| 1.* (1) | aiohttp | 1 | 1 | 1000×1 | 0 | 0 | 0 |" in text
    doc = "intro\n<!-- a -->\nold\n<!-- b -->\nafter\n"
    assert replace_section(doc, "new\n", "<!-- a -->", "<!-- b -->") == (
        "intro\n<!-- a -->\nnew\n<!-- b -->\nafter\n"
    )
