"""Contact-detail patterns (phone, QQ, WeChat ID, link) that a word list cannot spell out.

The regexes run over *normalised* text (see ``moderation.normalize``): lower case, ASCII
digits, no spaces or punctuation, and runs of the same non-digit character collapsed to
one — so "QQ" is ``q``, "http" is ``htp`` and "https" is ``htps``. Bare domains
("example.com") are not matched: without the dot they look like ordinary words
("welcome"), and a false positive in a live room costs more than a missed link.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from moderation.rules import Rule, WordAction, WordListError

__all__ = ["DEFAULT_PATTERNS", "DIGIT", "CompiledPatterns", "Pattern", "compile_patterns"]

# A pattern's hint meaning "every match holds a digit".
DIGIT = "0-9"


@dataclass(frozen=True, slots=True)
class Pattern:
    """A named regex over normalised text and the rule its matches count as."""

    name: str
    regex: str
    action: WordAction
    category: str
    # What every match contains (DIGIT or a literal), so that the scan is skipped on text
    # without it — most comments; None runs the pattern on every comment.
    hint: str | None = None


DEFAULT_PATTERNS: tuple[Pattern, ...] = (
    # Mainland mobile numbers: 11 digits from 13x to 19x, not part of a longer number.
    # Masked rather than refused: a viewer who posts their own number is not a spammer.
    Pattern("mobile", r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", WordAction.MASK, "contact", DIGIT),
    # A QQ number right after q/QQ (not ending a Latin word), 扣扣 or 企鹅, optionally with
    # 号 or 群. QQ numbers have 5–11 digits, but 5 would also catch "Q1 2024"; live
    # spammers' numbers are longer.
    Pattern(
        "qq",
        r"(?:(?<![a-z])q|扣|企鹅)(?:号码|号|群)?[1-9][0-9]{5,10}(?![0-9])",
        WordAction.REJECT,
        "contact",
        DIGIT,
    ),
    # A WeChat ID (a letter, then letters and digits) after vx/wx/微信/威信/weixin/wechat.
    # The ID must hold a digit: "wechat" followed by an English word is not an offer.
    Pattern(
        "wechat_id",
        r"(?:vx|wx|v信|微信|威信|薇信|weixin|wechat)号?(?=[a-z]{0,19}[0-9])[a-z][a-z0-9]{4,19}",
        WordAction.REJECT,
        "contact",
        DIGIT,
    ),
    # A link: http(s) followed by the rest of its address.
    Pattern("url", r"htps?[a-z0-9]{2,}", WordAction.REJECT, "link", "htp"),
)


def _always(folded: str) -> bool:
    """The gate of a pattern set with an unhinted pattern: scan every comment."""
    return True


def _never(folded: str) -> bool:
    """The gate of an empty pattern set."""
    return False


# One alternation of all patterns, its group name → rule, and the "worth scanning?" test.
CompiledPatterns = tuple[re.Pattern[str] | None, dict[str, Rule], Callable[[str], bool]]


def compile_patterns(patterns: Iterable[Pattern]) -> CompiledPatterns:
    """One alternation of all patterns, group name → rule, and a cheap "worth scanning?" test."""
    patterns = tuple(patterns)
    if not patterns:
        return None, {}, _never
    problems: list[str] = []
    groups: dict[str, Rule] = {}
    parts: list[str] = []
    for i, p in enumerate(patterns):
        try:
            compiled = re.compile(p.regex)
        except re.error as e:
            problems.append(f"pattern {p.name!r}: {e}")
            continue
        if compiled.fullmatch(""):
            problems.append(f"pattern {p.name!r} matches empty text")
            continue
        if compiled.groupindex:
            problems.append(f"pattern {p.name!r} has named groups (they name the pattern)")
            continue
        if not isinstance(p.category, str) or not p.category.strip():
            problems.append(f"pattern {p.name!r}: category must be a non-empty string")
            continue
        if p.hint is not None and (not isinstance(p.hint, str) or not p.hint):
            problems.append(f"pattern {p.name!r}: hint must be DIGIT, a literal or None")
            continue
        try:
            action = WordAction(p.action)
        except ValueError:
            problems.append(f"pattern {p.name!r}: unknown action {p.action!r}")
            continue
        group = f"p{i}"
        groups[group] = Rule(f"<{p.name}>", action, p.category)
        parts.append(f"(?P<{group}>{p.regex})")
    if problems:
        raise WordListError(problems)
    return re.compile("|".join(parts)), groups, _gate(patterns)


def _gate(patterns: tuple[Pattern, ...]) -> Callable[[str], bool]:
    """A test that is False only when no pattern can match the normalised text."""
    if any(p.hint is None for p in patterns):
        return _always
    digits = any(p.hint == DIGIT for p in patterns)
    literals = tuple({p.hint for p in patterns if p.hint != DIGIT})

    def gate(folded: str) -> bool:
        # Normalised text holds only letters and digits: isalpha() means "no digit".
        if digits and not folded.isalpha():
            return True
        return any(lit in folded for lit in literals)

    return gate
