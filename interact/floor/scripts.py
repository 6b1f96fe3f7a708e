"""Lua scripts of a package: read from ``<package>/lua`` and registered per client."""

from __future__ import annotations

from functools import cache
from importlib import resources

from redis.commands.core import AsyncScript

from interact.floor.redis_pipe import AnyRedis, FastScript, pipe_of


@cache
def source(name: str, package: str) -> str:
    """The text of ``<package>/lua/<name>.lua`` (read once per process)."""
    return resources.files(package).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def register(client: AnyRedis, name: str, package: str) -> AsyncScript | FastScript:
    """A callable script run by EVALSHA and reloaded after a Redis restart: over the
    client's pipe when the engine attached one (the hot path), else through redis-py."""
    pipe = pipe_of(client)
    if pipe is not None:
        return FastScript(pipe, source(name, package))
    return client.register_script(source(name, package))


def text(value: bytes | str) -> str:
    """A reply from a client that does not decode responses, as ``str``."""
    return value.decode() if isinstance(value, bytes) else value
