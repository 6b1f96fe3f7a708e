"""The Engine: one bundle of store backends for a deployment, built from config here only.

Three kinds: ``memory`` (one process), ``redis`` (``redis://…``: one Redis, any number of
processes) and ``redis-cluster`` (``redis+cluster://host:port,host:port,…``: Redis
Cluster, redis-py's cluster client, hot scripts routed per slot, sharded pub/sub). The
stores are the same on both Redis kinds: every multi-key script touches one slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from commerce.ledger import Ledger
from commerce.lottery_store import LotteryStore
from commerce.nonce_store import NonceStore
from commerce.redpacket_store import RedPacketStore
from commerce.sale_store import SaleStore
from moderation.moderation_log import ModerationLog
from moderation.mute_store import MuteStore
from moderation.rate_limiter import RateLimiter
from moderation.report_store import ReportStore
from moderation.review_queue import ReviewQueue
from moderation.room_settings import ModerationSettings
from moderation.word_store import WordListStore
from rooms.alert_store import AlertStore
from rooms.audience import AudienceStore
from rooms.broker import Broker
from rooms.danmaku_log import DanmakuLog
from rooms.presence import Presence
from rooms.retention import KeyGroup, RetentionPolicy, RoomKeySets, forget_room
from rooms.room_store import RoomStore
from rooms.stats import RoomStats

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster

    from interact.floor.redis_pipe import AnyRedis, Pipe

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
# Commands in flight per process on the cluster client (pipelined hot scripts aside), and
# connections per node: redis-py's cluster pool raises past its size instead of waiting,
# so callers wait on the gate below it.
CLUSTER_IN_FLIGHT = 64
CLUSTER_NODE_CONNECTIONS = 128


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
    reports: ReportStore
    mod_settings: ModerationSettings
    words: WordListStore
    audience: AudienceStore
    alerts: AlertStore
    ping: Callable[[], Awaitable[bool]] = field(default=_always_ready)
    # Memory engine: the in-process stores whose per-room state goes with a room's hot
    # retention (rooms.retention.forget_room); other packages' memory stores join it.
    hot_stores: list[object] = field(default_factory=list)
    _close: Callable[[], Awaitable[None]] = field(default=_nothing)

    async def start(self) -> None:
        await self.broker.start()

    async def close(self) -> None:
        await self.broker.close()
        await self._close()


def memory_engine(
    history_size: int,
    *,
    journal: bool = False,
    retention: RetentionPolicy | None = None,
    clock: Callable[[], int] | None = None,
) -> Engine:
    from commerce.ledger_memory import MemoryLedger
    from commerce.lottery_store_memory import MemoryLotteryStore
    from commerce.nonce_store import MemoryNonceStore
    from commerce.redpacket_store_memory import MemoryRedPacketStore
    from commerce.sale_store_memory import MemorySaleStore
    from moderation.moderation_log_memory import MemoryModerationLog
    from moderation.mute_store_memory import MemoryMuteStore
    from moderation.rate_limiter_memory import MemoryRateLimiter
    from moderation.report_store_memory import MemoryReportStore
    from moderation.review_queue_memory import MemoryReviewQueue
    from moderation.room_settings_memory import MemoryModerationSettings
    from moderation.word_store import MemoryWordListStore
    from rooms.alert_store_memory import MemoryAlertStore
    from rooms.audience_memory import MemoryAudience
    from rooms.broker_memory import MemoryBroker
    from rooms.danmaku_log_memory import MemoryDanmakuLog
    from rooms.presence_memory import MemoryPresence
    from rooms.room_store_memory import MemoryRoomStore
    from rooms.stats_memory import MemoryRoomStats

    broker = MemoryBroker()
    # One ledger for both stores: a room's money events form one log.
    ledger = MemoryLedger()
    # room_started / room_ended go to the ledger in the transition's step (webhooks).
    review = MemoryReviewQueue()
    sales = MemorySaleStore(ledger)
    # The per-room state retention forgets (rooms.retention); filled in below.
    hot: list[object] = []

    packets = MemoryRedPacketStore(ledger)
    lotteries = MemoryLotteryStore(ledger)
    now_ms = clock if clock is not None else (lambda: int(time.time() * 1000))

    # Called from the room store's due-time queue (rooms.retention), as the Redis end
    # script's classes: goods lotteries go with the hot state, cash and coupon prizes,
    # packets and sales with the money; room coupons once their validity has ended.
    def forget_hot(room_id: str) -> None:
        forget_room(hot, room_id)
        lotteries.forget_room(room_id, money=False)
        sales.coupons.forget_room(room_id, now_ms())

    def forget_money(room_id: str) -> None:
        forget_room([ledger], room_id)
        sales.forget_room(room_id)
        packets.forget_room(room_id)
        lotteries.forget_room(room_id, money=True)
        sales.coupons.forget_room(room_id, now_ms())

    rooms = MemoryRoomStore(
        *([clock] if clock is not None else []),
        ledger=ledger.append_now,
        retention=retention,
        forget_hot=forget_hot,
        forget_money=forget_money,
    )
    engine = Engine(
        kind="memory",
        broker=broker,
        rooms=rooms,
        danmaku=MemoryDanmakuLog(rooms, broker, history_size, journal=journal),
        presence=MemoryPresence(),
        stats=MemoryRoomStats(),
        packets=packets,
        lotteries=lotteries,
        ledger=ledger,
        sales=sales,
        nonces=MemoryNonceStore(),
        limiter=MemoryRateLimiter(),
        mutes=MemoryMuteStore(),
        modlog=MemoryModerationLog(),
        review=review,
        reports=MemoryReportStore(review),
        mod_settings=MemoryModerationSettings(),
        words=MemoryWordListStore(),
        audience=MemoryAudience(),
        alerts=MemoryAlertStore(),
        hot_stores=hot,
    )
    # Audience and alerts keep their own retention (analytics_retention).
    hot += [engine.danmaku, engine.presence, engine.stats, engine.mutes, engine.modlog,
            review, engine.reports, engine.mod_settings]  # fmt: skip
    return engine


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> dict[str, Any]:
    """``redis+cluster://[user:password@]host:port,host:port,…[/]`` (``rediss+cluster``
    for TLS) as ``startup`` [(host, port)] plus client options; ValueError when malformed.

    Any one reachable node is enough to find the others; list several so that start-up
    does not depend on one node.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL (redis+cluster://host:port,…): {url!r}")
    if "?" in rest or "#" in rest:
        raise ValueError("a redis+cluster:// URL takes no query options")
    userinfo, at, hostlist = rest.rpartition("@")
    if not at:
        userinfo, hostlist = "", rest
    hostlist, _, path = hostlist.partition("/")
    if path not in ("", "0"):
        raise ValueError("Redis Cluster has database 0 only")
    startup: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, colon, port = item.strip().rpartition(":")
        host = host.strip("[]")  # [::1]:7000
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad node {item!r} in the Redis Cluster URL (host:port)")
        startup.append((host, int(port)))
    username, _, password = userinfo.partition(":") if ":" in userinfo else ("", "", userinfo)
    return {
        "startup": startup,
        "username": unquote(username) or None,
        "password": unquote(password) or None,
        "ssl": scheme.lower() == "rediss+cluster",
    }


def connect_cluster(url: str) -> RedisCluster:
    """redis-py's cluster client for a ``redis+cluster://`` URL (not connected yet: it
    learns the slot map on first use, or ``await client.initialize()``)."""

    from redis.asyncio.cluster import ClusterNode, RedisCluster

    class GatedCluster(RedisCluster):
        """Past ``CLUSTER_IN_FLIGHT`` commands, the next waits for one to finish (as the
        single-Redis blocking pool does) instead of failing with MaxConnectionsError."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._gate = asyncio.Semaphore(CLUSTER_IN_FLIGHT)

        async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            if self._initialize:
                # Learn the topology before the first burst: redis-py 8.1 starts commands
                # while it initializes lazily, then disconnects the start-up nodes' pools
                # under them ("NoneType has no attribute writelines" mid-handshake).
                await self.initialize()
            async with self._gate:
                return await super().execute_command(*args, **kwargs)

    opts = parse_cluster_url(url)
    return GatedCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in opts["startup"]],
        username=opts["username"],
        password=opts["password"],
        ssl=opts["ssl"],
        decode_responses=False,
        max_connections=CLUSTER_NODE_CONNECTIONS,
    )


def connect_redis(url: str) -> tuple[AnyRedis, Pipe | None]:
    """A redis-py client and the pipelined connection its hot scripts use: a cluster
    client and a per-slot pipe for a ``redis+cluster://`` URL."""
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from interact.floor.redis_pipe import attach_pipe

    if is_cluster_url(url):
        cluster = connect_cluster(url)
        return cluster, attach_pipe(cluster)

    # redis-py's default pool raises MaxConnectionsError past 100 commands in flight; a
    # blocking pool makes a burst wait for a connection instead (a ?max_connections=
    # in the URL still overrides the size).
    # One immediate retry on a broken connection: after Redis restarts, each pooled
    # connection it closed fails its next command, which would otherwise be a 503. The
    # price, only when a reply is lost in a crash: the command runs again. Money steps
    # check state first (a second confirm is a duplicate, a second create of the same id
    # a conflict) and the hot ones go over the pipe, which never retries; a like batch
    # may be counted twice.
    pool = redis.BlockingConnectionPool.from_url(
        url, decode_responses=False, max_connections=64, timeout=20,
        retry=Retry(NoBackoff(), 1),
    )  # fmt: skip
    client = redis.Redis.from_pool(pool)
    return client, attach_pipe(client)


def room_key_sets(prefix: str) -> Callable[[str], RoomKeySets]:
    """The fixed keys of a room by retention class (``rooms.retention``), from every
    package's layout, and the groups of keys named by their members. Rate limits and
    refusals carry TTLs of their own; what is kept is listed in docs/archive.md
    section 11."""
    from archive.keys import ArchiveKeys
    from commerce.keys import CommerceKeys
    from growth.keys import GrowthKeys
    from moderation.keys import ModerationKeys
    from rooms.keys import RoomKeys

    rk, ck, mk = RoomKeys(prefix), CommerceKeys(prefix), ModerationKeys(prefix)
    gk, ak = GrowthKeys(prefix), ArchiveKeys(prefix)

    def sets(room_id: str) -> RoomKeySets:
        r = room_id
        hot = [rk.dm_meta(r), rk.dm_history(r), rk.dm_journal(r), rk.online(r), rk.stats(r),
               rk.viewers(r), rk.participants(r),
               mk.mutes(r), mk.mute_info(r), mk.log(r), mk.review(r), mk.reports(r),
               mk.settings(r), mk.verdicts(r),
               gk.tokens(r), gk.tree(r), gk.kids(r), gk.kids2(r), gk.rewards(r), gk.opened(r),
               gk.depths(r), gk.subscribers(r),
               ak.lease(r)]  # fmt: skip
        money = [ck.orders_in_room(r), ck.orders_due(r), ck.sales_in_room(r),
                 ck.packets_open(r), ck.lotteries_open(r), ck.lottery_winners(r),
                 ck.coupon_batches(r), ck.packets_all(r), ck.lotteries_all(r),
                 ck.coupons_in_room(r)]  # fmt: skip
        # Keys named by members of the room's keys (rooms.retention.KeyGroup): lotteries
        # by their prize, room coupons and batches until their validity ends, and the
        # per-user and per-target keys of growth and moderation with the hot keys.
        groups = [
            KeyGroup(ck.lotteries_all(r), "smembers", f"{prefix}lot:{{{r}}}:", [":entries"],
                     "prize"),
            KeyGroup(ck.coupon_batches(r), "lrange", f"{prefix}cpb:{{{r}}}:",
                     [":users", ":idem"], "ends_at"),
            KeyGroup(ck.coupons_in_room(r), "smembers", f"{prefix}cpn:{{{r}}}:", [], "ends_at"),
            KeyGroup(mk.reports(r), "hkeys:t:", mk.reporters(r, "")),
            KeyGroup(gk.tokens(r), "hvals", gk.user_tokens(r, "")),
            KeyGroup(gk.subscribers(r), "smembers", gk.credits(r, "")),
        ]  # fmt: skip
        return RoomKeySets(
            hot, money,
            orders_index=ck.orders_in_room(r), order_prefix=f"{prefix}order:{{{r}}}:",
            sales_index=ck.sales_in_room(r), sale_prefix=f"{prefix}sale:{{{r}}}:",
            sale_suffixes=[":holds", ":idem"],
            packets_index=ck.packets_all(r), packet_prefix=f"{prefix}rp:{{{r}}}:",
            packet_suffixes=[":shares", ":claims", ":order", ":eligible"],
            groups=groups,
        )  # fmt: skip

    return sets


def redis_engine(
    url: str,
    prefix: str,
    history_size: int,
    *,
    journal: bool = False,
    retention: RetentionPolicy | None = None,
) -> Engine:

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
    from moderation.report_store_redis import RedisReportStore
    from moderation.review_queue_redis import RedisReviewQueue
    from moderation.room_settings_redis import RedisModerationSettings
    from moderation.word_store_redis import RedisWordListStore
    from rooms.alert_store_redis import RedisAlertStore
    from rooms.audience_redis import RedisAudience
    from rooms.broker_redis import RedisBroker
    from rooms.broker_redis_cluster import RedisClusterBroker
    from rooms.danmaku_log_redis import RedisDanmakuLog
    from rooms.keys import RoomKeys
    from rooms.presence_redis import RedisPresence
    from rooms.room_store_redis import RedisRoomStore
    from rooms.stats_redis import RedisRoomStats

    client, pipe = connect_redis(url)
    cluster = is_cluster_url(url)
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

    # The stores take redis-py's Redis; RedisCluster has the same command methods.
    c: Any = client
    broker: Broker = RedisClusterBroker(c, keys) if cluster else RedisBroker(c, keys)
    return Engine(
        kind="redis-cluster" if cluster else "redis",
        broker=broker,
        rooms=RedisRoomStore(
            c, keys, ledger=money_keys.ledger, key_sets=room_key_sets(prefix), retention=retention
        ),
        danmaku=RedisDanmakuLog(c, keys, history_size, journal=journal),
        presence=RedisPresence(c, keys),
        stats=RedisRoomStats(c, keys),
        packets=RedisRedPacketStore(c, money_keys),
        lotteries=RedisLotteryStore(c, money_keys),
        ledger=RedisLedger(c, money_keys),
        sales=RedisSaleStore(c, money_keys),
        nonces=RedisNonceStore(c, prefix),
        limiter=RedisRateLimiter(c, mod_keys),
        mutes=RedisMuteStore(c, mod_keys),
        modlog=RedisModerationLog(c, mod_keys),
        review=RedisReviewQueue(c, mod_keys),
        reports=RedisReportStore(c, mod_keys),
        mod_settings=RedisModerationSettings(c, mod_keys),
        words=RedisWordListStore(c, mod_keys),
        audience=RedisAudience(c, prefix),
        alerts=RedisAlertStore(c, prefix),
        ping=ping,
        _close=close,
    )
