"""Throwaway ``redis-server`` processes for tests (session Redis, e2e, AOF and restart tests,
and three-master Redis Clusters)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

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
        stop_redis_server(proc, close_stderr=False)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        stop_redis_server(proc)
        tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
        last = f"exit={proc.returncode} {err.strip()} {tail.strip()}"
    raise RedisServerError(f"redis-server did not start: {last}")


def stop_redis_server(
    proc: subprocess.Popen[bytes], timeout: float = 5.0, *, close_stderr: bool = True
) -> None:
    """Terminate (SIGTERM, then SIGKILL) and reap the process; closes its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None and close_stderr:
        with contextlib.suppress(OSError):
            proc.stderr.close()


CLUSTER_READY_TIMEOUT_S = 20.0


@dataclass(slots=True)
class RedisCluster:
    """A throwaway Redis Cluster of masters on loopback (see ``start_redis_cluster``)."""

    procs: list[subprocess.Popen[bytes]]
    ports: list[int]

    @property
    def url(self) -> str:
        """The engine's URL form: ``redis+cluster://host:port,host:port,…``."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


def _cluster_info(port: int) -> dict[str, str]:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        raw = client.execute_command("CLUSTER", "INFO")
    finally:
        client.close()
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _start_cluster_node(node_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    # The cluster bus defaults to port + 10000, which is neither known free nor valid for
    # ephemeral ports above 55535: pick the bus port too. Both may be taken before redis
    # binds them, hence a few attempts.
    last: RedisServerError | None = None
    for _ in range(3):
        port, bus = free_port(), free_port()
        if port == bus:
            continue
        try:
            return start_redis_server(
                node_dir,
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000",
                "--cluster-port", str(bus),
                port=port,
            )  # fmt: skip
        except RedisServerError as exc:
            last = exc
    raise last or RedisServerError("no free ports for a cluster node")


def start_redis_cluster(tmp_path: Path, masters: int = 3) -> RedisCluster:
    """Start ``masters`` cluster-enabled ``redis-server``s (each in its own directory under
    ``tmp_path``), join them with ``redis-cli --cluster create`` (no replicas), and wait
    until every node reports ``cluster_state:ok`` and knows every other node."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise RedisServerError("redis-cli is not on PATH")
    cluster = RedisCluster([], [])
    try:
        for i in range(masters):
            proc, port = _start_cluster_node(tmp_path / f"node{i}")
            cluster.procs.append(proc)
            cluster.ports.append(port)
        create = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in cluster.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        if create.returncode != 0:
            out = (create.stdout + create.stderr).decode(errors="replace")[-2000:]
            raise RedisServerError(f"redis-cli --cluster create failed: {out}")
        deadline = time.monotonic() + CLUSTER_READY_TIMEOUT_S
        # Each node learns the others by gossip: "ok" on one node is not yet "ok" on all.
        while True:
            infos = [_cluster_info(p) for p in cluster.ports]
            if all(
                i.get("cluster_state") == "ok" and i.get("cluster_known_nodes") == str(masters)
                for i in infos
            ):
                return cluster
            if time.monotonic() > deadline:
                raise RedisServerError(f"cluster not ready: {infos}")
            time.sleep(0.05)
    except BaseException:
        stop_redis_cluster(cluster)
        raise


def stop_redis_cluster(cluster: RedisCluster) -> None:
    for proc in cluster.procs:
        stop_redis_server(proc)
