"""Word rules, their actions, and the word-list file format.

A list file is UTF-8, one entry a line; blank lines and lines starting with ``#`` are
skipped. Under ``[block]`` (the default section) a line is ``word<TAB>action<TAB>category``;
under ``[allow]`` a line is a harmless word that contains a blocked one::

    # contact offers
    加微信	reject	contact
    [allow]
    微信支付
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from moderation.normalize import normalize_text

__all__ = [
    "MAX_WORD_LEN",
    "Rule",
    "WordAction",
    "WordListError",
    "load_rules",
    "parse_rules",
    "word_problem",
]

# A word longer than any comment can never match; a cap also keeps a bad upload small.
MAX_WORD_LEN = 100


class WordAction(StrEnum):
    """What a match does to a comment, from mildest to strictest."""

    MASK = "mask"  # the comment goes out with * over the match
    REVIEW = "review"  # only the sender sees it; it waits in the room's review queue
    REJECT = "reject"  # the comment is refused (ack rejected)

    @property
    def severity(self) -> int:
        """Rank for picking the strictest action: reject > review > mask."""
        return _SEVERITY[self]


_SEVERITY = {WordAction.MASK: 1, WordAction.REVIEW: 2, WordAction.REJECT: 3}
_ACTIONS = frozenset(a.value for a in WordAction)


@dataclass(frozen=True, slots=True)
class Rule:
    """One blocked word (or pattern name), what a match does, and why it is blocked."""

    word: str
    action: WordAction
    category: str


class WordListError(ValueError):
    """A word list was refused; ``problems`` lists every entry that is wrong."""

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(self.problems[:20])
        more = f" (and {len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        super().__init__(f"word list refused, {len(self.problems)} problem(s): {shown}{more}")


def word_problem(word: object) -> str | None:
    """Why ``word`` cannot be a list entry, or None when it can."""
    if not isinstance(word, str):
        return f"word must be a string, not {type(word).__name__}"
    if not word.strip():
        return "word is empty"
    if len(word) > MAX_WORD_LEN:
        return f"word longer than {MAX_WORD_LEN} characters"
    folded = normalize_text(word)
    if not folded:
        return f"word {word!r} has no letters or digits"
    if len(folded) == 1 and folded.isascii():
        # One Latin letter or digit would hit nearly every comment ("www" folds to "w").
        return f"word {word!r} folds to the single character {folded!r}"
    return None


def parse_rules(text: str, *, source: str = "<text>") -> tuple[list[Rule], list[str]]:
    """Blocked rules and allowed words from list-file text; ``WordListError`` names lines."""
    rules: list[Rule] = []
    allow: list[str] = []
    problems: list[str] = []
    # Folded word → line of its first blocked / allowed entry, to name both lines of a clash.
    blocked_at: dict[str, str] = {}
    allowed_at: dict[str, str] = {}
    section = "block"
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{lineno}"
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            if section not in ("block", "allow"):
                problems.append(f"{where}: unknown section [{section}]")
            continue
        if section == "allow":
            if "\t" in line:
                problems.append(f"{where}: an [allow] line is just a word, without tabs")
            elif problem := word_problem(line):
                problems.append(f"{where}: {problem}")
            else:
                allow.append(line)
                allowed_at.setdefault(normalize_text(line), where)
            continue
        if section != "block":
            continue  # already reported: entries under an unknown section are not guessed at
        fields = [f.strip() for f in raw.split("\t")]
        if len(fields) != 3:
            problems.append(f"{where}: expected word<TAB>action<TAB>category, got {raw!r}")
            continue
        word, action, category = fields
        entry_problems = []
        if problem := word_problem(word):
            entry_problems.append(problem)
        if action not in _ACTIONS:
            choices = ", ".join(a.value for a in WordAction)
            entry_problems.append(f"unknown action {action!r} (one of {choices})")
        if not category:
            entry_problems.append("category is empty")
        if entry_problems:
            problems.extend(f"{where}: {p}" for p in entry_problems)
            continue
        rules.append(Rule(word, WordAction(action), category))
        blocked_at.setdefault(normalize_text(word), where)
    for folded, where in allowed_at.items():
        if folded in blocked_at:
            problems.append(
                f"{where}: allowed word {folded!r} is also blocked at {blocked_at[folded]}"
            )
    if problems:
        raise WordListError(problems)
    return rules, allow


def load_rules(path: str | os.PathLike[str]) -> tuple[list[Rule], list[str]]:
    """Blocked rules and allowed words from a UTF-8 list file."""
    # utf-8-sig: a byte-order mark from a Windows editor is not part of the first word.
    with open(path, encoding="utf-8-sig") as f:
        try:
            text = f.read()
        except UnicodeDecodeError as e:
            raise WordListError([f"{os.fspath(path)}: not UTF-8 ({e.reason})"]) from e
    return parse_rules(text, source=os.fspath(path))
