"""Micro-benchmark of the client-frame reader alone (no socket), on one core.

The reader parses every comment, like and ping a viewer sends, so its per-frame cost is on
the hot path. Three typical cases: a 60-byte masked text frame fed alone, 20 such frames in
one feed (a burst read at once), and one 4 KiB masked binary frame. Each case is timed with
``timeit`` over several runs and the median of the runs, per frame, is printed.

Run ``python -m bench.frames_micro``; ``--file OLD.py`` times another copy of
``interact/client_frames.py`` instead (e.g. ``git show HEAD:interact/client_frames.py``),
so a change can be compared with the code before it on the same machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import timeit
from collections.abc import Callable, Sequence
from types import ModuleType

HELP = "client-frame reader alone: ns per frame for small, burst and 4 KiB frames"

OP_TEXT = 0x1
OP_BINARY = 0x2


def masked(op: int, payload: bytes) -> bytes:
    """A final, masked client frame (what a browser or mini-program sends)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | op, 0x80 | n))
    else:
        head = bytes((0x80 | op, 0x80 | 126)) + n.to_bytes(2, "big")
    key = b"\x5a\x13\xc7\x9e"
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def load(path: str | None) -> ModuleType:
    if path is None:
        import interact.client_frames as module

        return module
    spec = importlib.util.spec_from_file_location("client_frames_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(module: ModuleType) -> dict[str, tuple[Callable[[], object], int]]:
    """Name -> (one call, frames it reads)."""
    text = b'{"t":"dm","text":"\xe4\xb8\xbb\xe6\x92\xad\xe5\xa5\xbd\xe7\xbe\x8e 666","ref":7}'
    text = text + b" " * (60 - len(text))
    assert len(text) == 60
    one = masked(OP_TEXT, text)
    burst = one * 20
    big = masked(OP_BINARY, os.urandom(4096))
    reader = module.ClientFrames(64 * 1024)
    feed = reader.feed
    return {
        "60-byte text frame alone": (lambda: feed(one), 1),
        "20 such frames in one feed": (lambda: feed(burst), 20),
        "4 KiB binary frame": (lambda: feed(big), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frames_micro", description=HELP)
    parser.add_argument("--file", help="time this copy of client_frames.py instead")
    parser.add_argument("--runs", type=int, default=7, help="timeit runs; the median is shown")
    parser.add_argument("--number", type=int, default=20_000, help="calls per run")
    args = parser.parse_args(argv)
    module = load(args.file)
    print(f"{'case':<30} {'ns/frame (median)':>18} {'min':>8} {'max':>8}")
    for name, (call, frames) in cases(module).items():
        call()  # the first call builds caches; it is not what a connection pays each time
        number = max(1, args.number // frames)
        runs = timeit.repeat(call, number=number, repeat=args.runs)
        per = [r / (number * frames) * 1e9 for r in runs]
        print(f"{name:<30} {statistics.median(per):>18.0f} {min(per):>8.0f} {max(per):>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
