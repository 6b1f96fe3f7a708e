"""The server under test: start ``python -m interact serve`` pinned to CPUs, read its
resource use from ``/proc``, fetch its Prometheus counters, stop it and scan its log."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

CLK_TCK = os.sysconf("SC_CLK_TCK")

# The servers a scenario can run against (``--target``): Interact and the peers' modules.
PEERS = {"aiohttp": "bench.peers.aiohttp_plain", "socketio": "bench.peers.socketio_server"}
TARGETS = ("interact", *PEERS)

# Log lines at warning or above that every memory-engine start writes on purpose.
EXPECTED_LOG = ("engine is memory",)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def parse_cpus(spec: str) -> set[int]:
    """A taskset-style CPU list (``0``, ``0,2``, ``1-3``) as a set."""
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def raise_nofile(wanted: int) -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE towards ``wanted`` (at least to the hard limit)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target_hard = hard if hard == resource.RLIM_INFINITY else max(hard, wanted)
    for new_hard in (target_hard, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_hard, new_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@dataclass
class Server:
    """A server: started here (``proc`` set) or given by URL (``pid`` maybe known)."""

    host: str
    port: int
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    cpus: str | None = None
    nofile: tuple[int, int] | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- /proc -------------------------------------------------------------------

    def rss_kb(self) -> int | None:
        """VmRSS of the server, with its worker processes if it has any."""
        return tree_rss_kb(self.pid) if self.pid else None

    def cpu_seconds(self) -> float | None:
        """CPU seconds of the server, with its worker processes if it has any."""
        return tree_cpu_seconds(self.pid) if self.pid else None

    # -- HTTP --------------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as r:
            return parse_prometheus(r.read().decode())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    # -- lifecycle ---------------------------------------------------------------

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_problems(self) -> list[str]:
        """Log lines at warning level or above, less the ones every start writes."""
        if self.log_path is None or not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            level = ""
            try:
                obj = orjson.loads(line)
                level = str(obj.get("level", "")) if isinstance(obj, dict) else ""
            except orjson.JSONDecodeError:
                level = "error" if "Traceback" in line or "Error" in line else ""
            if level in ("warning", "error", "critical") and not any(
                s in line for s in EXPECTED_LOG
            ):
                out.append(line)
        return out


def start(
    *,
    secret: str,
    cpus: str | None,
    nofile: int,
    log_path: Path,
    log_level: str = "warning",
    extra_args: list[str] | None = None,
    ready_timeout: float = 20,
    target: str = "interact",
) -> Server:
    """Start ``python -m interact serve`` on a free loopback port (memory engine unless
    ``extra_args`` name a Redis), or a peer of ``bench.peers`` (``target`` ``aiohttp`` or
    ``socketio``) the same way: same pinning, file limit, secret and log file."""
    host = "127.0.0.1"
    port = free_port(host)
    env = {**os.environ, "INTERACT_SECRET": secret, "INTERACT_LOG_LEVEL": log_level}
    for key in [k for k in env if k.startswith("INTERACT_")]:
        if key not in ("INTERACT_SECRET", "INTERACT_LOG_LEVEL"):
            env.pop(key)  # the memory engine and defaults, whatever the shell has set
    if target != "interact":
        argv = [sys.executable, "-m", PEERS[target], "--host", host, "--port", str(port)]
    else:
        argv = [sys.executable, "-m", "interact", "serve", "--host", host, "--port", str(port)]
        # Synthetic senders comment far faster than a viewer may: moderation's pacing is
        # off so the harness measures fan-out, not refusals (extra_args turn it back on).
        argv += ["--rate-per-s", "0", "--repeat-window", "0", "--room-cap-per-s", "0"]
        # Thousands of viewers from a few loopback addresses: no per-address cap.
        argv += ["--max-conns-per-address", "0"]
        argv += extra_args or []
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]

    def limits() -> None:  # runs in the child before exec
        raise_nofile(nofile)

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=limits
        )
    server = Server(host, port, proc.pid, proc, log_path, cpus, argv=argv)
    deadline = time.monotonic() + ready_timeout
    while not server.ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"server did not become ready (exit {proc.returncode}); log:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.05)
    server.nofile = proc_nofile(proc.pid)
    return server


# -- /proc readers ---------------------------------------------------------------


def proc_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_children(pid: int) -> list[int]:
    """The pids of ``pid``'s whole tree below it (``--workers`` forks), from /proc."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                kids = [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            continue
        out += kids
        todo += kids
    return out


def tree_rss_kb(pid: int) -> int | None:
    """VmRSS of a process and every process below it, added up."""
    values = [proc_rss_kb(p) for p in [pid, *proc_children(pid)]]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def tree_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process and every process below it (live ones)."""
    values = [proc_cpu_seconds(p) for p in [pid, *proc_children(pid)]]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def proc_cpu_seconds(pid: int | str = "self") -> float | None:
    """utime + stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_nofile(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/limits") as fh:
            for line in fh:
                if line.startswith("Max open files"):
                    parts = line.split()
                    return int(parts[3]), int(parts[4])
    except (OSError, ValueError):
        return None
    return None


def cpu_times() -> dict[str, list[int]]:
    """Per-CPU jiffies from /proc/stat: user nice system idle iowait irq softirq steal."""
    out = {}
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                out[parts[0]] = [int(x) for x in parts[1:9]]
    return out


def cpu_busy(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict[str, dict]:
    """Per CPU, % busy (not idle, iowait or steal) and % stolen between two snapshots."""
    out = {}
    for cpu, a in after.items():
        b = before.get(cpu)
        if b is None:
            continue
        d = [x - y for x, y in zip(a, b, strict=True)]
        total = sum(d) or 1
        idle = d[3] + d[4]
        out[cpu] = {
            "busy_pct": round(100 * (total - idle - d[7]) / total, 1),
            "softirq_pct": round(100 * d[6] / total, 1),
            "steal_pct": round(100 * d[7] / total, 1),
        }
    return out


def parse_prometheus(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out
