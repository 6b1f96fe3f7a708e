"""Redis Ledger (see ``commerce.ledger`` for the contract): one stream per room.

The commerce scripts append to the same stream, with the same cap, inside their own
atomic step.
"""

from __future__ import annotations

from redis.asyncio import Redis

from commerce.keys import CommerceKeys
from commerce.ledger import LEDGER_MAXLEN
from interact.floor.event_log_redis import RedisEventLog


class RedisLedger(RedisEventLog):
    def __init__(self, client: Redis, keys: CommerceKeys, *, maxlen: int = LEDGER_MAXLEN) -> None:
        super().__init__(client, keys.ledger, maxlen=maxlen)
