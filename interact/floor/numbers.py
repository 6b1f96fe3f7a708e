"""Integers read from text (query strings, paths, headers): ASCII digits only, in bounds.

``str.isdigit()`` and ``int()`` accept far more than a client should send: ``"²"`` is a
digit to the first and an error to the second, ``"٣"`` (Arabic-Indic three) is 3 to both,
and ``int()`` takes spaces, signs and underscores. Every integer the server reads from
text goes through ``ascii_int``, so the answer to odd input is a clear refusal, never a
500 or a connection left hanging.
"""

from __future__ import annotations

import re

# At most 18 digits: any such number fits a signed 64-bit integer (and Redis's).
_DIGITS = re.compile(r"[0-9]{1,18}")


def ascii_int(text: str | None, *, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """``text`` as an integer from ``lo`` to ``hi``; ``ValueError`` for anything else.

    Only ASCII digits are accepted: no sign, space, underscore or other script's digit.
    """
    if text is None or not _DIGITS.fullmatch(text):
        raise ValueError(f"not an integer from {lo} to {hi}")
    value = int(text)
    if not lo <= value <= hi:
        raise ValueError(f"not an integer from {lo} to {hi}")
    return value
