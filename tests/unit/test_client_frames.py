"""The client-frame reader: masking, fragments, control frames, deflate, and every refusal."""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interact.client_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ClientFrames,
    WsClose,
    close_frame,
    close_payload,
    control_frame,
    fragment_cap,
    unmask,
)


def client_frame(
    op: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | op
    if n < 126:
        head = bytes((b0, (0x80 if masked else 0) | n))
    elif n < 65536:
        head = bytes((b0, (0x80 if masked else 0) | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, (0x80 if masked else 0) | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + unmask(payload, key)


def compressed(payload: bytes) -> bytes:
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return (comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]


@given(st.binary(max_size=70_000), st.integers(min_value=1, max_value=4096))
def test_any_message_comes_back_whole_however_the_bytes_are_cut(payload: bytes, chunk: int) -> None:
    reader = ClientFrames(100_000)
    wire = client_frame(OP_BINARY, payload)
    got = []
    for i in range(0, len(wire), chunk):
        got += reader.feed(wire[i : i + chunk])
    assert got == [(OP_BINARY, payload)]


@given(st.lists(st.text(max_size=50), min_size=1, max_size=6))
def test_fragments_join_and_control_frames_may_come_between(parts: list[str]) -> None:
    reader = ClientFrames(10_000)
    wire = b""
    for i, part in enumerate(parts):
        op = OP_TEXT if i == 0 else OP_CONTINUATION
        wire += client_frame(op, part.encode(), fin=i == len(parts) - 1)
        wire += client_frame(OP_PING, b"p")
    got = reader.feed(wire)
    assert got[-2:] == [(OP_TEXT, "".join(parts).encode()), (OP_PING, b"p")]
    assert [m for m in got if m[0] == OP_PING] == [(OP_PING, b"p")] * len(parts)


def test_compressed_messages_inflate_with_the_context_kept() -> None:
    reader = ClientFrames(1_000, deflate=True)
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    got = []
    for text in (b'{"t":"dm","text":"hello"}', b'{"t":"dm","text":"hello"}'):
        data = (comp.compress(text) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
        got += reader.feed(client_frame(OP_TEXT, data, rsv=0x40))
    assert got == [(OP_TEXT, b'{"t":"dm","text":"hello"}')] * 2


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (client_frame(OP_TEXT, b"hi", masked=False), 1002),
        (client_frame(OP_TEXT, b"hi", rsv=0x40), 1002),  # compressed, nothing agreed
        (client_frame(OP_TEXT, b"hi", rsv=0x20), 1002),
        (client_frame(OP_CONTINUATION, b"hi"), 1002),
        (client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_TEXT, b"b"), 1002),
        (client_frame(OP_PING, b"x" * 126), 1002),
        (client_frame(OP_PING, b"x", fin=False), 1002),
        (client_frame(0x3, b""), 1002),
        (client_frame(OP_TEXT, b"\xff\xfe"), 1007),
        (client_frame(OP_BINARY, b"x" * 101), 1009),
        (
            client_frame(OP_TEXT, b"x" * 60, fin=False) + client_frame(OP_CONTINUATION, b"y" * 41),
            1009,
        ),
    ],
)
def test_what_the_rfc_forbids_is_refused_with_its_code(wire: bytes, code: int) -> None:
    reader = ClientFrames(100)
    assert reader.feed(wire) == []
    assert reader.error is not None and reader.error.code == code


def test_a_huge_announced_length_is_refused_before_its_bytes_arrive() -> None:
    head = bytes((0x80 | OP_BINARY, 0x80 | 127)) + (2**40).to_bytes(8, "big")
    reader = ClientFrames(4096)
    reader.feed(head)
    assert reader.error is not None and reader.error.code == 1009


def test_a_deflate_bomb_is_refused() -> None:
    reader = ClientFrames(1_000, deflate=True)
    reader.feed(client_frame(OP_BINARY, compressed(b"\0" * 100_000), rsv=0x40))
    assert reader.error is not None and reader.error.code == 1009
    reader = ClientFrames(1_000, deflate=True)
    reader.feed(client_frame(OP_TEXT, b"\xff\x00", rsv=0x40))
    assert reader.error is not None and reader.error.code == 1002


def test_close_payloads() -> None:
    assert close_payload(b"") is None
    assert close_payload((1000).to_bytes(2, "big") + "再见".encode()) == 1000
    assert close_payload((4001).to_bytes(2, "big")) == 4001
    for bad in (b"\x03", (1005).to_bytes(2, "big"), (999).to_bytes(2, "big"),
                (2000).to_bytes(2, "big")):  # fmt: skip
        with pytest.raises(WsClose):
            close_payload(bad)
    with pytest.raises(WsClose) as refused:
        close_payload((1000).to_bytes(2, "big") + b"\xff")
    assert refused.value.code == 1007
    assert close_frame(4003, b"banned") == b"\x88\x08\x0f\xa3banned"
    assert ClientFrames(10).feed(client_frame(OP_CLOSE, b"\x03\xe8")) == [(OP_CLOSE, b"\x03\xe8")]


# -- bounds, exact limits and what comes before a violation (issue 10) -----------------

EMPTY_CONTINUATION = bytes((OP_CONTINUATION, 0x80)) + b"\x11\x22\x33\x44"  # 6 bytes


def test_a_flood_of_empty_fragments_is_refused_early_and_holds_no_memory() -> None:
    """50 MB of empty continuations after an unfinished text: 1009 within the first chunk.

    Before, each empty fragment was kept (a list entry each) and nothing bounded their
    number: 200 MB took the process from 81 MB to 343 MB RSS and the final frame 2.95 GB.
    Now the reader stops at ``fragment_cap`` frames, having held at most one chunk
    (64 KiB) plus the message so far, and allocated under 1 MiB at its peak.
    """
    max_size = 4096
    reader = ClientFrames(max_size)
    chunk = EMPTY_CONTINUATION * (64 * 1024 // len(EMPTY_CONTINUATION))
    sent = len(start := client_frame(OP_TEXT, b"hi", fin=False))
    tracemalloc.start()
    try:
        assert reader.feed(start) == []
        while reader.error is None and sent < 50_000_000:
            assert reader.feed(chunk) == []
            sent += len(chunk)
            assert reader.held <= max_size + len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.error is not None and reader.error.code == 1009
    assert sent <= 8 + len(chunk)  # refused within the first chunk: fragment_cap frames
    assert fragment_cap(max_size) * len(EMPTY_CONTINUATION) < len(chunk)
    assert peak < 1024 * 1024
    assert reader.held == 0


@pytest.mark.parametrize("max_size", [64, 4096])
def test_a_message_may_come_in_up_to_fragment_cap_frames_and_no_more(max_size: int) -> None:
    cap = fragment_cap(max_size)
    payload = bytes(range(256)) * (max_size // 256) + b"z" * (max_size % 256)
    pieces = [payload[i * max_size // cap : (i + 1) * max_size // cap] for i in range(cap)]
    assert b"".join(pieces) == payload and len(pieces) == cap

    def wire(parts: list[bytes]) -> bytes:
        return b"".join(
            client_frame(OP_BINARY if i == 0 else OP_CONTINUATION, p, fin=i == len(parts) - 1)
            for i, p in enumerate(parts)
        )

    assert ClientFrames(max_size).feed(wire(pieces)) == [(OP_BINARY, payload)]
    reader = ClientFrames(max_size)
    assert reader.feed(wire([*pieces[:-1], b"", pieces[-1]])) == []
    assert reader.error is not None and reader.error.code == 1009


def test_autobahn_9_3_1_passes_with_a_20_mb_limit() -> None:
    """4 MiB of text in 64-byte fragments (65,536 frames), as Autobahn's case 9.3.1 sends."""
    payload = b"*" * (4 * 1024 * 1024)
    wire = bytearray()
    for i in range(0, len(payload), 64):
        op = OP_TEXT if i == 0 else OP_CONTINUATION
        wire += client_frame(op, payload[i : i + 64], fin=i + 64 >= len(payload))
    assert ClientFrames(20_000_000).feed(bytes(wire)) == [(OP_TEXT, payload)]


@pytest.mark.parametrize("op", [OP_BINARY, OP_TEXT])
@pytest.mark.parametrize("fin", [True, False])
def test_a_64_bit_length_with_its_top_bit_set_is_a_protocol_error(op: int, fin: bool) -> None:
    """RFC 6455 §5.2: "the most significant bit MUST be 0": 1002, not a size (1009)."""
    b0 = (0x80 if fin else 0) | op
    head = bytes((b0, 0x80 | 127)) + (1 << 63 | 5).to_bytes(8, "big")
    reader = ClientFrames(4096)
    assert reader.feed(head) == []
    assert reader.error is not None and reader.error.code == 1002


def boundary_wire(payload: bytes, *, fragmented: bool, deflated: bool) -> bytes:
    body = compressed(payload) if deflated else payload
    rsv = 0x40 if deflated else 0
    if not fragmented:
        return client_frame(OP_TEXT, body, rsv=rsv)
    third = len(body) // 3
    return (
        client_frame(OP_TEXT, body[:third], fin=False, rsv=rsv)
        + client_frame(OP_PING, b"between")
        + client_frame(OP_CONTINUATION, body[third : 2 * third], fin=False)
        + client_frame(OP_CONTINUATION, body[2 * third :])
    )


@pytest.mark.parametrize("max_size", [125, 4096, 70_000])
@pytest.mark.parametrize("fragmented", [False, True])
@pytest.mark.parametrize("deflated", [False, True])
def test_exactly_max_size_is_accepted_and_one_byte_more_refused(
    max_size: int, fragmented: bool, deflated: bool
) -> None:
    """The limit is on the message (inflated when compressed), frames and fragments alike."""
    exact = (b'{"t":"dm","text":"' + "主播好美".encode() * max_size)[:max_size]
    exact = exact[: len(exact) - len(exact.decode(errors="ignore").encode()) or None]
    exact += b" " * (max_size - len(exact))  # valid UTF-8, exactly max_size bytes
    assert len(exact) == max_size
    reader = ClientFrames(max_size, deflate=deflated)
    got = reader.feed(boundary_wire(exact, fragmented=fragmented, deflated=deflated))
    assert reader.error is None
    assert [m for m in got if m[0] == OP_TEXT] == [(OP_TEXT, exact)]
    reader = ClientFrames(max_size, deflate=deflated)
    reader.feed(boundary_wire(exact + b" ", fragmented=fragmented, deflated=deflated))
    assert reader.error is not None and reader.error.code == 1009


def fragments_then(*frames: bytes) -> bytes:
    return client_frame(OP_TEXT, b"ab", fin=False) + b"".join(frames)


VALID = client_frame(OP_TEXT, b'{"t":"like","n":1}') + client_frame(OP_PING, b"p")
VIOLATIONS: list[tuple[str, bytes, int, bool]] = [
    ("unmasked", client_frame(OP_TEXT, b"hi", masked=False), 1002, True),
    ("rsv1 without deflate", client_frame(OP_TEXT, b"hi", rsv=0x40), 1002, False),
    ("rsv2", client_frame(OP_TEXT, b"hi", rsv=0x20), 1002, True),
    ("rsv1 on a continuation", fragments_then(client_frame(0, b"c", rsv=0x40)), 1002, True),
    ("continuation without a message", client_frame(OP_CONTINUATION, b"hi"), 1002, True),
    ("message inside a message", fragments_then(client_frame(OP_TEXT, b"b")), 1002, True),
    ("control frame over 125", client_frame(OP_PING, b"x" * 126), 1002, True),
    ("fragmented control frame", client_frame(OP_PING, b"x", fin=False), 1002, True),
    ("unknown opcode", client_frame(0x3, b""), 1002, True),
    ("top bit of a 64-bit length", bytes((0x82, 0xFF)) + (1 << 63).to_bytes(8, "big"), 1002,
     True),
    ("bad deflate data", client_frame(OP_TEXT, b"\xff\x00", rsv=0x40), 1002, True),
    ("text not UTF-8", client_frame(OP_TEXT, b"ok\xff"), 1007, True),
    ("first fragment not UTF-8", fragments_then(client_frame(0, b"\xff", fin=False)), 1007,
     True),
    ("text ends inside a character", fragments_then(client_frame(0, "é".encode()[:1])), 1007,
     True),
    ("deflated text not UTF-8", client_frame(OP_TEXT, compressed(b"\xc3("), rsv=0x40), 1007,
     True),
    ("frame over the limit", client_frame(OP_BINARY, b"x" * 101), 1009, True),
    ("message over the limit", fragments_then(client_frame(0, b"y" * 99)), 1009, True),
    ("inflates over the limit", client_frame(OP_BINARY, compressed(b"\0" * 101), rsv=0x40),
     1009, True),
    ("too many fragments", fragments_then(*[EMPTY_CONTINUATION] * fragment_cap(100)), 1009,
     True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "code", "deflate"), [v[1:] for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS]
)
def test_frames_before_a_violation_come_back_in_order_and_nothing_after(
    bad: bytes, code: int, deflate: bool
) -> None:
    after = client_frame(OP_TEXT, b"never read")
    reader = ClientFrames(100, deflate=deflate)
    assert reader.feed(VALID + bad + after) == [(OP_TEXT, b'{"t":"like","n":1}'), (OP_PING, b"p")]
    assert reader.error is not None and reader.error.code == code
    assert reader.feed(VALID) == []
    # The same, fed a byte at a time: the same frames, the same code.
    reader = ClientFrames(100, deflate=deflate)
    got = [m for i in range(len(VALID + bad)) for m in reader.feed((VALID + bad)[i : i + 1])]
    assert got == [(OP_TEXT, b'{"t":"like","n":1}'), (OP_PING, b"p")]
    assert reader.error is not None and reader.error.code == code


def test_bad_text_in_a_first_fragment_fails_before_the_message_ends() -> None:
    """RFC 6455 §8.1, checked fragment by fragment (Autobahn 6.4.x): no waiting for FIN."""
    reader = ClientFrames(4096)
    reader.feed(client_frame(OP_TEXT, b"ok \xf4\x90\x80\x80 and more", fin=False))
    assert reader.error is not None and reader.error.code == 1007


def test_a_character_split_across_fragments_is_fine() -> None:
    text = "主播好美".encode()
    wire = b"".join(
        client_frame(OP_TEXT if i == 0 else OP_CONTINUATION, text[i : i + 1], fin=i == 11)
        for i in range(12)
    )
    assert ClientFrames(4096).feed(wire) == [(OP_TEXT, text)]


def test_an_unknown_opcode_is_refused_before_its_extended_length_arrives() -> None:
    reader = ClientFrames(4096)
    reader.feed(b"\x83\xfe")
    assert reader.error is not None and reader.error.code == 1002


def test_a_close_with_a_bad_code_and_a_bad_reason_is_1007_as_in_websockets() -> None:
    with pytest.raises(WsClose) as refused:
        close_payload((999).to_bytes(2, "big") + b"\xff")
    assert refused.value.code == 1007


def test_an_exact_size_deflated_message_whose_last_fragment_only_flushes_is_accepted() -> None:
    """The first fragment inflates to all 125 bytes; the last carries deflate's flush byte.

    Holding that last frame's wire length to the room left (0) refused it (websockets
    does); the limit is on the inflated message, counted as it inflates.
    """
    payload = b"x" * 125
    body = compressed(payload)
    wire = client_frame(OP_TEXT, body[:-1], fin=False, rsv=0x40) + client_frame(
        OP_CONTINUATION, body[-1:]
    )
    reader = ClientFrames(125, deflate=True)
    assert reader.feed(wire) == [(OP_TEXT, payload)]
    assert reader.error is None


# -- found by mutation testing (docs/testing.md) ---------------------------------------

# The reason goes out in the close frame the server answers with.
REASONS = {
    "unmasked": "client frames must be masked",
    "rsv1 without deflate": "reserved bits without an extension",
    "rsv2": "reserved bits without an extension",
    "rsv1 on a continuation": "reserved bits on a continuation",
    "continuation without a message": "continuation without a message",
    "message inside a message": "a new message inside a fragmented one",
    "control frame over 125": "bad control frame",
    "fragmented control frame": "bad control frame",
    "unknown opcode": "unknown opcode 3",
    "top bit of a 64-bit length": "64-bit length with its top bit set",
    "bad deflate data": "bad deflate data",
    "text not UTF-8": "text is not UTF-8",
    "first fragment not UTF-8": "text is not UTF-8",
    "text ends inside a character": "text is not UTF-8",
    "deflated text not UTF-8": "text is not UTF-8",
    "frame over the limit": "message too big",
    "message over the limit": "message too big",
    "inflates over the limit": "message too big",
    "too many fragments": "message in too many fragments",
}


@pytest.mark.parametrize(
    ("name", "bad", "code", "deflate"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS]
)
def test_each_violation_names_its_reason(name: str, bad: bytes, code: int, deflate: bool) -> None:
    reader = ClientFrames(100, deflate=deflate)
    reader.feed(bad)
    assert reader.error is not None
    assert (reader.error.code, reader.error.reason) == (code, REASONS[name])
    assert str(reader.error) == f"{code} {REASONS[name]}"


@pytest.mark.parametrize("n", [1, 3, 125])
def test_an_unmasked_frame_of_any_length_is_refused(n: int) -> None:
    # Odd lengths too: the mask bit is 0x80 of the second byte, the length its low bits.
    for op in (OP_TEXT, OP_BINARY):
        reader = ClientFrames(1000)
        assert reader.feed(client_frame(op, b"x" * n, masked=False)) == []
        assert reader.error is not None and reader.error.code == 1002


def test_close_codes_at_the_edges_of_their_ranges() -> None:
    good = [1000, 1001, 1003, 1007, 1011, 1014, 3000, 3999, 4000, 4999]
    bad = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]
    for code in good:
        assert close_payload(code.to_bytes(2, "big")) == code
    for code in bad:
        with pytest.raises(WsClose) as info:
            close_payload(code.to_bytes(2, "big"))
        assert (info.value.code, info.value.reason) == (1002, "bad close code")
    with pytest.raises(WsClose) as info:
        close_payload(b"\x03")
    assert (info.value.code, info.value.reason) == (1002, "bad close frame")
    with pytest.raises(WsClose) as info:
        close_payload((1000).to_bytes(2, "big") + b"\xff")
    assert (info.value.code, info.value.reason) == (1007, "close reason is not UTF-8")


def test_server_control_frames_carry_at_most_125_bytes() -> None:
    assert close_frame(1000, b"r" * 200) == b"\x88\x7d\x03\xe8" + b"r" * 123
    assert control_frame(OP_PONG, b"p" * 200) == b"\x8a\x7d" + b"p" * 125
    assert control_frame(OP_PING, b"hi") == b"\x89\x02hi"


def test_a_control_frame_of_exactly_125_bytes_is_accepted() -> None:
    wire = client_frame(OP_PING, b"x" * 125)
    assert ClientFrames(10).feed(wire) == [(OP_PING, b"x" * 125)]


@pytest.mark.parametrize(
    "wire",
    [
        client_frame(OP_CLOSE, b"\x03\xe8" + b"x" * 124),
        client_frame(OP_CLOSE, b"\x03\xe8", fin=False),
        client_frame(OP_CLOSE, b"\x03\xe8", rsv=0x40),
    ],
)
def test_a_close_frame_is_held_to_the_control_frame_rules(wire: bytes) -> None:
    reader = ClientFrames(1000, deflate=True)
    assert reader.feed(wire) == []
    assert reader.error is not None
    assert (reader.error.code, reader.error.reason) == (1002, "bad control frame")


def test_a_close_between_fragments_leaves_the_message_alone() -> None:
    wire = (
        client_frame(OP_TEXT, b"ab", fin=False)
        + client_frame(OP_CLOSE, b"\x03\xe8")
        + client_frame(OP_CONTINUATION, b"cd")
    )
    assert ClientFrames(100).feed(wire) == [(OP_CLOSE, b"\x03\xe8"), (OP_TEXT, b"abcd")]


def test_fragmented_messages_one_after_another() -> None:
    reader = ClientFrames(100)
    for text in (b"first", b"second"):
        wire = client_frame(OP_TEXT, text[:2], fin=False) + client_frame(0, text[2:])
        assert reader.feed(wire) == [(OP_TEXT, text)]
        assert reader.held == 0


def test_a_deflated_binary_message_is_not_read_as_text() -> None:
    reader = ClientFrames(100, deflate=True)
    wire = client_frame(OP_BINARY, compressed(b"\xff\xfe"), rsv=0x40)
    assert reader.feed(wire) == [(OP_BINARY, b"\xff\xfe")]


def test_a_too_big_16_bit_length_is_refused_from_its_four_header_bytes() -> None:
    reader = ClientFrames(100)
    assert reader.feed(bytes((0x82, 0x80 | 126)) + (200).to_bytes(2, "big")) == []
    assert reader.error is not None and reader.error.code == 1009


def test_fragment_cap_values() -> None:
    assert fragment_cap(4096) == 128  # the default limit (docstring)
    assert fragment_cap(20_000_000) == 312_564  # Autobahn 9.3.x passes with it
    assert fragment_cap(0) == 64


class RecordingInflater:
    """The reader's real zlib decompressor, recording how much each call inflated."""

    def __init__(self, real: zlib._Decompress) -> None:
        self.real = real
        self.sizes: list[int] = []

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out = self.real.decompress(data, max_length)
        self.sizes.append(len(out))
        return out


def test_a_deflate_bomb_is_never_inflated_past_the_limit() -> None:
    # 500 KB of zeros in ~500 bytes: refused after inflating one byte more than the room.
    reader = ClientFrames(1_000, deflate=True)
    recording = RecordingInflater(reader._inflater)  # type: ignore[arg-type]
    reader._inflater = recording  # type: ignore[assignment]
    reader.feed(client_frame(OP_BINARY, compressed(b"\0" * 500_000), rsv=0x40))
    assert reader.error is not None and reader.error.code == 1009
    assert recording.sizes == [1_001]


def test_close_frame_without_a_reason_and_rsv1_without_deflate_by_default() -> None:
    assert close_frame(1000) == b"\x88\x02\x03\xe8"
    reader = ClientFrames(100)  # permessage-deflate is off unless agreed
    reader.feed(client_frame(OP_TEXT, compressed(b"hi"), rsv=0x40))
    assert reader.error is not None
    assert reader.error.reason == "reserved bits without an extension"
