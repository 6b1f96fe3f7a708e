"""What the scenarios share: the target options, the server (Interact or a peer of
``bench.peers``) and its own ``redis-server`` (started, pinned, stopped), the pinning of
this load process, the event loop, Redis's own counters, the user/sys split and py-spy
profiles."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from bench import report
from bench.load import file_limit
from bench.server import CLK_TCK, TARGETS, Server, free_port, parse_cpus, proc_cpu_seconds
from bench.server import start as start_server
from interact import tokens


class UsageError(Exception):
    """A bad combination of options: printed, exit status 2."""


def add_target_arguments(
    p: argparse.ArgumentParser, *, prefix: str, engine: str = "redis", peers: bool = False
) -> None:
    """The options of where the load goes: the engine, or a running server; pinning;
    the server's arguments and log; the profile; the JSON file. With ``peers``, also
    ``--target`` (Interact, a peer of ``bench.peers``, or all of them in turn)."""
    if peers:
        p.add_argument(
            "--target", choices=(*TARGETS, "all"), default="interact",
            help="the server to load: Interact, the plain aiohttp peer, the python-socketio "
            "peer, or all three in turn with a table of ratios",
        )  # fmt: skip
    p.add_argument("--engine", choices=("redis", "memory"), default=engine, help="engine")
    p.add_argument("--url", help="target a running server (http://host:port) instead")
    p.add_argument("--secret", help="its token key with --url [env INTERACT_SECRET]")
    p.add_argument("--server-pid", type=int, help="with --url: its pid, for RSS and CPU")
    p.add_argument(
        "--redis-url",
        help="use this Redis instead of starting one (never a shared one: the run "
        f"writes keys under the prefix {prefix})",
    )
    p.add_argument("--server-cpus", default="0", help="taskset CPU list of the server")
    p.add_argument("--redis-cpus", default="1", help="taskset CPU list of the redis-server")
    p.add_argument("--load-cpus", default="1", help="CPU list of this load process")
    p.add_argument("--no-pin", action="store_true", help="pin no process")
    p.add_argument(
        "--server-arg", action="append", default=[], metavar="ARG",
        help="extra argument for `interact serve` (repeat)",
    )  # fmt: skip
    p.add_argument("--server-log", help="server log file [default: next to --json, or temp]")
    p.add_argument("--profile", metavar="FILE", help="py-spy the server over the window")
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")


# -- the redis-server of the run --------------------------------------------------


@dataclass
class RedisProc:
    proc: subprocess.Popen[bytes]
    port: int
    cpus: str | None
    log_path: Path
    argv: list[str]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 10) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(cpus: str | None, log_path: Path) -> RedisProc:
    """A throwaway ``redis-server`` on a free loopback port, no RDB, no AOF."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not on PATH")
    last = ""
    for _ in range(3):  # a port found free can be taken before redis binds it
        port = free_port()
        argv = [
            exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(log_path.parent),
            "--logfile", str(log_path),
        ]  # fmt: skip
        if cpus is not None:
            argv = ["taskset", "-c", cpus, *argv]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if _redis_ping(port):
                if proc.stderr is not None:
                    proc.stderr.close()  # it logs to its file from here on
                return RedisProc(proc, port, cpus, log_path, argv)
            time.sleep(0.02)
        RedisProc(proc, port, cpus, log_path, argv).stop()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        last = f"exit {proc.returncode} {err.strip()} {tail.strip()}"
    raise RuntimeError(f"redis-server did not start: {last}")


# -- the target: server, Redis, pinning -------------------------------------------


@dataclass
class Target:
    """The server under load (started here or given by ``--url``) and its Redis."""

    kind: str  # interact, aiohttp or socketio
    server: Server
    secret: str
    engine: str
    redis: RedisProc | None
    redis_url: str | None
    pin: bool
    server_cpus: str | None
    redis_cpus: str | None
    affinity: list[int]
    nofile: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    @property
    def redis_pid(self) -> int | None:
        return self.redis.proc.pid if self.redis else None


