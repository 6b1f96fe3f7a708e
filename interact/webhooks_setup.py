"""Builds the WebhookService of a deployment from its config and engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from interact.config import Config
from interact.engine import Engine, connect_redis, is_cluster_url
from webhooks.feed import LedgerFeed
from webhooks.service import WebhookService
from webhooks.store import WebhookStore

# Rooms followed for webhook events, newest first (the ledger of an older room is still
# read as long as it is among these).
MAX_ROOMS_FOLLOWED = 10_000


def _room_lister(engine: Engine) -> Callable[[], Awaitable[list[str]]]:
    async def rooms() -> list[str]:
        out: list[str] = []
        while len(out) < MAX_ROOMS_FOLLOWED:
            page = await engine.rooms.list(None, 200, len(out))
            out.extend(room.id for room in page)
            if len(page) < 200:
                break
        return out

    return rooms


def _lottery_proof(engine: Engine) -> Callable[[str], Awaitable[dict[str, Any] | None]]:
    async def proof(lottery_id: str) -> dict[str, Any] | None:
        view = await engine.lotteries.get(lottery_id) if lottery_id else None
        if view is None or view.proof is None:
            return None
        return {"commit": view.lottery.commit, **view.proof}

    return proof


def build_webhooks(
    config: Config, engine: Engine, node_id: str
) -> tuple[WebhookService, Callable[[], Awaitable[None]]]:
    """The service and what closes its connections (its own Redis pool, so that slow
    deliveries never hold a connection of the money path)."""
    from interact.webhooks_sender import Sender

    sender = Sender(
        allow_http=config.webhook_http_allowed,
        allow_private=config.webhook_allow_private,
        timeout=config.webhook_timeout,
        per_endpoint=config.webhook_per_endpoint,
    )
    store: WebhookStore
    feed: LedgerFeed
    client: Any = None
    pipe: Any = None
    if config.redis_url:
        from commerce.keys import CommerceKeys
        from webhooks.feed_redis import RedisLedgerFeed
        from webhooks.keys import WebhookKeys
        from webhooks.store_redis import RedisWebhookStore

        client, pipe = connect_redis(config.redis_url)
        store = RedisWebhookStore(client, WebhookKeys(config.redis_prefix))
        feed = RedisLedgerFeed(
            client,
            CommerceKeys(config.redis_prefix).ledger,
            node_id,
            cluster=is_cluster_url(config.redis_url),
            claim_idle_ms=int(config.webhook_lease * 1000),
            claim_every_s=min(5.0, config.webhook_lease / 2),
        )
    else:
        from webhooks.feed_memory import MemoryLedgerFeed
        from webhooks.store_memory import MemoryWebhookStore

        store = MemoryWebhookStore()
        feed = MemoryLedgerFeed(engine.ledger.read)
    service = WebhookService(
        store=store,
        feed=feed,
        sender=sender,
        rooms=_room_lister(engine),
        concurrency=config.webhook_concurrency,
        per_endpoint=config.webhook_per_endpoint,
        lease_ms=int(config.webhook_lease * 1000),
        rotation_overlap_ms=int(config.webhook_rotation_overlap * 1000),
        max_endpoints=config.webhook_max_endpoints,
        refund_settles_at_once=config.payment == "dev",
        lottery_proof=_lottery_proof(engine),
    )

    async def close() -> None:
        await service.close()
        if pipe is not None:
            await pipe.close()
        if client is not None:
            await client.aclose()

    return service, close
