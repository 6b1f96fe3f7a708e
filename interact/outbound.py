"""Server messages waiting in a room's batch, each encoded at most once per codec."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson

from interact.protocol import Codec, join_json, join_msgpack

# Message types that ride the danmaku lane (capped and sampled under load);
# everything else is priority and never dropped.
DANMAKU_TYPES = frozenset({"dm"})


class Out:
    """One server message; ``raw`` is its JSON when it arrived already encoded."""

    __slots__ = ("_json", "_mp", "obj")

    def __init__(self, obj: dict[str, Any], raw: bytes | None = None) -> None:
        self.obj = obj
        self._json = raw
        self._mp: bytes | None = None

    @classmethod
    def from_json(cls, raw: bytes) -> Out:
        return cls(orjson.loads(raw), raw)

    @property
    def kind(self) -> str:
        return self.obj.get("t", "")

    @property
    def is_danmaku(self) -> bool:
        return self.obj.get("t") in DANMAKU_TYPES

    def encoded(self, codec: Codec) -> bytes:
        if codec is Codec.JSON:
            if self._json is None:
                self._json = orjson.dumps(self.obj)
            return self._json
        if self._mp is None:
            self._mp = msgpack.packb(self.obj, use_bin_type=True)
        return self._mp


def encode_outs(outs: list[Out], codec: Codec) -> bytes:
    """One frame payload (an array) from messages, reusing each one's encoding."""
    parts = [o.encoded(codec) for o in outs]
    return join_json(parts) if codec is Codec.JSON else join_msgpack(parts)
