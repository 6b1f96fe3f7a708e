"""The hub: this process's viewers per room, per-room batching and fan-out.

Room events arrive from the broker (every process subscribed to a room gets them) and
wait in the room's queue. A room with news is flushed once its window since its last
flush is over: at once (on the loop's next turn) when it was quiet, then at most once per
window while it stays busy; the window follows the cost of the room's fan-out pass (below
the tick for a small room, several ticks for a large one). The batch is encoded once per
codec, compressed once per deflate setting, framed once, and the same bytes are written to
every viewer's transport. Danmaku above the cap (per tick of elapsed time) are sampled;
everything else (priority) always goes out. Viewers whose write buffer is past the soft
limit skip danmaku; past the hard limit for longer than the grace period they are closed
with 4029.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from interact.floor.errors import Close
from interact.flush_window import Windowing, fit_window
from interact.likes import LikeLimiter
from interact.metrics import Metrics
from interact.outbound import Out, encode_outs
from interact.protocol import Codec
from interact.viewer import Viewer, build_frame, close_socket
from rooms.audience import AudienceRecorder, AudienceStore, Batch
from rooms.broker import CONTROL_ROOM, Broker
from rooms.danmaku_log import DanmakuLog, History
from rooms.presence import Presence
from rooms.stats import RoomStats

log = logging.getLogger("interact.hub")

# Flushes a welcomed viewer may wait for comments its history holds to come through.
PROMOTE_AFTER_FLUSHES = 3
# Time constant (s) of a room's arrival rate (LocalRoom.arrivals): a few seconds' memory.
RATE_TAU = 1.0


@dataclass(frozen=True, slots=True)
class HubConfig:
    tick_ms: int = 50
    danmaku_cap: int = 100
    soft_buffer_bytes: int = 256 * 1024
    hard_buffer_bytes: int = 4 * 1024 * 1024
    slow_grace: float = 5.0
    # A viewer that closed with 4100 (gone to the background) keeps its place this long.
    suspend_grace: float = 60.0
    online_interval: float = 2.0
    welcome_history: int = 50
    idle_timeout: float = 70.0
    # A room's window is its fan-out pass over this share, so that writing takes at most
    # that share of the time: frames/s, not comments, are the budget. Past the tick it
    # is whole ticks, up to max_window_ms; below (a small, quiet room: _adapt_window), at
    # least min_window_ms.
    fanout_share: float = 0.5
    max_window_ms: int = 150
    min_window_ms: float = 5.0
    # Quiet rooms flushed on the leading edge (Hub._schedule) instead of at the next tick;
    # off, the ticker alone flushes every room, as before issue 17.
    leading_edge: bool = True
    likes_per_s: int = 20  # per viewer per room, this process (interact.likes); 0 = no limit


@dataclass(slots=True)
class Place:
    """A suspended viewer's place in its room: still counted online until ``until``."""

    joined_at: float  # monotonic: its watch time carries on from here when it returns
    until: float  # monotonic
    # Monotonic start of its watch time as a place (rooms.audience): it counts from its
    # first suspension to its end (taken back, dropped, or ``until``). inf once handed
    # back to a returning connection, which counts from then on.
    since: float = 0.0


def expired_places(places: dict[str, Place], now: float) -> list[str]:
    """The uids whose place's grace is over (a place being taken back by a connection
    still joining is not: that connection came within the grace)."""
    return [uid for uid, place in places.items() if place.until <= now and place.since != math.inf]


