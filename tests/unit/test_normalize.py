"""moderation.normalize: folding comment text for matching, with a map back to the original."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.normalize import Normalized, fold_char, normalize, normalize_text


def folded(text: str) -> str:
    return normalize(text).text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full-width
        ("①②⑩", "1210"),  # circled digits, ⑩ is two digits
        ("ⓐⓑ", "ab"),  # circled letters
        ("𝐀𝐁𝟏𝒙", "ab1x"),  # mathematical styled letters and digits
        ("ﬁx", "fix"),  # ligature
        ("HeLLo", "helo"),  # case folded, then "ll" collapsed
        ("Straße", "strase"),  # ß folds to ss, which collapses
        ("٣٤٥", "345"),  # Arabic-Indic digits
        ("微信號", "微信号"),  # traditional → simplified
        ("聯繫", "联系"),
        ("á", "a"),  # precomposed accent
        ("a\u0301", "a"),  # base letter + combining mark
        ("İ", "i"),  # casefold yields i + combining dot, which is dropped
        ("a b\u3000c\td", "abcd"),  # spaces of every kind
        ("a.b,c!d？e", "abcde"),  # ASCII and CJK punctuation
        ("微\u200b信", "微信"),  # zero-width space
        ("微\u200d信\ufeff", "微信"),  # zero-width joiner, BOM
        ("加\u202e微\u202c信", "加微信"),  # right-to-left override and pop
        ("加😀微🔥信", "加微信"),  # emoji between letters
        ("加\u3164微", "加微"),  # Hangul filler: a "letter" that renders as nothing
        ("加加加微微信", "加微信"),  # repeats collapse to one
        ("13800138000", "13800138000"),  # digits never collapse: the count is the number
        ("666", "666"),
        ("1399", "1399"),  # 9 is a digit too: the check is 0-9 inclusive
        ("a㏂", "am"),  # ㏂ folds to "am": its a merges with the a before, its m stays
        ("二〇二四", "二〇二四"),  # 〇 is a number (Nl) with no decomposition: kept
        ("௰ↂ", "௰ↂ"),  # other numbers (No, Nl) are kept as they are
        ("", ""),
        ("   ", ""),
        ("\u3000\u200b\t", ""),
    ],
)
def test_folds(raw: str, expected: str) -> None:
    assert folded(raw) == expected
    assert normalize_text(raw) == expected


def test_origin_of_expansions_points_at_the_source_character() -> None:
    n = normalize("ﬁ!①⑩")
    assert n.text == "fi110"
    assert n.origin == n.last == (0, 0, 2, 3, 3)
    assert n.span(0, 2) == (0, 1)


def test_origin_skips_dropped_characters() -> None:
    n = normalize("加 😀微\u200b信")
    assert n.text == "加微信"
    assert n.origin == (0, 3, 5)
    assert n.span(0, 3) == (0, 6)


def test_collapsed_runs() -> None:
    n = normalize("加加微微 微信信")
    assert n.text == "加微信"
    assert n.origin == (0, 2, 6)
    assert n.last == (1, 5, 7)
    assert n.span(1, 2) == (2, 6)  # one character: its whole run
    # Edge runs give only their member next to the match; runs inside are covered whole.
    assert n.span(0, 3) == (1, 7)
    assert n.span(0, 2) == (1, 3)
    assert n.span(1, 3) == (5, 7)


def test_a_neighbours_letter_is_not_part_of_the_span() -> None:
    n = normalize("this is spam")
    assert n.text == "thisispam"  # "is" and "spam" share their s
    start = n.text.index("spam")
    assert n.span(start, start + 4) == (8, 12)


def test_very_long_repeated_run() -> None:
    text = "哈" * 10_000 + "加" + "微" * 5_000 + "信" * 5_000
    n = normalize(text)
    assert n.text == "哈加微信"
    assert n.span(0, 1) == (0, 10_000)
    assert n.span(1, 4) == (10_000, 15_002)  # to the first 信
    digits = "6" * 10_000
    assert normalize(digits).text == digits


def test_span_outside_is_refused() -> None:
    n = normalize("abc")
    with pytest.raises(IndexError, match=r"^span \[0, 4\) outside normalised text$"):
        n.span(0, 4)
    with pytest.raises(IndexError):
        n.span(2, 2)


def test_empty() -> None:
    assert normalize("") == Normalized("", (), ())
    assert normalize(" \u200b ") == Normalized("", (), ())


def test_every_code_point_folds_to_fixed_points() -> None:
    # Exhaustive, because idempotence hangs on it: whatever a character folds to must fold
    # to itself (OpenCC maps 薴 → 苧 → 苎, which one round alone would leave unstable).
    for cp in range(0x110000):
        for c in fold_char(chr(cp)):
            assert fold_char(c) == c, (hex(cp), c)


@given(st.text())
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = folded(text)
    assert folded(once) == once


@given(st.text())
def test_fast_path_agrees_with_mapped_path(text: str) -> None:
    assert normalize_text(text) == folded(text)


@given(st.text())
def test_origin_map_is_exact(text: str) -> None:
    n = normalize(text)
    assert len(n.origin) == len(n.last) == len(n.text)
    for k, ch in enumerate(n.text):
        first, last = n.origin[k], n.last[k]
        assert 0 <= first <= last < len(text)
        if k:
            # In order: after the previous run, or from the same original character
            # (one character may fold to several, like ﬁ → f, i).
            assert first > n.last[k - 1] or first == n.origin[k - 1]
        # Every original character of the run folds to something holding it.
        assert ch in folded(text[first]) and ch in folded(text[last])
        assert n.span(k, k + 1) == (first, last + 1)


@given(st.text(), st.text())
def test_folding_is_local(a: str, b: str) -> None:
    # Each side's folded form survives concatenation, up to one repeat at the seam: what
    # makes a word found on its own also found inside a longer comment.
    whole = folded(a + b)
    left, right = folded(a), folded(b)
    # Repeats of anything but ASCII digits collapse (normalize keeps numbers whole);
    # str.isdigit() would also spare ❶ and other scripts' digits.
    if left and right and left[-1] == right[0] and left[-1] not in "0123456789":
        right = right[1:]
    assert whole == left + right
