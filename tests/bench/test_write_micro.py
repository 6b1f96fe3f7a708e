"""bench.write_micro runs end to end on a few loopback viewers and prints each way."""

from __future__ import annotations

import subprocess
import sys


def test_write_micro_prints_cpu_per_frame_for_each_way() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.write_micro", "--viewers", "20", "--rounds", "2",
         "--runs", "1", "--gap", "0.005"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert lines[0].startswith("CPU per frame written, 20 viewers, 3000 B, uvloop")
    ways = {line.split()[0]: float(line.split()[1]) for line in lines[1:]}
    assert set(ways) == {"hub", "write", "os.write"}
    assert all(us > 0 for us in ways.values())
    assert "Traceback" not in out.stderr
