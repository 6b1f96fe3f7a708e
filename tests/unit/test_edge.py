"""Per-process admission counts (interact.edge) and their settings."""

from __future__ import annotations

import pytest

from interact.config import load
from interact.edge import Edge


def test_the_per_address_cap_counts_open_connections_of_each_address() -> None:
    edge = Edge(max_per_address=2, max_unwelcomed=0)
    assert edge.open("a", "10.0.0.1") is None and edge.open("b", "10.0.0.1") is None
    assert edge.open("c", "10.0.0.1") == "address"
    assert edge.open("c", "10.0.0.2") is None  # another address
    edge.welcomed("a")
    assert edge.open("d", "10.0.0.1") == "address"  # welcomed ones still count here
    edge.closed("a")
    edge.closed("a")  # idempotent
    assert edge.count_from("10.0.0.1") == 1
    assert edge.open("d", "10.0.0.1") is None


def test_the_unwelcomed_cap_counts_until_the_welcome_or_the_close() -> None:
    edge = Edge(max_per_address=0, max_unwelcomed=2)
    assert edge.open(1, "x") is None and edge.open(2, "y") is None
    assert edge.waiting(1) and edge.open(3, "z") == "unwelcomed"
    edge.welcomed(1)
    assert not edge.waiting(1) and edge.open(3, "z") is None
    assert edge.open(4, "z") == "unwelcomed"
    edge.closed(2)
    assert not edge.waiting(2) and edge.open(4, "z") is None
    assert (edge.open_count, edge.unwelcomed_count) == (3, 2)


def test_zero_turns_a_cap_off() -> None:
    edge = Edge(max_per_address=0, max_unwelcomed=0)
    assert all(edge.open(i, "x") is None for i in range(5000))


@pytest.mark.parametrize(
    "flags",
    [
        {"head_timeout": 0},
        {"body_timeout": -1},
        {"max_conns_per_address": -1},
        {"max_unwelcomed": -1},
    ],
)
def test_edge_settings_are_checked(flags: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        load(flags=flags, environ={})
