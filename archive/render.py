"""What an archive's comments look like to players (pure): Bilibili's danmaku XML and
6-minute replay segments."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from xml.sax.saxutils import escape

from archive.records import SEGMENT_MS, uid_hash

# Bilibili's modes: 1 scroll, 4 bottom, 5 top.
XML_MODES = {"scroll": 1, "bottom": 4, "top": 5}
FONT_SIZE = 25  # Bilibili's normal size
# Characters XML 1.0 cannot hold at all (not even escaped).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Text safe inside an XML element: escaped, characters XML cannot hold dropped."""
    return escape(_NOT_XML.sub("", text))


def seconds(offset_ms: int) -> str:
    """Exact seconds with three decimals; before the origin counts as 0."""
    ms = max(0, offset_ms)
    return f"{ms // 1000}.{ms % 1000:03d}"


def visible(
    records: Iterable[Mapping[str, Any]], retracted: set[int]
) -> Iterator[Mapping[str, Any]]:
    """The comments a replay shows: ``dm`` records not retracted."""
    for rec in records:
        if rec.get("k") == "dm" and rec.get("seq") not in retracted:
            yield rec


def d_element(key: bytes, room_id: str, rec: Mapping[str, Any]) -> str:
    """``<d p="seconds,mode,size,color,sendUnix,pool,uidHash,seq">text</d>``."""
    offset = rec.get("offset_ms")
    ts = rec.get("ts")
    p = ",".join(
        (
            seconds(offset if isinstance(offset, int) else 0),
            str(XML_MODES.get(str(rec.get("mode")), 1)),
            str(FONT_SIZE),
            str(int(rec.get("color") or 0xFFFFFF)),
            str(ts // 1000 if isinstance(ts, int) else 0),
            "0",
            uid_hash(key, room_id, str(rec.get("uid", ""))),
            str(int(rec.get("seq") or 0)),
        )
    )
    return f'<d p="{p}">{xml_text(str(rec.get("text", "")))}</d>'


def xml_document(
    key: bytes, header: Mapping[str, Any], comments: Iterable[Mapping[str, Any]]
) -> Iterator[bytes]:
    """The room's comments as Bilibili danmaku XML, in pieces (for streaming)."""
    room_id = str(header["room"])
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n<i>'
        "<chatserver>interact</chatserver>"
        f"<chatid>{xml_text(room_id)}</chatid><mission>0</mission><state>0</state>"
        "<real_name>0</real_name><source>k-v</source>\n"
    ).encode()
    for rec in comments:
        yield (d_element(key, room_id, rec) + "\n").encode()
    yield b"</i>\n"


def segment_count(origin_ms: int, end_ms: int) -> int:
    """Segments of a room whose offsets run from ``origin_ms`` to ``end_ms``: at least 1."""
    span = max(0, end_ms - origin_ms)
    return max(1, -(-span // SEGMENT_MS))


def segment_of(offset_ms: int, count: int) -> int:
    """A comment's segment: before the origin is segment 0, after the end the last one,
    so every comment is in exactly one segment."""
    return min(max(0, offset_ms) // SEGMENT_MS, count - 1)


def replay_item(key: bytes, room_id: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    offset = rec.get("offset_ms")
    return {
        "seq": rec.get("seq"),
        "offset_ms": offset if isinstance(offset, int) else 0,
        "ts": rec.get("ts"),
        "text": rec.get("text"),
        "color": rec.get("color"),
        "mode": rec.get("mode"),
        "role": rec.get("role"),
        "uid_hash": uid_hash(key, room_id, str(rec.get("uid", ""))),
    }
