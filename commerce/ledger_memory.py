"""In-process Ledger (see ``commerce.ledger`` for the contract)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping

from commerce.ledger import LEDGER_MAXLEN, check_event, parse_id


class _Stream:
    __slots__ = ("entries", "last")

    def __init__(self, maxlen: int) -> None:
        self.last = (0, 0)
        self.entries: deque[tuple[tuple[int, int], dict[str, str]]] = deque(maxlen=maxlen)


class MemoryLedger:
    def __init__(self, *, maxlen: int = LEDGER_MAXLEN) -> None:
        self._maxlen = maxlen
        self._streams: dict[str, _Stream] = {}

    def append_now(self, room_id: str, event: Mapping[str, object]) -> str:
        """Append without yielding, so a store's change and its event are one step."""
        fields = check_event(event)
        stream = self._streams.get(room_id)
        if stream is None:
            stream = self._streams[room_id] = _Stream(self._maxlen)
        # Like a Redis stream: wall-clock ms, and a sequence within the ms (or when the
        # clock stepped back) so ids only ever grow.
        ms = time.time_ns() // 1_000_000
        last_ms, last_seq = stream.last
        stream.last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        stream.entries.append((stream.last, fields))
        return f"{stream.last[0]}-{stream.last[1]}"

    async def append(self, room_id: str, event: Mapping[str, object]) -> str:
        return self.append_now(room_id, event)

    async def read(
        self, room_id: str, after: str | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        floor = (-1, -1) if after is None else parse_id(after)
        stream = self._streams.get(room_id)
        if stream is None or count <= 0:
            return []
        out: list[tuple[str, dict[str, str]]] = []
        for (ms, seq), fields in stream.entries:
            if (ms, seq) > floor:
                out.append((f"{ms}-{seq}", dict(fields)))
                if len(out) >= count:
                    break
        return out
