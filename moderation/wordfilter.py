"""The local word filter: many words at once (Aho-Corasick) over normalised comment text.

``WordFilter.build`` validates a whole list and either returns a new filter or raises
``WordListError`` naming every bad entry; it never touches an existing filter, so a
refused update leaves the running one in place. ``check`` answers with the strictest
action of the matches and their spans in the *original* text; ``mask`` stars them out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ahocorasick

from moderation.normalize import normalize, normalize_text
from moderation.patterns import DEFAULT_PATTERNS, CompiledPatterns, Pattern, compile_patterns
from moderation.rules import Rule, WordAction, WordListError, load_rules, word_problem

__all__ = [
    "DEFAULT_MAX_LEN",
    "DEFAULT_WORDS_PATH",
    "FilterResult",
    "Hit",
    "Rule",
    "WordAction",
    "WordFilter",
    "WordListError",
    "default_filter",
    "load_rules",
    "mask",
]

# The shipped list keeps its allowed words in the file's [allow] section.
DEFAULT_WORDS_PATH = Path(__file__).with_name("default_words.txt")
# Comments are capped far lower (40 characters by default); this bounds the filter's own
# work should a caller skip that check, and text over it is refused, never truncated,
# so nothing can hide past the cut.
DEFAULT_MAX_LEN = 1000
MASK_CHAR = "*"
# Bidi embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI).
_BIDI_OVERRIDE = re.compile("[\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class Hit:
    """One match: the rule, and its span ``[start, end)`` in the original text."""

    rule: Rule
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class FilterResult:
    """What the filter found: the strictest action (None when clean) and every match."""

    action: WordAction | None
    hits: tuple[Hit, ...] = ()
    too_long: bool = False

    @property
    def clean(self) -> bool:
        """True when nothing matched."""
        return self.action is None

    @property
    def mask_spans(self) -> tuple[tuple[int, int], ...]:
        """Original spans of the matches whose action is ``mask``."""
        return tuple((h.start, h.end) for h in self.hits if h.rule.action is WordAction.MASK)

    def masked(self, text: str) -> str:
        """``text`` with the ``mask`` matches starred out."""
        return mask(text, self.mask_spans)


_CLEAN = FilterResult(None)
_NO_PATTERNS = compile_patterns(())
_TOO_LONG = FilterResult(WordAction.REJECT, too_long=True)


def mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with one ``*`` for each character inside a span; the rest is unchanged."""
    chars: list[str] | None = None
    for start, end in spans:
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"span [{start}, {end}) outside text of length {len(text)}")
        if start == end:
            continue
        if chars is None:
            chars = list(text)
        chars[start:end] = MASK_CHAR * (end - start)
    return text if chars is None else "".join(chars)


def _strictest(a: Rule, b: Rule) -> Rule:
    """The stricter of two rules for one word; the earlier one on a tie."""
    return b if b.action.severity > a.action.severity else a


