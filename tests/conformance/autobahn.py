"""Run the Autobahn|Testsuite against both of Interact's WebSocket upgrade paths.

``python -m tests.conformance.autobahn [--write-docs]`` starts three servers on loopback:
Interact on its own upgrade path (``direct``, the default), Interact with
``INTERACT_RAW_UPGRADE=false`` so every upgrade goes through aiohttp (``aiohttp``), and
aiohttp's WebSocketResponse as a plain echo server (``reference``, same message limit).
It makes a live room on each Interact server, runs ``wstest -m fuzzingclient`` against
the three at once, reads every case's report, judges the protocol-level outcomes
(tests/conformance/outcome.py, report.py) and prints the results table;
``--write-docs`` also puts it into docs/conformance.md. Each Interact server's RSS is
read from /proc before and after its run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conformance import wstest_env
from tests.conformance.outcome import Outcome, outcome
from tests.conformance.report import (
    AIOHTTP,
    DIRECT,
    REFERENCE,
    Memory,
    markdown,
    replace_section,
)
from tests.e2e.harness import ServerProcess, free_port, start_server

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "conformance.md"
START_MARK = "<!-- autobahn-results:start -->"
END_MARK = "<!-- autobahn-results:end -->"

# 12.* and 13.* need permessage-deflate (Interact offers it by default). 10.* is one
# case that waits 10 s for an echo of 64 KiB, past the limit anyway.
DEFAULT_CASES = ("1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "12.*", "13.*")
MAX_FRAME_BYTES = 4096  # Interact's default limit
# One server's run takes about 85 s; on a loaded machine, give it room before calling
# it a hang.
RUN_TIMEOUT_S = 420.0
INTERACT_ENV = {
    # No online-count broadcast may land in a case.
    "INTERACT_ONLINE_INTERVAL": "86400",
    "INTERACT_LOG_LEVEL": "warning",
}


class RunError(RuntimeError):
    """The run could not finish (a server that did not start, wstest stuck or failing)."""


@dataclass
class Run:
    """Everything one run found."""

    outcomes: dict[str, dict[str, Outcome]]
    memory: dict[str, Memory]
    # server -> the Server header of its 101 answer ("" when it sends none)
    served_by: dict[str, str]
    server_exit: dict[str, int | None]
    seconds: float  # the three servers' runs, side by side
    setup_seconds: float  # finding or building the wstest environment
    workdir: Path
    cases: tuple[str, ...]
    max_frame_bytes: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "outcomes": {
                s: {c: o.to_dict() for c, o in cases.items()} for s, cases in self.outcomes.items()
            },
            "memory": {s: [m.before_kb, m.after_kb] for s, m in self.memory.items()},
            "served_by": self.served_by,
            "server_exit": self.server_exit,
            "seconds": self.seconds,
            "setup_seconds": self.setup_seconds,
            "cases": list(self.cases),
            "max_frame_bytes": self.max_frame_bytes,
            "date": datetime.date.today().isoformat(),
            "commit": _commit(),
        }


@dataclass
class Target:
    name: str
    url: str
    pid: int | None  # whose RSS to read; None for the reference


def rss_kb(pid: int) -> int:
    """The process's resident set size (``VmRSS``), kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RunError(f"no VmRSS for process {pid}")


