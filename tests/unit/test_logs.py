"""Secrets out of the logs: passwords in URLs are masked in every field of every line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from interact import logs
from interact.cli import loopback, start_warnings
from interact.config import Config


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("redis://user:hunter2@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:hunter2@host", "redis://:***@host"),
        ("rediss+cluster://u:hunter2@a:1,b:2", "rediss+cluster://u:***@a:1,b:2"),
        ("redis+cluster://hunter2@a:1", "redis+cluster://***@a:1"),
        ("redis://u:hun@ter2@h/0", "redis://u:***@h/0"),
        ("redis://u:hunter2/x@h", "redis://u:***@h"),
        ("{'url': 'redis://u:hunter2@h', 'to': 'a@b'}", "{'url': 'redis://u:***@h', 'to': 'a@b'}"),
        ("redis://127.0.0.1:6379/0, mail a@b", "redis://127.0.0.1:6379/0, mail a@b"),
        ("no url here", "no url here"),
    ],
)
def test_redact(raw: str, shown: str) -> None:
    assert logs.redact(raw) == shown


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    before = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    root.handlers[:], level = before
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_every_part_of_a_line_is_redacted(stream: io.StringIO, fmt: str) -> None:
    logs.setup("info", fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("interact.test")
    url = "redis://app:hunter2@10.0.0.1:6379/0"
    log.info("connecting to %s", url, extra={"config": {"redis_url": url, "n": [url]}})
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        log.warning("lost", exc_info=True)
    text = stream.getvalue()
    assert "hunter2" not in text
    assert text.count("redis://app:***@10.0.0.1") >= (4 if fmt == "json" else 2)
    if fmt == "json":
        first = orjson.loads(text.splitlines()[0])
        assert first["config"] == {"redis_url": "redis://app:***@10.0.0.1:6379/0",
                                   "n": ["redis://app:***@10.0.0.1:6379/0"]}  # fmt: skip


def test_config_redacted_masks_url_passwords_and_secrets() -> None:
    cfg = Config(redis_url="redis://u:hunter2@h/0", secret="s3cret", wechat_secret="w")
    shown = cfg.redacted()
    assert shown["redis_url"] == "redis://u:***@h/0"
    assert shown["secret"] == "***" and shown["wechat_secret"] == "***"
    assert "hunter2" not in repr(shown)


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("127.9.9.9", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
     ("example.com", False)],
)  # fmt: skip
def test_loopback(host: str, local: bool) -> None:
    assert loopback(host) is local


def test_dev_login_off_loopback_is_warned() -> None:
    assert start_warnings(Config(host="127.0.0.1")) == []
    assert start_warnings(Config(host="0.0.0.0", dev_login=False)) == []
    (line,) = start_warnings(Config(host="0.0.0.0"))
    assert "dev login is on" in line and "0.0.0.0" in line
