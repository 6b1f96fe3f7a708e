"""The client-frame reader: masking, fragments, control frames, deflate, and every refusal."""

from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interact.client_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    ClientFrames,
    WsClose,
    close_frame,
    close_payload,
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
def test_any_message_comes_back_whole_however_the_bytes_are_cut(
    payload: bytes, chunk: int
) -> None:
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
        (client_frame(OP_TEXT, b"x" * 60, fin=False) + client_frame(OP_CONTINUATION, b"y" * 41),
         1009),
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
