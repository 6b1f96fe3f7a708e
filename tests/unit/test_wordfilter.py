"""moderation.wordfilter (with its list format and patterns): matching, masking, list updates."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from moderation.patterns import DEFAULT_PATTERNS, DIGIT, Pattern
from moderation.rules import parse_rules
from moderation.wordfilter import (
    DEFAULT_WORDS_PATH,
    FilterResult,
    Rule,
    WordAction,
    WordFilter,
    WordListError,
    default_filter,
    load_rules,
    mask,
)

REJECT, REVIEW, MASK = WordAction.REJECT, WordAction.REVIEW, WordAction.MASK

# Harmless stand-ins for a deployment's own list (no offensive words in the repo).
WORDS = {
    "加微信": REJECT,
    "刷单": REJECT,
    "私下转账": REJECT,
    "微信号": REVIEW,
    "spam": MASK,
    "bad word": MASK,
}
TRADITIONAL = {"微信号": "微信號", "私下转账": "私下轉賬"}


def words_filter(*, allow: tuple[str, ...] = (), max_len: int = 1000) -> WordFilter:
    rules = [Rule(w, a, "test") for w, a in WORDS.items()]
    return WordFilter.build(rules, allow, patterns=(), max_len=max_len)


@pytest.fixture(scope="module")
def wf() -> WordFilter:
    return words_filter()


@pytest.fixture(scope="module")
def default() -> WordFilter:
    return default_filter()


def spans(result: FilterResult, text: str) -> list[tuple[str, str]]:
    return [(h.rule.word, text[h.start : h.end]) for h in result.hits]


# --- matching and obfuscation --------------------------------------------------------


def test_clean_text(wf: WordFilter) -> None:
    result = wf.check("主播好美，已下单")
    assert result.clean and result.action is None and result.hits == ()


@pytest.mark.parametrize("text", ["", " ", "\u3000\t", "\u200b\u200d", "!!!", "😀🔥"])
def test_empty_and_whitespace_only(wf: WordFilter, text: str) -> None:
    assert wf.check(text).clean


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("快加微信", "加微信"),
        ("ＳＰＡＭ here", "ＳＰＡＭ"),  # full-width
        ("Ⓢⓟⓐⓜ", "Ⓢⓟⓐⓜ"),  # circled letters
        ("𝐬𝐩𝐚𝐦!", "𝐬𝐩𝐚𝐦"),  # styled letters
        ("加 微 信", "加 微 信"),  # spaces between characters
        ("加*微.信", "加*微.信"),  # symbols between characters
        ("加\u200b微\u200d信", "加\u200b微\u200d信"),  # zero-width space and joiner
        ("s\u0301p\u0308am", "s\u0301p\u0308am"),  # combining marks
        ("加😀微🔥信", "加😀微🔥信"),  # emoji between letters
        ("加加加微微信信", "加微微信"),  # repeated characters
        ("来刷單了", "刷單"),  # traditional form
        ("私下轉賬", "私下轉賬"),
        ("BAD-WORD", "BAD-WORD"),  # a listed word with a space matches without it
    ],
)
def test_obfuscations_are_caught(wf: WordFilter, text: str, matched: str) -> None:
    result = wf.check(text)
    assert not result.clean
    assert matched in [text[h.start : h.end] for h in result.hits]


def test_right_to_left_override_is_read_as_displayed(wf: WordFilter) -> None:
    # "\u202e信微加" displays as "加微信": the override reverses what it covers.
    text = "看\u202e信微加\u202c吧"
    result = wf.check(text)
    assert result.action is REJECT
    assert spans(result, text) == [("加微信", "信微加")]


def test_very_long_repeated_run(wf: WordFilter) -> None:
    text = "加" * 300 + "微" * 300 + "信" * 300
    result = wf.check(text)
    assert result.action is REJECT
    assert (result.hits[0].start, result.hits[0].end) == (299, 601)


def test_strictest_action_wins(wf: WordFilter) -> None:
    result = wf.check("spam 微信号 加微信")
    assert result.action is REJECT
    assert {h.rule.action for h in result.hits} == {MASK, REVIEW, REJECT}


def test_review(wf: WordFilter) -> None:
    assert wf.check("你微信号多少").action is REVIEW


def test_mask_replaces_exactly_the_match(wf: WordFilter) -> None:
    text = "this is s p a m, ok"
    result = wf.check(text)
    assert result.action is MASK
    assert result.masked(text) == "this is *******, ok"


def test_mask_covers_repeats_inside_the_match(wf: WordFilter) -> None:
    # The s before "spam" may be a neighbour's ("this is spam"), so an edge run gives
    # only its member next to the match; repeats inside are covered.
    text = "ssppaam!"
    assert wf.check(text).masked(text) == "s******!"
    text = "this is spam"
    assert wf.check(text).masked(text) == "this is ****"


def test_mask_covers_a_run_of_a_one_character_word() -> None:
    wf = WordFilter.build([Rule("哈", MASK, "t")], patterns=())
    text = "哈 哈哈!"
    assert wf.check(text).masked(text) == "****!"


def test_mask_covers_a_character_beyond_the_bmp() -> None:
    wf = WordFilter.build([Rule("𠀀加", MASK, "t")], patterns=())
    text = "x𠀀 加y"
    assert wf.check(text).masked(text) == "x***y"


def test_words_are_found_across_characters_beyond_the_bmp(wf: WordFilter) -> None:
    text = "𠀀😀spam𠀀"
    result = wf.check(text)
    assert spans(result, text) == [("spam", "spam")]
    assert result.masked(text) == "𠀀😀****𠀀"


def test_every_occurrence_is_reported(wf: WordFilter) -> None:
    text = "spam, spam"
    assert [(h.start, h.end) for h in wf.check(text).hits] == [(0, 4), (6, 10)]
    assert wf.check(text).masked(text) == "****, ****"


# --- length limit ----------------------------------------------------------------------


def test_text_at_the_length_limit_is_checked_to_its_end() -> None:
    wf = words_filter(max_len=40)
    text = "好" * 37 + "加微信"
    assert len(text) == 40
    assert wf.check(text).action is REJECT
    assert wf.check("好" * 40).clean


def test_text_over_the_length_limit_is_refused_not_truncated() -> None:
    wf = words_filter(max_len=40)
    result = wf.check("好" * 41)
    assert result.too_long and result.action is REJECT and result.hits == ()
    assert wf.check("好" * 38 + "加微信").too_long


# --- allow list ------------------------------------------------------------------------


def test_allowed_word_beats_a_blocked_word_inside_it() -> None:
    wf = WordFilter.build([Rule("微信", REJECT, "contact")], ["微信支付"], patterns=())
    assert wf.check("可以用微信支付吗").clean
    assert wf.check("可以用 微 信 支 付 吗").clean  # the allowed word is normalised too
    text = "微信支付，加微信"
    result = wf.check(text)
    assert result.action is REJECT
    assert [(h.start, h.end) for h in result.hits] == [(6, 8)]


def test_allowed_word_only_covers_matches_fully_inside_it() -> None:
    wf = WordFilter.build([Rule("加微信", REJECT, "contact")], ["微信支付"], patterns=())
    assert wf.check("加微信支付").action is REJECT


def test_allowed_words_also_cover_patterns() -> None:
    wf = WordFilter.build([], ["客服电话13800138000"])
    assert wf.check("客服电话 138 0013 8000").clean
    assert wf.check("电话 138 0013 8000").action is MASK


# --- building and updating lists ------------------------------------------------------


def test_contradictory_allowed_and_blocked_word_is_refused() -> None:
    with pytest.raises(WordListError) as info:
        WordFilter.build([Rule("wx", REJECT, "contact")], ["ＷＸ"], patterns=())
    assert len(info.value.problems) == 1
    assert "also blocked" in info.value.problems[0]


def test_malformed_entries_are_refused_all_at_once() -> None:
    bad: list[object] = [
        Rule("", REJECT, "c"),
        Rule("   ", REJECT, "c"),
        Rule("!!! 😀", REJECT, "c"),  # nothing left after normalising
        Rule("www", REJECT, "c"),  # folds to one Latin letter: would hit nearly everything
        Rule("加微信", "ban", "c"),  # type: ignore[arg-type]
        Rule("刷单", REJECT, ""),
        Rule("刷单", REJECT, 7),  # type: ignore[arg-type]
        Rule(None, REJECT, "c"),  # type: ignore[arg-type]
        ("加微信", "reject", "c"),
        Rule("长" * 101, REJECT, "c"),
    ]
    with pytest.raises(WordListError) as info:
        WordFilter.build(bad, ["", "ok word"])  # type: ignore[arg-type]
    assert len(info.value.problems) == len(bad) + 1
    assert isinstance(info.value, ValueError)


def test_a_refused_update_keeps_the_old_filter(wf: WordFilter) -> None:
    before = (wf.rules, wf.allow)
    with pytest.raises(WordListError):
        wf.with_changes(add=[Rule("新词", REJECT, "c"), Rule("", REJECT, "c")])
    with pytest.raises(WordListError):
        wf.with_changes(allow_add=["加微信"])
    assert (wf.rules, wf.allow) == before
    assert wf.check("加微信").action is REJECT
    assert wf.check("新词").clean


def test_update_returns_a_new_filter(wf: WordFilter) -> None:
    updated = wf.with_changes(
        add=[Rule("新词", REVIEW, "c"), Rule("加微信", MASK, "c")], remove=["ＳＰＡＭ"]
    )
    assert updated.check("新词").action is REVIEW
    assert updated.check("加微信").action is MASK  # an added rule replaces the old one
    assert updated.check("spam").clean
    assert wf.check("spam").action is MASK and wf.check("新词").clean
    allowed = updated.with_changes(allow_add=["新词典"])
    assert allowed.check("新词典").clean
    assert allowed.with_changes(allow_remove=["新词典"]).check("新词典").action is REVIEW


def test_duplicates_keep_the_strictest_action() -> None:
    wf = WordFilter.build(
        [
            Rule("加微信", MASK, "a"),
            Rule("加 微 信", REJECT, "b"),
            Rule("加微信", REVIEW, "c"),
            Rule("刷单", REVIEW, "d"),
            Rule("刷單", REVIEW, "e"),
        ],
        patterns=(),
    )
    assert wf.rules == (Rule("加 微 信", REJECT, "b"), Rule("刷单", REVIEW, "d"))
    assert len(wf) == 2


def test_actions_given_as_strings_are_accepted() -> None:
    wf = WordFilter.build([Rule("加微信", "review", "c")], patterns=())  # type: ignore[arg-type]
    assert wf.check("加微信").action is REVIEW


def test_an_empty_list_matches_nothing() -> None:
    wf = WordFilter.build([], patterns=())
    assert wf.check("加微信 13800138000").clean


@pytest.mark.parametrize("max_len", [0, -1])
def test_bad_length_limit(max_len: int) -> None:
    with pytest.raises(WordListError):
        WordFilter.build([], max_len=max_len)


# --- list files ------------------------------------------------------------------------


def test_parse_rules() -> None:
    rules, allow = parse_rules(
        "# comment\n\n加微信\treject\tcontact\n [block] \nspam\tmask\tads\n[allow]\n微信支付\n"
    )
    assert rules == [Rule("加微信", REJECT, "contact"), Rule("spam", MASK, "ads")]
    assert allow == ["微信支付"]


def test_parse_errors_name_every_bad_line() -> None:
    text = "\n".join(
        [
            "加微信\treject\tcontact",  # 1: fine
            "刷单\treject",  # 2: two fields
            "刷单\tban\tfraud",  # 3: unknown action
            "\treject\tfraud",  # 4: empty word
            "😀😀\treject\tfraud",  # 5: no letters or digits
            "刷单\treject\t",  # 6: empty category
            "[deny]",  # 7: unknown section
            "[allow]",
            "微信支付\treject",  # 9: an allowed word with tabs
            "加 微 信",  # 10: contradicts line 1
        ]
    )
    with pytest.raises(WordListError) as info:
        parse_rules(text, source="words.txt")
    problems = info.value.problems
    for line in (2, 3, 4, 5, 6, 7, 9, 10):
        assert any(p.startswith(f"words.txt:{line}:") for p in problems), (line, problems)
    assert not any(p.startswith("words.txt:1:") for p in problems)
    assert "words.txt:1" in next(p for p in problems if p.startswith("words.txt:10:"))


def test_load_rules_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("刷单\treject\tfraud\n[allow]\n刷单骗局\n", encoding="utf-8")
    assert load_rules(path) == ([Rule("刷单", REJECT, "fraud")], ["刷单骗局"])
    wf = WordFilter.from_file(path)
    assert wf.check("刷单").action is REJECT and wf.check("小心刷单骗局").clean


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_bytes("刷单\treject\tfraud\n".encode("gbk"))
    with pytest.raises(WordListError, match="not UTF-8"):
        load_rules(path)


# --- default list and patterns --------------------------------------------------------


def test_default_list_loads() -> None:
    rules, allow = load_rules(DEFAULT_WORDS_PATH)
    assert rules and allow
    assert all(r.category in {"contact", "off_platform", "fraud"} for r in rules)


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("加微信领福利", REJECT),
        ("加 V X 私聊", REJECT),
        ("扣扣 1234 5678 找我", REJECT),
        ("加QQ群：123456789", REJECT),
        ("ＱＱ①②③④⑤⑥", REJECT),
        ("vx: abc_2024", REJECT),
        ("微信 shop888", REJECT),
        ("看 https://t.cn/A1b2 好东西", REJECT),
        ("HTTP://EXAMPLE.COM", REJECT),
        ("兼职刷单日赚300", REJECT),
        ("我们私下交易吧", REJECT),
        ("有事私聊", REVIEW),
        ("你微信号多少", REVIEW),
        ("我电话 138-0013-8000", MASK),
    ],
)
def test_default_list_catches_off_platform_spam(
    default: WordFilter, text: str, action: WordAction
) -> None:
    assert default.check(text).action is action


@pytest.mark.parametrize(
    "text",
    [
        "主播好美",
        "666666",
        "哈哈哈哈哈",
        "这个多少钱",
        "3号链接还有吗",
        "已拍 等发货",
        "微信支付可以吗",
        "小程序里能买吗",
        "小心刷单骗局",
        "welcome to my room",
        "wechat is great",
        "I love www",
        "订单号 20240601",
        "价格 199 元",
        "2024年6月1日",
        "主播穿M码吗",
        "1234",
        "Q1 2024 财报",
        "iPhone 15 Pro Max 256G",
        "https",
    ],
)
def test_default_list_lets_ordinary_comments_through(default: WordFilter, text: str) -> None:
    assert default.check(text).clean, default.check(text)


def test_mobile_number_is_masked_with_its_separators(default: WordFilter) -> None:
    text = "电话 138 0013 8000 找我"
    assert default.check(text).masked(text) == "电话 ************* 找我"


@pytest.mark.parametrize("text", ["138001380001", "213800138000", "12800138000"])
def test_mobile_number_needs_eleven_digits_of_its_own(default: WordFilter, text: str) -> None:
    assert default.check(text).clean


def test_bad_patterns_are_refused() -> None:
    bad = [
        Pattern("broken", "(", REJECT, "x"),
        Pattern("empty", "a*", REJECT, "x"),
        Pattern("named", "(?P<n>a)b", REJECT, "x"),
        Pattern("action", "ab", "ban", "x"),  # type: ignore[arg-type]
        Pattern("category", "ab", REJECT, ""),
        Pattern("hint", "ab", REJECT, "x", ""),
    ]
    with pytest.raises(WordListError) as info:
        WordFilter.build([Rule("", REJECT, "x")], patterns=bad)
    assert len(info.value.problems) == len(bad) + 1  # every problem, patterns and words


def test_pattern_hint_gates_the_scan() -> None:
    # Written against normalised text: lower case, no separators, no doubled letters.
    pattern = Pattern("order", "order[0-9]{4}", REVIEW, "x", DIGIT)
    wf = WordFilter.build([], patterns=[pattern])
    assert wf.check("ORDER-1234").action is REVIEW
    assert wf.check("orderabcd").clean
    unhinted = WordFilter.build([], patterns=[Pattern("ab", "ab", REVIEW, "x")])
    assert unhinted.check("a b").action is REVIEW


def test_default_patterns_have_hints() -> None:
    assert all(p.hint for p in DEFAULT_PATTERNS)


# --- mask ------------------------------------------------------------------------------


def test_mask_refuses_spans_outside_the_text() -> None:
    with pytest.raises(ValueError):
        mask("abc", [(2, 4)])
    with pytest.raises(ValueError):
        mask("abc", [(-1, 1)])


def test_mask_without_spans_returns_the_text() -> None:
    assert mask("abc", []) == "abc"
    assert mask("abc", [(1, 1)]) == "abc"


@st.composite
def text_and_spans(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]]]:
    text = draw(st.text(max_size=50))
    bounds = st.integers(0, len(text))
    pairs = draw(st.lists(st.tuples(bounds, bounds), max_size=5))
    return text, [(min(a, b), max(a, b)) for a, b in pairs]


@given(text_and_spans())
def test_mask_keeps_length_and_changes_only_spans(case: tuple[str, list[tuple[int, int]]]) -> None:
    text, spans_ = case
    out = mask(text, spans_)
    assert len(out) == len(text)
    covered = {i for a, b in spans_ for i in range(a, b)}
    for i, (before, after) in enumerate(zip(text, out, strict=True)):
        assert after == ("*" if i in covered else before)


# --- properties over the filter --------------------------------------------------------

SEPARATORS = [
    " ",
    "\u3000",
    "\t",
    ".",
    "*",
    "-",
    "_",
    "、",
    "。",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u0301",
    "\u0308",
    "\u3164",
    "😀",
    "🔥",
    "❤\ufe0f",
    "👍🏽",
]
plain_words = st.sampled_from(sorted(WORDS))


def full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


@st.composite
def obfuscated(draw: st.DrawFn) -> tuple[str, str]:
    """A listed word and a spelling of it a spammer might try."""
    word = draw(plain_words)
    chars = list(TRADITIONAL.get(word, word) if draw(st.booleans()) else word)
    if draw(st.booleans()):
        chars = [c.upper() for c in chars]
    if draw(st.booleans()):
        chars = [full_width(c) for c in chars]
    chars = [c * draw(st.integers(1, 4)) for c in chars]
    seps = st.lists(st.sampled_from(SEPARATORS), max_size=3).map("".join)
    spelled = chars[0] + "".join(draw(seps) + c for c in chars[1:])
    return word, spelled


@given(obfuscated(), st.text(max_size=20), st.text(max_size=20))
def test_obfuscated_word_is_caught(
    wf: WordFilter, case: tuple[str, str], before: str, after: str
) -> None:
    word, spelled = case
    text = before + spelled + after
    result = wf.check(text)
    start, end = len(before), len(before) + len(spelled)
    # A hit of the word lies within the spelled-out word, from the last repeat of its first
    # letter to the first repeat of its last one.
    first = start + len(spelled) - len(spelled.lstrip(spelled[0]))
    last = end - (len(spelled) - len(spelled.rstrip(spelled[-1])))
    assert any(
        h.rule.word == word and (h.start, h.end) == (first - 1, last + 1) for h in result.hits
    ), (text, result)
    assert result.action is not None
    assert result.action.severity >= WORDS[word].severity


@given(st.text(max_size=60), st.lists(plain_words, max_size=3))
def test_filter_masks_keep_length_and_cover_only_hits(
    wf: WordFilter, text: str, words: list[str]
) -> None:
    for w in words:
        i = len(text) // 2
        text = text[:i] + w + text[i:]
    result = wf.check(text)
    out = mask(text, [(h.start, h.end) for h in result.hits])
    assert len(out) == len(text)
    covered = {i for h in result.hits for i in range(h.start, h.end)}
    for i, (a, b) in enumerate(zip(text, out, strict=True)):
        if a != b:
            assert i in covered
        if i not in covered:
            assert a == b
    assert result.masked(text) == mask(text, result.mask_spans)


BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@given(st.text(max_size=60))
def test_a_hit_alone_is_a_hit_again(wf: WordFilter, text: str) -> None:
    # Not with bidi controls: a reversed hit is reversed by a control outside its span.
    assume(not BIDI.intersection(text))
    for h in wf.check(text).hits:
        folded = wf.check(text[h.start : h.end])
        assert h.rule in {x.rule for x in folded.hits}


@given(st.text(max_size=80))
def test_check_never_raises(default: WordFilter, text: str) -> None:
    result = default.check(text)
    assert result.action is None or isinstance(result.action, WordAction)
    assert result.clean == (result.hits == ())
    for h in result.hits:
        assert 0 <= h.start < h.end <= len(text)


# --- found by mutation testing (docs/testing.md) ---------------------------------------


def test_every_problem_is_named_exactly_with_its_position() -> None:
    bad: list[object] = [
        Rule("", REJECT, "c"),
        ("x",),
        Rule("加微信", "ban", "c"),  # type: ignore[arg-type]
        Rule("刷单", REJECT, ""),
    ]
    with pytest.raises(WordListError) as info:
        WordFilter.build(bad, ["", "ok word", "  "], patterns=[1])  # type: ignore[list-item]
    assert info.value.problems == (
        "rule 1 (''): word is empty",
        "rule 2: not a Rule (tuple)",
        "rule 3 ('加微信'): unknown action 'ban' (one of mask, review, reject)",
        "rule 4 ('刷单'): category must be a non-empty string, not ''",
        "allowed word 1: word is empty",
        "allowed word 3: word is empty",
        "patterns must all be Pattern objects",
    )


def test_every_contradiction_is_reported() -> None:
    with pytest.raises(WordListError) as info:
        WordFilter.build(
            [Rule("wx", REJECT, "c"), Rule("vx", MASK, "c")], ["ＷＸ", "V X"], patterns=()
        )
    assert info.value.problems == (
        "allowed word 'ＷＸ' is also blocked as 'wx' (reject)",
        "allowed word 'V X' is also blocked as 'vx' (mask)",
    )


def test_allowed_words_are_kept_as_given() -> None:
    wf = WordFilter.build([Rule("微信", REJECT, "c")], ["微信 支付", "公众号"], patterns=())
    assert wf.allow == ("微信 支付", "公众号")


def test_an_action_given_as_a_string_keeps_the_rule_category() -> None:
    wf = WordFilter.build([Rule("加微信", "review", "contact")], patterns=())  # type: ignore[arg-type]
    assert wf.rules == (Rule("加微信", REVIEW, "contact"),)


def test_a_length_limit_of_one_is_allowed() -> None:
    wf = WordFilter.build([], patterns=(), max_len=1)
    assert wf.max_len == 1 and wf.check("ab").too_long


def test_files_and_updates_keep_their_patterns_and_length_limit(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("刷单\treject\tfraud\n")
    pattern = Pattern("order", "order[0-9]{4}", REVIEW, "x", DIGIT)
    wf = WordFilter.from_file(path, patterns=[pattern], max_len=40)
    assert wf.max_len == 40
    assert wf.check("order 1234").action is REVIEW
    assert WordFilter.from_file(path, patterns=()).check("13800138000").clean
    updated = wf.with_changes(add=[Rule("加微信", REJECT, "c")])
    assert updated.max_len == 40
    assert updated.check("order 1234").action is REVIEW
    assert default_filter(max_len=12).max_len == 12


def test_an_update_with_a_non_rule_is_refused_as_a_list_error(wf: WordFilter) -> None:
    with pytest.raises(WordListError) as info:
        wf.with_changes(add=["加微信"])  # type: ignore[list-item]
    assert info.value.problems == (f"rule {len(wf) + 1}: not a Rule (str)",)


def test_a_forward_match_counts_in_text_with_a_bidi_override(wf: WordFilter) -> None:
    # Checked backwards too, but what reads forwards is still found.
    text = "加微信\u202e好"
    assert spans(wf.check(text), text) == [("加微信", "加微信")]


def test_a_pattern_is_scanned_only_when_its_hint_is_there() -> None:
    # The hint is trusted: a pattern that could match without it is never run.
    pattern = Pattern("order", "order[a-z]{4}", REVIEW, "x", DIGIT)
    wf = WordFilter.build([], patterns=[pattern])
    assert wf.check("orderabcd").clean
    assert wf.check("orderabcd 1").action is REVIEW


def test_a_match_at_the_end_of_text_beyond_the_bmp() -> None:
    wf = WordFilter.build([Rule("加微信", REJECT, "c")], patterns=())
    text = "𠀀加微信"
    assert spans(wf.check(text), text) == [("加微信", "加微信")]


def test_a_straddling_match_does_not_hide_a_later_one() -> None:
    # "加微" is 52a0 5fae in UTF-16-BE, so the word "ꁟ" (a05f) also occurs across them.
    wf = WordFilter.build([Rule("ꁟ", REJECT, "c")], patterns=())
    assert spans(wf.check("加微ꁟ"), "加微ꁟ") == [("ꁟ", "ꁟ")]
    text = "𠀀加微ꁟ"  # beyond the BMP: the matches go through the code unit map
    assert spans(wf.check(text), text) == [("ꁟ", "ꁟ")]


def test_allowed_spans_are_mapped_beyond_the_bmp() -> None:
    wf = WordFilter.build([Rule("微信", REJECT, "c")], ["微信公众号"], patterns=())
    assert wf.check("𠀀微信公众号").clean
    assert wf.check("𠀀微信").action is REJECT


def test_text_inside_the_bmp_needs_no_code_unit_map() -> None:
    # The map is built only for text beyond the BMP: every comment pays for this check.
    from moderation.wordfilter import _encode_text

    assert _encode_text("加微信") == ("R\xa0_\xaeO\xe1", None)
    assert _encode_text("𠀀加") == ("\xd8@\xdc\x00R\xa0", [0, 0, 1, 2])


def test_mask_names_the_span_it_refuses() -> None:
    with pytest.raises(ValueError, match=r"^span \[2, 4\) outside text of length 3$"):
        mask("abc", [(2, 4)])
