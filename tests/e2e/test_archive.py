"""A room's archive and replay against real server processes (memory and Redis), and a
writer killed mid-write on Redis whose archive another process completes."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from archive.records import split_lines
from archive.render import seconds
from interact.engine import redis_engine
from tests.e2e.harness import Api, ServerProcess, connect
from tests.e2e.test_sales import make_sale, order

HISTORY = 8
COMMENTS = HISTORY * 3 + 2  # well past the history's cap


def archive_env(directory: Path, **more: str) -> dict[str, str]:
    return {
        "INTERACT_ARCHIVE_DIR": str(directory),
        "INTERACT_HISTORY_SIZE": str(HISTORY),
        "INTERACT_ARCHIVE_INTERVAL": "0.2",
        "INTERACT_ARCHIVE_LEASE": "1",
        **more,
    }


async def poll(check: Callable[[], Any], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def verify_cli(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interact", "verify-archive", str(path), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def room_with_everything(
    server: ServerProcess, session: aiohttp.ClientSession
) -> dict[str, Any]:
    """A live room with comments past the cap, a retraction, a red packet and a paid order;
    ended. Returns what the checks need."""
    op = Api(session, server.base, server.token("ops", "operator"))
    status, room = await op.call("POST", "/api/v1/rooms", {"title": "存档"})
    assert status == 201
    rid = room["id"]
    stream_start = int(time.time() * 1000) - 1_500  # the recording began a little earlier
    status, updated = await op.call(
        "PUT", f"/api/v1/rooms/{rid}/stream-start", {"stream_started_at": stream_start}
    )
    assert status == 200 and updated["stream_started_at"] == stream_start
    status, bad = await op.call(
        "PUT", f"/api/v1/rooms/{rid}/stream-start", {"stream_started_at": -1}
    )
    assert status == 400, bad
    assert (await op.call("POST", f"/api/v1/rooms/{rid}/start"))[0] == 200
    viewer, _ = await connect(session, server.base, rid, server.token("v1", nick="观众"))
    seqs = []
    for i in range(COMMENTS):
        await viewer.send({"t": "dm", "text": f"第{i}条 <b>&amp;", "ref": i})
        ack = await viewer.ack(i)
        assert ack["ok"], ack
        seqs.append(ack["seq"])
    await viewer.close()
    retracted = seqs[-1]
    assert (await op.call("DELETE", f"/api/v1/rooms/{rid}/messages/{retracted}"))[0] == 204
    status, packet = await op.call(
        "POST", f"/api/v1/rooms/{rid}/red-packets", {"total_fen": 100, "count": 2}
    )
    assert status == 201, packet
    sale = await make_sale(op, rid, stock=3)
    buyer = Api(session, server.base, server.token("buyer"))
    status, held = await order(buyer, sale["id"], "k1", 1)
    assert status == 201, held
    status, pay = await buyer.call("POST", f"/api/v1/orders/{held['id']}/pay")
    assert status == 200 and pay["provider"] == "dev", pay
    status, paid = await buyer.call("POST", pay["confirm_url"])
    assert status == 200 and paid["status"] == "paid"
    # Replay while live: from the journal, every comment but the retracted one.
    status, live = await op.call("GET", f"/api/v1/rooms/{rid}/replay?segment=0")
    assert status == 200 and live["source"] == "live", live
    assert [c["seq"] for c in live["comments"]] == seqs[:-1]
    status, early = await op.call("GET", f"/api/v1/rooms/{rid}/archive")
    assert status == 409, early  # not ended: no archive
    assert (await op.call("POST", f"/api/v1/rooms/{rid}/end"))[0] == 200
    return {"op": op, "rid": rid, "seqs": seqs, "retracted": retracted,
            "stream_start": stream_start, "packet": packet["id"], "order": held["id"]}  # fmt: skip


async def check_archive(
    server: ServerProcess, session: aiohttp.ClientSession, tmp_path: Path, made: dict[str, Any]
) -> None:
    op: Api = made["op"]
    rid = made["rid"]

    async def fetched() -> bytes | None:
        status, raw = await op.call("GET", f"/api/v1/rooms/{rid}/archive")
        assert status in (200, 409), raw
        return raw if status == 200 else None

    raw = await poll(fetched)
    path = tmp_path / f"{rid}.jsonl.gz"
    path.write_bytes(raw)
    data = gzip.decompress(raw)
    lines = split_lines(data)
    recs = [orjson.loads(line) for line in lines[:-1]]
    # The head in the ledger, and the CLI's verdict with it.
    status, ledger = await op.call("GET", f"/api/v1/rooms/{rid}/ledger?count=500")
    assert status == 200
    sealed = [e for e in ledger["events"] if e["type"] == "archive_sealed"]
    assert len(sealed) == 1 and sealed[0]["comments"] == str(COMMENTS)
    ok = verify_cli(path, "--head", sealed[0]["head"])
    assert ok.returncode == 0 and ok.stdout.strip().endswith("VERIFIED"), ok.stdout + ok.stderr
    assert f"head: {sealed[0]['head']}" in ok.stdout
    # Every comment, the retraction, the money.
    header = recs[0]
    assert header["origin"] == "stream_started_at" and header["origin_ms"] == made["stream_start"]
    dms = [r for r in recs if r["k"] == "dm"]
    assert [r["seq"] for r in dms] == made["seqs"]
    assert all(r["offset_ms"] == r["ts"] - made["stream_start"] for r in dms)
    assert dms[0]["text"] == "第0条 <b>&amp;" and dms[0]["nick"] == "观众"
    assert [r["seq"] for r in recs if r["k"] == "retract"] == [made["retracted"]]
    assert any(r["k"] == "mod" and r["event"].get("action") == "retract" for r in recs)
    types = [r["event"]["type"] for r in recs if r["k"] == "ledger"]
    assert {"rp_created", "order_reserved", "order_paid"} <= set(types)
    assert [r["packet"]["id"] for r in recs if r["k"] == "packet"] == [made["packet"]]
    orders = [r["order"] for r in recs if r["k"] == "order"]
    assert [(o["id"], o["status"]) for o in orders] == [(made["order"], "paid")]
    assert recs[-1]["k"] == "stats" and recs[-1]["stats"]["comments"] == COMMENTS
    # A tampered copy fails, and says where.
    changed = data.replace("第3条".encode(), "第4条".encode(), 1)
    bad = tmp_path / "tampered.jsonl.gz"
    bad.write_bytes(gzip.compress(changed))
    failed = verify_cli(bad)
    assert failed.returncode == 1 and "NOT VERIFIED" in failed.stdout
    assert "FAIL  chain: line" in failed.stdout
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    assert verify_cli(cut).returncode == 1
    assert verify_cli(tmp_path / "missing.gz").returncode == 2
    # The XML: every visible comment once, at its offset.
    status, xml = await op.call("GET", f"/api/v1/rooms/{rid}/archive.xml")
    assert status == 200
    root = ET.fromstring(xml)
    ds = root.findall("d")
    visible = [r for r in dms if r["seq"] != made["retracted"]]
    assert [int(d.attrib["p"].split(",")[7]) for d in ds] == [r["seq"] for r in visible]
    for d, rec in zip(ds, visible, strict=True):
        p = d.attrib["p"].split(",")
        assert p[0] == seconds(rec["offset_ms"]) and p[1] == "1" and p[3] == str(0xFFFFFF)
        assert p[4] == str(rec["ts"] // 1000) and p[6] != "v1" and len(p[6]) == 16
        assert d.text == rec["text"]
    # Replay after: from the archive, cacheable, bounded.
    status, seg = await op.call("GET", f"/api/v1/rooms/{rid}/replay?segment=0")
    assert status == 200 and seg["source"] == "archive" and seg["segments"] == 1
    assert [c["seq"] for c in seg["comments"]] == [r["seq"] for r in visible]
    assert [c["offset_ms"] for c in seg["comments"]] == [r["offset_ms"] for r in visible]
    headers = {"Authorization": f"Bearer {op.token}"}
    url = f"{server.base}/api/v1/rooms/{rid}/replay?segment=0"
    async with session.get(url, headers=headers) as r:
        etag = r.headers["ETag"]
        assert r.headers["Cache-Control"].startswith("private, max-age=")
    async with session.get(url, headers={**headers, "If-None-Match": etag}) as r:
        assert r.status == 304
    for query, want in (("segment=1", 404), ("segment=-1", 400), ("segment=x", 400), ("", 400)):
        status, err = await op.call("GET", f"/api/v1/rooms/{rid}/replay?{query}")
        assert status == want, (query, err)
    viewer = Api(session, server.base, server.token("v9"))
    assert (await viewer.call("GET", f"/api/v1/rooms/{rid}/archive"))[0] == 403
    assert (await viewer.call("GET", f"/api/v1/rooms/{rid}/replay?segment=0"))[0] == 200
    status, late = await op.call(
        "PUT", f"/api/v1/rooms/{rid}/stream-start", {"stream_started_at": 1}
    )
    assert status == 409, late


async def test_archive_on_the_memory_engine(
    servers: Callable[..., ServerProcess], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    server = servers(env=archive_env(tmp_path / "archive"))
    made = await room_with_everything(server, session)
    await check_archive(server, session, tmp_path, made)


async def archived_on_redis(
    servers: Callable[..., ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    **more: str,
) -> tuple[ServerProcess, dict[str, Any]]:
    """A server on Redis (dev payments, ``more`` settings) archiving to ``tmp_path/archive``,
    and ``room_with_everything`` on it, its archive checked."""
    env = archive_env(
        tmp_path / "archive",
        INTERACT_REDIS_URL=redis_url,
        INTERACT_REDIS_PREFIX=redis_prefix,
        INTERACT_PAY_PROVIDER="dev",
        **more,
    )
    server = servers(env=env)
    made = await room_with_everything(server, session)
    await check_archive(server, session, tmp_path, made)
    return server, made


async def test_archive_on_redis(
    servers: Callable[..., ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
) -> None:
    await archived_on_redis(servers, session, tmp_path, redis_url, redis_prefix)


async def test_a_writer_killed_mid_write_is_replaced(
    servers: Callable[..., ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
) -> None:
    directory = tmp_path / "archive"
    env = archive_env(
        directory,
        INTERACT_REDIS_URL=redis_url,
        INTERACT_REDIS_PREFIX=redis_prefix,
        INTERACT_ARCHIVE_PAGE="3",  # many small steps: a long write to kill
    )
    first = servers(env=env)
    op = Api(session, first.base, first.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    # Another process comments straight into the shared Redis, fast.
    engine = redis_engine(redis_url, redis_prefix, HISTORY, journal=True)
    await engine.start()
    n = 6_000
    try:
        for start in range(0, n, 500):
            await asyncio.gather(
                *(
                    engine.danmaku.append(rid, {"uid": f"u{i}", "nick": "n", "role": "viewer",
                                                "text": f"c{i}", "color": 0xFFFFFF,
                                                "mode": "scroll", "ts": int(time.time() * 1000)})
                    for i in range(start, start + 500)
                )
            )  # fmt: skip
    finally:
        await engine.close()
    assert (await op.call("POST", f"/api/v1/rooms/{rid}/end"))[0] == 200
    final = directory / f"{rid}.jsonl.gz"
    deadline = time.monotonic() + 15
    parts: list[str] = []
    while not parts:
        assert time.monotonic() < deadline and not final.exists(), "no write in progress seen"
        parts = [p for p in os.listdir(directory) if p.endswith(".part")]
        await asyncio.sleep(0.002)
    first.stop(signal.SIGKILL)
    assert not final.exists()  # killed mid-write: nothing visible
    assert parts[0] in os.listdir(directory)
    second = servers(env=env)
    op2 = Api(session, second.base, second.token("ops", "operator"))

    async def fetched() -> bytes | None:
        status, raw = await op2.call("GET", f"/api/v1/rooms/{rid}/archive")
        assert status in (200, 409), raw
        return raw if status == 200 else None

    raw = await poll(fetched, within=30)
    path = tmp_path / "done.jsonl.gz"
    path.write_bytes(raw)
    ok = verify_cli(path)
    assert ok.returncode == 0, ok.stdout
    assert f"dm {n}" in ok.stdout
    assert [p for p in os.listdir(directory) if p.endswith(".part")] == []  # cleaned up
