"""Per-process admission at the edge: connections per address, connections not yet welcomed.

A connection is counted from ``open`` (the TCP accept) until ``closed``; it stays
"unwelcomed" until ``welcomed`` (its WebSocket welcome is out) or until it is closed. Plain
HTTP requests never leave the unwelcomed state: they are short, and a client that keeps
many of them half-sent is exactly what the cap is for.

Both caps protect the process, not the service: a deployment behind a proxy that hides
the client's address sees one address for everyone and should set the per-address cap
to 0 (NAT in carrier networks also puts many real viewers behind one address, so the
default is generous).
"""

from __future__ import annotations

from collections.abc import Hashable


class Edge:
    """Counts open connections per address and those not yet welcomed."""

    __slots__ = ("_by_address", "_conns", "_unwelcomed", "max_per_address", "max_unwelcomed")

    def __init__(self, max_per_address: int, max_unwelcomed: int) -> None:
        self.max_per_address = max_per_address
        self.max_unwelcomed = max_unwelcomed
        self._by_address: dict[str, int] = {}
        self._conns: dict[Hashable, str] = {}  # connection -> its address
        self._unwelcomed: set[Hashable] = set()

    def open(self, conn: Hashable, address: str) -> str | None:
        """Count a new connection; the reason it is refused ("address", "unwelcomed"),
        or None when it is admitted. A refused connection is not counted."""
        if conn in self._conns:
            return None
        if self.max_unwelcomed and len(self._unwelcomed) >= self.max_unwelcomed:
            return "unwelcomed"
        n = self._by_address.get(address, 0)
        if self.max_per_address and n >= self.max_per_address:
            return "address"
        self._by_address[address] = n + 1
        self._conns[conn] = address
        self._unwelcomed.add(conn)
        return None

    def welcomed(self, conn: Hashable) -> None:
        self._unwelcomed.discard(conn)

    def waiting(self, conn: Hashable) -> bool:
        """True while the connection is open and not yet welcomed."""
        return conn in self._unwelcomed

    def closed(self, conn: Hashable) -> None:
        """Forget a connection (idempotent: any path that sees it end may call this)."""
        address = self._conns.pop(conn, None)
        self._unwelcomed.discard(conn)
        if address is None:
            return
        n = self._by_address[address] - 1
        if n:
            self._by_address[address] = n
        else:
            del self._by_address[address]

    @property
    def open_count(self) -> int:
        return len(self._conns)

    @property
    def unwelcomed_count(self) -> int:
        return len(self._unwelcomed)

    def count_from(self, address: str) -> int:
        return self._by_address.get(address, 0)
