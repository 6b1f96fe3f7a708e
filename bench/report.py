"""Reporting helpers: the machine and versions, percentiles, tables, the JSON file."""

from __future__ import annotations

import math
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem_kb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    except (ValueError, OSError):
        mem_kb = None
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "mem_kb": mem_kb,
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "kernel": platform.release(),
        "os": platform.system(),
        "hostname": platform.node(),
        "loadavg_at_start": list(os.getloadavg()),
    }


def versions(*names: str) -> dict[str, str | None]:
    """Python's version and each named distribution's (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def percentiles(values: list[float], points: tuple[float, ...]) -> dict[str, float | None]:
    """Nearest-rank percentiles of ``values`` (sorted here), plus the max and count."""
    data = sorted(values)
    n = len(data)
    out: dict[str, float | None] = {}
    for p in points:
        key = f"p{p:g}"
        out[key] = data[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))] if n else None
    out["max"] = data[-1] if n else None
    out["mean"] = sum(data) / n if n else None
    return out


def table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {fmt(v)}" for k, v in rows)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000 or value.is_integer():
            return f"{value:,.0f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def pct(value: float | None) -> str:
    """A CPU share for a progress line."""
    return "-" if value is None else f"{value:3.0f}%"


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")


def git_state(path: str | Path = ".") -> dict[str, Any]:
    """The commit under test and the files changed in the working tree (what ran)."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.rstrip() if out.returncode == 0 else None

    status = git("status", "--porcelain")
    return {
        "commit": (git("rev-parse", "HEAD") or "").strip() or None,
        "changed": status.splitlines() if status else [],
    }


def command_line() -> str:
    return " ".join([Path(sys.executable).name, "-m", "bench", *sys.argv[1:]])
