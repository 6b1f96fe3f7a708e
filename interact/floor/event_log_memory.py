"""In-process event log (see ``interact.floor.event_log``): a bounded deque per room, trimmed
exactly at ``maxlen``."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from interact.floor.event_log import StreamIds, check_event, format_id, parse_id


class _Stream:
    __slots__ = ("entries", "ids")

    def __init__(self, maxlen: int) -> None:
        self.ids = StreamIds()
        self.entries: deque[tuple[tuple[int, int], dict[str, str]]] = deque(maxlen=maxlen)


class MemoryEventLog:
    def __init__(self, *, maxlen: int) -> None:
        self._maxlen = maxlen
        self._streams: dict[str, _Stream] = {}

    def append_now(self, room_id: str, event: Mapping[str, object]) -> str:
        """Append without yielding, so a store's change and its event are one step."""
        fields = check_event(event)
        stream = self._streams.get(room_id)
        if stream is None:
            stream = self._streams[room_id] = _Stream(self._maxlen)
        entry_id = stream.ids.next()
        stream.entries.append((entry_id, fields))
        return format_id(entry_id)

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
        for entry_id, fields in stream.entries:
            if entry_id > floor:
                out.append((format_id(entry_id), dict(fields)))
                if len(out) >= count:
                    break
        return out
