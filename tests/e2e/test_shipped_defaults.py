"""Moderation as shipped, through a real WebSocket, on both engines.

Every other end-to-end test starts its servers with pacing off (tests/e2e/harness.py):
these start them with nothing but the engine set, so the defaults a deployment gets
(docs/moderation.md: 3 comments at once then 1 a second, repeats within 5 s, the default
word list) are the ones checked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import Api, ServerProcess, Viewer, connect

StartServer = Callable[..., ServerProcess]

BURST = 3  # rate_burst as shipped
RATE_PER_S = 1.0  # rate_per_s as shipped
REPEAT_WINDOW_MS = 5000  # repeat_window as shipped
SENT_AT_ONCE = 8


@pytest.fixture(params=["memory", "redis"])
def server(
    request: pytest.FixtureRequest, servers: StartServer, redis_prefix: str
) -> ServerProcess:
    env: dict[str, str] = {}
    if request.param == "redis":
        env = {
            "INTERACT_REDIS_URL": request.getfixturevalue("redis_url"),
            "INTERACT_REDIS_PREFIX": redis_prefix,
        }
    return servers(env=env, shipped_defaults=True)


async def acks(viewer: Viewer, refs: list[Any]) -> dict[Any, dict[str, Any]]:
    """The acks of ``refs``, in whatever order they come."""
    got: dict[Any, dict[str, Any]] = {}
    while len(got) < len(refs):
        ack = await viewer.next("ack", timeout=10)
        if ack.get("ref") in refs:
            got[ack["ref"]] = ack
    return got


async def comments_until(watcher: Viewer, marker: str) -> list[str]:
    """Texts of the comments the watcher is shown, up to the operator's ``marker``."""
    texts: list[str] = []
    while (dm := await watcher.next("dm", timeout=10))["text"] != marker:
        texts.append(dm["text"])
    return texts


def verdicts(metrics: bytes, action: str, category: str) -> float:
    labels = f'action="{action}",category="{category}"'
    line = rf"^interact_moderation_verdicts_total\{{{labels}\}} (\S+)$"
    match = re.search(line.encode(), metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_pacing_repeats_and_the_word_filter_as_shipped(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    op = Api(session, server.base, server.token("ops", "operator"))
    rid = (await op.live_room("defaults"))["id"]
    watcher, _ = await connect(session, server.base, rid, server.token("watcher"))
    fast, _ = await connect(session, server.base, rid, server.token("fast"))
    again, _ = await connect(session, server.base, rid, server.token("again"))
    rude, _ = await connect(session, server.base, rid, server.token("rude"))

    # Per-user rate: a burst of 3, then 1 a second. Everything is sent before any ack is
    # read; however slow the machine, only a few seconds' worth more can pass.
    loop = asyncio.get_running_loop()
    started = loop.time()
    refs = list(range(SENT_AT_ONCE))
    for ref in refs:
        await fast.send({"t": "dm", "text": f"第{ref}条", "ref": ref})
    answered = await acks(fast, refs)
    elapsed = loop.time() - started
    accepted = [ref for ref in refs if answered[ref]["ok"]]
    refused = [answered[ref] for ref in refs if not answered[ref]["ok"]]
    assert accepted[:BURST] == [0, 1, 2], answered
    assert len(accepted) <= BURST + int(elapsed * RATE_PER_S) + 1, (accepted, elapsed)
    assert refused, f"{SENT_AT_ONCE} comments in {elapsed:.2f}s all accepted"
    for ack in refused:
        assert (ack["code"], ack["rule"]) == ("rate_limited", "rate"), ack
        assert 0 < ack["retry_after_ms"] <= 1000 / RATE_PER_S, ack

    # Repeats: the same text again (after normalisation) within the window is refused.
    await again.send({"t": "dm", "text": "主播好", "ref": "first"})
    assert (await again.ack("first"))["ok"] is True
    await again.send({"t": "dm", "text": "主播 好！", "ref": "repeat"})
    repeat = await again.ack("repeat")
    assert (repeat["ok"], repeat["code"], repeat["rule"]) == (False, "rate_limited", "repeat")
    assert 0 < repeat["retry_after_ms"] <= REPEAT_WINDOW_MS, repeat

    # The default word list: a contact handle is refused, with the code clients match on.
    await rude.send({"t": "dm", "text": "加微信abc123", "ref": "ad"})
    ad = await rude.ack("ad")
    assert (ad["ok"], ad["code"]) == (False, "rejected"), ad

    # Viewers were shown exactly the accepted comments, in order, and nothing refused.
    status, _ = await op.call("POST", f"/api/v1/rooms/{rid}/messages", {"text": "marker"})
    assert status == 201
    shown = await comments_until(watcher, "marker")
    assert shown == [f"第{ref}条" for ref in accepted] + ["主播好"]

    _, metrics = await op.call("GET", "/metrics")
    assert verdicts(metrics, "rate_limited", "rate") == len(refused)
    assert verdicts(metrics, "rate_limited", "repeat") == 1
    for viewer in (watcher, fast, again, rude):
        await viewer.close()
