"""Integers read from text: ASCII digits only, within bounds (interact.floor.numbers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interact.floor.numbers import ascii_int


@pytest.mark.parametrize(
    "text",
    [
        "²",  # a digit to str.isdigit(), an error to int(): was a 500 and a hung join
        "٣",  # Arabic-Indic three: int() reads it as 3
        "３",  # full-width three
        "+5",
        "-5",
        " 5",
        "5 ",
        "5_0",
        "0x10",
        "",
        "1e3",
        "5.0",
        "1" * 19,  # past 18 digits
    ],
)
def test_anything_but_plain_ascii_digits_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ascii_int(text)


def test_bounds_are_inclusive() -> None:
    assert ascii_int("1", lo=1, hi=200) == 1
    assert ascii_int("200", lo=1, hi=200) == 200
    assert ascii_int("007") == 7
    for text in ("0", "201"):
        with pytest.raises(ValueError):
            ascii_int(text, lo=1, hi=200)
    with pytest.raises(ValueError):
        ascii_int(None)


@given(st.text(max_size=20))
def test_accepts_exactly_what_int_reads_from_ascii_digits(text: str) -> None:
    plain = 0 < len(text) <= 18 and all("0" <= c <= "9" for c in text)
    if plain:
        assert ascii_int(text) == int(text)
    else:
        with pytest.raises(ValueError):
            ascii_int(text)
