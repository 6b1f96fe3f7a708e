"""Mutation testing of the pure rules: each module against only its own unit tests.

Usage (from the project root, with the ``mutation`` extra installed)::

    nice -n 19 python tests/mutation/run.py            # every module in MODULES
    nice -n 19 python tests/mutation/run.py split draw # some of them

Each module runs in its own copy of the project under ``--workdir`` (default
``$TMPDIR/interact-mutation/<name>``), so mutmut never writes into the working tree and
one module's mutants never meet another's tests. The copy holds the four packages (the
tests import across them), ``tests/`` and ``pyproject.toml`` (the pytest settings) and a
``setup.cfg`` with the ``[mutmut]`` section for that module; mutmut 3 then copies it into
``mutants/`` there and runs each mutant against the tests that reach the mutated function.
Scores and survivors are printed, and written to ``<workdir>/<name>/score.json``;
docs/testing.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("interact", "rooms", "commerce", "moderation")


@dataclass(frozen=True)
class Target:
    sources: tuple[str, ...]  # files to mutate
    tests: tuple[str, ...]  # the unit tests that own them


MODULES: dict[str, Target] = {
    "split": Target(("commerce/split.py",), ("tests/unit/test_redpacket_split.py",)),
    "draw": Target(("commerce/draw.py",), ("tests/unit/test_lottery_draw.py",)),
    "normalize": Target(("moderation/normalize.py",), ("tests/unit/test_normalize.py",)),
    "wordfilter": Target(("moderation/wordfilter.py",), ("tests/unit/test_wordfilter.py",)),
    "tokens": Target(("interact/tokens.py",), ("tests/unit/test_tokens.py",)),
    "identity": Target(("interact/identity.py",), ("tests/unit/test_identity.py",)),
    # The reader's own tests: its unit tests and the differential test against websockets.
    "client_frames": Target(
        ("interact/client_frames.py",),
        ("tests/unit/test_client_frames.py", "tests/unit/test_client_frames_reference.py"),
    ),
    "sale": Target(
        ("commerce/sale_models.py", "commerce/sale_store.py"),
        ("tests/unit/test_sale_rules.py",),
    ),
}

_RESULT = re.compile(r"^\s+(\S+): (\S.*)$")


def _setup_cfg(target: Target) -> str:
    def block(key: str, values: tuple[str, ...] | list[str]) -> str:
        return f"{key} =\n" + "".join(f"    {v}\n" for v in values)

    return (
        "[mutmut]\n"
        + block("source_paths", list(PACKAGES))
        + block("only_mutate", target.sources)
        + block("pytest_add_cli_args_test_selection", target.tests)
        + block(
            "pytest_add_cli_args",
            # No pytest-timeout: a run paused by SIGSTOP (a busy shared machine) would
            # "kill" its mutant on resuming; mutmut's own time-outs are listed for review.
            ["-p", "no:cacheprovider", "-p", "tests.mutation.plugin", "--timeout=0"],
        )
        + "use_git_change_detection = false\n"
    )


def _prepare(workdir: Path, target: Target) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in (*PACKAGES, "tests"):
        shutil.copytree(ROOT / pkg, workdir / pkg, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", workdir / "pyproject.toml")
    (workdir / "setup.cfg").write_text(_setup_cfg(target))


def _mutmut(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mutmut")
    return subprocess.run(
        [str(exe), *args], cwd=workdir, capture_output=True, text=True, check=False
    )


def run_module(name: str, target: Target, base: Path, max_children: int) -> dict[str, object]:
    workdir = base / name
    _prepare(workdir, target)
    started = time.monotonic()
    ran = _mutmut(workdir, "run", "--max-children", str(max_children))
    elapsed = time.monotonic() - started
    (workdir / "run.log").write_text(ran.stdout + ran.stderr)
    listed = _mutmut(workdir, "results", "--all", "true")
    statuses: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        m = _RESULT.match(line)
        if m:
            statuses[m.group(1)] = m.group(2)
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    score = {
        "module": name,
        "sources": list(target.sources),
        "tests": list(target.tests),
        "total": len(statuses),
        "counts": counts,
        "not_killed": sorted(k for k, v in statuses.items() if v != "killed"),
        "seconds": round(elapsed, 1),
        "mutmut_exit": ran.returncode,
    }
    (workdir / "score.json").write_text(json.dumps(score, indent=2))
    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "interact-mutation",
    )
    parser.add_argument("--max-children", type=int, default=1)
    opts = parser.parse_args()
    names = opts.modules or list(MODULES)
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    failed = False
    for name in names:
        score = run_module(name, MODULES[name], opts.workdir, opts.max_children)
        counts = score["counts"]
        assert isinstance(counts, dict)
        killed = counts.get("killed", 0)
        print(f"{name}: {killed}/{score['total']} killed in {score['seconds']} s {counts}")
        for mutant in score["not_killed"]:  # type: ignore[attr-defined]
            print(f"    not killed: {mutant}")
        failed |= score["mutmut_exit"] != 0 or score["total"] == 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
