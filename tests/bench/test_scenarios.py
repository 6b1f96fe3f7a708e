"""Smoke runs of every bench scenario: tiny numbers, a second or two each, against real
servers the harness starts (Interact, and the aiohttp and python-socketio peers). They
check that the ``--json`` document holds the figures; no figure is held to a threshold."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.fanout import send_times
from bench.hist import Latency

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("interact", "aiohttp", "socketio")


def bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run ``python -m bench ARGS --json FILE``; its document, or fail with its output."""
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    doc: dict[str, Any] = orjson.loads(out.read_bytes())
    return doc


def check_common(doc: dict[str, Any], scenario: str) -> None:
    assert doc["scenario"] == scenario
    machine = doc["machine"]
    assert machine["cpu_model"] is not None and machine["cores"] >= 1 and machine["kernel"]
    versions = doc["versions"]
    for name in ("python", "aiohttp", "uvloop", "interact", "redis"):
        assert versions[name], name
    assert doc["params"]
    assert doc["failures"]["total"] == 0, doc["failures"]
    assert doc["server"]["exit_code"] is not None


def runs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert doc["target"] == "all"
    assert set(doc["runs"]) == set(TARGETS)
    assert doc["comparison"] and all("ratio_to_interact" in r for r in doc["comparison"])
    return dict(doc["runs"])


def test_fanout_against_every_target(tmp_path: Path) -> None:
    doc = bench(
        tmp_path, "fanout", "--target", "all", "--viewers", "20", "--senders", "2",
        "--rate", "20", "--duration", "1", "--warmup", "0.3", "--sample", "5", "--drain", "2",
    )  # fmt: skip
    for target, one in runs(doc).items():
        check_common(one, "fanout")
        assert one["target"] == target
        w, lat = one["window"], one["latency_ms"]
        assert w["deliveries_per_s"] > 0 and w["frames_per_s"] > 0
        assert lat["samples"] > 0
        for key in ("p50", "p90", "p99", "p99.9", "max"):
            assert lat[key] is not None and lat[key] >= 0, key
        assert one["run"]["missing_viewer_deliveries"] == 0
        assert one["rss_kb"]["per_connection_kb"] is not None


def test_fanout_with_poisson_arrivals(tmp_path: Path) -> None:
    doc = bench(
        tmp_path, "fanout", "--viewers", "20", "--senders", "2", "--rate", "40",
        "--duration", "1", "--warmup", "0.3", "--sample", "5", "--drain", "2",
        "--arrivals", "poisson", "--seed", "7",
    )  # fmt: skip
    check_common(doc, "fanout")
    assert doc["params"]["arrivals"] == "poisson" and doc["params"]["seed"] == 7
    assert doc["window"]["comments_sent"] > 0 and doc["latency_ms"]["samples"] > 0
    assert doc["run"]["missing_viewer_deliveries"] == 0


def test_poisson_send_times_are_seeded_exponential_gaps() -> None:
    offsets = list(itertools.islice(send_times("poisson", 50.0, 3), 20001))
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert offsets == list(itertools.islice(send_times("poisson", 50.0, 3), 20001))
    assert offsets != list(itertools.islice(send_times("poisson", 50.0, 4), 20001))
    assert min(gaps) > 0 and statistics.fmean(gaps) == pytest.approx(0.02, rel=0.03)
    # Exponential: the standard deviation equals the mean (evenly spaced: 0).
    assert statistics.pstdev(gaps) == pytest.approx(0.02, rel=0.05)
    assert list(itertools.islice(send_times("even", 50.0, 3), 4)) == [0.0, 0.02, 0.04, 0.06]


def test_join_against_every_target_over_two_processes(tmp_path: Path) -> None:
    doc = bench(
        tmp_path, "join", "--target", "all", "--viewers", "20", "--duration", "10",
        "--procs", "2", "--source-addrs", "2",
    )  # fmt: skip
    for one in runs(doc).values():
        check_common(one, "join")
        c = one["connect"]
        assert c["connected"] == 20
        assert c["handshakes_per_s"] > 0 and c["seconds_until_all_in"] is not None
        assert c["handshake_ms"]["samples"] == 20 and c["handshake_ms"]["p99.9"] is not None
        assert one["load"]["processes"] == 2 and len(one["load"]["child_pids"]) == 2
        assert one["load"]["source_addrs"] == ["127.0.0.1", "127.0.0.2"]


def test_idle_against_every_target(tmp_path: Path) -> None:
    doc = bench(
        tmp_path, "idle", "--target", "all", "--viewers", "20", "--duration", "1",
        "--ping-interval", "0.5", "--settle", "0.2",
    )  # fmt: skip
    for target, one in runs(doc).items():
        check_common(one, "idle")
        h, rss = one["hold"], one["rss_kb"]
        assert h["viewers"] == 20 and h["server_cpu_pct"] is not None
        assert rss["before"] > 0 and rss["per_connection_kb"] is not None
        if target != "socketio":  # Socket.IO clients answer the server's pings instead
            assert h["pings_sent"] > 0


