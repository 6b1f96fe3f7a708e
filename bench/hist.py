"""Latency histograms: HDR histograms in microseconds, encodable so that load processes
can send theirs to the parent, which merges them.

An HDR histogram keeps every recorded value to 3 significant digits in a fixed few
kilobytes, whatever the count, so a percentile over millions of samples (p99.9, the max)
costs no sorting and no list of samples, and histograms of several processes add up
exactly (``hdrhistogram`` on PyPI, module ``hdrh``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

# 1 µs to one hour, 3 significant digits.
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
DIGITS = 3

POINTS = (50.0, 90.0, 99.0, 99.9)


class Latency:
    """A histogram of latencies, recorded in nanoseconds, kept in microseconds."""

    __slots__ = ("hist",)

    def __init__(self) -> None:
        self.hist = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)

    def record_ns(self, ns: int) -> None:
        us = ns // 1000
        self.hist.record_value(min(max(us, LOWEST_US), HIGHEST_US))

    def record_many_ns(self, values: Iterable[int]) -> None:
        for ns in values:
            self.record_ns(ns)

    @property
    def count(self) -> int:
        return int(self.hist.get_total_count())

    def encode(self) -> bytes:
        """The compressed form another process can ``merge``."""
        return bytes(self.hist.encode())

    def merge(self, encoded: bytes) -> None:
        if encoded:
            self.hist.decode_and_add(encoded)

    def add(self, other: Latency) -> None:
        self.hist.add(other.hist)

    @classmethod
    def merged(cls, encoded: Iterable[bytes]) -> Latency:
        out = cls()
        for blob in encoded:
            out.merge(blob)
        return out

    def summary_ms(self, points: tuple[float, ...] = POINTS) -> dict[str, float | int | None]:
        """``p50``, ``p90``, ``p99``, ``p99.9``, ``max``, ``mean`` in ms, and ``samples``."""
        n = self.count
        out: dict[str, float | int | None] = {}
        for p in points:
            out[f"p{p:g}"] = self.hist.get_value_at_percentile(p) / 1000 if n else None
        out["max"] = self.hist.get_max_value() / 1000 if n else None
        out["mean"] = self.hist.get_mean_value() / 1000 if n else None
        out["samples"] = n
        return out


def summary_row(lat: dict[str, Any]) -> str:
    """``p50 / p90 / p99 / p99.9 / max`` of a summary, for a table."""
    from bench.report import fmt

    return " / ".join(fmt(lat.get(k)) for k in ("p50", "p90", "p99", "p99.9", "max"))
