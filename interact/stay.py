"""The funnel's stay step: a viewer whose one visit has lasted ``stay_seconds``.

A visit runs from the viewer's join to its leave by the server's own clock; a place kept
after a 4100 close (app in the background) is the same visit, and a resume within the
grace carries its start on (``Viewer.joined_at``, ``Place.joined_at``), as watch time
does (docs/analytics.md). Staff are not audience and never stay.

This process looks at its own viewers every ``CHECK_S`` and marks, once per connection
or place, those whose visit is at least ``stay_seconds`` old (``stay`` set of
``rooms.audience``, written by the hub's recorder with the rest at the next tick). It
reads the hub's rooms and changes nothing in them, so the hub's join and leave paths pay
nothing. Granularity: a visit that lasted at least ``stay_seconds + CHECK_S`` is always
counted; one that ended within ``CHECK_S`` after reaching ``stay_seconds`` may not be.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rooms.audience import AudienceRecorder

if TYPE_CHECKING:
    from interact.hub import Hub
    from interact.viewer import Viewer

log = logging.getLogger("interact.stay")

CHECK_S = 0.5  # seconds between two looks at this process's viewers
PRUNE_EVERY = 20  # looks between two clean-ups of the connections already marked


class StayWatch:
    """Marks the viewers of this process that have stayed; one per process."""

    def __init__(
        self,
        hub: Hub,
        recorder: AudienceRecorder,
        stay_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._recorder = recorder
        self._stay_s = stay_s
        self._clock = clock
        # room -> the connections already marked, and the uids of places already marked.
        # A look takes the room's connections less those (a set difference, at C speed),
        # so a room whose viewers have all been marked costs no Python step per viewer;
        # every PRUNE_EVERY looks the connections gone are forgotten. A uid marked again
        # (a second connection) changes nothing.
        self.seen: dict[str, set[Viewer]] = {}
        self.seen_places: dict[str, set[str]] = {}
        self._looks = 0

    def check(self) -> int:
        """One look at every room of this process; returns how many it marked."""
        now = self._clock()
        cutoff = now - self._stay_s
        n = 0
        rooms = self._hub.rooms
        mark = self._recorder.mark
        self._looks += 1
        prune = self._looks % PRUNE_EVERY == 0
        for room_id, room in rooms.items():
            seen = self.seen.setdefault(room_id, set())
            if prune:  # forget the connections gone since the last clean-up
                seen.intersection_update(set().union(*room.groups.values()))
            for group in room.groups.values():
                for viewer in group - seen:
                    if viewer.joined_at <= cutoff and viewer not in room.staff:
                        mark(room_id, "stay", viewer.user.uid)
                        seen.add(viewer)
                        n += 1
            places = self.seen_places.get(room_id, set())
            places &= room.suspended.keys()
            for uid in room.suspended.keys() - places:
                place = room.suspended[uid]
                # A place past its grace but not yet dropped ended at ``until``.
                if place.joined_at <= min(now, place.until) - self._stay_s:
                    mark(room_id, "stay", uid)
                    places.add(uid)
                    n += 1
            self.seen_places[room_id] = places
        for gone in [r for r in self.seen if r not in rooms]:
            del self.seen[gone]
            self.seen_places.pop(gone, None)
        return n

    async def run(self, interval: float = CHECK_S) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.check()
            except Exception:  # a bug here must not stop the counting for good
                log.warning("stay check failed", exc_info=True)