def launch(
    ns: argparse.Namespace,
    *,
    name: str,
    connections: int,
    prefix: str,
    server_args: list[str] | None = None,
    procs: int = 1,
) -> Target:
    """Raise this process's file limit for ``connections`` over ``procs`` load
    processes, pin it, start Redis (for ``--engine redis``, unless ``--redis-url``) and
    the server or peer of ``--target`` (unless ``--url``), each pinned, and print what
    runs where. ``UsageError`` for a bad combination."""
    kind = getattr(ns, "target", "interact")
    soft, hard, short = file_limit(connections, procs, server_here=not ns.url)
    print(f"RLIMIT_NOFILE of the load process: {soft} (hard {hard})")
    if short:
        raise UsageError(short)
    notes: list[str] = []
    pin = not ns.no_pin and (os.cpu_count() or 1) >= 2
    server_cpus = ns.server_cpus if pin else None
    redis_cpus = ns.redis_cpus if pin else None
    if pin:
        os.sched_setaffinity(0, parse_cpus(ns.load_cpus))
    affinity = sorted(os.sched_getaffinity(0))
    if ns.no_pin:
        notes.append("not pinned (--no-pin): server, Redis and load generator share the CPUs")
    elif not pin:
        notes.append("one CPU only: server and load generator share it, figures are skewed")
    if kind != "interact" and ns.engine == "redis":
        raise UsageError(f"--target {kind} has no engine: use --engine memory")

    if ns.json:
        log_dir = Path(ns.json).parent
        stem = Path(ns.json).stem
    else:
        log_dir = Path(tempfile.mkdtemp(prefix=f"interact-{name}-"))
        stem = name
    log_dir.mkdir(parents=True, exist_ok=True)
    log_dir = log_dir.resolve()  # redis-server changes into --dir before opening its log

    redis: RedisProc | None = None
    redis_url: str | None = None
    secret = ns.secret or os.environ.get("INTERACT_SECRET") or ""
    server: Server
    engine = ns.engine
    try:
        if ns.url:
            if not secret:
                raise UsageError("--url needs --secret or INTERACT_SECRET")
            u = urlsplit(ns.url)
            server = Server(u.hostname or "127.0.0.1", u.port or 80, pid=ns.server_pid)
            engine = "unknown (--url)"
            redis_url = ns.redis_url  # only to read its INFO, if given
            print(f"target: {server.base} (not started here); load on CPUs {affinity}")
        else:
            secret = secret or secrets.token_urlsafe(32)
            extra = list(server_args or []) + list(ns.server_arg)
            if kind != "interact":
                engine = f"none ({kind} peer)"
            elif engine == "redis":
                if ns.redis_url:
                    redis_url = ns.redis_url
                else:
                    redis = start_redis(redis_cpus, log_dir / f"{stem}.redis.log")
                    redis_url = redis.url
                    print(
                        f"redis-server: pid {redis.proc.pid} on port {redis.port}, "
                        f"no persistence, CPUs {redis_cpus or 'any'}, log {redis.log_path}"
                    )
                extra += ["--redis", redis_url, "--prefix", prefix]
            log_path = Path(ns.server_log) if ns.server_log else log_dir / f"{stem}.server.log"
            server = start_server(
                secret=secret, cpus=server_cpus, nofile=2 * connections + 1000,
                log_path=log_path, extra_args=extra, target=kind,
            )  # fmt: skip
            what = "interact" if kind == "interact" else f"{kind} peer ({server.argv[-5]})"
            print(
                f"server: {what}, pid {server.pid} on {server.base}, {engine} engine, "
                f"log level warning, RLIMIT_NOFILE {server.nofile}, log {log_path}"
            )
            srv_soft = server.nofile[0] if server.nofile else None
            if srv_soft is not None and srv_soft < connections + 100:
                notes.append(f"server RLIMIT_NOFILE {srv_soft} < {connections + 100} needed")
    except Exception:
        if redis is not None:
            redis.stop()
        raise
    if pin:
        on_redis = f", redis-server on CPU {redis_cpus} (taskset)" if redis else ""
        print(
            f"pinning: server on CPU {server_cpus} (taskset -c {server_cpus}){on_redis}, "
            f"load generator on CPU {ns.load_cpus} (sched_setaffinity)"
        )
    for note in notes:
        print("note:", note)
    return Target(
        kind, server, secret, engine, redis, redis_url, pin, server_cpus, redis_cpus,
        affinity, (soft, hard), notes,
    )  # fmt: skip


