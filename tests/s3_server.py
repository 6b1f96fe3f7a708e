"""A throwaway S3-compatible server for tests: moto's server mode in its own process
(``python -m moto.server``) on a free loopback port, reached over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.redis_server import free_port

START_TIMEOUT_S = 30.0
# moto accepts any credentials; these stand for a deployment's own.
ACCESS_KEY = "interact-test-access"
SECRET_KEY = "interact-test-secret-do-not-log"


@contextmanager
def s3_server(tmp_path: Path) -> Iterator[str]:
    """Yields the endpoint URL of a running server; stops it afterwards."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (tmp_path / f"moto-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
