"""The archive's records and their SHA-256 chain (pure: no I/O).

An archive is JSON Lines: one JSON object a line, each ending in ``\\n``. Every line but
the last is a record with ``k`` (its kind) and ``prev``: the hex SHA-256 of the previous
line's bytes (without its newline), ``GENESIS`` for the first, which is the ``header``.
The last line is the seal, ``{"head": H, "k": "seal", "records": N}``: ``H`` is the
SHA-256 of the last record's line and ``N`` the number of records before it. Changing,
removing, inserting or moving any line breaks a ``prev`` link or the seal, so only
someone who rewrites everything after the change (and the head kept in the ledger, which
is append-only) can hide it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

FORMAT_VERSION = 1
GENESIS = "0" * 64
# Bilibili's segments: 6 minutes of video each.
SEGMENT_MS = 6 * 60 * 1000
# Kinds in the order an archive holds them (comments and retractions interleave).
KINDS = (
    "header", "dm", "retract", "mod", "report", "ledger", "order", "packet", "lottery", "stats",
)  # fmt: skip
_HEX64 = re.compile(r"[0-9a-f]{64}")
# Fields of a logged comment that the archive keeps (the log's JSON may carry more).
_DM_FIELDS = ("uid", "nick", "role", "text", "color", "mode", "ts")


def digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def encode(record: Mapping[str, Any], prev: str) -> bytes:
    """One record's line (no newline): its fields and ``prev``, keys sorted."""
    if "k" not in record or record["k"] not in KINDS:
        raise ValueError(f"not an archive record kind: {record.get('k')!r}")
    return orjson.dumps({**record, "prev": prev}, option=orjson.OPT_SORT_KEYS)


def seal_line(head: str, records: int) -> bytes:
    return orjson.dumps(
        {"head": head, "k": "seal", "records": records}, option=orjson.OPT_SORT_KEYS
    )


@dataclass(slots=True)
class Chain:
    """Builds the lines of one archive, each linked to the one before."""

    head: str = GENESIS
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> bytes:
        """The record's line with its newline; the head moves to it."""
        if self.records == 0 and record.get("k") != "header":
            raise ValueError("an archive starts with its header")
        line = encode(record, self.head)
        self.head = digest(line)
        self.records += 1
        kind = str(record["k"])
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return line + b"\n"

    def seal(self) -> bytes:
        return seal_line(self.head, self.records) + b"\n"


def origin_of(room: Mapping[str, Any]) -> tuple[str, int]:
    """Where offsets count from: ``stream_started_at`` when set, else the room's start,
    else its creation; as (field name, Unix ms)."""
    for name in ("stream_started_at", "started_at", "created_at"):
        value = room.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return name, value
    return "created_at", 0


def header(room: Mapping[str, Any]) -> dict[str, Any]:
    name, origin = origin_of(room)
    return {
        "k": "header",
        "v": FORMAT_VERSION,
        "room": room["id"],
        "title": room.get("title"),
        "anchor": room.get("anchor"),
        "created_at": room.get("created_at"),
        "started_at": room.get("started_at"),
        "ended_at": room.get("ended_at"),
        "stream_started_at": room.get("stream_started_at"),
        "origin": name,
        "origin_ms": origin,
        "segment_ms": SEGMENT_MS,
    }


def journal_record(entry: Mapping[str, Any], origin_ms: int) -> dict[str, Any] | None:
    """The archive record of one entry of the comment journal: a comment (``t`` dm) with
    its offset from the origin, or a retraction; None for anything else."""
    kind = entry.get("t")
    if kind == "dm":
        out: dict[str, Any] = {"k": "dm", "seq": entry.get("seq")}
        for name in _DM_FIELDS:
            out[name] = entry.get(name)
        ts = out["ts"]
        out["offset_ms"] = ts - origin_ms if isinstance(ts, int) else None
        return out
    if kind == "retract":
        return {"k": "retract", "seq": entry.get("seq"), "ts": entry.get("ts")}
    return None


def event_record(kind: str, entry_id: str, event: Mapping[str, str]) -> dict[str, Any]:
    """A moderation-log (``mod``) or ledger (``ledger``) event with its stream id."""
    return {"k": kind, "id": entry_id, "event": dict(event)}


def moderation_record(entry_id: str, event: Mapping[str, str]) -> dict[str, Any]:
    """A moderation-log event: ``report`` for a viewer report's life (filed, held,
    resolved, overdue: the log's ``category`` is ``report``), ``mod`` for the rest."""
    kind = "report" if event.get("category") == "report" else "mod"
    return event_record(kind, entry_id, event)


