"""interact.outbound: server messages encoded at most once per codec and joined into batches."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
import pytest

from interact.outbound import Out, encode_outs
from interact.protocol import Codec


def test_from_json_keeps_the_raw_bytes() -> None:
    raw = b'{"t":"dm","seq":1,"text":"hi","color":16777215}'
    out = Out.from_json(raw)
    assert out.obj == {"t": "dm", "seq": 1, "text": "hi", "color": 16777215}
    assert out.encoded(Codec.JSON) is raw


def test_from_json_raw_is_not_reformatted() -> None:
    raw = b'{ "t" : "notice",  "text" : "x" }'  # not orjson's own spacing
    assert Out.from_json(raw).encoded(Codec.JSON) is raw


def test_json_encoding_is_cached() -> None:
    out = Out({"t": "like", "total": 5})
    first = out.encoded(Codec.JSON)
    assert orjson.loads(first) == {"t": "like", "total": 5}
    assert out.encoded(Codec.JSON) is first


def test_msgpack_encoding_happens_once() -> None:
    out = Out.from_json(b'{"t":"online","count":3}')
    first = out.encoded(Codec.MSGPACK)
    assert msgpack.unpackb(first) == {"t": "online", "count": 3}
    assert out.encoded(Codec.MSGPACK) is first


def test_msgpack_cache_survives_mutation_of_obj() -> None:
    # proves the second call does not pack again
    out = Out({"t": "like", "total": 1})
    first = out.encoded(Codec.MSGPACK)
    out.obj["total"] = 2
    assert out.encoded(Codec.MSGPACK) is first
    assert msgpack.unpackb(out.encoded(Codec.MSGPACK)) == {"t": "like", "total": 1}


def decode(data: bytes, codec: Codec) -> Any:
    return orjson.loads(data) if codec is Codec.JSON else msgpack.unpackb(data)


OBJS = [
    {"t": "dm", "seq": 1, "uid": "u1", "nick": "小明", "text": "hello", "color": 1, "mode": "top"},
    {"t": "retract", "seq": 1},
    {"t": "like", "total": 99},
    {"t": "notice", "text": "x", "level": "info", "extra": [1, None, True, 1.5]},
]


@pytest.mark.parametrize("codec", [Codec.JSON, Codec.MSGPACK])
@pytest.mark.parametrize("n", [0, 1, 2, 4, 16, 17])
def test_encode_outs_decodes_to_the_objects(codec: Codec, n: int) -> None:
    objs = [dict(OBJS[i % len(OBJS)], i=i) for i in range(n)]
    # half arrive already encoded as JSON, half as objects
    outs = [Out.from_json(orjson.dumps(o)) if i % 2 else Out(o) for i, o in enumerate(objs)]
    assert decode(encode_outs(outs, codec), codec) == objs


def test_encode_outs_for_both_codecs_from_the_same_outs() -> None:
    outs = [Out(o) for o in OBJS]
    assert orjson.loads(encode_outs(outs, Codec.JSON)) == OBJS
    assert msgpack.unpackb(encode_outs(outs, Codec.MSGPACK)) == OBJS
    # and again, now from the caches
    assert orjson.loads(encode_outs(outs, Codec.JSON)) == OBJS
    assert msgpack.unpackb(encode_outs(outs, Codec.MSGPACK)) == OBJS


@pytest.mark.parametrize(
    ("obj", "danmaku"),
    [
        ({"t": "dm", "text": "x"}, True),
        ({"t": "retract", "seq": 1}, False),
        ({"t": "like", "total": 1}, False),
        ({"t": "notice"}, False),
        ({"t": "rp"}, False),
        ({"t": "ack", "ref": 1, "ok": True}, False),
        ({"t": "DM"}, False),
        ({}, False),
    ],
)
def test_is_danmaku_for_dm_only(obj: dict[str, Any], danmaku: bool) -> None:
    assert Out(obj).is_danmaku is danmaku


def test_kind() -> None:
    assert Out({"t": "sale"}).kind == "sale"
    assert Out({}).kind == ""
