"""Builds the growth services (invites, pre-live reminders) from config and engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from commerce.coupon_service import CouponService
from commerce.sale_models import Order
from growth.alerts import Alerts
from growth.invites import InviteStore
from growth.reminders import ReminderStore
from growth.rewards import InviteRewards, IssueReward
from growth.service import InviteService, ReminderService, ReminderSettings, RoomInfo, RoomOf
from growth.subscribe_sender import SubscribeSender
from interact.config import Config
from interact.engine import Engine, connect_redis
from rooms.models import valid_room_id


@dataclass(slots=True)
class Growth:
    """What the application holds of growth: ``alerts`` is the hook others subscribe to."""

    invites: InviteService
    reminders: ReminderService
    alerts: Alerts
    close: Callable[[], Awaitable[None]]
    # Coupons live in commerce (a reserve locks them in its own step); they are wired
    # here because growth hands them out (invite rewards) and serves a user's wallet.
    coupons: CouponService
    rewards: InviteRewards

    async def invite_facts(self, room_id: str, uid: str) -> tuple[bool, int]:
        """``CommerceService.invite_facts``: the lucky-bag conditions ``invited`` and
        ``invites ≥ N``, from the attribution records."""
        store = self.invites.store
        invited = await store.inviter_of(room_id, uid) is not None
        return invited, await store.invited_by(room_id, uid)

    async def order_paid(self, order: Order) -> None:
        """``OrderService.on_paid``: an invitee's payment may earn their inviter a reward."""
        paid_at = order.paid_at if order.paid_at is not None else order.created_at
        await self.rewards.paid(order.room_id, order.uid, paid_at)


def _room_of(engine: Engine) -> RoomOf:
    async def room_of(room_id: str) -> RoomInfo | None:
        room = await engine.rooms.get(room_id) if valid_room_id(room_id) else None
        if room is None:
            return None
        return RoomInfo(room.status.value, room.scheduled_at, room.title)

    return room_of


def _issue_reward(coupons: CouponService) -> IssueReward:
    async def issue(batch: str, uid: str, key: str, room: str, reason: str) -> str:
        result = await coupons.issue(batch, uid, reason=reason, idem=key, ledger_room=room)
        return result.outcome.value

    return issue


def templates_of(config: Config) -> tuple[str, ...]:
    return tuple(t.strip() for t in config.reminder_templates.split(",") if t.strip())


def build_growth(config: Config, engine: Engine) -> Growth:
    invite_store: InviteStore
    reminder_store: ReminderStore
    client: Any = None
    pipe: Any = None
    if config.redis_url:
        from growth.invite_store_redis import RedisInviteStore
        from growth.keys import GrowthKeys
        from growth.reminder_store_redis import RedisReminderStore

        # Its own pool: a reminder round never holds a connection of the comment path.
        client, pipe = connect_redis(config.redis_url)
        keys = GrowthKeys(config.redis_prefix)
        invite_store = RedisInviteStore(client, keys)
        reminder_store = RedisReminderStore(client, keys)
    else:
        from growth.invite_store_memory import MemoryInviteStore
        from growth.reminder_store_memory import MemoryReminderStore

        invite_store = MemoryInviteStore()
        reminder_store = MemoryReminderStore()
        # Share tokens, invites and credits go with the room's hot state (rooms.retention).
        engine.hot_stores.extend([invite_store, reminder_store])
    coupons = CouponService(engine.sales.coupons)
    rewards = InviteRewards(invite_store, _issue_reward(coupons))
    invites = InviteService(
        invite_store,
        ledger=engine.ledger.read,
        tokens_per_user=config.share_tokens_per_room,
        rewards=rewards,
    )
    templates = templates_of(config)
    sender = None
    if templates and config.wechat_appid and config.wechat_secret:
        sender = SubscribeSender(
            config.wechat_appid,
            config.wechat_secret,
            config.wechat_api_base,
            miniprogram_state=config.reminder_state,
            lang=config.reminder_lang,
        )
    title_field, time_field = (f.strip() for f in config.reminder_fields.split(","))
    alerts = Alerts()
    reminders = ReminderService(
        reminder_store,
        _room_of(engine),
        ReminderSettings(
            templates=templates,
            lead_ms=int(config.reminder_lead * 1000),
            page=config.reminder_page,
            title_field=title_field,
            time_field=time_field,
            per_s=config.reminder_per_s,
            lease_ms=int(config.reminder_lease * 1000),
            max_credits=config.reminder_max_credits,
        ),
        sender=sender,
        alerts=alerts,
    )

    async def close() -> None:
        if sender is not None:
            await sender.close()
        if pipe is not None:
            await pipe.close()
        if client is not None:
            await client.aclose()

    return Growth(invites, reminders, alerts, close, coupons, rewards)