class LocalRoom:
    """The viewers of one room in this process, and what waits for the next flush."""

    __slots__ = (
        "arrivals",
        "arrivals_at",
        "batching",
        "counts_at",
        "credit",
        "dm_count",
        "dm_tokens",
        "due",
        "epoch",
        "filling",
        "flushed_at",
        "groups",
        "id",
        "joining",
        "like_sent",
        "like_total",
        "max_seq",
        "next_at",
        "online",
        "online_sent",
        "parked",
        "pending_likes",
        "queue",
        "staff",
        "stock",
        "subscribed",
        "suspended",
        "tokens_at",
        "watch_at",
        "watch_s",
        "window",
    )

    def __init__(self, room_id: str) -> None:
        self.id = room_id
        self.groups: dict[tuple[Codec, int], set[Viewer]] = {}
        self.joining: set[Viewer] = set()
        # Staff connections among ``joining`` and ``groups`` (rooms.audience.is_staff):
        # they get the room's messages but are not of its audience. A few per room.
        self.staff: set[Viewer] = set()
        self.queue: list[Out] = []
        self.dm_count = 0
        self.max_seq = 0  # highest comment seq received from the broker
        self.epoch: str | None = None  # of the room's numbering, from the last welcome
        # A gap in the seqs is being filled from the history: comments wait in ``parked``.
        self.filling: asyncio.Task[None] | None = None
        self.parked: list[Out] = []
        self.like_total = 0
        self.like_sent = 0
        self.pending_likes = 0
        self.online = 0
        self.online_sent = 0
        self.stock: dict[str, int] = {}  # sale id -> latest stock left, until the next flush
        self.subscribed: asyncio.Future[None] | None = None
        self.window = 0.0  # seconds between this room's flushes (adaptive)
        self.next_at = 0.0  # monotonic time from which it may flush again
        self.flushed_at = -math.inf  # monotonic start of its last flush
        # Fan-out time a small room may still spend at once (Hub._adapt_window): refilled
        # at fanout_share of the time, at most the share of a tick.
        self.credit = math.inf
        self.batching = False  # per tick: too busy to flush each item on its own
        self.counts_at = -math.inf  # ... of its last flush that could carry like/stock/online
        # The danmaku cap as a bucket: danmaku_cap tokens a tick, at most danmaku_cap held.
        self.dm_tokens = -1.0  # full at the first flush
        self.tokens_at = 0.0
        # Its flush scheduled on the loop (Hub._schedule), when not left to the ticker.
        self.due: asyncio.Handle | None = None
        # Comments and priority events queued, decayed with RATE_TAU: about rate x tau.
        self.arrivals = 0.0
        self.arrivals_at = 0.0
        # uid -> its place kept while its app is in the background (Hub.suspend): one
        # per uid, so a user holds no more places than it had connections.
        self.suspended: dict[str, Place] = {}
        # Watch time (rooms.audience): connections, joining ones included, integrated
        # over time up to ``watch_at``, and not yet written (seconds). Places add theirs
        # when they end.
        self.watch_at = time.monotonic()
        self.watch_s = 0.0

    def accrue(self, now: float) -> None:
        """Bring the watch-time integral up to ``now``: called before every change to the
        room's connections, so it is exact without a timer or a per-viewer record."""
        n = sum(len(g) for g in self.groups.values()) + len(self.joining) - len(self.staff)
        if n and now > self.watch_at:
            self.watch_s += n * (now - self.watch_at)
        self.watch_at = max(self.watch_at, now)

    def end_place(self, place: Place, now: float) -> None:
        """A place ended (taken back, dropped, or its grace over): add its watch time."""
        self.watch_s += max(0.0, min(now, place.until) - place.since)
        place.since = math.inf

    def count(self) -> int:
        """Its audience online here: welcomed viewers and kept places, not staff."""
        staff = sum(1 for v in self.staff if v not in self.joining)
        return sum(len(g) for g in self.groups.values()) + len(self.suspended) - staff

    def joining_audience(self) -> int:
        return len(self.joining) - sum(1 for v in self.staff if v in self.joining)

    def empty(self) -> bool:
        return not self.joining and not self.suspended and not any(self.groups.values())

    def viewers(self) -> list[Viewer]:
        return [v for g in self.groups.values() for v in g]


