"""Rules for a comment's text, colour and mode (pure)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from interact.floor.errors import BadRequest, Code

MODES = ("scroll", "top", "bottom")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder what a
# room sees: "\u202e信微加" shows 加微信 while the word filter, which reads the text in
# logical order (and drops format characters), sees 信微加. Zero-width joiners stay: emoji
# sequences (👨‍👩‍👧) need them, and the filter reads through them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
DEFAULT_COLOR = 0xFFFFFF
# The palette live-room clients offer; a fixed set keeps rooms readable and styles uniform.
COLORS = frozenset(
    {
        0xFFFFFF, 0xFE0302, 0xFF7204, 0xFFAA02, 0xFFD302, 0xFFFF00, 0xA0EE00,
        0x00CD00, 0x019899, 0x4266BE, 0x89D5FF, 0xCC0273, 0x222222, 0x9B9B9B,
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    color: int
    mode: str


def validate_comment(text: str, color: int | None, mode: str | None, *, max_len: int) -> Comment:
    """A clean comment, or ``BadRequest`` (``too_long`` for over-long text)."""
    text = text.strip()
    if not text:
        raise BadRequest("comment text is empty")
    # Control characters and line/paragraph separators break one-line rendering
    # (and terminal escapes have no place in a room).
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text):
        raise BadRequest("comment text must be one line of printable characters")
    if not _BIDI_CONTROLS.isdisjoint(text):
        raise BadRequest("comment text must not hold bidi overrides, embeddings or isolates")
    if len(text) > max_len:
        raise BadRequest(f"comment longer than {max_len} characters", Code.TOO_LONG)
    color = DEFAULT_COLOR if color is None else color
    if color not in COLORS:
        raise BadRequest("colour is not in the palette")
    mode = mode or "scroll"
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}")
    return Comment(text=text, color=color, mode=mode)