def run_load(
    target: Target, make: Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]
) -> tuple[dict[str, Any], str]:
    """Run ``make(result)`` on uvloop (asyncio without it), then stop the server and
    Redis and add what they left: exit codes, the server log's warnings, the others on
    the server's CPU. Returns the result and the loop's name; never raises for a failed
    run (``result["error"]``)."""
    loop_name = "asyncio"
    runner: Callable[..., Any] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
        loop_name = "uvloop"
    except ImportError:  # pragma: no cover
        pass
    result: dict[str, Any] = {}
    server, redis = target.server, target.redis
    try:
        result = runner(make(result))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        result["error"] = "interrupted"
    except Exception as exc:
        traceback.print_exc()
        result["error"] = repr(exc)
    finally:
        exit_code = server.stop()
        redis_exit = redis.stop() if redis else None
    problems = server.log_problems()
    result.setdefault("server", {}).update(
        exit_code=exit_code,
        log=str(server.log_path) if server.log_path else None,
        log_problems=len(problems) if server.log_path else None,
        log_problem_lines=problems[:20],
        argv=server.argv,
        cpus=target.server_cpus,
        nofile=server.nofile,
        engine=target.engine,
        target=target.kind,
    )
    w = result.get("window")
    server_cpus = target.server_cpus
    if w is not None and server_cpus is not None and server_cpus.isdigit():
        # What else ran on the server's CPU (neighbours, Redis if it shares it); a
        # loaded share here means the server got less than its core.
        busy = w["cpus"].get(f"cpu{server_cpus}", {}).get("busy_pct")
        own = (w["server_cpu_pct"] or 0) + (
            (w["redis_cpu_pct"] or 0)
            if redis is not None and target.redis_cpus == server_cpus
            else 0
        )
        w["others_on_server_cpu_pct"] = None if busy is None else round(busy - own, 1)
        if busy is not None and busy - own > 15:
            result.setdefault("notes", []).append(
                f"other processes used about {busy - own:.0f}% of the server's CPU "
                f"{server_cpus} in the window (a noisy neighbour; softirq counts here too)"
            )
    result["redis"] = {
        **result.get("redis", {}),
        "started_here": redis is not None,
        "argv": redis.argv if redis else None,
        "cpus": target.redis_cpus if redis else None,
        "exit_code": redis_exit,
    }
    return result, loop_name


# -- the room ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def operator_session(secret: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session carrying an operator token signed with the server's key."""
    user = tokens.User("bench-op", "bench-op", tokens.Role.OPERATOR)
    auth = {"Authorization": f"Bearer {tokens.issue(secret, user, 24 * 3600)}"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(headers=auth, timeout=timeout) as http:
        yield http


async def open_room(
    http: aiohttp.ClientSession, base: str, title: str, kind: str = "interact"
) -> str:
    """A live room: created and started over REST on Interact; a peer's room is a name."""
    if kind != "interact":
        return "bench-room"
    async with http.post(base + "/api/v1/rooms", json={"title": title}) as r:
        room = await r.json()
        if r.status != 201:
            raise RuntimeError(f"create room: {r.status} {room}")
    async with http.post(f"{base}/api/v1/rooms/{room['id']}/start") as r:
        if r.status != 200:
            raise RuntimeError(f"start room: {r.status} {await r.text()}")
    return str(room["id"])


def viewer_query(secret: str, room: str, uid: str) -> dict[str, str]:
    """The ``/ws`` query of a viewer with its own signed token."""
    user = tokens.User(uid, uid, tokens.Role.VIEWER)
    return {"room": room, "token": tokens.issue(secret, user, 24 * 3600), "codec": "json"}


# -- the document -------------------------------------------------------------------


def document(
    name: str, ns: argparse.Namespace, target: Target, result: dict[str, Any], loop_name: str,
    params: dict[str, Any], versions: tuple[str, ...],
) -> dict[str, Any]:  # fmt: skip
    """The JSON document of a viewer scenario's run: what ran where, and every figure."""
    return {
        "scenario": name,
        "target": target.kind,
        "command": report.command_line(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.get("t0", 0))),
        "params": {**params, "target": target.kind, "engine": target.engine},
        "load": {
            "cpus": target.affinity,
            "pinned": target.pin,
            "loop": loop_name,
            "nofile": list(target.nofile),
            "processes": getattr(ns, "procs", 1),
            **result.pop("load", {}),
        },
        "machine": report.machine(),
        "versions": report.versions(*versions),
        "notes": target.notes + result.pop("notes", []),
        **result,
    }


def emit(doc: dict[str, Any], ns: argparse.Namespace, show: Callable[[dict], None]) -> None:
    """Print the final table and write ``--json``."""
    show(doc)
    if ns.json:
        report.write_json(ns.json, doc)
        print(f"\nwrote {ns.json}")


# -- Redis's own counters ---------------------------------------------------------


