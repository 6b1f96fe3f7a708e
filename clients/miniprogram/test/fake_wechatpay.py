"""tests/fakes/wechatpay.py as a process for the SDK's Node tests.

Prints one JSON line: ``env`` (the ``INTERACT_WECHATPAY_*`` settings that match the fake,
all but the notify URL, which names the server) and ``control``, a URL where
``POST /pay`` with ``{"package": "prepay_id=…"}`` is the user paying that prepay order at
WeChat (the fake then sends its signed notification to the server). The server's notify
URL is ``<control>/notify``, relayed to the URL last ``POST``ed to ``<control>/target`` as
``{"url": …}``. Runs until stdin closes or it is terminated.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.wechatpay import FakeWeChatPay


async def serve(folder: Path) -> None:
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with FakeWeChatPay(merchant_key.public_key()) as fake:
        key_file = folder / "merchant.pem"
        key_file.write_bytes(
            merchant_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        platform_file = folder / "platform.pem"
        platform_file.write_bytes(fake.platform_public_key_pem)
        apiv3_file = folder / "apiv3.key"
        apiv3_file.write_bytes(fake.apiv3_key)

        async def pay(request: web.Request) -> web.Response:
            data = await request.json()
            prepay_id = str(data.get("package", "")).removeprefix("prepay_id=")
            for no, trade in fake.trades.items():
                if trade.prepay_id == prepay_id:
                    await fake.pay(no)
                    return web.json_response({"out_trade_no": no})
            return web.json_response({"error": "no such prepay_id"}, status=404)

        target: dict[str, str] = {}

        async def set_target(request: web.Request) -> web.Response:
            target["url"] = str((await request.json())["url"])
            return web.json_response({})

        async def relay(request: web.Request) -> web.Response:
            # The server's port is chosen after this fake starts: its notify URL points
            # here, and the notification goes on as it came (body and signature headers).
            body = await request.read()
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() not in ("host", "content-length")
            }
            async with (
                aiohttp.ClientSession() as session,
                session.post(target["url"], data=body, headers=headers) as answer,
            ):
                return web.Response(status=answer.status, body=await answer.read())

        control = web.Application()
        control.router.add_post("/pay", pay)
        control.router.add_post("/target", set_target)
        control.router.add_post("/notify", relay)
        runner = web.AppRunner(control, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        env = {
            "INTERACT_PAY_PROVIDER": "wechat",
            "INTERACT_WECHATPAY_MCHID": fake.mchid,
            "INTERACT_WECHATPAY_APPID": fake.appid,
            "INTERACT_WECHATPAY_SERIAL": fake.merchant_serial,
            "INTERACT_WECHATPAY_PRIVATE_KEY_FILE": str(key_file),
            "INTERACT_WECHATPAY_APIV3_KEY_FILE": str(apiv3_file),
            "INTERACT_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": str(platform_file),
            "INTERACT_WECHATPAY_PLATFORM_SERIAL": fake.platform_serial,
            "INTERACT_WECHATPAY_BASE_URL": fake.base_url or "",
        }
        print(json.dumps({"env": env, "control": f"http://{host}:{port}"}), flush=True)
        try:
            # The parent closing our stdin (or exiting) is the signal to stop.
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        finally:
            await runner.cleanup()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fake-wechatpay-") as folder:
        try:
            asyncio.run(serve(Path(folder)))
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
