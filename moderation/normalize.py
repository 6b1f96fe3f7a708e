"""Fold comment text into the form the word filter matches, with a map back to the original.

Each original character is folded on its own, so every normalised character knows where it
came from:

1. NFKD: full-width, circled, styled and ligature forms become plain letters and digits,
   and accented letters split into a base letter and combining marks (NFKD rather than
   NFKC so that the marks can be dropped; decomposed Hangul still matches itself);
2. case folding;
3. traditional → simplified Chinese, one character at a time (OpenCC ``t2s``), so lengths
   never shift;
4. every decimal digit becomes its ASCII digit;
5. everything that is not a letter or a digit (Unicode categories L*, N*) is dropped:
   spaces, punctuation, symbols, emoji, zero-width and bidi controls, combining marks;
6. runs of the same character collapse to one ("加加微微信" → "加微信"), except digits,
   whose count matters (phone and QQ numbers).

Word lists must go through the same function (``WordFilter.build`` does), so "www" and
"w" are the same word and "http" is matched as "htp".
"""

from __future__ import annotations

import operator
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc

__all__ = ["Normalized", "fold_char", "normalize", "normalize_text"]

# Hangul fillers are letters (Lo) that render as nothing: spammers use them as invisible
# separators, so they are dropped like spaces.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
# Folding a character can yield characters that fold further (one OpenCC entry maps
# 薴 → 苧 → 苎); a few rounds reach the fixed point that makes normalising idempotent.
_MAX_ROUNDS = 4
# Bounds the memory an attacker can make the fold table use by sending many distinct code
# points; characters past the bound are folded again each time they are seen.
_TABLE_LIMIT = 200_000
# Digits are left alone: 13800138000 must keep its two pairs of zeros to stay a number.
_REPEATS = re.compile(r"([^0-9])\1+")
# Any doubled character; a plain "." makes this scan ~3x cheaper than _REPEATS, and most
# comments have no doubles at all, so it gates the substitution.
_DOUBLE = re.compile(r"(.)\1")
_FIRST_GROUP = operator.itemgetter(1)

# The ".json" name works with every OpenCC release (newer ones also take "t2s").
_t2s = opencc.OpenCC("t2s.json")


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text; char k came from original char ``origin[k]`` (repeats: to ``last[k]``)."""

    text: str
    origin: tuple[int, ...]
    # Index of the last original character of a collapsed run; origin[k] when no repeat.
    last: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span ``[a, b)`` of the normalised span ``[start, end)``."""
        if not 0 <= start < end <= len(self.text):
            raise IndexError(f"span [{start}, {end}) outside normalised text")
        if end - start == 1:
            # One character: all of its run ("哈哈哈" is one 哈).
            return self.origin[start], self.last[start] + 1
        # A run at either edge may be a neighbour's letter that merged with the match
        # ("is spam" folds to "ispam"), so only its member next to the match is taken.
        # Runs inside the match are covered whole.
        return self.last[start], self.origin[end - 1] + 1


@lru_cache(maxsize=65_536)
def _simplified(ch: str) -> str:
    """The simplified form of one character (itself when OpenCC has none)."""
    out = _t2s.convert(ch)
    # OpenCC never changes a single character's length today; guard so the map stays exact.
    return out if len(out) == 1 else ch


def _fold_once(ch: str) -> str:
    """One round of the per-character fold (NFKD, casefold, t2s, digits, drop the rest)."""
    out: list[str] = []
    # Case folding can introduce combining marks (İ → i + U+0307), hence NFKD again after it.
    for c in unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", ch).casefold()):
        cat = unicodedata.category(c)
        if cat[0] == "L":
            if c not in _INVISIBLE_LETTERS:
                out.append(_simplified(c))
        elif cat == "Nd":
            out.append(str(unicodedata.decimal(c)))
        elif cat[0] == "N":
            out.append(c)
    return "".join(out)


def fold_char(ch: str) -> str:
    """The normalised form of one character, before repeats collapse ("" if dropped)."""
    out = _fold_once(ch)
    for _ in range(_MAX_ROUNDS):
        again = "".join(_fold_once(c) for c in out)
        if again == out:
            return out
        out = again
    return out


class _FoldTable(dict[int, str]):
    """Code point → folded string for ``str.translate``, filled on first sight."""

    def __missing__(self, key: int) -> str:
        folded = fold_char(chr(key))
        if len(self) < _TABLE_LIMIT:
            self[key] = folded
        return folded


_TABLE = _FoldTable()


def normalize_text(text: str) -> str:
    """Only the normalised text (the fast path: no map back to the original)."""
    folded = text.translate(_TABLE)
    if _DOUBLE.search(folded) is None:
        return folded
    # A C-level callable: Python 3.11 expands a "\\1" template in Python for every match.
    return _REPEATS.sub(_FIRST_GROUP, folded)


def normalize(text: str) -> Normalized:
    """The normalised text and, for each of its characters, where it came from."""
    chars: list[str] = []
    origin: list[int] = []
    last: list[int] = []
    table = _TABLE
    previous = ""
    for i, ch in enumerate(text):
        for c in table[ord(ch)]:
            if c == previous and not ("0" <= c <= "9"):
                last[-1] = i  # a collapsed repeat extends the run of the one before
                continue
            chars.append(c)
            origin.append(i)
            last.append(i)
            previous = c
    return Normalized("".join(chars), tuple(origin), tuple(last))