def test_storm_on_redis(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    doc = bench(
        tmp_path, "storm", "--kind", "grab", "--redis-url", redis_url,
        f"--server-arg=--prefix={redis_prefix}", "--grabbers", "20", "--shares", "10",
        "--duration", "1", "--warmup", "0.3", "--drain", "3",
    )  # fmt: skip
    check_common(doc, "storm")
    assert doc["window"]["ok_per_s"] > 0 and doc["latency_ms"]["samples"] > 0
    assert doc["correct"]["ok"], doc["correct"]["problems"]


def test_sale_on_redis(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    doc = bench(
        tmp_path, "sale", "--redis-url", redis_url, f"--server-arg=--prefix={redis_prefix}",
        "--buyers", "20", "--duration", "1", "--warmup", "0.3", "--drain", "3",
    )  # fmt: skip
    check_common(doc, "sale")
    assert doc["window"]["attempts_per_s"] > 0
    assert doc["correct"]["ok"], doc["correct"]["problems"]


def test_webhooks_on_redis(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    doc = bench(
        tmp_path, "webhooks", "--redis-url", redis_url, f"--server-arg=--prefix={redis_prefix}",
        "--rate", "1200", "--rooms", "2", "--duration", "1", "--warmup", "0.3",
        "--baseline-seconds", "0.3", "--drain", "10",
    )  # fmt: skip
    check_common(doc, "webhooks")
    run, lag = doc["run"], doc["lag_ms"]
    assert run["written"] > 0 and run["delivered"] == run["written"] and run["missing"] == 0
    assert lag["samples"] > 0 and lag["p99"] is not None and lag["p99"] >= lag["p50"] >= 0
    assert doc["baseline"]["receiver_posts_per_s"] > 0


def test_audience_memory_through_the_store(tmp_path: Path) -> None:
    doc = bench(tmp_path, "audience", "--uids", "20000", "--rooms", "2", "--batch", "3000")
    assert doc["scenario"] == "audience" and doc["params"]["uids"] == 20000
    assert doc["correct"]["ok"], doc["correct"]["problems"]
    assert [r["watch_uv"] for r in doc["rooms"]] == [20000, 20000]
    assert [r["comment_uv"] for r in doc["rooms"]] == [2000, 2000]
    assert doc["bytes_per_interned_uid"] > 0 and doc["bytes_per_viewer_per_room"] > 0
    assert doc["room_sets_bytes"] > 0 and doc["machine"]["cores"] >= 1


def test_events_through_the_endpoint_on_redis(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    doc = bench(
        tmp_path, "events", "--redis-url", redis_url, f"--server-arg=--prefix={redis_prefix}",
        "--clients", "4", "--users", "500", "--batch", "10", "--duration", "1", "--warmup", "0.3",
    )  # fmt: skip
    check_common(doc, "events")
    w, run = doc["window"], doc["run"]
    assert w["events_per_s"] > 0 and w["requests_per_s"] > 0 and w["latency_ms"]["p50"] > 0
    assert run["accepted"] > 0 and run["counted"] == run["accepted"]
    assert doc["correct"]["ok"], doc["correct"]["problems"]


def test_interact_bench_forwards_to_the_harness(capsys: pytest.CaptureFixture[str]) -> None:
    from interact.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["bench", "join", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: interact bench join") and "--procs" in out


def test_histograms_merge_across_processes() -> None:
    a, b = Latency(), Latency()
    a.record_many_ns(ms * 1_000_000 for ms in range(1, 101))
    b.record_ns(5_000_000_000)
    merged = Latency.merged([a.encode(), b.encode()])
    s = merged.summary_ms()
    assert s["samples"] == 101
    assert 49 <= s["p50"] <= 52 and 4990 <= s["max"] <= 5010


def test_retention_soak_through_the_stores(tmp_path: Path) -> None:
    doc = bench(
        tmp_path, "retention", "--rooms", "8", "--comments", "3", "--grabs", "2", "--orders", "2"
    )
    assert doc["scenario"] == "retention" and doc["params"]["rooms"] == 8
    assert doc["correct"]["ok"], doc["correct"]
    keys = doc["keys"]
    # Every per-room key got a TTL; the hot ones went, the money ones stayed until theirs.
    assert keys["without_ttl"] == 0 and keys["hot_ttl"] > 0 and keys["money_ttl"] > 0
    assert keys["after_hot"] >= keys["money_ttl"] > keys["after_all"]
    mem = doc["memory"]
    assert mem["loaded"]["dataset"] > mem["hot_expired"]["dataset"]
    assert mem["hot_expired"]["dataset"] > mem["all_expired"]["dataset"]