def _post(server: ServerProcess, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        server.base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def live_room_url(server: ServerProcess) -> str:
    """A ``ws://`` URL of a live room on ``server`` with a viewer's token valid for a day."""
    operator = server.token("autobahn-ops", "operator")
    room = _post(server, "/api/v1/rooms", operator, {"title": "autobahn"})
    _post(server, f"/api/v1/rooms/{room['id']}/start", operator, {})
    viewer = server.token("autobahn", "viewer", ttl=86400)
    return f"ws://127.0.0.1:{server.port}/ws?room={room['id']}&token={viewer}"


def start_reference(workdir: Path, max_msg_size: int) -> tuple[subprocess.Popen[bytes], int]:
    """The aiohttp echo server, ready on a free port."""
    port = free_port()
    with open(workdir / "reference.log", "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.conformance.echo_server", "--port", str(port),
             "--max-msg-size", str(max_msg_size)],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError(f"the reference server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.05)  # polling a process that is starting: nothing to wait on
    proc.kill()
    raise RunError("the reference server did not start in 15 s")


def run_wstest(exe: Path, target: Target, cases: Sequence[str], workdir: Path) -> Memory | None:
    """Run the fuzzing client against one server; its RSS before and after, if Interact."""
    outdir = workdir / target.name
    outdir.mkdir()
    spec = {
        "outdir": str(outdir),
        "servers": [{"agent": target.name, "url": target.url}],
        "cases": list(cases),
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    spec_path = workdir / f"{target.name}.spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    before = rss_kb(target.pid) if target.pid else None
    log_path = workdir / f"{target.name}.wstest.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [str(exe), "-m", "fuzzingclient", "-s", str(spec_path)],
            cwd=outdir, stdout=log_file, stderr=subprocess.STDOUT,
            env=wstest_env.py27_env(), start_new_session=True,
        )  # fmt: skip
        try:
            code = proc.wait(RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RunError(
                f"wstest against {target.name} did not finish in {RUN_TIMEOUT_S:.0f} s;"
                f" {_last_case(log_path)}; log {log_path}"
            ) from None
    after = rss_kb(target.pid) if target.pid else None
    if code != 0:
        raise RunError(f"wstest against {target.name} exited with {code}; log {log_path}")
    if before is None or after is None:
        return None
    return Memory(before, after)


def _last_case(log_path: Path) -> str:
    started = [
        line for line in log_path.read_text(errors="replace").splitlines()
        if "Running test case ID" in line
    ]  # fmt: skip
    return started[-1].strip() if started else "no case started"


def collect(outdir: Path, agent: str) -> tuple[dict[str, Outcome], str]:
    """Every case's outcome from a run's reports, and the Server header of its 101."""
    index = json.loads((outdir / "index.json").read_text())[agent]
    outcomes: dict[str, Outcome] = {}
    served_by = ""
    for case_id, entry in index.items():
        report = json.loads((outdir / entry["reportfile"]).read_text())
        outcomes[case_id] = outcome(report)
        for line in str(report.get("httpResponse", "")).split("\r\n"):
            if line.lower().startswith("server:"):
                served_by = line.split(":", 1)[1].strip()
    return outcomes, served_by


def run(
    cases: Sequence[str] = DEFAULT_CASES,
    max_frame_bytes: int = MAX_FRAME_BYTES,
    workdir: Path | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Run:
    """One run of the suite against the direct path, the aiohttp path and the reference."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="autobahn-"))
    notes: list[str] = []
    t0 = time.monotonic()
    exe = wstest_env.wstest(notes)
    for note in notes:
        say(note)
    setup_seconds = time.monotonic() - t0
    servers: dict[str, ServerProcess] = {}
    reference: subprocess.Popen[bytes] | None = None
    try:
        limit = {"INTERACT_MAX_FRAME_BYTES": str(max_frame_bytes)}
        servers[DIRECT] = start_server(workdir, env={**INTERACT_ENV, **limit})
        servers[AIOHTTP] = start_server(
            workdir, env={**INTERACT_ENV, **limit, "INTERACT_RAW_UPGRADE": "false"}
        )
        # aiohttp refuses a message of exactly max_msg_size bytes; Interact's limit is
        # the largest message it accepts. The reference gets one more byte so that
        # both mean "at most max_frame_bytes" (cases 9.7.6 and 9.8.6 send exactly 4,096).
        reference, ref_port = start_reference(workdir, max_frame_bytes + 1)
        targets = [
            Target(DIRECT, live_room_url(servers[DIRECT]), servers[DIRECT].proc.pid),
            Target(AIOHTTP, live_room_url(servers[AIOHTTP]), servers[AIOHTTP].proc.pid),
            Target(REFERENCE, f"ws://127.0.0.1:{ref_port}/ws", None),
        ]
        say(f"running {len(cases)} case groups against {len(targets)} servers in {workdir}")
        t1 = time.monotonic()
        with ThreadPoolExecutor(len(targets)) as pool:
            futures = {t.name: pool.submit(run_wstest, exe, t, cases, workdir) for t in targets}
            memory = {name: f.result() for name, f in futures.items()}
        seconds = time.monotonic() - t1
    finally:
        exits: dict[str, int | None] = {name: s.stop() for name, s in servers.items()}
        if reference is not None:
            reference.terminate()
            try:
                exits[REFERENCE] = reference.wait(15)
            except subprocess.TimeoutExpired:
                reference.kill()
                exits[REFERENCE] = reference.wait()
    outcomes: dict[str, dict[str, Outcome]] = {}
    served_by: dict[str, str] = {}
    for name in (DIRECT, AIOHTTP, REFERENCE):
        outcomes[name], served_by[name] = collect(workdir / name, name)
    return Run(
        outcomes=outcomes,
        memory={name: m for name, m in memory.items() if m is not None},
        served_by=served_by,
        server_exit=exits,
        seconds=seconds,
        setup_seconds=setup_seconds,
        workdir=workdir,
        cases=tuple(cases),
        max_frame_bytes=max_frame_bytes,
        notes=notes,
    )


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown commit"
    return f"{head} with uncommitted changes" if dirty else head


def results_section(data: dict[str, Any]) -> str:
    """The results section of docs/conformance.md from a run's ``to_json()``."""
    header = (
        f"Run of {data['date']} on {data['commit']}: cases {', '.join(data['cases'])},"
        f" max_frame_bytes {data['max_frame_bytes']}, {data['seconds']:.0f} s for the three"
        " servers side by side."
    )
    outcomes = {
        server: {case: Outcome.from_dict(o) for case, o in cases.items()}
        for server, cases in data["outcomes"].items()
    }
    memory = {server: Memory(*kb) for server, kb in data["memory"].items()}
    return markdown(outcomes, memory, header)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance.autobahn", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="CASE")
    parser.add_argument("--max-frame-bytes", type=int, default=MAX_FRAME_BYTES)
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS.name}")
    parser.add_argument("--json", type=Path, help="write every outcome to this file")
    parser.add_argument("--workdir", type=Path, help="keep the reports here (default: a temp dir)")
    parser.add_argument("--from-json", type=Path, help="no run: write up the run saved with --json")
    args = parser.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.from_json:
        data = json.loads(args.from_json.read_text())
    else:
        try:
            result = run(args.cases, args.max_frame_bytes, args.workdir, say)
        except (RunError, wstest_env.Py27Missing) as exc:
            say(f"error: {exc}")
            return 2
        say(
            f"reports in {result.workdir}; {result.setup_seconds:.0f} s to find or build"
            f" wstest, {result.seconds:.0f} s of cases"
        )
        data = result.to_json()
        if args.json:
            args.json.write_text(json.dumps(data, indent=1))
    section = results_section(data)
    print(section)
    if args.write_docs:
        DOCS.write_text(replace_section(DOCS.read_text(), section, START_MARK, END_MARK))
        say(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
