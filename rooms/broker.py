"""Broker: cross-process publish/subscribe of room events.

Contract:
- ``publish(room, payload)`` delivers ``payload`` (the JSON bytes of one server message)
  to the handler of every process subscribed to ``room``, the publisher included.
- Messages published to one room reach each subscriber in the order the broker accepted
  them. Danmaku are appended and published in one atomic step (see ``DanmakuLog``), so
  subscribers see them in sequence order even with many publishing processes.
- ``subscribe`` and ``unsubscribe`` are idempotent; a process receives only the rooms
  it subscribed to.
- The handler is a plain function called on the event loop; it must not block.
- A broker that can lose messages (a pub/sub connection that drops and comes back) calls
  the resync callback once its subscriptions are back, so the subscriber can read what
  it missed from the danmaku history; one that never loses any never calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Handler = Callable[[str, bytes], None]
Resync = Callable[[], None]

# A pseudo-room every process subscribes to, for messages to all processes (bans, word
# lists). Generated room ids start with "r", so it never names a real room.
CONTROL_ROOM = "_control"


class Broker(Protocol):
    def set_handler(self, handler: Handler) -> None: ...

    def set_resync(self, callback: Resync) -> None: ...

    async def publish(self, room_id: str, payload: bytes) -> None: ...

    async def subscribe(self, room_id: str) -> None: ...

    async def unsubscribe(self, room_id: str) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
