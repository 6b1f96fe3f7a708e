"""HTTP/1.1 request stages read from bytes (interact.http_stages), however they are split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from interact.http_stages import RequestStages, Stage

GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"
)
UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n"
)


def stages_of(wire: bytes) -> list[Stage]:
    """The stage after each byte."""
    s = RequestStages()
    return [s.feed(wire[i : i + 1]) for i in range(len(wire))]


def test_a_connection_awaits_its_first_head_and_a_get_leaves_it_idle() -> None:
    s = RequestStages()
    assert s.stage is Stage.HEAD
    assert s.feed(GET) is Stage.IDLE
    assert s.feed(b"G") is Stage.HEAD
    assert s.feed(GET[1:]) is Stage.IDLE


def test_a_body_is_counted_to_its_length() -> None:
    got = stages_of(POST)
    head_end = POST.index(b"\r\n\r\n") + 3
    assert set(got[:head_end]) == {Stage.HEAD}
    assert set(got[head_end:-1]) == {Stage.BODY}
    assert got[-1] is Stage.IDLE


def test_a_chunked_body_ends_after_its_trailers() -> None:
    got = stages_of(CHUNKED)
    assert got[-2] is Stage.BODY and got[-1] is Stage.IDLE


def test_an_upgrade_ends_http_and_what_follows_is_not_read() -> None:
    s = RequestStages()
    assert s.feed(UPGRADE + b"\x81\x85 frames") is Stage.UPGRADED
    moves = s.moves
    assert s.feed(GET) is Stage.UPGRADED and s.moves == moves


def test_trickled_bytes_of_one_head_are_one_stage() -> None:
    s = RequestStages()
    s.feed(GET)
    moves = s.moves
    for i in range(len(GET) - 1):
        s.feed(GET[i : i + 1])
    assert s.stage is Stage.HEAD and s.moves == moves + 1  # entered once, not per byte


def test_a_bad_length_holds_the_body_stage() -> None:
    s = RequestStages()
    assert s.feed(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n" + GET) is Stage.BODY


def test_empty_lines_between_requests_are_skipped() -> None:
    s = RequestStages()
    assert s.feed(GET + b"\r\n" + GET) is Stage.IDLE


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_any_split_of_pipelined_requests_ends_in_the_same_stage(cuts: list[int]) -> None:
    wire = GET + POST + CHUNKED + GET + UPGRADE + b"\x88\x80"
    s = RequestStages()
    pos = 0
    for n in cuts:
        s.feed(wire[pos : pos + n])
        pos += n
    s.feed(wire[pos:])
    whole = RequestStages()
    whole.feed(wire)
    assert s.stage is whole.stage is Stage.UPGRADED
    assert s.moves == whole.moves
