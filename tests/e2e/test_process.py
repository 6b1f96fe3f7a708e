"""Process behaviour: heartbeat timeout, graceful shutdown, refused settings, WeChat login."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.e2e.harness import Api, ServerProcess, connect, free_port
from tests.fakes.wechat import FakeWeChat

StartServer = Callable[..., ServerProcess]


async def test_silent_connection_is_closed_and_a_pinging_one_stays(
    servers: StartServer, session: aiohttp.ClientSession
) -> None:
    server = servers(env={"INTERACT_IDLE_TIMEOUT": "1"})
    op = Api(session, server.base, server.token("ops", "operator"))
    room = await op.live_room()
    silent, _ = await connect(session, server.base, room["id"], server.token("s"))
    chatty, _ = await connect(session, server.base, room["id"], server.token("c"))
    # A client that keeps alive with WebSocket ping frames instead of {"t":"ping"}.
    pinger, _ = await connect(session, server.base, room["id"], server.token("p"))
    started = time.monotonic()
    for _ in range(6):
        await chatty.send({"t": "ping"})
        await pinger.ws.ping(b"hb")
        await asyncio.sleep(0.4)
    assert await silent.closed(timeout=5) == 4008
    assert 0.9 < time.monotonic() - started < 4
    for alive in (chatty, pinger):
        assert alive.close_code is None and not alive.ws.closed
        await alive.close()


async def test_sigterm_closes_viewers_with_1001_and_exits_cleanly(
    servers: StartServer, session: aiohttp.ClientSession
) -> None:
    server = servers()
    op = Api(session, server.base, server.token("ops", "operator"))
    room = await op.live_room()
    viewers = [
        (await connect(session, server.base, room["id"], server.token(f"v{i}")))[0]
        for i in range(5)
    ]
    await viewers[0].send({"t": "dm", "text": "before shutdown", "ref": 1})
    seq = (await viewers[0].ack(1))["seq"]
    server.proc.send_signal(signal.SIGTERM)
    for v in viewers:
        assert (await v.next("dm"))["seq"] == seq  # flushed before closing
        assert await v.closed() == 1001
    assert await asyncio.to_thread(server.proc.wait, 10) == 0
    assert '"stopped"' in server.log()


def test_memory_engine_refuses_several_workers(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "interact", "serve", "--workers", "2", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "memory engine" in result.stderr and "--redis" in result.stderr


def test_serve_help_documents_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "interact", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    for flag in (
        "--redis",
        "--workers",
        "--tick-ms",
        "--history-size",
        "INTERACT_SECRET",
        "--config",
    ):
        assert flag in result.stdout


def test_token_command_prints_a_verifiable_token() -> None:
    from interact import tokens
    from tests.e2e.harness import SECRET

    result = subprocess.run(
        [sys.executable, "-m", "interact", "token", "--role", "operator", "--uid", "ops"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "INTERACT_SECRET": SECRET},
    )
    assert result.returncode == 0, result.stderr
    user = tokens.verify(SECRET, result.stdout.strip())
    assert (user.uid, user.role) == ("ops", tokens.Role.OPERATOR)


def test_toml_file_configures_the_server(servers: StartServer, tmp_path: Path) -> None:
    config = tmp_path / "interact.toml"
    config.write_text('[interact]\nmax_text_len = 5\nlog_format = "text"\n')
    server = servers(env={"INTERACT_CONFIG": str(config)})

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            op = Api(session, server.base, server.token("ops", "operator"))
            room = await op.live_room()
            v, _ = await connect(session, server.base, room["id"], server.token("v"))
            await v.send({"t": "dm", "text": "123456", "ref": 1})
            assert (await v.ack(1))["code"] == "too_long"
            await v.close()

    asyncio.run(scenario())
    assert '"stopped"' not in server.log() and "INFO interact: serving" in server.log()


async def test_wechat_login_through_a_fake_wechat(
    servers: StartServer, session: aiohttp.ClientSession
) -> None:
    async with FakeWeChat() as fake:
        server = servers(
            env={
                "INTERACT_WECHAT_APPID": fake.appid,
                "INTERACT_WECHAT_SECRET": fake.secret,
                "INTERACT_WECHAT_API_BASE": fake.base_url,
            }
        )
        api = Api(session, server.base, None)
        code = fake.issue_code(openid="o-123", unionid="u-9")
        status, body = await api.call("POST", "/api/v1/auth/wechat", {"code": code, "nick": "阿强"})
        assert status == 200, body
        assert body["user"] == {"uid": "o-123", "nick": "阿强", "role": "viewer"}
        assert body["unionid"] == "u-9" and "session_key" not in str(body)
        status, body = await api.call("POST", "/api/v1/auth/wechat", {"code": code})
        assert status == 401 and body["error"]["code"] == "unauthorized"
        status, body = await api.call("POST", "/api/v1/auth/wechat", {"code": "never-issued"})
        assert status == 401
        fake.rate_limited = True
        status, body = await api.call("POST", "/api/v1/auth/wechat", {"code": fake.issue_code()})
        assert status == 429 and body["error"]["code"] == "rate_limited"
        fake.rate_limited = False
        status, body = await api.call("POST", "/api/v1/auth/wechat", {"code": 12})
        assert status == 400
        # WeChat credentials turn dev login off.
        status, body = await api.call("POST", "/api/v1/auth/dev", {"uid": "x"})
        assert status == 403
        assert fake.calls["/cgi-bin/token"] == 1
        assert fake.secret not in server.log()


def test_a_broken_words_file_stops_serve_with_a_clear_message(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("加微信\texplode\tcontact\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "interact",
            "serve",
            "--words-file",
            str(words),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "words_file" in result.stderr and "Traceback" not in result.stderr
