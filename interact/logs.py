"""Structured logging: one JSON object per line (or plain text for a terminal).

Passwords in URLs never reach a line: ``scheme://user:PASSWORD@host`` is written
``scheme://user:***@host`` (and ``scheme://TOKEN@host``, which some clients read as a
password, ``scheme://***@host``), in the message, in every extra field, and in
tracebacks, whatever logger the line came from.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time

import orjson

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}

# The userinfo of a URL: everything between "://" and the last "@" before the host.
# Quotes, spaces and brackets end it, so a URL inside a repr or a JSON text is cut at its
# end; a password with an unescaped "@", "/" or "?" is still masked whole (over-masking
# a path that holds an "@" is harmless).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^\s\"'<>()\[\]{}]+)@")


def _mask(match: re.Match[str]) -> str:
    user, colon, _ = match["info"].partition(":")
    return f"{match['scheme']}{user}:***@" if colon else f"{match['scheme']}***@"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(_mask, text) if "://" in text else text


def redact_value(value: object) -> object:
    """``redact`` through strings, and the strings inside dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": os.getpid(),
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = redact_value(value)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(out, default=lambda v: redact(str(v))).decode()


class TextFormatter(logging.Formatter):
    """The terminal format, redacted as a whole line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's per-request access log is noise at our request rates.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # urllib3 logs full request URLs at DEBUG, and WeChat URLs carry secrets and tokens.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
