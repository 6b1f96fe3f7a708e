"""The archive's pure parts: records, the hash chain and its verification, the line reader."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import zlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from archive.reading import ArchiveFormatError, lines_of
from archive.records import (
    GENESIS,
    SEGMENT_MS,
    Chain,
    digest,
    header,
    journal_record,
    origin_of,
    split_lines,
    uid_hash,
    verify,
)

ROOM = {"id": "r1", "title": "T", "anchor": "a", "created_at": 1000, "started_at": 5000,
        "ended_at": 900_000, "stream_started_at": None}  # fmt: skip


def build(records: list[dict[str, object]]) -> bytes:
    chain = Chain()
    out = b"".join(chain.add(r) for r in records)
    return out + chain.seal()


def sample(n: int = 5) -> list[dict[str, object]]:
    recs: list[dict[str, object]] = [header(ROOM)]
    for seq in range(1, n + 1):
        entry = {"t": "dm", "seq": seq, "uid": f"u{seq}", "nick": "n", "role": "viewer",
                 "text": f"hi {seq}", "color": 0xFFFFFF, "mode": "scroll",
                 "ts": 5000 + seq}  # fmt: skip
        rec = journal_record(entry, 5000)
        assert rec is not None
        recs.append(rec)
    recs.append({"k": "stats", "stats": {"comments": n}})
    return recs


def test_chain_links_each_line_to_the_one_before() -> None:
    data = build(sample(3))
    lines = split_lines(data)
    assert orjson.loads(lines[0])["prev"] == GENESIS
    for before, line in itertools.pairwise(lines[:-1]):
        assert orjson.loads(line)["prev"] == hashlib.sha256(before).hexdigest()
    seal = orjson.loads(lines[-1])
    assert seal == {"k": "seal", "head": digest(lines[-2]), "records": len(lines) - 1}
    report = verify(lines)
    assert report.ok and report.head == seal["head"] and report.counts["dm"] == 3


def test_expected_head_is_checked() -> None:
    lines = split_lines(build(sample(2)))
    head = verify(lines).head
    assert head is not None
    assert verify(lines, head).ok
    assert verify(lines, head.upper()).ok
    wrong = verify(lines, "0" * 64)
    assert not wrong.ok and wrong.checks[-1].status == "FAIL"
    assert not verify(lines, "zz").ok
    assert [c.status for c in verify(lines).checks] == ["PASS", "PASS", "SKIP"]


def test_an_archive_must_start_with_its_header_and_end_with_its_seal() -> None:
    with pytest.raises(ValueError):
        Chain().add({"k": "dm", "seq": 1})
    lines = split_lines(build(sample(2)))
    assert not verify(lines[:-1]).ok  # no seal
    assert not verify([]).ok
    assert not verify([*lines, lines[-1]]).ok  # a line after the seal
    with pytest.raises(ValueError):
        split_lines(build(sample(1))[:-1])


def test_offsets_count_from_stream_started_at_then_started_at() -> None:
    assert origin_of(ROOM) == ("started_at", 5000)
    assert origin_of({**ROOM, "stream_started_at": 7000}) == ("stream_started_at", 7000)
    assert origin_of({"id": "r", "created_at": 3}) == ("created_at", 3)
    rec = journal_record({"t": "dm", "seq": 4, "ts": 6500, "uid": "u"}, 7000)
    assert rec is not None and rec["offset_ms"] == -500
    assert journal_record({"t": "retract", "seq": 4, "ts": 9}, 0) == {
        "k": "retract",
        "seq": 4,
        "ts": 9,
    }
    assert journal_record({"t": "room"}, 0) is None
    assert header(ROOM)["segment_ms"] == SEGMENT_MS == 360_000


def test_uid_hash_is_keyed_per_room_and_hides_the_uid() -> None:
    h = uid_hash(b"k", "r1", "u123")
    assert len(h) == 16 and "u123" not in h
    assert h == uid_hash(b"k", "r1", "u123")
    assert h != uid_hash(b"k", "r2", "u123") != uid_hash(b"other", "r1", "u123")


# --- tampering ------------------------------------------------------------------------


@st.composite
def tampered(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    n = draw(st.integers(min_value=1, max_value=8))
    lines = split_lines(build(sample(n)))
    body = lines[:-1]  # records; the seal stays last
    kind = draw(st.sampled_from(["modify", "delete", "insert", "reorder", "seal"]))
    out = list(lines)
    if kind == "modify":
        i = draw(st.integers(0, len(body) - 1))
        obj = orjson.loads(out[i])
        field = draw(st.sampled_from(sorted(k for k in obj if k not in ("k", "prev"))))
        value = draw(st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=5), st.none()))
        if obj[field] == value:
            value = [value]
        obj[field] = value
        out[i] = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    elif kind == "delete":
        del out[draw(st.integers(0, len(body) - 1))]
    elif kind == "insert":
        i = draw(st.integers(0, len(body)))
        src = draw(st.integers(0, len(body) - 1))
        out.insert(i, out[src])  # a copy of a real record, prev and all
    elif kind == "reorder":
        if len(body) < 2:
            del out[0]
        else:
            i, j = draw(st.lists(st.integers(0, len(body) - 1), min_size=2, max_size=2,
                                 unique=True))  # fmt: skip
            out[i], out[j] = out[j], out[i]
    else:
        obj = orjson.loads(out[-1])
        obj["records"] += draw(st.sampled_from([-1, 1]))
        out[-1] = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return lines, out


@given(tampered())
def test_any_change_deletion_insertion_or_reorder_breaks_verification(
    case: tuple[list[bytes], list[bytes]],
) -> None:
    original, changed = case
    assert verify(original).ok
    assert changed != original
    assert not verify(changed).ok


@given(tampered())
def test_a_rewritten_tail_still_fails_against_the_ledger_head(
    case: tuple[list[bytes], list[bytes]],
) -> None:
    """Whoever re-chains a changed archive gets a valid chain but another head."""
    original, changed = case
    head = verify(original).head
    recs = [orjson.loads(line) for line in changed if orjson.loads(line)["k"] != "seal"]
    if not recs or recs[0]["k"] != "header":
        return
    rechained = split_lines(build([{k: v for k, v in r.items() if k != "prev"} for r in recs]))
    if rechained == original:
        return  # e.g. a duplicated stats record was removed again: nothing changed
    assert verify(rechained).ok
    assert not verify(rechained, head).ok


# --- reading --------------------------------------------------------------------------


def test_lines_of_reads_gzip_in_any_chunking_and_plain_text() -> None:
    data = build(sample(50))
    packed = gzip.compress(data)
    for size in (1, 7, 4096):
        chunks = [packed[i : i + size] for i in range(0, len(packed), size)]
        assert list(lines_of(chunks)) == split_lines(data)
    assert list(lines_of([data])) == split_lines(data)


def test_lines_of_refuses_a_cut_or_broken_file() -> None:
    packed = gzip.compress(build(sample(50)))
    with pytest.raises(ArchiveFormatError):
        list(lines_of([packed[:-20]]))
    with pytest.raises(ArchiveFormatError):
        list(lines_of([packed[:10] + b"\x00" * 40 + packed[50:]]))
    with pytest.raises(ArchiveFormatError):
        list(lines_of([packed + b"junk"]))
    with pytest.raises(ArchiveFormatError):
        list(lines_of([b'{"k":"header"}']))  # no newline at the end


def test_a_gzip_bomb_is_cut_at_the_line_limit() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = bomb.compress(b"x" * (50 * 1024 * 1024)) + bomb.flush()
    assert len(packed) < 200_000
    with pytest.raises(ArchiveFormatError, match="longer than"):
        list(lines_of([packed]))
