"""interact.protocol: client frames parsed in both codecs, server batches encoded and joined."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interact.floor.errors import Code
from interact.protocol import (
    MAX_ID_LEN,
    MAX_LIKES_PER_FRAME,
    MAX_REF_LEN,
    Codec,
    Dm,
    Enter,
    Grab,
    Like,
    Ping,
    ProtocolError,
    ack,
    encode_batch,
    encode_json,
    encode_msgpack,
    error,
    join_json,
    join_msgpack,
    parse_client_frame,
)

CODECS = [Codec.JSON, Codec.MSGPACK]
MESSAGE_TYPES = (Dm, Like, Grab, Enter, Ping)


def frame_of(obj: Any, codec: Codec) -> str | bytes:
    """What a client sends: a text frame of JSON, or a binary frame of msgpack."""
    if codec is Codec.JSON:
        return orjson.dumps(obj).decode()
    return msgpack.packb(obj, use_bin_type=True)


def parse(obj: Any, codec: Codec) -> Any:
    return parse_client_frame(frame_of(obj, codec), codec)


def assert_bad(result: Any, ref: Any = None) -> ProtocolError:
    assert isinstance(result, ProtocolError), result
    assert result.code is Code.BAD_REQUEST
    assert result.ref == ref
    assert result.msg
    return result


# --- every client message type, both codecs ------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"t": "dm", "text": "hello"}, Dm(text="hello")),
        (
            {"t": "dm", "text": "hi 你好", "color": 0xFE0302, "mode": "top", "ref": 7},
            Dm(text="hi 你好", color=0xFE0302, mode="top", ref=7),
        ),
        ({"t": "dm", "text": "", "color": None, "mode": None}, Dm(text="")),
        ({"t": "like"}, Like(n=1)),
        ({"t": "like", "n": 1}, Like(n=1)),
        ({"t": "like", "n": MAX_LIKES_PER_FRAME, "ref": "a"}, Like(n=100, ref="a")),
        ({"t": "grab", "id": "rp1", "ref": 3}, Grab(id="rp1", ref=3)),
        ({"t": "grab", "id": "x" * MAX_ID_LEN}, Grab(id="x" * MAX_ID_LEN)),
        ({"t": "enter", "id": "lot-9"}, Enter(id="lot-9")),
        ({"t": "enter", "id": "y" * MAX_ID_LEN, "ref": "r"}, Enter(id="y" * MAX_ID_LEN, ref="r")),
        ({"t": "ping"}, Ping()),
        ({"t": "ping", "ref": 0}, Ping(ref=0)),
        # unknown extra fields are ignored
        ({"t": "ping", "extra": [1, 2, {"x": None}]}, Ping()),
    ],
)
def test_each_message_type_parses(codec: Codec, obj: dict[str, Any], expected: Any) -> None:
    assert parse(obj, codec) == expected


def test_json_frame_may_also_arrive_as_bytes() -> None:
    assert parse_client_frame(b'{"t":"ping","ref":1}', Codec.JSON) == Ping(ref=1)


@pytest.mark.parametrize(
    "obj",
    [
        {"t": "dm", "text": "x", "color": 1, "mode": "scroll", "ref": "q"},
        {"t": "like", "n": 5, "ref": 12},
        {"t": "grab", "id": "g"},
        {"t": "enter", "id": "e", "ref": -4},
        {"t": "ping"},
        {"t": "like", "n": 0, "ref": 1},
        {"t": "nope", "ref": "z"},
    ],
)
def test_both_codecs_give_the_same_result(obj: dict[str, Any]) -> None:
    as_json, as_msgpack = (parse(obj, codec) for codec in CODECS)
    assert_well_formed_result(as_json)
    assert as_json == as_msgpack


# --- refs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("ref", [0, 1, -1, 2**53, -(2**53), "", "abc", "r" * MAX_REF_LEN, "引用"])
def test_accepted_refs_are_echoed(codec: Codec, ref: Any) -> None:
    assert parse({"t": "ping", "ref": ref}, codec) == Ping(ref=ref)


@pytest.mark.parametrize("codec", CODECS)
def test_null_ref_is_no_ref(codec: Codec) -> None:
    assert parse({"t": "ping", "ref": None}, codec) == Ping(ref=None)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "ref",
    ["r" * (MAX_REF_LEN + 1), 1.5, 2.0, [1], {"a": 1}, True, False, 2**53 + 1, -(2**53) - 1],
)
def test_refused_refs(codec: Codec, ref: Any) -> None:
    result = assert_bad(parse({"t": "ping", "ref": ref}, codec))
    assert "ref" in result.msg


def test_binary_ref_is_refused_in_msgpack() -> None:
    assert_bad(parse({"t": "ping", "ref": b"\x01"}, Codec.MSGPACK))


# --- missing and wrong-typed fields --------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "obj",
    [
        {"t": "dm"},
        {"t": "dm", "text": None},
        {"t": "dm", "text": 5},
        {"t": "dm", "text": ["a"]},
        {"t": "dm", "text": {"a": "b"}},
        {"t": "dm", "text": True},
    ],
)
def test_dm_text_must_be_a_string(codec: Codec, obj: dict[str, Any]) -> None:
    assert "text" in assert_bad(parse({**obj, "ref": 9}, codec), ref=9).msg


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("color", ["#fff", "16777215", 1.0, True, False, [1], {"r": 1}])
def test_dm_color_must_be_an_int_not_a_bool(codec: Codec, color: Any) -> None:
    obj = {"t": "dm", "text": "a", "color": color, "ref": "c"}
    assert "color" in assert_bad(parse(obj, codec), ref="c").msg


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("mode", [1, True, 0.5, ["top"], {"m": "top"}])
def test_dm_mode_must_be_a_string(codec: Codec, mode: Any) -> None:
    obj = {"t": "dm", "text": "a", "mode": mode}
    assert "mode" in assert_bad(parse(obj, codec)).msg


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "n", [0, -1, MAX_LIKES_PER_FRAME + 1, 2**40, 2**63 - 1, -(2**63), True, False, 1.0, "1", None]
)
def test_like_n_out_of_range_or_wrong_type(codec: Codec, n: Any) -> None:
    result = assert_bad(parse({"t": "like", "n": n, "ref": 2}, codec), ref=2)
    assert "like.n" in result.msg


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("kind", ["grab", "enter"])
@pytest.mark.parametrize("ident", [None, "", "x" * (MAX_ID_LEN + 1), 12, ["a"], True])
def test_grab_and_enter_need_a_short_non_empty_id(codec: Codec, kind: str, ident: Any) -> None:
    obj: dict[str, Any] = {"t": kind, "ref": "k"}
    if ident is not None:
        obj["id"] = ident
    result = assert_bad(parse(obj, codec), ref="k")
    assert f"{kind}.id" in result.msg


# --- frames that are not messages ----------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("obj", [[], [{"t": "ping"}], 0, 3.5, "ping", None, True])
def test_frame_must_be_an_object(codec: Codec, obj: Any) -> None:
    assert "object" in assert_bad(parse(obj, codec)).msg


@pytest.mark.parametrize("codec", CODECS)
def test_unknown_type_echoes_ref(codec: Codec) -> None:
    result = assert_bad(parse({"t": "gift", "ref": 5}, codec), ref=5)
    assert "gift" in result.msg


@pytest.mark.parametrize("codec", CODECS)
def test_unknown_type_name_is_truncated_in_the_message(codec: Codec) -> None:
    result = assert_bad(parse({"t": "z" * 10_000}, codec))
    assert len(result.msg) < 100


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("t", [None, 1, ["dm"], {"t": "dm"}, True, "missing"])
def test_type_missing_or_not_a_string(codec: Codec, t: Any) -> None:
    obj: dict[str, Any] = {"ref": "m", "text": "x"}
    if t != "missing":
        obj["t"] = t
    assert "'t'" in assert_bad(parse(obj, codec), ref="m").msg


@pytest.mark.parametrize("codec", CODECS)
def test_type_is_case_sensitive(codec: Codec) -> None:
    assert_bad(parse({"t": "PING"}, codec))


@pytest.mark.parametrize(
    "data", ["", "{", '{"t":"ping"', "{'t':'ping'}", '{"t":"ping"}x', "nul", "\x00", b"\xff{}"]
)
def test_malformed_json(data: str | bytes) -> None:
    assert assert_bad(parse_client_frame(data, Codec.JSON)).msg == "malformed json frame"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81",  # a map of one entry, then nothing
        b"\x81\xa1t",  # key without value
        b"\xc1",  # never-used type byte
        msgpack.packb({"t": "ping"}) + b"\x00",  # trailing data
        b"\xdf\xff\xff\xff\xff",  # a map claiming 4 billion entries
    ],
)
def test_malformed_msgpack(data: bytes) -> None:
    assert assert_bad(parse_client_frame(data, Codec.MSGPACK)).msg == "malformed msgpack frame"


def test_text_frame_on_the_msgpack_codec_is_refused() -> None:
    assert_bad(parse_client_frame('{"t":"ping"}', Codec.MSGPACK))
    assert_bad(parse_client_frame("", Codec.MSGPACK))


def test_invalid_utf8_inside_msgpack_str() -> None:
    # {"t": <str of bytes ff fe>}: a fixmap of 1, fixstr "t", fixstr of 2 invalid bytes
    data = b"\x81\xa1t\xa2\xff\xfe"
    assert_bad(parse_client_frame(data, Codec.MSGPACK))
    # and inside a key
    assert_bad(parse_client_frame(b"\x82\xa1t\xa4ping\xa1\xff\x01", Codec.MSGPACK))


@pytest.mark.parametrize(
    "obj",
    [{1: "ping"}, {"t": "ping", 2: 3}, {None: 1}, {1.5: "x"}, {"t": "dm", "text": "a", True: 1}],
)
def test_msgpack_map_with_non_string_keys(obj: dict[Any, Any]) -> None:
    data = msgpack.packb(obj, use_bin_type=True, strict_types=False)
    assert_bad(parse_client_frame(data, Codec.MSGPACK))


def test_msgpack_nested_map_with_non_string_keys() -> None:
    data = msgpack.packb({"t": "ping", "extra": {1: 2}})
    assert_bad(parse_client_frame(data, Codec.MSGPACK))


def test_msgpack_binary_key_does_not_count_as_t() -> None:
    data = msgpack.packb({b"t": "ping"}, use_bin_type=True)
    assert_bad(parse_client_frame(data, Codec.MSGPACK))


def test_msgpack_ext_type_is_not_a_message() -> None:
    data = msgpack.packb(msgpack.ExtType(5, b"abc"))
    assert_bad(parse_client_frame(data, Codec.MSGPACK))


# --- fuzz: never raises --------------------------------------------------------------------


def assert_well_formed_result(result: Any) -> None:
    assert isinstance(result, (*MESSAGE_TYPES, ProtocolError)), result
    if isinstance(result, ProtocolError):
        assert isinstance(result.code, Code)
        assert result.code in set(Code)
        assert isinstance(result.msg, str)
        assert result.ref is None or isinstance(result.ref, (int, str))


@settings(max_examples=300)
@given(data=st.binary(max_size=200), codec=st.sampled_from(CODECS))
def test_arbitrary_bytes_never_raise(data: bytes, codec: Codec) -> None:
    assert_well_formed_result(parse_client_frame(data, codec))


@settings(max_examples=300)
@given(
    data=st.text(st.characters(codec=None, exclude_categories=()), max_size=200),
    codec=st.sampled_from(CODECS),
)
def test_arbitrary_text_never_raises(data: str, codec: Codec) -> None:
    result = parse_client_frame(data, codec)
    assert_well_formed_result(result)
    if codec is Codec.MSGPACK:
        assert isinstance(result, ProtocolError)


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_VALUES = SCALARS | st.lists(SCALARS, max_size=2) | st.integers(-5, 150) | st.text(max_size=70)
MESSAGE_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "t": st.sampled_from(["dm", "like", "grab", "enter", "ping", "ack", ""]) | SCALARS,
        "ref": FIELD_VALUES,
        "text": FIELD_VALUES,
        "color": FIELD_VALUES,
        "mode": FIELD_VALUES,
        "n": FIELD_VALUES,
        "id": FIELD_VALUES,
    },
)


@settings(max_examples=300)
@given(obj=JSON_LIKE)
def test_arbitrary_json_like_objects_never_raise(obj: Any) -> None:
    results = [parse(obj, codec) for codec in CODECS]
    for result in results:
        assert_well_formed_result(result)
    assert results[0] == results[1]  # same objects either way


@settings(max_examples=400)
@given(obj=MESSAGE_LIKE)
def test_message_like_objects_parse_the_same_in_both_codecs(obj: dict[str, Any]) -> None:
    results = [parse(obj, codec) for codec in CODECS]
    for result in results:
        assert_well_formed_result(result)
    assert results[0] == results[1]
    result = results[0]
    if not isinstance(result, ProtocolError):
        # a message always mirrors its frame
        assert type(result).__name__.lower() == obj["t"]
        assert result.ref == obj.get("ref")
        for field in ("text", "color", "mode", "n", "id"):
            if hasattr(result, field) and field in obj:
                assert getattr(result, field) == obj[field]


# --- ack / error helpers -------------------------------------------------------------------


def test_ack_and_error_shapes() -> None:
    assert ack(3, True) == {"t": "ack", "ref": 3, "ok": True}
    assert ack("r", False, Code.MUTED, until=5) == {
        "t": "ack",
        "ref": "r",
        "ok": False,
        "code": "muted",
        "until": 5,
    }
    assert error(Code.BAD_REQUEST, "nope") == {"t": "error", "code": "bad_request", "msg": "nope"}


# --- server batches ------------------------------------------------------------------------


def items(n: int) -> list[dict[str, Any]]:
    return [{"t": "dm", "seq": i, "text": f"m{i}"} for i in range(n)]


@pytest.mark.parametrize("codec", CODECS)
def test_encode_batch_is_an_array_of_the_messages(codec: Codec) -> None:
    msgs = [{"t": "like", "total": 3}, {"t": "online", "count": 2}]
    data = encode_batch(msgs, codec)
    decoded = orjson.loads(data) if codec is Codec.JSON else msgpack.unpackb(data)
    assert decoded == msgs


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 100])
def test_join_json_matches_encoding_the_list(n: int) -> None:
    msgs = items(n)
    joined = join_json([encode_json(m) for m in msgs])
    assert orjson.loads(joined) == msgs
    assert joined == encode_batch(msgs, Codec.JSON)


@pytest.mark.parametrize(
    ("n", "head"),
    [
        (0, b"\x90"),
        (1, b"\x91"),
        (15, b"\x9f"),
        (16, b"\xdc\x00\x10"),
        (17, b"\xdc\x00\x11"),
        (65535, b"\xdc\xff\xff"),
        (65536, b"\xdd\x00\x01\x00\x00"),
        (70000, b"\xdd\x00\x01\x11\x70"),
    ],
)
def test_join_msgpack_array_header_boundaries(n: int, head: bytes) -> None:
    msgs = [{"i": i} for i in range(n)]
    joined = join_msgpack([encode_msgpack(m) for m in msgs])
    assert joined.startswith(head)
    assert msgpack.unpackb(joined) == msgs
    assert joined == encode_batch(msgs, Codec.MSGPACK)


MESSAGE_DICTS = st.lists(st.dictionaries(st.text(max_size=5), SCALARS, max_size=4), max_size=20)


@settings(max_examples=150)
@given(msgs=MESSAGE_DICTS)
def test_joined_parts_decode_like_the_whole_list(msgs: list[dict[str, Any]]) -> None:
    json_joined = join_json([encode_json(m) for m in msgs])
    assert orjson.loads(json_joined) == orjson.loads(encode_batch(msgs, Codec.JSON))
    mp_joined = join_msgpack([encode_msgpack(m) for m in msgs])
    assert msgpack.unpackb(mp_joined) == msgpack.unpackb(encode_batch(msgs, Codec.MSGPACK))
    assert msgpack.unpackb(mp_joined) == msgs
