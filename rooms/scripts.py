"""Lua scripts of the rooms package: read from ``rooms/lua`` and registered per client."""

from __future__ import annotations

from functools import cache
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


@cache
def source(name: str, package: str = "rooms") -> str:
    """The text of ``<package>/lua/<name>.lua`` (read once per process)."""
    return resources.files(package).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def register(client: Redis, name: str, package: str = "rooms") -> AsyncScript:
    """A callable script; redis-py runs it by EVALSHA and reloads it after a Redis restart."""
    return client.register_script(source(name, package))