def uid_hash(key: bytes, room_id: str, uid: str) -> str:
    """What the XML shows instead of a uid: keyed, so uids cannot be recovered by trying
    them; per room, so one viewer's comments cannot be linked across rooms."""
    mac = hmac.new(key, f"{room_id}:{uid}".encode(), hashlib.sha256)
    return mac.hexdigest()[:16]


# --- verification -----------------------------------------------------------------------


@dataclass(slots=True)
class Check:
    status: str  # PASS, FAIL or SKIP
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<5} {self.name}: {self.detail}"


@dataclass(slots=True)
class Report:
    checks: list[Check] = field(default_factory=list)
    head: str | None = None
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status != "FAIL" for c in self.checks)

    def lines(self) -> list[str]:
        return [c.line() for c in self.checks]


def split_lines(data: bytes) -> list[bytes]:
    """The lines of an archive; ``ValueError`` unless every line ends in a newline."""
    if not data.endswith(b"\n"):
        raise ValueError("the archive does not end with a newline (cut short?)")
    return data[:-1].split(b"\n")


class Verifier:
    """Checks an archive line by line (``feed``), so a large one need not sit in memory."""

    def __init__(self) -> None:
        self.report = Report()
        self._prev = GENESIS
        self._number = 0
        self._problem: str | None = None
        self._seal: dict[str, Any] | None = None

    def feed(self, line: bytes) -> None:
        if self._problem is not None:
            return
        self._number += 1
        number = self._number
        if self._seal is not None:
            self._problem = f"line {number}: a line after the seal"
            return
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            self._problem = f"line {number}: not JSON"
            return
        if not isinstance(obj, dict):
            self._problem = f"line {number}: not a JSON object"
        elif obj.get("k") == "seal":
            self._seal = obj
        elif number == 1 and obj.get("k") != "header":
            self._problem = "line 1: the archive does not start with its header"
        elif obj.get("k") not in KINDS:
            self._problem = f"line {number}: unknown record kind {str(obj.get('k'))[:40]!r}"
        elif obj.get("prev") != self._prev:
            self._problem = (
                f"line {number}: prev {str(obj.get('prev'))[:64]} is not the hash of the "
                f"line before ({self._prev}): a line was changed, removed, added or moved"
            )
        else:
            self._prev = digest(line)
            self.report.records += 1
            kind = str(obj["k"])
            self.report.counts[kind] = self.report.counts.get(kind, 0) + 1

    def cut(self, problem: str) -> None:
        """The input could not be read to its end (``problem`` says why)."""
        if self._problem is None:
            self._problem = problem

    def finish(self, expected_head: str | None = None) -> Report:
        """The report; the head is checked against ``expected_head`` (the
        ``archive_sealed`` ledger entry's) when given."""
        report = self.report
        records, prev, seal = report.records, self._prev, self._seal
        if self._problem is None and self._number == 0:
            self._problem = "the archive is empty"
        if self._problem is not None:
            report.checks.append(Check("FAIL", "chain", self._problem))
            return report
        report.checks.append(
            Check("PASS", "chain", f"{records} records, each linked to the one before")
        )
        if seal is None:
            report.checks.append(Check("FAIL", "seal", "no seal line: the archive is incomplete"))
            return report
        head = seal.get("head")
        if head != prev or seal.get("records") != records:
            report.checks.append(
                Check(
                    "FAIL",
                    "seal",
                    f"the seal says head {str(head)[:64]} over {str(seal.get('records'))[:20]} "
                    f"records; the records give {prev} over {records}",
                )
            )
            return report
        report.head = prev
        report.checks.append(Check("PASS", "seal", f"head {prev}"))
        if expected_head is None:
            report.checks.append(Check("SKIP", "head", "no head from the ledger given"))
        elif not _HEX64.fullmatch(expected_head.lower()):
            report.checks.append(Check("FAIL", "head", "the expected head is not 64 hex digits"))
        elif expected_head.lower() != prev:
            report.checks.append(
                Check(
                    "FAIL",
                    "head",
                    f"the ledger's head {expected_head.lower()} is not the archive's",
                )
            )
        else:
            report.checks.append(
                Check("PASS", "head", "equals the archive_sealed head in the ledger")
            )
        return report


def verify(lines: Iterable[bytes], expected_head: str | None = None) -> Report:
    """Re-check an archive's chain and seal (and its head against ``expected_head``)."""
    verifier = Verifier()
    for line in lines:
        verifier.feed(line)
    return verifier.finish(expected_head)


def records_of(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The records (not the seal) of an archive's lines, parsed; no checking."""
    for line in lines:
        obj = orjson.loads(line)
        if isinstance(obj, dict) and obj.get("k") != "seal":
            yield obj