async def redis_info(url: str | None) -> dict[str, Any] | None:
    """Redis's own counters: commands and usec per command, its CPU seconds."""
    if not url:
        return None
    import redis.asyncio as aredis

    client = aredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
        cpu = await client.info("cpu")
        server = await client.info("server")
        memory = await client.info("memory")
    except Exception as exc:  # reported, never fatal
        return {"error": repr(exc)}
    finally:
        await client.aclose()
    cmds = {}
    for key, value in stats.items():
        if isinstance(value, dict):
            cmds[key.removeprefix("cmdstat_")] = {
                "calls": value.get("calls"),
                "usec": value.get("usec"),
                "usec_per_call": value.get("usec_per_call"),
            }
    return {
        "commands": cmds,
        "used_cpu_sys": cpu.get("used_cpu_sys"),
        "used_cpu_user": cpu.get("used_cpu_user"),
        "used_cpu_sys_main_thread": cpu.get("used_cpu_sys_main_thread"),
        "used_cpu_user_main_thread": cpu.get("used_cpu_user_main_thread"),
        "used_memory": memory.get("used_memory"),
        "redis_version": server.get("redis_version"),
        "process_id": server.get("process_id"),
    }


def redis_delta(a: dict[str, Any] | None, b: dict[str, Any] | None, dt: float) -> dict | None:
    if not a or not b or "error" in a or "error" in b:
        return None
    out: dict[str, Any] = {}
    for name, cb in b["commands"].items():
        ca = a["commands"].get(name, {"calls": 0, "usec": 0})
        calls = (cb["calls"] or 0) - (ca["calls"] or 0)
        usec = (cb["usec"] or 0) - (ca["usec"] or 0)
        if calls:
            out[name] = {
                "calls": calls,
                "per_s": calls / dt,
                "usec_per_call": usec / calls,
                "busy_pct": 100 * usec / 1e6 / dt,
            }
    main_cpu = (b["used_cpu_sys_main_thread"] + b["used_cpu_user_main_thread"]) - (
        a["used_cpu_sys_main_thread"] + a["used_cpu_user_main_thread"]
    )
    return {
        "commands": dict(sorted(out.items(), key=lambda kv: -kv[1]["calls"])),
        "command_busy_pct": sum(c["busy_pct"] for c in out.values()),
        "main_thread_cpu_pct": 100 * main_cpu / dt,
        "used_memory_end": b.get("used_memory"),
    }


def top_commands(window: dict[str, Any] | None, n: int = 4) -> str:
    cmds = (window or {}).get("commands") or {}
    return ", ".join(
        f"{k} {v['per_s']:,.0f}/s {v['usec_per_call']:.1f}us" for k, v in list(cmds.items())[:n]
    )


# -- CPU --------------------------------------------------------------------------


def user_sys(pid: int | None) -> tuple[float, float] | None:
    """utime and stime of a process, seconds (stime: syscalls, and softirq work the
    kernel charged to it, such as loopback TCP)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def user_sys_pct(w0: dict[str, Any], w1: dict[str, Any], dt: float) -> list[float] | None:
    a, b = w0.get("server_user_sys"), w1.get("server_user_sys")
    if a is None or b is None:
        return None
    return [round(100 * (b[0] - a[0]) / dt, 1), round(100 * (b[1] - a[1]) / dt, 1)]


def cpu_rate(w0: dict[str, Any], w1: dict[str, Any], key: str, dt: float) -> float | None:
    """% of one core between two snapshots of CPU seconds (None when unknown)."""
    a, b = w0.get(key), w1.get(key)
    return None if a is None or b is None or dt <= 0 else 100 * (b - a) / dt


def process_cpu(server: Server, redis_pid: int | None) -> dict[str, Any]:
    """CPU seconds of the server, Redis and this process, for a snapshot."""
    return {
        "server_cpu": server.cpu_seconds(),
        "server_user_sys": user_sys(server.pid),
        "redis_cpu": proc_cpu_seconds(redis_pid) if redis_pid else None,
        "load_cpu": proc_cpu_seconds("self"),
    }


# -- profiling --------------------------------------------------------------------


def start_profile(ns: argparse.Namespace, pid: int | None, cpus: str | None) -> Any:
    """py-spy on the server for ``ns.duration`` s (``--profile FILE``), or None."""
    if not ns.profile or pid is None:
        return None
    exe = shutil.which("py-spy")
    if exe is None:
        print("note: py-spy not found; no profile", file=sys.stderr)
        return None
    argv = [
        exe, "record", "--pid", str(pid), "--duration", str(max(1, int(ns.duration))),
        "--rate", str(ns.profile_rate), "--format", "raw", "--idle", "--nonblocking",
        "-o", ns.profile,
    ]  # fmt: skip
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_profile(profiler: subprocess.Popen[bytes], ns: argparse.Namespace) -> dict:
    try:
        _, err = profiler.communicate(timeout=ns.duration + 30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        _, err = profiler.communicate()
    if profiler.returncode == 0 and Path(ns.profile).exists():
        return {"file": ns.profile, **profile_summary(ns.profile)}
    return {"error": (err or b"").decode(errors="replace")[-2000:]}


def profile_summary(path: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive samples per function from py-spy's raw (collapsed) stacks."""
    own: Tally[str] = Tally()
    own_fn: Tally[str] = Tally()
    incl: Tally[str] = Tally()
    total = idle = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        # Frames: "process..." then "function (file:line)"; strip the thread/process head.
        frames = [f for f in frames if " (" in f]
        if not frames:
            idle += n
            continue
        leaf = frames[-1]
        own[leaf] += n
        own_fn[_no_line(leaf)] += n
        seen = set()
        for f in frames:
            fn = _no_line(f)
            if fn not in seen:
                seen.add(fn)
                incl[fn] += n

    def rows(t: Tally[str], skip_above: float = 1.0) -> list[dict[str, Any]]:
        picked = [(k, v) for k, v in t.most_common() if v <= skip_above * total][:top]
        return [
            {"frame": k, "samples": v, "pct": round(100 * v / total, 2) if total else None}
            for k, v in picked
        ]

    return {
        "samples": total,
        "self": rows(own),
        "self_by_function": rows(own_fn),
        # Less the runner chain above the request handlers (in nearly every sample).
        "inclusive": rows(incl, skip_above=0.9),
    }


