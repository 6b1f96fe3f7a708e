"""How long a room waits between flushes (the hub's window): a pure rule, no I/O.

Writing one frame costs a system call per viewer whatever it holds, so a room's window
is fitted to its fan-out pass: writing takes at most ``share`` of the time. A room of
10,000 viewers flushed every 50 ms would spend the whole core writing; flushed every
100 ms it sends half the frames with twice the comments in each. A room of a thousand
writes in a few milliseconds: it may flush again well before the tick, at once while the
pass time it spent lately leaves it credit within its share (random arrivals come in
clumps, and a clump of a few comments goes out a pass apart instead of each waiting for a
window its predecessor opened). Flushing each item on its own costs rate x pass, so a
room goes below the tick only while that fits the share; a busy room batches per tick
(more frames would split the same comments, at more CPU for the same deliveries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Windowing:
    tick_ms: int
    share: float
    min_window_ms: float
    max_window_ms: int

    @property
    def budget(self) -> float:
        """Seconds of pass a room may spend per tick (and the most credit it holds)."""
        return self.share * self.tick_ms / 1000


class Fit(NamedTuple):
    window: float  # seconds after this flush began that the room may flush again
    credit: float  # seconds of pass it holds now
    batching: bool  # per tick (its items are too many to flush each on its own)


# A room starts batching per tick when flushing each item on its own would take this much
# more than its share, and stops when that fits the share again: its rate is an estimate
# (decayed over a second), and random arrivals near the line would flip it every few
# flushes, sending a comment now at once, now a tick later.
ENTER_BATCHING = 1.25


def fit_window(
    w: Windowing, spent: float, rate: float, credit: float, gap: float, batching: bool
) -> Fit:
    """The window after a flush whose pass took ``spent`` seconds, ``gap`` seconds after
    the previous flush began, in a room receiving ``rate`` items a second, holding
    ``credit`` seconds of pass before it (``math.inf`` at first), batching per tick or
    not (``batching``)."""
    tick = w.tick_ms / 1000
    budget = w.budget
    load = rate * spent
    batching = load > w.share * (1.0 if batching else ENTER_BATCHING)
    if spent < budget and not batching:
        credit = min(budget, credit + w.share * gap) - spent
        return Fit(max(w.min_window_ms / 1000, -credit / w.share), credit, False)
    if spent < budget:
        return Fit(tick, 0.0, True)
    ticks = max(1, min(math.ceil(spent / budget), max(1, w.max_window_ms // w.tick_ms)))
    return Fit(ticks * tick, 0.0, True)
