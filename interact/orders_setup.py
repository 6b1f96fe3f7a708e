"""Builds the order service and its payment provider from config."""

from __future__ import annotations

from commerce.orders import OrderService
from commerce.pay_client import WeChatPayClient
from commerce.payment import DevProvider, NoProvider, PaymentProvider, WeChatProvider
from commerce.platform_keys import PlatformKeyring
from commerce.wechatpay import MerchantConfig
from interact.config import Config
from interact.engine import Engine


def platform_keyring(config: Config) -> PlatformKeyring:
    """WeChat Pay's keys: the public key file and/or the keys directory (certificates and
    ``PUB_KEY_ID_….pem``), re-read on an unknown serial (commerce.platform_keys)."""
    return PlatformKeyring(
        public_key_file=config.wechatpay_platform_public_key_file or None,
        public_key_id=config.wechatpay_platform_serial or None,
        keys_dir=config.wechatpay_platform_keys_dir or None,
        reload_interval=config.wechatpay_keys_reload_interval,
    )


def merchant_config(config: Config) -> MerchantConfig:
    return MerchantConfig.load(
        mchid=config.wechatpay_mchid,
        appid=config.wechatpay_appid or config.wechat_appid,
        serial_no=config.wechatpay_serial,
        notify_url=config.wechatpay_notify_url,
        private_key_file=config.wechatpay_private_key_file,
        apiv3_key=config.wechatpay_apiv3_key or None,
        apiv3_key_file=config.wechatpay_apiv3_key_file or None,
        platform_keys=platform_keyring(config),
    )


def build_orders(config: Config, engine: Engine) -> OrderService:
    merchant = None
    provider: PaymentProvider = DevProvider() if config.payment == "dev" else NoProvider()
    if config.payment == "wechat":
        merchant = merchant_config(config)
        provider = WeChatProvider(WeChatPayClient(merchant, config.wechatpay_base_url))
    return OrderService(
        store=engine.sales,
        broker=engine.broker,
        provider=provider,
        nonces=engine.nonces,
        merchant=merchant,
    )


async def close_orders(orders: OrderService) -> None:
    if isinstance(orders.provider, WeChatProvider):
        await orders.provider.client.aclose()