def _no_line(frame: str) -> str:
    """``function (file:line)`` -> ``function (file)``."""
    head, sep, _ = frame.rpartition(":")
    return head + ")" if sep and frame.endswith(")") else frame


def print_profile(prof: dict[str, Any] | None) -> None:
    if not prof:
        return
    if "error" in prof:
        print("profile failed:", prof["error"][-500:])
        return
    print(f"\npy-spy profile of the server ({prof['samples']:,} samples, idle included),"
          f" {prof['file']}")  # fmt: skip
    print("  self (leaf line) %:")
    for r in prof["self"][:10]:
        print(f"    {r['pct']:6.2f}  {r['frame']}")
    print("  self by function %:")
    for r in prof["self_by_function"][:10]:
        print(f"    {r['pct']:6.2f}  {r['frame']}")
    print("  inclusive % (less the frames above the handlers):")
    for r in prof["inclusive"][:15]:
        print(f"    {r['pct']:6.2f}  {r['frame']}")


class Creating(Protocol):
    """What ``keep_ahead`` reads of a closed-loop storm's run (storm and sale)."""

    firing: bool
    max_cur: int
    ns: argparse.Namespace
    errors: Tally[str]

    def resume_parked(self) -> None: ...


async def keep_ahead(
    run: Creating,
    create: Callable[[], Coroutine[Any, Any, None]],
    made: Callable[[], int],
    need: asyncio.Event,
) -> None:
    """Keep ``--ahead`` items (packets, lotteries, sales) beyond the furthest client,
    creating up to that many at once (a create waits behind the storm in the server);
    wake the clients parked for want of one. ``made`` counts the items created so far;
    ``need`` is set when a client moves on to a new item."""
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            await create()
        except Exception as exc:  # counted as a failure; the clients may starve
            run.errors[f"create failed: {exc!r}"[:200]] += 1
            await asyncio.sleep(0.1)
        run.resume_parked()
        need.set()

    try:
        while run.firing:
            while run.firing and made() + len(pending) <= run.max_cur + run.ns.ahead:
                task = asyncio.create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
            await need.wait()
            need.clear()
    finally:
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def run_on_redis(
    ns: argparse.Namespace,
    name: str,
    run: Callable[[argparse.Namespace, str], Coroutine[Any, Any, dict[str, Any]]],
) -> dict[str, Any]:
    """``run(ns, url)`` against ``--redis-url``, or else against a throwaway ``redis-server``
    (``start_redis``, its log beside ``--json``) stopped afterwards."""
    if ns.redis_url:
        return asyncio.run(run(ns, ns.redis_url))
    log_dir = Path(ns.json).parent if ns.json else Path(tempfile.mkdtemp())
    redis = start_redis(ns.redis_cpus, log_dir.resolve() / f"{name}.redis.log")
    try:
        return asyncio.run(run(ns, redis.url))
    finally:
        redis.stop()
