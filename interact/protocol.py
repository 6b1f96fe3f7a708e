"""Wire protocol v1, without I/O: parse client frames, encode server batches.

A client frame is one message object; a server frame is always an array of message
objects. JSON frames are text, msgpack frames binary; the objects are the same.
Nothing here raises on bad input: parsing returns a ``ProtocolError`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgpack
import orjson

from interact.floor.errors import Code

MAX_REF_LEN = 64
MAX_ID_LEN = 64
MAX_LIKES_PER_FRAME = 100


class Codec(StrEnum):
    JSON = "json"
    MSGPACK = "msgpack"


Ref = str | int | None


@dataclass(frozen=True, slots=True)
class Dm:
    text: str
    color: int | None = None
    mode: str | None = None
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Like:
    n: int = 1
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Grab:
    id: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Enter:
    id: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Ping:
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Report:
    """A viewer's report of a comment or a user; the fields are checked by
    ``moderation.reports.parse_report``."""

    fields: dict[str, Any]
    ref: Ref = None


ClientMessage = Dm | Like | Grab | Enter | Ping | Report


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A frame that could not be turned into a message; ``ref`` is echoed when readable."""

    code: Code
    msg: str
    ref: Ref = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ref(obj: dict[str, Any]) -> Ref | ProtocolError:
    ref = obj.get("ref")
    if ref is None:
        return None
    if _is_int(ref) and -(2**53) <= ref <= 2**53:
        return ref
    if isinstance(ref, str) and len(ref) <= MAX_REF_LEN:
        return ref
    return ProtocolError(Code.BAD_REQUEST, "ref must be a short string or an integer")


def _decode(data: str | bytes, codec: Codec) -> Any:
    if codec is Codec.JSON:
        return orjson.loads(data)
    if isinstance(data, str):
        raise ValueError("text frame on a msgpack connection")
    # strict_map_key keeps non-string keys out; raw=False turns bad UTF-8 into an error.
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


def parse_client_frame(data: str | bytes, codec: Codec) -> ClientMessage | ProtocolError:
    """Turn one client frame into a typed message, or a ``ProtocolError`` to send back."""
    try:
        obj = _decode(data, codec)
    except Exception:  # every decoder failure is the client's malformed frame
        return ProtocolError(Code.BAD_REQUEST, f"malformed {codec.value} frame")
    if not isinstance(obj, dict):
        return ProtocolError(Code.BAD_REQUEST, "a frame must be one message object")
    ref = _ref(obj)
    if isinstance(ref, ProtocolError):
        return ref
    kind = obj.get("t")
    if not isinstance(kind, str):
        return ProtocolError(Code.BAD_REQUEST, "missing message type 't'", ref)
    parser = _PARSERS.get(kind)
    if parser is None:
        return ProtocolError(Code.BAD_REQUEST, f"unknown message type {kind[:32]!r}", ref)
    return parser(obj, ref)


def _parse_dm(obj: dict[str, Any], ref: Ref) -> ClientMessage | ProtocolError:
    text = obj.get("text")
    if not isinstance(text, str):
        return ProtocolError(Code.BAD_REQUEST, "dm.text must be a string", ref)
    color = obj.get("color")
    if color is not None and not _is_int(color):
        return ProtocolError(Code.BAD_REQUEST, "dm.color must be an integer RGB value", ref)
    mode = obj.get("mode")
    if mode is not None and not isinstance(mode, str):
        return ProtocolError(Code.BAD_REQUEST, "dm.mode must be a string", ref)
    return Dm(text=text, color=color, mode=mode, ref=ref)


def _parse_like(obj: dict[str, Any], ref: Ref) -> ClientMessage | ProtocolError:
    n = obj.get("n", 1)
    if not _is_int(n) or not 1 <= n <= MAX_LIKES_PER_FRAME:
        return ProtocolError(
            Code.BAD_REQUEST, f"like.n must be an integer from 1 to {MAX_LIKES_PER_FRAME}", ref
        )
    return Like(n=n, ref=ref)


def _parse_id(obj: dict[str, Any], ref: Ref, kind: str) -> str | ProtocolError:
    ident = obj.get("id")
    if not isinstance(ident, str) or not 0 < len(ident) <= MAX_ID_LEN:
        return ProtocolError(Code.BAD_REQUEST, f"{kind}.id must be a non-empty string", ref)
    return ident


def _parse_grab(obj: dict[str, Any], ref: Ref) -> ClientMessage | ProtocolError:
    ident = _parse_id(obj, ref, "grab")
    return ident if isinstance(ident, ProtocolError) else Grab(id=ident, ref=ref)


def _parse_enter(obj: dict[str, Any], ref: Ref) -> ClientMessage | ProtocolError:
    ident = _parse_id(obj, ref, "enter")
    return ident if isinstance(ident, ProtocolError) else Enter(id=ident, ref=ref)


def _parse_ping(obj: dict[str, Any], ref: Ref) -> ClientMessage | ProtocolError:
    return Ping(ref=ref)


_REPORT_FIELDS = ("seq", "uid", "reason", "note")


def _parse_report(obj: dict[str, Any], ref: Ref) -> ClientMessage | ProtocolError:
    return Report(fields={k: obj[k] for k in _REPORT_FIELDS if k in obj}, ref=ref)


_PARSERS = {
    "dm": _parse_dm,
    "like": _parse_like,
    "grab": _parse_grab,
    "enter": _parse_enter,
    "ping": _parse_ping,
    "report": _parse_report,
}


def ack(ref: Ref, ok: bool, code: str | None = None, **fields: Any) -> dict[str, Any]:
    """The reply to a client message that carried ``ref``."""
    msg: dict[str, Any] = {"t": "ack", "ref": ref, "ok": ok}
    if code is not None:
        msg["code"] = code
    msg.update(fields)
    return msg


def error(code: str, msg: str) -> dict[str, Any]:
    return {"t": "error", "code": code, "msg": msg}


def encode_json(obj: Any) -> bytes:
    return orjson.dumps(obj)


def encode_msgpack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def encode_batch(messages: list[dict[str, Any]], codec: Codec) -> bytes:
    """Encode a list of message objects as one server frame payload."""
    return encode_json(messages) if codec is Codec.JSON else encode_msgpack(messages)


def join_json(parts: list[bytes]) -> bytes:
    """A JSON array from already-encoded JSON values, without decoding them again."""
    return b"[" + b",".join(parts) + b"]"


def join_msgpack(parts: list[bytes]) -> bytes:
    """A msgpack array from already-packed values, without packing them again."""
    n = len(parts)
    if n < 16:
        head = bytes((0x90 | n,))
    elif n < 65536:
        head = b"\xdc" + n.to_bytes(2, "big")
    else:
        head = b"\xdd" + n.to_bytes(4, "big")
    return head + b"".join(parts)
