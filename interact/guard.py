"""Deadlines for a connection served by aiohttp, until it is welcomed or between requests.

aiohttp times nothing but the idle time between requests (its keep-alive timeout) and
lets a client trickle a head or a body for as long as it likes. ``Guard`` sits between
the transport and aiohttp's request handler, forwards everything, and follows the
connection's HTTP stages (``interact.http_stages``) to hold each to a deadline:

- a request head — the first from the accept, every later one from its first byte —
  must be in within ``head_timeout``;
- a body within ``body_timeout`` of its head;
- after an upgrade request, the connection must be welcomed (``Edge.welcomed``) within
  ``welcome_timeout``: a refused upgrade leaves aiohttp's parser waiting for WebSocket
  frames that no handler reads.

The last two get a second of grace: where a handler keeps the same deadline itself
(``interact.api.common.body``'s 408, ``ws_handler``'s close 1011), its answer goes first.

Between requests there is no deadline of ours: aiohttp's keep-alive timeout applies, and
bytes do not reset it. A deadline missed closes the connection. ``Guard`` also tells
``Edge`` when the connection ends.
"""

from __future__ import annotations

import asyncio

from interact.context import Context
from interact.http_stages import RequestStages, Stage

# How much later than a handler's own deadline (body, welcome) the connection is cut.
GRACE_S = 1.0


class Guard(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind deadlines."""

    __slots__ = ("_ctx", "_inner", "_stages", "_timer", "_transport")

    def __init__(self, ctx: Context, inner: asyncio.Protocol, head_deadline: float) -> None:
        self._ctx = ctx
        self._inner = inner
        self._stages = RequestStages()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_at(
            head_deadline, self._expired, Stage.HEAD
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        stages = self._stages
        moves = stages.moves
        stages.feed(data)
        if stages.moves != moves:
            self._arm(stages.stage)
        self._inner.data_received(data)

    def _arm(self, stage: Stage) -> None:
        """A new stage began: its deadline replaces the last one's."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        cfg = self._ctx.config
        if stage is Stage.HEAD:
            delay = cfg.head_timeout
        elif stage is Stage.BODY:
            delay = cfg.body_timeout + GRACE_S
        elif stage is Stage.UPGRADED:
            delay = cfg.welcome_timeout + GRACE_S
        else:
            return  # idle: aiohttp's keep-alive timeout
        self._timer = asyncio.get_running_loop().call_later(delay, self._expired, stage)

    def _expired(self, stage: Stage) -> None:
        self._timer = None
        transport = self._transport
        if transport is None:
            return
        if stage is Stage.UPGRADED and not self._ctx.edge.waiting(transport):
            return  # welcomed: a WebSocket now, timed by the hub
        self._ctx.metrics.deadline_closed.labels(stage.value).inc()
        transport.abort()  # not close(): that waits for a peer that may never read

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self._transport
        self._transport = None
        if transport is not None:
            self._ctx.edge.closed(transport)
        self._inner.connection_lost(exc)
