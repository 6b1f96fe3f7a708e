"""Redis ModerationLog (see ``moderation.moderation_log`` for the contract): a stream per room."""

from __future__ import annotations

from redis.asyncio import Redis

from interact.floor.event_log_redis import RedisEventLog
from moderation.keys import ModerationKeys
from moderation.moderation_log import MODLOG_MAXLEN


class RedisModerationLog(RedisEventLog):
    def __init__(self, client: Redis, keys: ModerationKeys, *, maxlen: int = MODLOG_MAXLEN) -> None:
        super().__init__(client, keys.log, maxlen=maxlen)
