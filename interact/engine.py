"""The Engine: one bundle of store backends for a deployment, built from config here only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from commerce.ledger import Ledger
from commerce.lottery_store import LotteryStore
from commerce.nonce_store import NonceStore
from commerce.redpacket_store import RedPacketStore
from commerce.sale_store import SaleStore
from moderation.moderation_log import ModerationLog
from moderation.mute_store import MuteStore
from moderation.rate_limiter import RateLimiter
from moderation.review_queue import ReviewQueue
from moderation.room_settings import ModerationSettings
from moderation.word_store import WordListStore
from rooms.broker import Broker
from rooms.danmaku_log import DanmakuLog
from rooms.presence import Presence
from rooms.room_store import RoomStore
from rooms.stats import RoomStats

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from rooms.redis_pipe import RedisPipe


async def _always_ready() -> bool:
    return True


async def _nothing() -> None:
    return None


@dataclass(slots=True)
class Engine:
    kind: str
    broker: Broker
    rooms: RoomStore
    danmaku: DanmakuLog
    presence: Presence
    stats: RoomStats
    packets: RedPacketStore
    lotteries: LotteryStore
    ledger: Ledger
    sales: SaleStore
    nonces: NonceStore
    limiter: RateLimiter
    mutes: MuteStore
    modlog: ModerationLog
    review: ReviewQueue
    mod_settings: ModerationSettings
    words: WordListStore
    ping: Callable[[], Awaitable[bool]] = field(default=_always_ready)
    _close: Callable[[], Awaitable[None]] = field(default=_nothing)

    async def start(self) -> None:
        await self.broker.start()

    async def close(self) -> None:
        await self.broker.close()
        await self._close()


def memory_engine(history_size: int) -> Engine:
    from commerce.ledger_memory import MemoryLedger
    from commerce.lottery_store_memory import MemoryLotteryStore
    from commerce.nonce_store import MemoryNonceStore
    from commerce.redpacket_store_memory import MemoryRedPacketStore
    from commerce.sale_store_memory import MemorySaleStore
    from moderation.moderation_log_memory import MemoryModerationLog
    from moderation.mute_store_memory import MemoryMuteStore
    from moderation.rate_limiter_memory import MemoryRateLimiter
    from moderation.review_queue_memory import MemoryReviewQueue
    from moderation.room_settings_memory import MemoryModerationSettings
    from moderation.word_store import MemoryWordListStore
    from rooms.broker_memory import MemoryBroker
    from rooms.danmaku_log_memory import MemoryDanmakuLog
    from rooms.presence_memory import MemoryPresence
    from rooms.room_store_memory import MemoryRoomStore
    from rooms.stats_memory import MemoryRoomStats

    broker = MemoryBroker()
    rooms = MemoryRoomStore()
    # One ledger for both stores: a room's money events form one log.
    ledger = MemoryLedger()
    return Engine(
        kind="memory",
        broker=broker,
        rooms=rooms,
        danmaku=MemoryDanmakuLog(rooms, broker, history_size),
        presence=MemoryPresence(),
        stats=MemoryRoomStats(),
        packets=MemoryRedPacketStore(ledger),
        lotteries=MemoryLotteryStore(ledger),
        ledger=ledger,
        sales=MemorySaleStore(ledger),
        nonces=MemoryNonceStore(),
        limiter=MemoryRateLimiter(),
        mutes=MemoryMuteStore(),
        modlog=MemoryModerationLog(),
        review=MemoryReviewQueue(),
        mod_settings=MemoryModerationSettings(),
        words=MemoryWordListStore(),
    )


def connect_redis(url: str) -> tuple[Redis, RedisPipe | None]:
    """A redis-py client and the pipelined connection its hot scripts use."""
    import redis.asyncio as redis

    from rooms.redis_pipe import attach_pipe

    # redis-py's default pool raises MaxConnectionsError past 100 commands in flight; a
    # blocking pool makes a burst wait for a connection instead (a ?max_connections=
    # in the URL still overrides the size).
    pool = redis.BlockingConnectionPool.from_url(
        url, decode_responses=False, max_connections=64, timeout=20
    )
    client = redis.Redis.from_pool(pool)
    return client, attach_pipe(client)


def redis_engine(url: str, prefix: str, history_size: int) -> Engine:

    from commerce.keys import CommerceKeys
    from commerce.ledger_redis import RedisLedger
    from commerce.lottery_store_redis import RedisLotteryStore
    from commerce.nonce_store import RedisNonceStore
    from commerce.redpacket_store_redis import RedisRedPacketStore
    from commerce.sale_store_redis import RedisSaleStore
    from moderation.keys import ModerationKeys
    from moderation.moderation_log_redis import RedisModerationLog
    from moderation.mute_store_redis import RedisMuteStore
    from moderation.rate_limiter_redis import RedisRateLimiter
    from moderation.review_queue_redis import RedisReviewQueue
    from moderation.room_settings_redis import RedisModerationSettings
    from moderation.word_store_redis import RedisWordListStore
    from rooms.broker_redis import RedisBroker
    from rooms.danmaku_log_redis import RedisDanmakuLog
    from rooms.keys import RoomKeys
    from rooms.presence_redis import RedisPresence
    from rooms.room_store_redis import RedisRoomStore
    from rooms.stats_redis import RedisRoomStats

    client, pipe = connect_redis(url)
    keys = RoomKeys(prefix)
    money_keys = CommerceKeys(prefix)
    mod_keys = ModerationKeys(prefix)

    async def ping() -> bool:
        try:
            return bool(await client.ping())
        except Exception:  # any failure to reach Redis means "not ready"
            return False

    async def close() -> None:
        if pipe is not None:
            await pipe.close()
        await client.aclose()

    return Engine(
        kind="redis",
        broker=RedisBroker(client, keys),
        rooms=RedisRoomStore(client, keys),
        danmaku=RedisDanmakuLog(client, keys, history_size),
        presence=RedisPresence(client, keys),
        stats=RedisRoomStats(client, keys),
        packets=RedisRedPacketStore(client, money_keys),
        lotteries=RedisLotteryStore(client, money_keys),
        ledger=RedisLedger(client, money_keys),
        sales=RedisSaleStore(client, money_keys),
        nonces=RedisNonceStore(client, prefix),
        limiter=RedisRateLimiter(client, mod_keys),
        mutes=RedisMuteStore(client, mod_keys),
        modlog=RedisModerationLog(client, mod_keys),
        review=RedisReviewQueue(client, mod_keys),
        mod_settings=RedisModerationSettings(client, mod_keys),
        words=RedisWordListStore(client, mod_keys),
        ping=ping,
        _close=close,
    )
