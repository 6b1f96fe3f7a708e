"""In-process Broker (see ``rooms.broker`` for the contract)."""

from __future__ import annotations

from rooms.broker import Handler, Resync


class MemoryBroker:
    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._rooms: set[str] = set()

    def set_handler(self, handler: Handler) -> None:
        self._handler = handler

    def set_resync(self, callback: Resync) -> None:
        pass  # nothing is ever lost in one process

    def publish_now(self, room_id: str, payload: bytes) -> None:
        """Deliver synchronously, so callers can publish inside an atomic step."""
        if self._handler is not None and room_id in self._rooms:
            self._handler(room_id, payload)

    async def publish(self, room_id: str, payload: bytes) -> None:
        self.publish_now(room_id, payload)

    async def subscribe(self, room_id: str) -> None:
        self._rooms.add(room_id)

    async def unsubscribe(self, room_id: str) -> None:
        self._rooms.discard(room_id)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._rooms.clear()
