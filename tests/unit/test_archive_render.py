"""Bilibili XML and replay segments (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from archive.records import SEGMENT_MS, uid_hash
from archive.render import (
    d_element,
    seconds,
    segment_count,
    segment_of,
    visible,
    xml_document,
    xml_text,
)

KEY = b"key"
HEADER = {"k": "header", "room": "r1"}


def dm(seq: int, offset: int, text: str = "hi", mode: str = "scroll") -> dict[str, object]:
    return {"k": "dm", "seq": seq, "uid": f"u{seq}", "text": text, "color": 0xFE0302,
            "mode": mode, "ts": 1_700_000_000_000 + offset, "offset_ms": offset}  # fmt: skip


def parse(comments: list[dict[str, object]]) -> ET.Element:
    return ET.fromstring(b"".join(xml_document(KEY, HEADER, comments)))


def test_d_element_fields() -> None:
    root = parse([dm(7, 61_234, "a<b>&\"c'", "top"), dm(8, 0, mode="bottom")])
    first, second = root.findall("d")
    p = first.attrib["p"].split(",")
    assert p == ["61.234", "5", "25", str(0xFE0302), "1700000061", "0",
                 uid_hash(KEY, "r1", "u7"), "7"]  # fmt: skip
    assert first.text == "a<b>&\"c'"
    assert second.attrib["p"].split(",")[1] == "4"
    assert "u7" not in first.attrib["p"]
    assert root.findtext("chatid") == "r1"


def test_seconds_are_exact_and_never_negative() -> None:
    assert seconds(0) == "0.000"
    assert seconds(1005) == "1.005"
    assert seconds(360_000) == "360.000"
    assert seconds(-20) == "0.000"


@given(st.text(max_size=40))
def test_any_text_gives_parseable_xml_with_the_text_kept(text: str) -> None:
    root = parse([dm(1, 10, text)])
    got = root.find("d")
    assert got is not None
    expected = xml_text(text).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    # ElementTree normalises \r\n inside text; comments are one line, so compare others.
    if "\r" not in text:
        assert (got.text or "") == expected


def test_retracted_comments_are_left_out() -> None:
    recs = [dm(1, 5), {"k": "retract", "seq": 1}, dm(2, 6), {"k": "ledger"}]
    assert [r["seq"] for r in visible(recs, {1})] == [2]


def test_segments() -> None:
    assert segment_count(0, 0) == 1
    assert segment_count(0, SEGMENT_MS) == 1
    assert segment_count(0, SEGMENT_MS + 1) == 2
    assert segment_count(10, 5) == 1  # ended before the origin
    assert segment_of(-5, 3) == 0
    assert segment_of(SEGMENT_MS - 1, 3) == 0
    assert segment_of(SEGMENT_MS, 3) == 1
    assert segment_of(99 * SEGMENT_MS, 3) == 2  # after the end: the last one


@given(st.lists(st.integers(-(10**6), 10**8)), st.integers(1, 50))
def test_every_offset_is_in_exactly_one_segment(offsets: list[int], count: int) -> None:
    for off in offsets:
        hits = [n for n in range(count) if segment_of(off, count) == n]
        assert len(hits) == 1


def test_d_element_is_one_line() -> None:
    assert "\n" not in d_element(KEY, "r1", dm(1, 1, "x"))
