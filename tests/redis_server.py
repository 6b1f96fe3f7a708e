"""Throwaway ``redis-server`` processes for tests (session Redis, e2e, AOF and restart tests)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT_S = 10.0


class RedisServerError(RuntimeError):
    """redis-server is missing or did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when a Redis answers PING on ``host:port`` (raw RESP, no client needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(
    tmp_path: Path, *extra_args: str, port: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``redis-server`` on loopback with no persistence and wait until it answers.

    ``extra_args`` come last, so they override the defaults (``"--appendonly", "yes"``).
    Pass ``port`` to restart a server on the port it had. The log is ``redis-<port>.log``
    in ``tmp_path``. Stop it with ``stop_redis_server``.
    """
    exe = shutil.which("redis-server")
    if exe is None:
        raise RedisServerError("redis-server is not on PATH")
    tmp_path.mkdir(parents=True, exist_ok=True)
    # A port picked free can be taken before redis binds it; try a few.
    attempts = 1 if port is not None else 3
    last = ""
    for _ in range(attempts):
        p = port if port is not None else free_port()
        logfile = tmp_path / f"redis-{p}.log"
        cmd = [
            exe,
            "--port", str(p),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(tmp_path),
            "--logfile", str(logfile),
            *extra_args,
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            if ping(p):
                return proc, p
            time.sleep(0.02)
        stop_redis_server(proc)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
        last = f"exit={proc.returncode} {err.strip()} {tail.strip()}"
    raise RedisServerError(f"redis-server did not start: {last}")


def stop_redis_server(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Terminate (SIGTERM, then SIGKILL) and reap the process; closes its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        with contextlib.suppress(OSError):
            proc.stderr.close()
