"""The ``redis+cluster://`` URL form of ``--redis``."""

from __future__ import annotations

import pytest

from interact.config import Config
from interact.engine import is_cluster_url, parse_cluster_url


def test_nodes_auth_and_tls() -> None:
    opts = parse_cluster_url("redis+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2:7001/")
    assert opts == {
        "startup": [("10.0.0.1", 7000), ("10.0.0.2", 7001)],
        "username": "app",
        "password": "p@ss",
        "ssl": False,
    }
    opts = parse_cluster_url("rediss+cluster://:secret@[::1]:7000")
    assert opts["startup"] == [("::1", 7000)]
    assert (opts["username"], opts["password"], opts["ssl"]) == (None, "secret", True)


def test_only_cluster_schemes_are_clusters() -> None:
    assert is_cluster_url("redis+cluster://h:1") and is_cluster_url("REDISS+CLUSTER://h:1")
    assert not is_cluster_url("redis://h:6379/0") and not is_cluster_url("")


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://host",
        "redis+cluster://host:port",
        "redis+cluster://h:7000,,h:7001",
        "redis+cluster://h:7000/1",
        "redis+cluster://h:7000?max_connections=5",
        "redis://h:7000",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_cluster_url(url)


def test_config_validation_names_the_bad_node() -> None:
    Config(redis_url="redis+cluster://127.0.0.1:7000,127.0.0.1:7001").validate()
    with pytest.raises(ValueError, match="bad node"):
        Config(redis_url="redis+cluster://127.0.0.1").validate()
