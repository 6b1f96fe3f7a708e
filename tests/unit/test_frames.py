"""interact.frames: RFC 6455 frame headers and RFC 7692 per-message deflate."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interact.frames import OP_BINARY, OP_TEXT, deflate, frame

TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2: appended by the receiver before inflating


def parse_header(data: bytes) -> tuple[dict[str, int | bool], bytes]:
    """Decode a frame by hand, per RFC 6455 §5.2; returns the header fields and payload."""
    b0, b1 = data[0], data[1]
    fields: dict[str, int | bool] = {
        "fin": bool(b0 & 0x80),
        "rsv1": bool(b0 & 0x40),
        "rsv2": bool(b0 & 0x20),
        "rsv3": bool(b0 & 0x10),
        "opcode": b0 & 0x0F,
        "mask": bool(b1 & 0x80),
    }
    n = b1 & 0x7F
    offset = 2
    if n == 126:
        n = int.from_bytes(data[2:4], "big")
        offset = 4
        fields["length_bits"] = 16
    elif n == 127:
        n = int.from_bytes(data[2:10], "big")
        assert not data[2] & 0x80, "the most significant bit of a 64-bit length must be 0"
        offset = 10
        fields["length_bits"] = 64
    else:
        fields["length_bits"] = 7
    fields["length"] = n
    return fields, data[offset:]


@pytest.mark.parametrize(
    ("n", "bits", "header_len"),
    [(0, 7, 2), (1, 7, 2), (125, 7, 2), (126, 16, 4), (65535, 16, 4), (65536, 64, 10)],
)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
@pytest.mark.parametrize("compressed", [False, True])
def test_header(n: int, bits: int, header_len: int, opcode: int, compressed: bool) -> None:
    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    assert len(payload) == n
    data = frame(payload, opcode, compressed=compressed)
    fields, body = parse_header(data)
    assert fields == {
        "fin": True,
        "rsv1": compressed,
        "rsv2": False,
        "rsv3": False,
        "opcode": opcode,
        "mask": False,
        "length_bits": bits,
        "length": n,
    }
    assert len(data) == header_len + n
    assert body == payload


def test_minimal_length_encoding_exact_bytes() -> None:
    assert frame(b"", OP_TEXT) == b"\x81\x00"
    assert frame(b"x" * 125, OP_BINARY)[:2] == b"\x82\x7d"
    assert frame(b"x" * 126, OP_TEXT)[:4] == b"\x81\x7e\x00\x7e"
    assert frame(b"x" * 65535, OP_TEXT, compressed=True)[:4] == b"\xc1\x7e\xff\xff"
    assert frame(b"x" * 65536, OP_BINARY)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")


def test_default_is_uncompressed() -> None:
    assert not frame(b"abc", OP_TEXT)[0] & 0x40


def inflate(data: bytes) -> bytes:
    d = zlib.decompressobj(-15)
    return d.decompress(data + TAIL) + d.flush()


PAYLOADS = st.binary(max_size=4096) | st.text(max_size=500).map(str.encode)


@settings(max_examples=200)
@given(payload=PAYLOADS)
def test_deflate_inflates_back(payload: bytes) -> None:
    data = deflate(payload)
    assert not data.endswith(TAIL)  # the tail is stripped (RFC 7692 §7.2.1)
    assert inflate(data) == payload


@settings(max_examples=50)
@given(payload=PAYLOADS, wbits=st.integers(min_value=9, max_value=15))
def test_deflate_with_smaller_window_inflates_with_the_largest(payload: bytes, wbits: int) -> None:
    assert inflate(deflate(payload, wbits=wbits)) == payload


def test_deflate_compresses_repetitive_payloads() -> None:
    payload = b'[{"t":"dm","text":"hello"}]' * 200
    data = deflate(payload)
    assert len(data) < len(payload) // 10
    assert inflate(data) == payload


@settings(max_examples=100)
@given(payloads=st.lists(PAYLOADS, min_size=2, max_size=6))
def test_one_shared_decompressor_inflates_fresh_context_messages(payloads: list[bytes]) -> None:
    # A client that keeps its context (no client_no_context_takeover on its inflater)
    # inflates every message with the same decompressor, one after another.
    shared = zlib.decompressobj(-15)
    for payload in payloads:
        assert shared.decompress(deflate(payload) + TAIL) == payload
        assert not shared.eof  # no message ended the deflate stream


def test_same_payload_deflates_identically() -> None:
    # a fresh context each time: the bytes can be built once and shared by every viewer
    payload = b"shared frame " * 50
    assert deflate(payload) == deflate(payload)
    shared = zlib.decompressobj(-15)
    for _ in range(3):
        assert shared.decompress(deflate(payload) + TAIL) == payload