class Hub:
    def __init__(
        self,
        *,
        broker: Broker,
        danmaku: DanmakuLog,
        presence: Presence,
        stats: RoomStats,
        add_likes: Callable[[str, int], Awaitable[int]],
        config: HubConfig,
        metrics: Metrics,
        node_id: str,
        audience: AudienceStore | None = None,
        recorder: AudienceRecorder | None = None,
    ) -> None:
        self.broker = broker
        # Exact audience counting (rooms.audience): marked here and by the services
        # without awaiting, written once per tick; None: kept nowhere.
        self.audience = audience
        self.recorder = recorder if recorder is not None else AudienceRecorder()
        self.danmaku = danmaku
        self.presence = presence
        self.stats = stats
        self._add_likes = add_likes
        self.likes = LikeLimiter(config.likes_per_s)
        self.config = config
        self.metrics = metrics
        self.node_id = node_id
        self.rooms: dict[str, LocalRoom] = {}
        self._dirty: set[str] = set()
        self._joins: dict[str, list[str]] = {}  # room -> uids joined since the last tick
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()
        self.draining = False
        # Messages on the control pseudo-room (bans, word lists) go here, not to viewers.
        self.on_control: Callable[[dict[str, Any]], None] | None = None
        broker.set_handler(self.on_message)
        broker.set_resync(self.resync)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.broker.subscribe(CONTROL_ROOM)
        self._loops = [
            asyncio.create_task(self._ticker(), name="hub-ticker"),
            asyncio.create_task(self._online_loop(), name="hub-online"),
            asyncio.create_task(self._idle_loop(), name="hub-idle"),
        ]

    async def shutdown(self, code: int = Close.GOING_AWAY) -> None:
        """Flush what is queued, then close every viewer so it reconnects elsewhere."""
        self.draining = True
        self.flush(force=True)
        viewers = [v for room in self.rooms.values() for v in [*room.viewers(), *room.joining]]
        closes = [close_socket(v.ws, v.transport, code, b"server shutting down") for v in viewers]
        for v in viewers:
            v.closing = True
        if closes:
            await asyncio.wait_for(asyncio.gather(*closes, return_exceptions=True), 10)

    async def close(self) -> None:
        self._closed = True
        for room in self.rooms.values():
            if room.due is not None:
                room.due.cancel()
                room.due = None
        for task in self._loops:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self._record_watch(time.monotonic())
        for room_id in list(self.rooms):
            with contextlib.suppress(Exception):
                await self.presence.report(room_id, self.node_id, 0, 1)

    # -- joining and leaving -------------------------------------------------

    async def join(
        self,
        viewer: Viewer,
        since: int | None,
        epoch: str | None,
        welcome: dict[str, Any],
        snapshot: Callable[[str], Awaitable[dict[str, Any]]] | None = None,
        *,
        staff: bool = False,
    ) -> History:
        """Register a viewer, send its welcome with history, then let it receive batches.

        A ``staff`` connection (``rooms.audience.is_staff``) gets everything a viewer
        does but counts in no audience figure, and takes or keeps no place.

        The viewer is registered (collecting batches in ``pending``) and the room
        subscribed *before* history is read, so nothing published in between is lost;
        pending comments the history already holds are dropped, so none arrives twice.
        """
        room = self.rooms.get(viewer.room_id)
        if room is None:
            room = self.rooms[viewer.room_id] = LocalRoom(viewer.room_id)
            self.metrics.rooms.set(len(self.rooms))
        viewer.pending = []
        place = None if staff else room.suspended.get(viewer.user.uid)
        now = time.monotonic()
        if place is not None:
            # Back from the background: its watch time runs from its first join. The
            # place itself is given up at promotion, so the count never dips meanwhile.
            viewer.joined_at = min(viewer.joined_at, place.joined_at)
            room.end_place(place, now)  # the joining connection counts from here
        room.accrue(now)
        room.joining.add(viewer)
        if staff:
            room.staff.add(viewer)
        try:
            if room.subscribed is None:
                room.subscribed = asyncio.ensure_future(self.broker.subscribe(room.id))
            if room.subscribed.done():
                room.subscribed.result()  # every joiner after the first: no shield to build
            else:
                await asyncio.shield(room.subscribed)
            history = await self.danmaku.history(room.id, since, epoch, self.config.welcome_history)
            returning = (
                sum(1 for v in room.joining if v.user.uid in room.suspended and v not in room.staff)
                if room.suspended  # a scan of every joining viewer, only when one may count
                else 0
            )
            online = max(
                await self.presence.total(room.id),
                room.count() + room.joining_audience() - returning,
            )
            if snapshot is not None:
                # Read after subscribing, like the history: nothing announced is missed.
                welcome.update(await snapshot(room.id))
        except BaseException:
            now = time.monotonic()
            room.accrue(now)
            room.joining.discard(viewer)
            room.staff.discard(viewer)
            if place is not None and room.suspended.get(viewer.user.uid) is place:
                place.since = min(now, place.until)  # still kept: it counts again
            viewer.pending = None
            sub = room.subscribed
            if sub is not None and sub.done() and (sub.cancelled() or sub.exception()):
                room.subscribed = None  # let the next joiner try to subscribe again
            raise
        room.epoch = history.epoch
        welcome.update(
            seq=history.seq,
            epoch=history.epoch,
            online=online,
            recovered=history.recovered,
            history=[orjson.loads(item) for item in history.items],
        )
        viewer.send([Out({"t": "welcome", **welcome})])
        viewer.seen_seq = history.seq
        # Promotion waits for a flush: comments in the history may still be on their way
        # through the broker (another connection than the history read); they reach the
        # viewer's pending list and are filtered out there, not sent twice.
        self._dirty.add(room.id)
        return history

    def _promote(self, room: LocalRoom, viewer: Viewer) -> None:
        """Move a welcomed viewer into the fan-out, sending what it has not seen."""
        seen = viewer.seen_seq or 0
        pending = [
            o for o in viewer.pending or ()
            if not (o.is_danmaku and o.obj.get("seq", 0) <= seen)
        ]  # fmt: skip
        viewer.pending = None
        room.joining.discard(viewer)
        room.groups.setdefault(viewer.variant, set()).add(viewer)
        place = None
        if viewer not in room.staff:
            place = room.suspended.pop(viewer.user.uid, None)  # it takes its own place back
        if place is not None:
            room.end_place(place, time.monotonic())
        self.metrics.connections.inc()
        if pending:
            viewer.send(pending)

    def leave(self, viewer: Viewer) -> None:
        if self._remove(viewer) and viewer.seen_seq is not None:
            self.recorder.add(viewer.room_id, "exits")

    def _remove(self, viewer: Viewer) -> bool:
        """Out of its room's fan-out; False when it was not in it (any more), or was
        staff (not of the audience: no exit to count)."""
        room = self.rooms.get(viewer.room_id)
        if room is None:
            return False
        now = time.monotonic()
        room.accrue(now)
        if viewer in room.staff:
            room.staff.discard(viewer)
            room.joining.discard(viewer)
            group = room.groups.get(viewer.variant)
            if group is not None and viewer in group:
                group.discard(viewer)
                self.metrics.connections.dec()
            return False
        removed = viewer in room.joining
        if removed:
            place = room.suspended.get(viewer.user.uid)
            if place is not None and place.since == math.inf:
                place.since = min(now, place.until)  # not taken back after all: it lapses
        room.joining.discard(viewer)
        group = room.groups.get(viewer.variant)
        if group is not None and viewer in group:
            group.discard(viewer)
            self.metrics.connections.dec()
            removed = True
        return removed

    def suspend(self, viewer: Viewer) -> None:
        """The viewer closed with 4100 (its app went to the background): out of the
        fan-out, but its place (online count, watch time) is kept for ``suspend_grace``
        seconds for the same uid to take back (``join``); the idle sweep drops it after."""
        room = self.rooms.get(viewer.room_id)
        staff = room is not None and viewer in room.staff
        removed = self._remove(viewer)
        grace = self.config.suspend_grace
        if room is None or grace <= 0 or viewer.seen_seq is None or staff:
            if removed and viewer.seen_seq is not None:
                self.recorder.add(viewer.room_id, "exits")
            return  # never welcomed, or staff: it had no place to keep
        now = time.monotonic()
        until = now + grace
        place = room.suspended.get(viewer.user.uid)
        if place is None:
            room.suspended[viewer.user.uid] = Place(viewer.joined_at, until, now)
        elif place.since == math.inf:  # handed to a connection that has just left again
            place.joined_at = min(place.joined_at, viewer.joined_at)
            place.until = until
            place.since = now
        else:  # a second connection of the same user: still one place
            place.joined_at = min(place.joined_at, viewer.joined_at)
            place.until = until

    def local_count(self, room_id: str) -> int:
        room = self.rooms.get(room_id)
        return 0 if room is None else room.count()

    # -- inbound events --------------------------------------------------------

    def on_message(self, room_id: str, payload: bytes) -> None:
        """Broker handler: queue one room event for the next flush."""
        room = self.rooms.get(room_id)
        if room is None and room_id != CONTROL_ROOM:
            return
        try:
            out = Out.from_json(payload)
        except orjson.JSONDecodeError:
            log.warning("dropped an undecodable broker message for room %s", room_id)
            return
        if room is None:
            if self.on_control is not None:
                self.on_control(out.obj)
            return
        if "to" in out.obj:
            self._send_to_roles(room, out)
            return
        if out.is_danmaku and self._gap_before(room, out):
            return
        self._queue(room, out)

    def _queue(self, room: LocalRoom, out: Out) -> None:
        kind = out.kind
        if kind == "like":
            room.like_total = max(room.like_total, int(out.obj.get("total", 0)))
        elif kind == "stock" and isinstance(out.obj.get("id"), str):
            room.stock[out.obj["id"]] = int(out.obj.get("left", 0))  # latest wins
        else:
            room.queue.append(out)
            now = time.monotonic()
            room.arrivals = room.arrivals * math.exp((room.arrivals_at - now) / RATE_TAU) + 1
            room.arrivals_at = now
            if out.is_danmaku:
                room.dm_count += 1
                seq = out.obj.get("seq")
                if isinstance(seq, int) and seq > room.max_seq:
                    room.max_seq = seq
        self._dirty.add(room.id)
        if room.due is None and room.queue:
            # Comments and priority events; like and stock totals wait for the ticker.
            self._schedule(room)

    # -- gaps in the numbering ----------------------------------------------------

    def _gap_before(self, room: LocalRoom, out: Out) -> bool:
        """Park ``out`` if comments before it were lost; True when parked.

        Comments are numbered and published in one step, so the broker delivers a room's
        seqs in order; a jump means some were lost on the way (the pub/sub connection
        dropped and came back). They are read back from the history before the rest is
        let through, so viewers get every comment, in order.
        """
        if room.filling is not None:
            room.parked.append(out)
            return True
        seq = out.obj.get("seq")
        if isinstance(seq, int) and room.max_seq and seq > room.max_seq + 1:
            room.parked.append(out)
            self._fill(room, room.max_seq)
            return True
        return False

    def resync(self) -> None:
        """The broker's subscriptions came back after a loss: read what was missed."""
        for room in self.rooms.values():
            # Nothing came through the broker yet: the viewers' welcomes say where they are.
            since = room.max_seq or min((v.seen_seq or 0 for v in room.viewers()), default=0)
            if room.filling is None and since:
                self._fill(room, since)

    def _fill(self, room: LocalRoom, since: int) -> None:
        room.filling = asyncio.ensure_future(self._read_gap(room, since))
        self._tasks.add(room.filling)
        room.filling.add_done_callback(self._tasks.discard)

    async def _read_gap(self, room: LocalRoom, since: int) -> None:
        missed: list[Out] = []
        try:
            for attempt in range(5):
                try:
                    history = await self.danmaku.history(
                        room.id, since, room.epoch, self.config.welcome_history
                    )
                    break
                except Exception:
                    log.warning("reading a gap of room %s failed", room.id, exc_info=True)
                    await asyncio.sleep(0.2 * 2**attempt)
            else:
                history = None
            if history is not None and history.recovered:
                missed = [Out.from_json(item) for item in history.items]
            elif history is not None:
                log.warning("room %s: a gap after seq %d is past the history", room.id, since)
            self.metrics.gap_fills.inc()
        finally:
            room.filling = None
            parked, room.parked = room.parked, []
            seen = room.max_seq
            for out in [*missed, *parked]:
                seq = out.obj.get("seq")
                if out.is_danmaku and isinstance(seq, int):
                    if seq <= seen:
                        continue  # in the history and on the wire both: once is enough
                    seen = seq
                self._queue(room, out)

    def _send_to_roles(self, room: LocalRoom, out: Out) -> None:
        """A message for some roles only (staff alerts): rare, so sent one by one."""
        roles = out.obj.get("to")
        if not isinstance(roles, list):
            return
        uids = out.obj.get("uids")
        if isinstance(uids, list):
            # For some users (a report's outcome to its reporters): each gets it without
            # the list of the others.
            uids = set(uids)
            out = Out({k: v for k, v in out.obj.items() if k != "uids"})
        else:
            uids = set()

        # A role reaches only the room's staff (rooms.audience.is_staff): an anchor
        # watching another anchor's room is a viewer there.
        def meant_for(viewer: Viewer) -> bool:
            return viewer.user.uid in uids or (
                viewer.user.role.value in roles and viewer in room.staff
            )

        for viewer in room.viewers():
            if meant_for(viewer):
                viewer.send([out])
        for viewer in room.joining:
            if viewer.pending is not None and meant_for(viewer):
                viewer.pending.append(out)  # sent right after its welcome

    def close_user(self, uid: str, code: int, message: bytes) -> int:
        """Close every connection of ``uid`` in this process; returns how many."""
        closed = 0
        for room in self.rooms.values():
            place = room.suspended.pop(uid, None)  # a banned user is not kept counted either
            if place is not None:
                room.end_place(place, time.monotonic())
                self.recorder.add(room.id, "exits")
            for viewer in [*room.viewers(), *room.joining]:
                if viewer.user.uid == uid:
                    viewer.close(code, message)
                    closed += 1
        return closed

    def count_join(self, room_id: str, uid: str) -> None:
        """Count a view for the room's stats; written once per tick, not per join (a task
        per handshake was a tenth of a join's time in a reconnect storm)."""
        self._joins.setdefault(room_id, []).append(uid)
        room = self.rooms.get(room_id)
        self.recorder.mark(room_id, "watch", uid)
        if room is None or uid not in room.suspended:
            # A connection taking its place back (a resume within the grace) is the same
            # watch, not a new view.
            self.recorder.add(room_id, "watch_pv")

    def add_like(self, room_id: str, uid: str, n: int) -> None:
        """Count a viewer's likes up to its per-second limit (the excess is dropped and
        counted); they are added to the room's total once per tick."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        granted = self.likes.take(room_id, uid, n, time.monotonic())
        if granted < n:
            self.metrics.likes_dropped.inc(n - granted)
        room.pending_likes += granted
        if granted:
            # Staff (a few per room) like for the room's total, not among its likers.
            if not any(v.user.uid == uid for v in room.staff):
                self.recorder.mark(room_id, "like", uid)
            self.recorder.add(room_id, "likes", granted)

    # -- the tick --------------------------------------------------------------

    async def _ticker(self) -> None:
        interval = self.config.tick_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + interval, loop.time())
            try:
                self.flush()
                self._flush_counts()
            except Exception:  # one bad tick must not stop the room's delivery
                log.exception("flush failed")

    def flush(self, *, force: bool = False) -> None:
        dirty, self._dirty = self._dirty, set()
        now = time.monotonic()
        for room_id in dirty:
            room = self.rooms.get(room_id)
            if room is None:
                continue
            if now < room.next_at and not force:
                self._dirty.add(room_id)  # its window is not over yet
                continue
            wrote = self._flush_room(room, now, tick=True)
            self._adapt_window(room, now, wrote)

    def _schedule(self, room: LocalRoom) -> None:
        """Flush a room with news as soon as its window allows, without waiting for the
        ticker: at once (the loop's next turn, so what arrives in the same turn goes in
        the same frame) when its last flush is older than a tick and its window, at the
        end of its window when that is shorter than the tick. A busy room with a window
        of a tick or more is left to the ticker, as before."""
        loop = self._loop
        if loop is None or self._closed or not self.config.leading_edge:
            return  # not started (or not asked for): the ticker flushes it
        now = time.monotonic()
        tick = self.config.tick_ms / 1000
        if now >= room.flushed_at + max(tick, room.window):
            room.due = loop.call_soon(self._flush_due, room)
        elif room.window < tick:
            delay = max(0.0, room.next_at - now)
            room.due = loop.call_later(delay, self._flush_due, room)

    def _flush_due(self, room: LocalRoom) -> None:
        room.due = None
        if self._closed or self.rooms.get(room.id) is not room or room.id not in self._dirty:
            return  # gone, or the ticker flushed it meanwhile
        now = time.monotonic()
        if now < room.next_at:
            self._schedule(room)  # the ticker flushed it and news came after
            return
        self._dirty.discard(room.id)
        try:
            wrote = self._flush_room(room, now)
            self._adapt_window(room, now, wrote)
        except Exception:  # like a bad tick: the next news schedules it again
            log.exception("flush failed")

    @property
    def _windowing(self) -> Windowing:
        c = self.config  # read per flush: tests replace the config of a running hub
        return Windowing(c.tick_ms, c.fanout_share, c.min_window_ms, c.max_window_ms)

    def _adapt_window(self, room: LocalRoom, started: float, wrote: bool = True) -> None:
        """Fit a room's window to its fan-out pass (``interact.flush_window``). A flush
        that wrote nothing (it only let joined viewers in) may lengthen the window but not
        shorten it: its pass says nothing of the room's size."""
        cfg = self.config
        tick = cfg.tick_ms / 1000
        spent = time.monotonic() - started
        self.metrics.fanout_pass.observe(spent)
        last, room.flushed_at = room.flushed_at, started
        rate = room.arrivals * math.exp((room.arrivals_at - started) / RATE_TAU) / RATE_TAU
        fit = fit_window(self._windowing, spent, rate, room.credit, started - last, room.batching)
        window, room.credit, room.batching = fit
        if not wrote:
            window = max(window, room.window)
        if max(window, tick) != max(room.window, tick):
            # The gauge shows windows of a tick or more: updated when one of those changes,
            # not on every flush of a small room.
            room.window = window
            self.metrics.room_window.set(max(max(r.window, tick) for r in self.rooms.values()))
        room.window = window
        # A window of ticks ends half a tick early: the ticker wakes on tick boundaries, a
        # hair late or early. A shorter one is kept by the loop's timer (Hub._schedule).
        room.next_at = started + window - (tick / 2 if window >= tick else 0.0)

    def _take_batch(self, room: LocalRoom, now: float) -> list[Out]:
        outs, room.queue = room.queue, []
        n_dm, room.dm_count = room.dm_count, 0
        # The cap is a budget per tick of time, not per flush: flushes closer together
        # than the tick share it, so a viewer gets no more danmaku a second than before,
        # and a burst of up to the cap still goes out whole.
        tick = self.config.tick_ms / 1000
        full = self.config.danmaku_cap
        if room.dm_tokens < 0:
            room.dm_tokens = full
        else:
            room.dm_tokens = min(full, room.dm_tokens + full * (now - room.tokens_at) / tick)
        room.tokens_at = now
        cap = int(room.dm_tokens)
        room.dm_tokens -= min(n_dm, cap)
        if n_dm > cap:
            keep = set(random.sample(range(n_dm), cap))
            sampled: list[Out] = []
            i = 0
            for o in outs:
                if o.is_danmaku:
                    if i in keep:
                        sampled.append(o)
                    i += 1
                else:
                    sampled.append(o)
            outs = sampled
            self.metrics.danmaku_dropped.inc(n_dm - cap)
        # Like, stock and online stay coalesced per tick whatever the window (a tenth of
        # slack for the ticker's jitter); until then they wait, the room kept dirty.
        if now - room.counts_at < 0.9 * tick:
            if room.like_total > room.like_sent or room.stock or room.online != room.online_sent:
                self._dirty.add(room.id)
            return outs
        room.counts_at = now
        if room.like_total > room.like_sent:
            room.like_sent = room.like_total
            outs.append(Out({"t": "like", "total": room.like_total}))
        if room.stock:
            outs.extend(Out({"t": "stock", "id": i, "left": n}) for i, n in room.stock.items())
            room.stock = {}
        if room.online != room.online_sent:
            room.online_sent = room.online
            outs.append(Out({"t": "online", "count": room.online}))
        return outs

    def _flush_room(self, room: LocalRoom, now: float, *, tick: bool = False) -> bool:
        """One flush; True when it wrote to the viewers (a pass to fit the window to).
        ``tick``: by the ticker (the flushes a welcomed viewer waits for its history's
        comments are counted in ticks, whatever the room's window)."""
        outs = self._take_batch(room, now)
        welcomed = []
        for v in room.joining:
            if v.pending is not None:
                v.pending.extend(outs)
            if v.seen_seq is not None:
                welcomed.append(v)
        if outs:
            self._fanout(room, outs, now)
        for v in welcomed:
            if room.max_seq >= (v.seen_seq or 0) or v.waited >= PROMOTE_AFTER_FLUSHES:
                self._promote(room, v)
            else:
                # Older comments only come from before this process subscribed: wait a
                # few ticks for any still in flight, then let the viewer in regardless.
                if tick:
                    v.waited += 1
                self._dirty.add(room.id)
        return bool(outs)

    def _fanout(self, room: LocalRoom, outs: list[Out], now: float) -> None:
        has_dm = False
        now_ms = time.time() * 1000
        for o in outs:
            if o.is_danmaku:
                has_dm = True
                ts = o.obj.get("ts")
                if isinstance(ts, int):
                    self.metrics.comment_latency.observe(max(0.0, now_ms - ts) / 1000)
        self.metrics.batch_size.observe(len(outs))
        priority = [o for o in outs if not o.is_danmaku] if has_dm else outs
        cfg = self.config
        frames = bytes_out = 0
        to_close: list[Viewer] = []
        for (codec, wbits), viewers in room.groups.items():
            if not viewers:
                continue
            payload = encode_outs(outs, codec)
            full = build_frame(payload, codec, wbits)
            prio: bytes | None = None
            for v in viewers:
                transport = v.transport
                if v.closing or transport.is_closing():
                    continue
                size = transport.get_write_buffer_size()
                if size <= cfg.soft_buffer_bytes:
                    v.slow_since = None
                    transport.write(full)
                    frames += 1
                    bytes_out += len(full)
                    continue
                if size <= cfg.hard_buffer_bytes:
                    v.slow_since = None  # the grace counts continuous time past the hard limit
                elif v.slow_since is None:
                    v.slow_since = now
                elif now - v.slow_since > cfg.slow_grace:
                    to_close.append(v)
                    continue
                if not has_dm:
                    data = full
                elif priority:
                    self.metrics.slow_skipped.inc()
                    if prio is None:
                        prio = build_frame(encode_outs(priority, codec), codec, wbits)
                    data = prio
                else:
                    self.metrics.slow_skipped.inc()
                    continue
                transport.write(data)
                frames += 1
                bytes_out += len(data)
        for v in to_close:
            self.metrics.slow_closed.inc()
            log.info("closing slow viewer %s in room %s", v.user.uid, room.id)
            v.close(Close.TOO_SLOW, b"too slow")
        self.metrics.frames_out.inc(frames)
        self.metrics.bytes_out.inc(bytes_out)

    def _flush_counts(self) -> None:
        """Write the tick's joins and likes: one step per room, not one per viewer."""
        if self._joins:
            joins, self._joins = self._joins, {}
            for room_id, uids in joins.items():
                self._spawn(self._count_joins(room_id, uids))
        for room in self.rooms.values():
            if room.pending_likes:
                n, room.pending_likes = room.pending_likes, 0
                self._spawn(self._send_likes(room.id, n))
            if room.watch_s >= 0.001:  # a leave or a place's end since the last tick
                self._take_watch(room)
        if len(self.recorder):
            self._spawn(self._record(self.recorder.take()))

    def _take_watch(self, room: LocalRoom) -> None:
        ms = int(room.watch_s * 1000)
        room.watch_s -= ms / 1000  # the fraction of a millisecond waits for the next
        self.recorder.add(room.id, "watch_ms", ms)

    async def _record_watch(self, now: float) -> None:
        """Bring every room's watch time up to ``now`` and write all that is pending."""
        for room in self.rooms.values():
            room.accrue(now)
            self._take_watch(room)
        await self._record(self.recorder.take())

    async def _record(self, batches: list[Batch]) -> None:
        if self.audience is None or not batches:
            return
        try:
            await self.audience.record(batches)
        except Exception:
            log.warning("could not record %d audience batches", len(batches), exc_info=True)

    async def _count_joins(self, room_id: str, uids: list[str]) -> None:
        try:
            await self.stats.joined(room_id, uids)
        except Exception:
            log.warning("could not count %d joins of room %s", len(uids), room_id, exc_info=True)

    async def _send_likes(self, room_id: str, n: int) -> None:
        try:
            await self._add_likes(room_id, n)
        except Exception:
            log.warning("could not add %d likes to room %s", n, room_id, exc_info=True)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- online counts and idle rooms -------------------------------------------

    async def _online_loop(self) -> None:
        interval = self.config.online_interval
        ttl_ms = int(interval * 3 * 1000)
        while True:
            await asyncio.sleep(interval)
            # Before the reports: a room's online total read 0 means its watch time is in.
            await self._record_watch(time.monotonic())
            for room in list(self.rooms.values()):
                if room.empty():
                    await self._drop_room(room)
                    continue
                try:
                    total = await self.presence.report(room.id, self.node_id, room.count(), ttl_ms)
                    await self.stats.observe_online(room.id, total)
                except Exception:
                    log.warning("online count of room %s failed", room.id, exc_info=True)
                    continue
                if total != room.online:
                    room.online = total
                    self._dirty.add(room.id)

    async def _idle_loop(self) -> None:
        """Close viewers silent for ``idle_timeout`` (4008), and those whose write buffer
        stays past the hard limit for ``slow_grace`` (4029) even when their room is quiet
        and no fan-out looks at them; a few times per timeout or grace. Suspended places
        past their grace are dropped here too (no timer per suspension).

        One sweep instead of a timer per read: a timer per connection costs half a
        kilobyte and a heap operation on every frame received.
        """
        cfg = self.config
        while True:
            # A floor: a grace or timeout of 0 must not make this a busy loop.
            await asyncio.sleep(max(0.1, min(cfg.idle_timeout / 4, cfg.slow_grace,
                                             cfg.suspend_grace or 5.0, 5.0)))  # fmt: skip
            now = time.monotonic()
            cutoff = now - cfg.idle_timeout
            for room in list(self.rooms.values()):
                for uid in expired_places(room.suspended, now):
                    # It did not come back: the next count drops; its watch ended at until.
                    room.end_place(room.suspended.pop(uid), now)
                    self.recorder.add(room.id, "exits")
                for viewer in [*room.viewers(), *room.joining]:
                    if viewer.closing:
                        continue
                    if viewer.last_seen < cutoff:
                        self.metrics.idle_closed.inc()
                        viewer.close(Close.IDLE, b"idle timeout")
                    elif self._stuck(viewer, now):
                        self.metrics.slow_closed.inc()
                        log.info("closing stuck viewer %s in room %s", viewer.user.uid, room.id)
                        viewer.close(Close.TOO_SLOW, b"too slow")

    def _stuck(self, viewer: Viewer, now: float) -> bool:
        """The fan-out's hard-limit rule for a viewer no batch has looked at lately."""
        if viewer.transport.get_write_buffer_size() <= self.config.hard_buffer_bytes:
            viewer.slow_since = None
            return False
        if viewer.slow_since is None:
            viewer.slow_since = now
            return False
        return now - viewer.slow_since > self.config.slow_grace

    async def _drop_room(self, room: LocalRoom) -> None:
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            self.metrics.rooms.set(len(self.rooms))
        try:
            await self.broker.unsubscribe(room.id)
            await self.presence.report(room.id, self.node_id, 0, 1)
        except Exception:
            log.warning("could not release room %s", room.id, exc_info=True)