class WordFilter:
    """An immutable compiled word list: blocked rules, allowed words and patterns."""

    __slots__ = (
        "_allow",
        "_allow_automaton",
        "_black",
        "_by_group",
        "_gate",
        "_max_len",
        "_patterns",
        "_regex",
        "_rules",
    )

    def __init__(
        self,
        rules: dict[str, Rule],
        allow: dict[str, str],
        patterns: tuple[Pattern, ...],
        compiled: CompiledPatterns,
        max_len: int,
    ) -> None:
        """Compile already-validated entries; use ``build`` instead."""
        # Folded word → rule / allowed word as given; insertion order is the list order.
        self._rules = rules
        self._allow = allow
        self._patterns = patterns
        self._max_len = max_len
        self._regex, self._by_group, self._gate = compiled
        self._black = _automaton((w, r) for w, r in rules.items())
        self._allow_automaton = _automaton((w, None) for w in allow)

    @classmethod
    def build(
        cls,
        rules: Iterable[Rule],
        allow: Iterable[str] = (),
        *,
        patterns: Iterable[Pattern] = DEFAULT_PATTERNS,
        max_len: int = DEFAULT_MAX_LEN,
    ) -> WordFilter:
        """A filter from rules and allowed words, or ``WordListError`` listing all problems."""
        problems: list[str] = []
        merged: dict[str, Rule] = {}
        for i, rule in enumerate(rules, start=1):
            if not isinstance(rule, Rule):
                problems.append(f"rule {i}: not a Rule ({type(rule).__name__})")
                continue
            entry = f"rule {i} ({rule.word!r})"
            found = []
            if problem := word_problem(rule.word):
                found.append(problem)
            try:
                action = WordAction(rule.action)
            except ValueError:
                choices = ", ".join(a.value for a in WordAction)
                found.append(f"unknown action {rule.action!r} (one of {choices})")
            if not isinstance(rule.category, str) or not rule.category.strip():
                found.append(f"category must be a non-empty string, not {rule.category!r}")
            if found:
                problems.extend(f"{entry}: {p}" for p in found)
                continue
            if action is not rule.action:
                rule = Rule(rule.word, action, rule.category)
            key = normalize_text(rule.word)
            # Two spellings of one word (or one word listed twice) keep the strictest action.
            merged[key] = _strictest(merged[key], rule) if key in merged else rule
        allowed: dict[str, str] = {}
        for i, word in enumerate(allow, start=1):
            if problem := word_problem(word):
                problems.append(f"allowed word {i}: {problem}")
                continue
            key = normalize_text(word)
            if key in merged:
                # The same word cannot be both harmless and banned: refuse rather than guess.
                problems.append(
                    f"allowed word {word!r} is also blocked as {merged[key].word!r}"
                    f" ({merged[key].action})"
                )
                continue
            allowed.setdefault(key, word)
        patterns = tuple(patterns)
        compiled = _NO_PATTERNS
        if not all(isinstance(p, Pattern) for p in patterns):
            problems.append("patterns must all be Pattern objects")
        else:
            try:
                compiled = compile_patterns(patterns)
            except WordListError as e:
                problems.extend(e.problems)
        if not isinstance(max_len, int) or max_len < 1:
            problems.append(f"max_len must be a positive integer, not {max_len!r}")
        if problems:
            raise WordListError(problems)
        return cls(merged, allowed, patterns, compiled, max_len)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        patterns: Iterable[Pattern] = DEFAULT_PATTERNS,
        max_len: int = DEFAULT_MAX_LEN,
    ) -> WordFilter:
        """A filter from a list file (see ``moderation.rules`` for the format)."""
        rules, allow = load_rules(path)
        return cls.build(rules, allow, patterns=patterns, max_len=max_len)

    def with_changes(
        self,
        *,
        add: Iterable[Rule] = (),
        remove: Iterable[str] = (),
        allow_add: Iterable[str] = (),
        allow_remove: Iterable[str] = (),
    ) -> WordFilter:
        """A new filter with entries added and removed; this one is left as it was.

        An added rule replaces the rule for the same (normalised) word, so an action can be
        lowered as well as raised. Removals match normalised words.
        """
        add = list(add)
        dropped = {normalize_text(w) for w in remove if isinstance(w, str)}
        for rule in add:
            if isinstance(rule, Rule) and isinstance(rule.word, str):
                dropped.add(normalize_text(rule.word))
        allow_dropped = {normalize_text(w) for w in allow_remove if isinstance(w, str)}
        rules = [r for k, r in self._rules.items() if k not in dropped]
        allow = [w for k, w in self._allow.items() if k not in allow_dropped]
        return WordFilter.build(
            [*rules, *add],
            [*allow, *allow_add],
            patterns=self._patterns,
            max_len=self._max_len,
        )

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The blocked rules in effect (one per normalised word)."""
        return tuple(self._rules.values())

    @property
    def allow(self) -> tuple[str, ...]:
        """The allowed words in effect."""
        return tuple(self._allow.values())

    @property
    def max_len(self) -> int:
        """Longest text checked; longer text is refused."""
        return self._max_len

    def __len__(self) -> int:
        return len(self._rules)

    def check(self, text: str) -> FilterResult:
        """The strictest action for ``text`` and every match, with original spans."""
        if len(text) > self._max_len:
            return _TOO_LONG
        folded = normalize_text(text)
        if not folded:
            return _CLEAN
        found = self._find(folded)
        if _BIDI_OVERRIDE.search(text) is not None:
            # An override shows the characters it covers in reverse ("\u202e信微加" reads
            # "加微信"), so such text is also checked backwards.
            n = len(folded)
            found += [(n - e, n - s, r) for s, e, r in self._find(folded[::-1])]
        if not found:
            return _CLEAN
        # Only text with a match pays for the map back to the original characters.
        span = normalize(text).span
        hits = sorted(
            {Hit(rule, *span(start, end)) for start, end, rule in found},
            key=lambda h: (h.start, h.end, h.rule.word),
        )
        action = max((h.rule.action for h in hits), key=lambda a: a.severity)
        return FilterResult(action, tuple(hits))

    def _find(self, folded: str) -> list[tuple[int, int, Rule]]:
        """Matches in normalised text as (start, end, rule), allowed spans taken out."""
        found: list[tuple[int, int, Rule]] = []
        haystack, units = _encode_text(folded)
        if self._black is not None:
            if units is None:
                # The common case, inlined: this loop runs for every comment.
                for last, (length, rule) in self._black.iter(haystack):
                    start = last + 1 - length
                    if not start & 1:
                        found.append((start >> 1, (last + 1) >> 1, rule))
            else:
                found.extend((s, e, r) for s, e, r in _matches(self._black, haystack, units) if r)
        regex = self._regex
        if regex is not None and self._gate(folded):
            for m in regex.finditer(folded):
                # Each pattern is one named group, so the last group closed names it.
                found.append((m.start(), m.end(), self._by_group[m.lastgroup or ""]))
        if found and self._allow_automaton is not None:
            allowed = [(a, b) for a, b, _ in _matches(self._allow_automaton, haystack, units)]
            if allowed:
                found = [
                    (s, e, r) for s, e, r in found if not any(a <= s and e <= b for a, b in allowed)
                ]
        return found


# The automaton runs over each character's two UTF-16 code units (big-endian bytes, one
# str character per byte) instead of over the characters: pyahocorasick scans a node's
# children one by one, and with thousands of words the root alone has thousands of first
# characters, which made a 20,000-word list ~15 times slower than the default one. As
# bytes, no node has more than 256 children. A match that starts on an odd byte straddles
# two characters and is skipped; AC reports every occurrence, so no aligned one is lost.


def _encode(folded: str) -> str:
    """Normalised text as a string of its UTF-16-BE bytes, one character per byte."""
    return folded.encode("utf-16-be").decode("latin-1")


def _encode_text(folded: str) -> tuple[str, list[int] | None]:
    """The encoded text, and a code unit → character map when it holds surrogate pairs."""
    haystack = _encode(folded)
    if len(haystack) == 2 * len(folded):
        return haystack, None
    # Characters beyond the BMP take two code units; rare, so only then is a map built.
    units: list[int] = []
    for i, ch in enumerate(folded):
        units.append(i)
        if ch > "\uffff":
            units.append(i)
    units.append(len(folded))
    return haystack, units


def _automaton(entries: Iterable[tuple[str, Rule | None]]) -> ahocorasick.Automaton | None:
    """An automaton over the encoded words (values: byte length, rule), None if empty."""
    automaton = ahocorasick.Automaton()
    for word, rule in entries:
        key = _encode(word)
        automaton.add_word(key, (len(key), rule))
    if len(automaton) == 0:
        return None
    automaton.make_automaton()
    return automaton


def _matches(
    automaton: ahocorasick.Automaton, haystack: str, units: list[int] | None
) -> Iterator[tuple[int, int, Rule | None]]:
    """Aligned matches as (start, end, value's rule) in characters of the normalised text."""
    for last, (length, rule) in automaton.iter(haystack):
        start = last + 1 - length
        if start & 1:
            continue  # straddles two characters
        if units is None:
            yield start >> 1, (last + 1) >> 1, rule
        else:
            # Words start and end on character boundaries, so both ends map exactly.
            yield units[start >> 1], units[(last + 1) >> 1], rule


def default_filter(*, max_len: int = DEFAULT_MAX_LEN) -> WordFilter:
    """The filter over the shipped default list (obvious off-platform spam only)."""
    return WordFilter.from_file(DEFAULT_WORDS_PATH, max_len=max_len)
