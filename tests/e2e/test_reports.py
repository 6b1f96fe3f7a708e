"""Viewer reports against real server processes: over the WebSocket (both upgrade paths)
and REST, the automatic hold, the overdue alert to the staff, resolution once with the
reporter told, and the reports in the sealed archive. On Redis the reporter and the
operator are on two processes."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest

from archive.records import split_lines, verify
from tests.e2e.harness import Api, ServerProcess, connect
from tests.e2e.test_archive import poll

StartServer = Callable[..., ServerProcess]


@pytest.mark.parametrize(
    ("engine", "raw"), [("memory", "true"), ("memory", "false"), ("redis", "true")]
)
async def test_a_report_from_filing_to_the_archive(
    servers: StartServer, session: aiohttp.ClientSession, engine: str, raw: str,
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:  # fmt: skip
    env = {
        "INTERACT_RAW_UPGRADE": raw,
        "INTERACT_ARCHIVE_DIR": str(tmp_path / "archive"),
        "INTERACT_ARCHIVE_INTERVAL": "0.2",
        "INTERACT_REPORT_HOLD_AFTER": "2",
        "INTERACT_REPORT_RESPONSE": "1",  # a one-second response target: the alert comes
        "INTERACT_SWEEP_INTERVAL": "0.1",
    }
    if engine == "redis":
        env["INTERACT_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["INTERACT_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    first = servers(env=env)
    # The reporters' process; on Redis a second one, so the outcome crosses the broker.
    second = servers(env=env) if engine == "redis" else first
    op = Api(session, first.base, first.token("ops", "operator"))
    rid = (await op.live_room())["id"]
    staff, _ = await connect(session, first.base, rid, first.token("ops", "operator"))
    author, _ = await connect(session, first.base, rid, first.token("author"))
    v1, _ = await connect(session, second.base, rid, second.token("v1"))
    await author.send({"t": "dm", "text": "主播唱得真难听", "ref": "dm"})
    seq = (await author.ack("dm"))["seq"]
    assert (await v1.next("dm"))["seq"] == seq

    await v1.send({"t": "report", "seq": seq, "reason": "spam", "note": "广告", "ref": "r1"})
    filed = await v1.ack("r1")
    assert filed["ok"] is True and filed["duplicate"] is False
    report_id = filed["report"]
    await v1.send({"t": "report", "seq": seq, "reason": "abuse", "ref": "r2"})
    assert await v1.ack("r2") == {"t": "ack", "ref": "r2", "ok": True, "report": report_id,
                                  "duplicate": True}  # fmt: skip
    for ref, bad, code in [
        ("b1", {"seq": seq, "reason": "boring"}, "bad_request"),
        ("b2", {"seq": seq, "uid": "author", "reason": "spam"}, "bad_request"),
        ("b3", {"seq": seq + 100, "reason": "spam"}, "not_found"),
        ("b4", {"uid": "v1", "reason": "spam"}, "bad_request"),
    ]:
        await v1.send({"t": "report", "ref": ref, **bad})
        ack = await v1.ack(ref)
        assert ack["ok"] is False and ack["code"] == code, (bad, ack)

    # The second reporter, over REST, reaches the threshold: the comment is held.
    v2 = Api(session, second.base, second.token("v2"))
    status, got = await v2.call("POST", f"/api/v1/rooms/{rid}/reports",
                                {"seq": seq, "reason": "fraud"})  # fmt: skip
    assert (status, got) == (201, {"report": report_id, "duplicate": False})
    assert (await v1.next("retract"))["seq"] == seq
    status, got = await v2.call("POST", f"/api/v1/rooms/{rid}/reports",
                                {"uid": "author", "reason": "x" * 30})  # fmt: skip
    assert status == 400 and "reason" in got["error"]["message"]
    assert (await v2.call("GET", f"/api/v1/rooms/{rid}/reports"))[0] == 403

    # Past the response target the staff are alerted (viewers are not).
    alert = await staff.next("notice", timeout=15)
    assert alert["level"] == "alert" and alert["report"] == report_id
    status, listed = await op.call("GET", f"/api/v1/rooms/{rid}/reports")
    [item] = listed["reports"]
    assert status == 200 and item["id"] == report_id and item["reporters"] == 2
    assert item["overdue"] is True and item["age_ms"] >= 1000
    assert item["reasons"] == {"spam": 1, "fraud": 1}
    assert item["comment"]["text"] == "主播唱得真难听"

    path = f"/api/v1/rooms/{rid}/reports/{report_id}/resolve"
    status, done = await op.call("POST", path, {"action": "mute", "seconds": 300})
    assert status == 200 and done["outcome"] == "mute" and done["reporters"] == 2
    assert (await op.call("POST", path, {"action": "dismiss"}))[0] == 409
    told = await v1.next("report_result")
    assert told == {"t": "report_result", "to": [], "report": report_id,
                    "target": {"seq": seq}, "outcome": "mute"}  # fmt: skip
    # Only the reporters: a notice published after it reaches the others with nothing before.
    status, _ = await op.call("POST", f"/api/v1/rooms/{rid}/notices", {"text": "好了"})
    assert status == 202
    for other in (author, staff):
        assert (await other.next("notice"))["text"] == "好了"
        assert [m for m in other.backlog if m.get("t") == "report_result"] == []
    await author.send({"t": "dm", "text": "again", "ref": "muted"})
    assert (await author.ack("muted"))["code"] == "muted"
    assert [m.get("t") for m in v1.backlog if m.get("t") == "notice"] == []

    assert (await op.call("POST", f"/api/v1/rooms/{rid}/end"))[0] == 200

    async def sealed() -> bytes | None:
        status, raw = await op.call("GET", f"/api/v1/rooms/{rid}/archive")
        return raw if status == 200 else None

    lines = split_lines(gzip.decompress(await poll(sealed)))
    assert verify(lines).ok
    reports = [orjson.loads(line) for line in lines if b'"k":"report"' in line]
    assert [(r["event"]["action"], r["event"]["by"]) for r in reports] == [
        ("report", "v1"), ("report", "v2"), ("hold", "system"), ("overdue", "system"),
        ("resolve", "ops")]  # fmt: skip
    assert all(r["event"]["item"] == report_id for r in reports)
    for viewer in (staff, author, v1):
        await viewer.close()
