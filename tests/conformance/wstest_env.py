"""The Python 2.7 virtualenv that runs Autobahn's ``wstest``: found, or built and cached.

The suite's fuzzing client runs only on Python 2.7. The environment is built once per
set of pinned versions (requirements-*.txt beside this file, hashed into the directory
name) under ``~/.cache/interact/`` (``$XDG_CACHE_HOME`` if set), outside the repository,
with pip as configured on the machine; later runs reuse it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-py27.txt"
BOOTSTRAP = HERE / "requirements-bootstrap-py27.txt"
PY27_ENV = "INTERACT_PY27"
PYENV_VERSION = "2.7.18"
# pip on a slow registry day; a build that takes longer has gone wrong.
BUILD_TIMEOUT_S = 900


class Py27Missing(RuntimeError):
    """No Python 2.7 on this machine: the message says what to install."""


def find_python27() -> Path:
    """A Python 2.7 interpreter: ``$INTERACT_PY27``, pyenv's 2.7.18, or ``python2.7``."""
    tried: list[str] = []
    candidates: list[Path] = []
    explicit = os.environ.get(PY27_ENV)
    if explicit:
        candidates.append(Path(explicit))
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        candidates.append(Path(root) / "versions" / PYENV_VERSION / "bin" / "python")
    on_path = shutil.which("python2.7")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        tried.append(str(candidate))
        if _is_python27(candidate):
            return candidate
    raise Py27Missing(
        "the Autobahn fuzzing client (wstest) needs Python 2.7, and none was found "
        f"(tried: {', '.join(tried) or 'nothing'}). Install it with "
        f"`pyenv install {PYENV_VERSION}`, or point {PY27_ENV} at a python2.7 binary."
    )


def _is_python27(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        out = subprocess.run(
            [str(path), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == "2.7"


def cache_dir(python: Path) -> Path:
    """Where the environment for these pins and this interpreter lives."""
    digest = hashlib.sha256()
    for part in (REQUIREMENTS.read_bytes(), BOOTSTRAP.read_bytes(), str(python).encode()):
        digest.update(part)
        digest.update(b"\0")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "interact" / f"autobahn-py27-{digest.hexdigest()[:12]}"


def wstest(log: list[str] | None = None) -> Path:
    """The ``wstest`` executable, building its environment first if needed.

    A lock makes concurrent callers wait for one build; a build that did not finish
    (no ``complete`` marker) is thrown away and redone.
    """
    python = find_python27()
    root = cache_dir(python)
    root.parent.mkdir(parents=True, exist_ok=True)
    exe = root / "venv" / "bin" / "wstest"
    marker = root / "complete"
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and exe.exists():
            return exe
        if log is not None:
            log.append(f"building the wstest environment in {root} (once)")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        _build(python, root)
        if not exe.exists():
            raise RuntimeError(f"wstest is missing from {root / 'venv'} after its build")
        marker.write_text("ok\n")
    return exe


def py27_env() -> dict[str, str]:
    """This process's environment without what would point Python 2.7 at Python 3's
    modules (the project's virtualenv is usually active)."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(name, None)
    return env


def _build(python: Path, root: Path) -> None:
    boot = root / "bootstrap"
    venv = root / "venv"
    log_path = root / "build.log"
    steps = [
        ([str(python), "-m", "pip", "install", "--target", str(boot), "-r", str(BOOTSTRAP)], {}),
        (
            [
                str(python), "-m", "virtualenv", "--no-download", "--no-periodic-update",
                "--app-data", str(root / "app-data"), str(venv),
            ],
            {"PYTHONPATH": str(boot)},
        ),
        ([str(venv / "bin" / "python"), "-m", "pip", "install", "-r", str(REQUIREMENTS)], {}),
    ]  # fmt: skip
    with open(log_path, "ab") as log_file:
        for argv, extra_env in steps:
            env = {**py27_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra_env}
            done = subprocess.run(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(
                    f"building the wstest environment failed at {' '.join(argv)}"
                    f" (exit {done.returncode}); log {log_path}:\n{tail}"
                )
