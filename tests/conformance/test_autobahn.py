"""The Autobahn|Testsuite against both upgrade paths, judged at the protocol level.

One run (module scope) of cases 1–7, 9, 12–13 against a real Interact server on its own
upgrade path, one with every upgrade going through aiohttp, and the aiohttp echo
reference, side by side: about 95 s, plus about 20 s the first time on a machine to
build the Python 2.7 environment of ``wstest`` (cached in ~/.cache/interact).
What is judged and why: docs/conformance.md.
"""

from __future__ import annotations

import pytest

from tests.conformance import autobahn, wstest_env
from tests.conformance.report import AIOHTTP, DIRECT, PATHS, REFERENCE, analyse, explain

pytestmark = [pytest.mark.conformance, pytest.mark.e2e, pytest.mark.timeout(900)]

# What a server may gain over one run: a closed connection must not stay behind. A run
# opens ~520 connections one after the other, most with a message or two; the direct
# path grew by 11–14 MB and the aiohttp path by 3–4 MB (from ~75 MB) on 2026-12-05.
RSS_GROWTH_BOUND_MB = 40


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> autobahn.Run:
    try:
        return autobahn.run(workdir=tmp_path_factory.mktemp("autobahn"))
    except wstest_env.Py27Missing as exc:
        # Not a skip: CI and every developer machine of this project have pyenv's 2.7.18.
        pytest.fail(str(exc), pytrace=False)


def test_every_case_ran_on_each_server_through_its_own_path(suite: autobahn.Run) -> None:
    cases = {server: set(outcomes) for server, outcomes in suite.outcomes.items()}
    assert len(cases[REFERENCE]) > 500, sorted(cases[REFERENCE])
    assert cases[DIRECT] == cases[AIOHTTP] == cases[REFERENCE]
    # The direct path answers the upgrade itself, without aiohttp's Server header.
    assert suite.served_by[DIRECT] == "", suite.served_by
    assert "aiohttp" in suite.served_by[AIOHTTP], suite.served_by
    assert suite.server_exit[DIRECT] == 0 and suite.server_exit[AIOHTTP] == 0, suite.server_exit


@pytest.mark.parametrize("path", PATHS)
def test_every_case_has_the_correct_protocol_outcome(suite: autobahn.Run, path: str) -> None:
    wrong = analyse(suite.outcomes).wrong[path]
    assert not wrong, (
        f"{len(wrong)} case(s) where the {path} path is not what a correct server does"
        f" (who closed first, the client's close → the server's close):\n"
        + explain(suite.outcomes, wrong, path, REFERENCE)
        + f"\nreports: {suite.workdir / path}"
    )


def test_the_two_paths_agree_in_every_case(suite: autobahn.Run) -> None:
    disagree = analyse(suite.outcomes).paths_disagree
    assert not disagree, (
        f"{len(disagree)} case(s) where the direct and aiohttp paths differ:\n"
        + explain(suite.outcomes, disagree, DIRECT, AIOHTTP)
    )


@pytest.mark.parametrize("path", PATHS)
def test_no_unclean_close_and_no_hang(suite: autobahn.Run, path: str) -> None:
    bad = {
        case: [("" if o.clean else "unclean close") + (f" {o.hung} timed out" if o.hung else "")]
        for case, o in suite.outcomes[path].items()
        if not o.clean or o.hung
    }
    assert not bad, f"{len(bad)} unclean or hung case(s) on the {path} path:\n" + explain(
        suite.outcomes, bad, path, REFERENCE
    )


@pytest.mark.parametrize("path", PATHS)
def test_memory_growth_over_the_run_is_bounded(suite: autobahn.Run, path: str) -> None:
    memory = suite.memory[path]
    assert memory.growth_kb < RSS_GROWTH_BOUND_MB * 1024, (
        f"the {path} server grew from {memory.before_kb / 1024:.1f} MB to"
        f" {memory.after_kb / 1024:.1f} MB over one run (bound: {RSS_GROWTH_BOUND_MB} MB)"
    )
