"""Lua scripts of the moderation package: ``moderation/lua/<name>.lua``, via the floor's loader."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from interact.floor import scripts


def register(client: Redis, name: str) -> AsyncScript:
    """A callable script; redis-py runs it by EVALSHA and reloads it after a Redis restart."""
    return scripts.register(client, name, package="moderation")
