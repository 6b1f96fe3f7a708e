"""Who a user may be: the one rule for uids and nicks (pure).

Shared by every place an identity enters: dev login, WeChat login (the nick comes from
the client), ``interact token``, and token verification (a token whose claims break the
rules is refused, whoever signed it). A uid ends up in Redis keys, logs and URLs, so it
keeps to a small ASCII alphabet. A nick is shown to a whole room beside every comment,
so on top of the comment rule (one line of printable characters, ``rooms.danmaku``) it
may not carry what spoofs another name: format characters (bidi overrides and isolates,
zero-width spaces and joiners, tags), invisible letters, or heaps of combining marks.
"""

from __future__ import annotations

import re
import unicodedata

UID_MAX_LEN = 64
UID_RULE = f"1-{UID_MAX_LEN} letters, digits or _.:@-"
NICK_MAX_LEN = 32
NICK_RULE = (
    f"1-{NICK_MAX_LEN} characters, with something visible and no control, format "
    "(bidi, zero-width) or invisible characters"
)

# ASCII classes spelled out (``\w`` and ``\d`` take any script's digits), matched whole
# with fullmatch (``$`` would let a trailing newline through).
_UID = re.compile(f"[A-Za-z0-9_.:@-]{{1,{UID_MAX_LEN}}}")
# Cc control, Cf format (bidi, zero-width, tags), Cs surrogates, Co private use, Zl/Zp
# line and paragraph separators.
_BANNED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# Letters and symbols that render as nothing: Hangul fillers, the braille blank.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_ZWJ = "\u200d"
# Enough for Thai, Vietnamese and an emoji's variation selector; "Zalgo" text stacks more.
_MAX_MARKS_IN_A_ROW = 3


def valid_uid(uid: object) -> bool:
    return isinstance(uid, str) and _UID.fullmatch(uid) is not None


def _emoji_part(ch: str) -> bool:
    """A character an emoji ZWJ sequence joins (👨‍👩‍👧, 🏳️‍🌈): a symbol, or the
    variation selector or skin tone that follows one."""
    return unicodedata.category(ch) == "So" or ch == "\ufe0f" or "\U0001f3fb" <= ch <= "\U0001f3ff"


def nick_problem(nick: object) -> str | None:
    """Why ``nick`` is not an acceptable display name, or None when it is."""
    if not isinstance(nick, str) or not 1 <= len(nick) <= NICK_MAX_LEN:
        return f"must be {NICK_RULE}"
    if nick != nick.strip():
        return "must not start or end with spaces"
    if nick.isascii() and nick.isprintable():
        return None  # the common case, checked on every token: nothing below can apply
    visible = False
    marks = 0
    for i, ch in enumerate(nick):
        cat = unicodedata.category(ch)
        if ch == _ZWJ:
            # Joins emoji only: between two letters it splices a look-alike name.
            if not (0 < i < len(nick) - 1 and _emoji_part(nick[i - 1])
                    and unicodedata.category(nick[i + 1]) == "So"):  # fmt: skip
                return "may hold a zero-width joiner only inside an emoji"
            continue
        if cat in _BANNED_CATEGORIES:
            return "must not hold control, format (bidi, zero-width) or separator characters"
        if ch in _INVISIBLE:
            return "must not hold invisible characters"
        if cat in ("Mn", "Me"):
            marks += 1
            if marks > _MAX_MARKS_IN_A_ROW or i == 0:
                return "must not stack combining marks"
            continue
        marks = 0
        if not cat.startswith("Z"):
            visible = True
    if not visible:
        return "must hold a visible character"
    return None


def valid_nick(nick: object) -> bool:
    return nick_problem(nick) is None
