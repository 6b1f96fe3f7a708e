"""Judging a run's outcomes and writing them up: pure, no I/O.

A run is, per server (``direct``, ``aiohttp``, ``reference``), the outcome of every
case (tests/conformance/outcome.py). Each Interact path is judged three ways: against
what is correct (``violations``), against the reference echo server (``differences``),
and against the other path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.conformance.outcome import (
    Outcome,
    case_key,
    count_codes,
    differences,
    group,
    reference_usable,
    show,
    violations,
)

DIRECT = "direct"
AIOHTTP = "aiohttp"
REFERENCE = "reference"
PATHS = (DIRECT, AIOHTTP)
SERVERS = (DIRECT, AIOHTTP, REFERENCE)

Outcomes = Mapping[str, Mapping[str, Outcome]]  # server -> case id -> outcome


@dataclass(frozen=True)
class Memory:
    """A server's resident set size before and after the run, kB (``VmRSS``)."""

    before_kb: int
    after_kb: int

    @property
    def growth_kb(self) -> int:
        return self.after_kb - self.before_kb


@dataclass
class Analysis:
    cases: list[str]
    # path -> case id -> what is wrong (only cases with something wrong)
    wrong: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # path -> case id -> how it differs from the reference (an echoed close code and
    # 1000 count as the same answer: aiohttp never echoes)
    unlike_reference: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # case id -> how the direct path differs from the aiohttp path
    paths_disagree: dict[str, list[str]] = field(default_factory=dict)
    # server -> cases missing from its run (a run that stopped early)
    missing: dict[str, list[str]] = field(default_factory=dict)
    # cases where the reference gives no verdict (outcome.reference_usable)
    reference_unclean: list[str] = field(default_factory=list)


def analyse(outcomes: Outcomes) -> Analysis:
    every = set().union(*(set(outcomes.get(s, {})) for s in SERVERS))
    cases = sorted(every, key=case_key)
    result = Analysis(cases=cases)
    for server in SERVERS:
        gone = [c for c in cases if c not in outcomes.get(server, {})]
        if gone:
            result.missing[server] = gone
    reference = outcomes.get(REFERENCE, {})
    result.reference_unclean = [
        c for c in cases if c in reference and not reference_usable(reference[c])
    ]
    for path in PATHS:
        mine = outcomes.get(path, {})
        result.wrong[path] = {}
        result.unlike_reference[path] = {}
        for case in cases:
            if case not in mine or case not in reference:
                continue
            bad = violations(case, reference[case], mine[case])
            if bad:
                result.wrong[path][case] = bad
            diff = differences(case, mine[case], reference[case], strict=False)
            if diff:
                result.unlike_reference[path][case] = diff
    direct, via_aiohttp = outcomes.get(DIRECT, {}), outcomes.get(AIOHTTP, {})
    for case in cases:
        if case in direct and case in via_aiohttp:
            diff = differences(case, direct[case], via_aiohttp[case])
            if diff:
                result.paths_disagree[case] = diff
    return result


def brief(o: Outcome) -> str:
    """``client 1001→1001``: who closed first, the client's close → the server's."""
    text = f"{o.closed_by} {show(o.client_close)}→{show(o.server_close)}"
    if not o.clean:
        text += ", unclean"
    if o.hung:
        text += f", {o.hung} timed out"
    if o.pings:
        text += f", {o.pongs}/{o.pings} pongs"
    if o.after_close:
        text += f", {o.after_close} after close"
    return text


def _mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def _codes(outcomes: list[Outcome]) -> str:
    return ", ".join(f"{code}×{n}" for code, n in count_codes(outcomes).items())


def markdown(outcomes: Outcomes, memory: Mapping[str, Memory], header: str) -> str:
    """The results section of docs/conformance.md."""
    a = analyse(outcomes)
    groups = sorted({group(c) for c in a.cases})
    lines = [header, ""]
    lines += [
        "| cases | server | run | clean closes | server close codes | unlike reference |"
        " wrong | unlike other path |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in groups:
        ids = [c for c in a.cases if group(c) == g]
        for server in SERVERS:
            mine = [outcomes[server][c] for c in ids if c in outcomes.get(server, {})]
            if server == REFERENCE:
                judged = ("", "", "")
            else:
                judged = (
                    str(sum(c in a.unlike_reference[server] for c in ids)),
                    str(sum(c in a.wrong[server] for c in ids)),
                    str(sum(c in a.paths_disagree for c in ids)),
                )
            lines.append(
                f"| {g}.* ({len(ids)}) | {server} | {len(mine)} |"
                f" {sum(o.clean for o in mine)} | {_codes(mine)} | {' | '.join(judged)} |"
            )
    lines += [
        "",
        "| server | RSS before (MB) | RSS after (MB) | growth (MB) |",
        "|---|---|---|---|",
    ]
    for server, m in memory.items():
        lines.append(f"| {server} | {_mb(m.before_kb)} | {_mb(m.after_kb)} | {_mb(m.growth_kb)} |")
    flagged = [c for c in a.cases if c in a.paths_disagree or any(c in a.wrong[p] for p in PATHS)]
    lines += [
        "",
        f"Cases where a path is wrong or the paths disagree: {len(flagged)}"
        " (who closed first, the client's close → the server's close).",
        "",
    ]
    if flagged:
        lines += [
            "| case | direct | aiohttp | reference | what is wrong |",
            "|---|---|---|---|---|",
        ]
        for c in flagged:
            cells = [
                brief(outcomes[s][c]) if c in outcomes.get(s, {}) else "missing" for s in SERVERS
            ]
            why = [f"{p}: {'; '.join(a.wrong[p][c])}" for p in PATHS if c in a.wrong[p]]
            if c in a.paths_disagree:
                why.append(f"paths: {'; '.join(a.paths_disagree[c])}")
            lines.append(f"| {c} | {' | '.join(cells)} | {'<br>'.join(why)} |")
    if a.reference_unclean:
        lines += [
            "",
            "The reference did not close cleanly in "
            f"{', '.join(a.reference_unclean)}; there the paths are judged by the RFC alone.",
        ]
    for server, gone in a.missing.items():
        lines += ["", f"Missing from the {server} run: {', '.join(gone)}"]
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str, start: str, end: str) -> str:
    """``document`` with the text between the ``start`` and ``end`` marker lines replaced."""
    head, found, rest = document.partition(start)
    if not found:
        raise ValueError(f"marker {start!r} not in the document")
    _, found, tail = rest.partition(end)
    if not found:
        raise ValueError(f"marker {end!r} not in the document")
    return f"{head}{start}\n{section}{end}{tail}"


def explain(outcomes: Outcomes, cases: Mapping[str, list[str]], *servers: str) -> str:
    """One line per case: each server's outcome, then what is wrong (for a test failure)."""
    lines = []
    for case in sorted(cases, key=case_key):
        shown = ", ".join(
            f"{s}: {brief(outcomes[s][case])}" for s in servers if case in outcomes.get(s, {})
        )
        lines.append(f"  {case}: {'; '.join(cases[case])} [{shown}]")
    return "\n".join(lines)
