"""rooms.danmaku: the rules for a comment's text, colour and mode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interact.floor.errors import BadRequest, Code
from rooms.danmaku import COLORS, DEFAULT_COLOR, MODES, Comment, validate_comment

MAX = 40


def ok(text: str, color: int | None = None, mode: str | None = None) -> Comment:
    return validate_comment(text, color, mode, max_len=MAX)


def refused(text: str, color: int | None = None, mode: str | None = None) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        validate_comment(text, color, mode, max_len=MAX)
    return info.value


def test_plain_comment() -> None:
    assert ok("hello") == Comment(text="hello", color=0xFFFFFF, mode="scroll")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("  hi  ", "hi"), ("\thi\n", "hi"), ("\u3000你好\u3000", "你好"), ("a b", "a b")],
)
def test_text_is_stripped(raw: str, clean: str) -> None:
    assert ok(raw).text == clean


@pytest.mark.parametrize("text", ["", " ", "\n", " \t\r\n ", "\u3000"])
def test_empty(text: str) -> None:
    error = refused(text)
    assert error.code is Code.BAD_REQUEST


@pytest.mark.parametrize("text", ["a\nb", "a\rb", "a\r\nb", "a\x00b"])
def test_one_line_only(text: str) -> None:
    error = refused(text)
    assert error.code is Code.BAD_REQUEST
    assert "line" in error.message


@pytest.mark.parametrize("char", ["a", "弹", "😀"])
def test_length_limit_counts_characters(char: str) -> None:
    assert ok(char * MAX).text == char * MAX
    error = refused(char * (MAX + 1))
    assert error.code is Code.TOO_LONG
    assert error.status == 400


def test_length_counted_after_stripping() -> None:
    assert ok("  " + "x" * MAX + "  ").text == "x" * MAX


def test_max_len_is_a_parameter() -> None:
    assert validate_comment("abc", None, None, max_len=3).text == "abc"
    with pytest.raises(BadRequest) as info:
        validate_comment("abcd", None, None, max_len=3)
    assert info.value.code is Code.TOO_LONG


def test_defaults() -> None:
    comment = ok("x")
    assert comment.color == DEFAULT_COLOR == 0xFFFFFF
    assert comment.mode == "scroll"
    assert ok("x", mode="").mode == "scroll"


@pytest.mark.parametrize("color", sorted(COLORS))
def test_every_palette_colour(color: int) -> None:
    assert ok("x", color=color).color == color


@pytest.mark.parametrize("color", [0, 1, -1, 0x123456, 0xFFFFFE, 0x1FFFFFF, 2**64])
def test_colour_outside_the_palette(color: int) -> None:
    assert refused("x", color=color).code is Code.BAD_REQUEST


@pytest.mark.parametrize("mode", MODES)
def test_each_mode(mode: str) -> None:
    assert ok("x", mode=mode).mode == mode


def test_modes_are_the_documented_ones() -> None:
    assert set(MODES) == {"scroll", "top", "bottom"}


@pytest.mark.parametrize("mode", ["left", "Scroll", "TOP", " top", "reverse"])
def test_unknown_mode(mode: str) -> None:
    assert refused("x", mode=mode).code is Code.BAD_REQUEST


@given(
    text=st.text(max_size=60),
    max_len=st.integers(min_value=1, max_value=50),
    color=st.none() | st.sampled_from(sorted(COLORS)) | st.integers(),
    mode=st.none() | st.sampled_from(MODES) | st.text(max_size=6),
)
def test_whatever_validates_is_clean(
    text: str, max_len: int, color: int | None, mode: str | None
) -> None:
    try:
        comment = validate_comment(text, color, mode, max_len=max_len)
    except BadRequest as exc:
        assert exc.code in (Code.BAD_REQUEST, Code.TOO_LONG)
        return
    assert comment.text == text.strip()
    assert 0 < len(comment.text) <= max_len
    assert not any(ch in comment.text for ch in "\r\n\x00")
    assert comment.color in COLORS
    assert comment.mode in MODES


@pytest.mark.parametrize("control", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                                     "\u2066", "\u2067", "\u2068", "\u2069"])  # fmt: skip
def test_bidi_overrides_and_isolates_are_refused(control: str) -> None:
    # "\u202e信微加" shows as 加微信 while the filter reads 信微加.
    with pytest.raises(BadRequest):
        validate_comment(f"{control}信微加", None, None, max_len=40)


def test_emoji_joined_with_zero_width_joiners_are_fine() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert validate_comment(f"一家人{family}", None, None, max_len=40).text == f"一家人{family}"
