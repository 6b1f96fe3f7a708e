"""Audience: exact per-room audience sets and counters for the live dashboard.

Contract of an ``AudienceStore`` (both engines, any number of processes on Redis):

- ``record(batches)`` applies each ``Batch``: every uid in ``marks[s]`` joins the room's
  set ``s`` (a member once, however often marked); every ``counts[c]`` is added to the
  room's total of ``c`` and to its minute ``minute`` (Unix minutes). A uid that joins a
  set for the first time is also counted in that minute as ``new:<s>``, so new-watch UV
  per window is exact and additive. One batch is one atomic step on the room (one Lua
  script on the room's slot); uids are first interned to dense integers (one Lua step on
  the deployment's interning hash, cached per process, never reassigned) so a set is a
  bitmap of about one bit per interned uid.
- ``read(room_id, first_minute, last_minute)`` answers a ``Snapshot``: the totals, the
  exact size of every set, the sizes of the funnel's intersections (``PAIRS``) and the
  counters of each minute in the range (inclusive; absent minutes read as empty).
- ``claim_events(room_id, uid, event_ids, ttl_ms)`` answers, per id, whether it is new for
  that user in that room, and remembers the new ones for ``ttl_ms``: a retried client
  event batch is counted once. Memory per remembered id is bounded by the TTL.
- ``minutes(room_id, first_minute, last_minute)`` answers only the per-minute counters
  (and gauges) of the range: the series and the alert rules need no set.
- ``sample(room_id, minute, online)`` sets the minute's ``online`` gauge to ``online``
  and raises its ``online_peak`` to it (``GAUGES``).
- Per-minute counters and the room's sets and totals expire ``retention_ms`` after
  their last write (default ``RETENTION_MS``); ``retain(room_id, first_minute,
  last_minute, until_ms)`` moves the expiry of all of them (the minutes in the range) to
  ``until_ms``: the room's end plus the retention, called once the room has ended. The
  memory engine keeps everything for the life of the process.

Everything else here is pure: the names (``SETS``, ``COUNTERS``), the per-tick
accumulator ``AudienceRecorder`` that producers call without awaiting, and the formulas of
``docs/analytics.md`` (``analytics``), so that the REST answer, the console and alerts use
one computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

MINUTE_MS = 60_000
WINDOW_MINUTES = 10
# How long a room's audience data outlives its last write (the default retention).
RETENTION_MS = 7 * 24 * 3600 * 1000

# Audience sets: uids that did something in the room at least once.
SETS: tuple[str, ...] = (
    "watch",  # joined the room (a WebSocket welcome)
    "comment",  # had a comment accepted
    "like",  # had a like counted
    "grab",  # grabbed a red-packet share
    "lottery",  # entered a lottery
    "order",  # reserved an order
    "buyer",  # paid an order
    "exposure",  # client event: the room was shown to them
    "product_view",  # client event: a product was shown to them
    "product_click",  # client event: they clicked a product
    "share_open",  # client event: they opened the room from a share
    "stay",  # one visit lasted ``stay_seconds`` (interact/stay.py): the funnel's stay step
)

# Additive counters, kept for the whole live and per minute.
COUNTERS: tuple[str, ...] = (
    "watch_pv",  # joins, a resume within the suspend grace not counted again
    "exits",  # leaves, and suspended places whose grace ran out
    "watch_ms",  # integral of the online count over time, ms
    "comments",
    "likes",
    "grabs",
    "grab_fen",
    "lottery_entries",
    "orders",
    "order_fen",
    "paid_orders",
    "gmv_fen",
    "refunds",
    "refund_fen",
    "exposure_pv",
    "product_view_pv",
    "product_click_pv",
    "share_open_pv",
    "refused_comments",  # comments moderation refused (alerts: refused_spike)
    "pay_attempts",  # asks to pay an order (alerts: pay_failures)
    "pay_failures",  # ... that failed (WeChat Pay refused or could not be reached)
    "pay_unavailable",  # ... that failed because WeChat Pay could not be reached
)

# Gauges per minute, written by the room's alert evaluator (one process: the lease):
# ``online`` is the minute's last sample of the online count, ``online_peak`` its largest.
GAUGES: tuple[str, ...] = ("online", "online_peak")

# Funnel steps measured on intersections: (earlier set, later set).
PAIRS: tuple[tuple[str, str], ...] = (
    ("exposure", "watch"),
    ("product_view", "product_click"),
    ("product_click", "order"),
    ("order", "buyer"),
)

# What a client may post to ``/rooms/{id}/events``: its type -> (set, counter).
CLIENT_EVENTS: dict[str, tuple[str, str]] = {
    "exposure": ("exposure", "exposure_pv"),
    "product_view": ("product_view", "product_view_pv"),
    "product_click": ("product_click", "product_click_pv"),
    "share_open": ("share_open", "share_open_pv"),
}

# Per-product figures (product = sale id): the steps a product's buyers go through, each
# a set of uids and a counter of the same name; ``order_fen`` and ``gmv_fen`` add money.
ITEM_STEPS: tuple[str, ...] = ("view", "click", "order", "paid")
ITEM_COUNTERS: tuple[str, ...] = (*ITEM_STEPS, "order_fen", "gmv_fen")
# Products counted per room: the store drops the events of further ones (the events API
# refuses them first, with a clear error), so a room's keys stay bounded.
MAX_ITEMS = 200

_SET_INDEX = {name: i for i, name in enumerate(SETS)}
_COUNTER_SET = frozenset(COUNTERS)
_ITEM_STEP_SET = frozenset(ITEM_STEPS)
_ITEM_COUNTER_SET = frozenset(ITEM_COUNTERS)
_ITEM_FEN = {"order": "order_fen", "paid": "gmv_fen"}


def is_staff(role: str, uid: str, room_anchor: str | None) -> bool:
    """Whether a connection is staff in its room, and so not one of its audience.

    Staff are counted nowhere an audience is (online, the peak, watch PV/UV, watch
    time, entries and exits) but still get the room's messages. An operator is staff in
    every room; an anchor only in the room it runs: watching another anchor's room, it
    is a viewer there like anyone else. Judged from the token's role when the
    connection joins.
    """
    return role == "operator" or (role == "anchor" and uid == room_anchor)


def now_ms() -> int:
    return int(time.time() * 1000)


def minute_of(ms: int) -> int:
    return ms // MINUTE_MS


def new_key(set_name: str) -> str:
    """The per-minute counter of uids that joined ``set_name`` for the first time."""
    return f"new:{set_name}"


def pair_key(a: str, b: str) -> str:
    return f"{a}&{b}"


@dataclass(frozen=True, slots=True)
class Batch:
    """What one process saw in one room during one minute, since its last flush."""

    room_id: str
    minute: int
    marks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    # Per product (sale id): step -> uids (``ITEM_STEPS``), counter -> amount.
    item_marks: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    item_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemSnapshot:
    """One product's figures: ``counts`` per ``ITEM_COUNTERS``, exact ``uv`` per step."""

    counts: Mapping[str, int]
    uv: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Snapshot:
    totals: Mapping[str, int]
    uv: Mapping[str, int]
    pairs: Mapping[str, int]
    minutes: Mapping[int, Mapping[str, int]]


class AudienceStore(Protocol):
    async def record(self, batches: Sequence[Batch]) -> None: ...

    async def read(self, room_id: str, first_minute: int, last_minute: int) -> Snapshot: ...

    async def claim_events(
        self, room_id: str, uid: str, event_ids: Sequence[str], ttl_ms: int
    ) -> list[bool]: ...

    async def minutes(
        self, room_id: str, first_minute: int, last_minute: int
    ) -> dict[int, dict[str, int]]: ...

    async def sample(self, room_id: str, minute: int, online: int) -> None: ...

    async def items(self, room_id: str) -> list[str]: ...

    async def products(self, room_id: str) -> dict[str, ItemSnapshot]: ...

    async def retain(
        self, room_id: str, first_minute: int, last_minute: int, until_ms: int
    ) -> None: ...


def check_batch(batch: Batch) -> None:
    """``ValueError`` for a set or counter this module does not define, or a negative count."""
    for name in batch.marks:
        if name not in _SET_INDEX:
            raise ValueError(f"audience: unknown set {name!r}")
    for name, n in batch.counts.items():
        if name not in _COUNTER_SET:
            raise ValueError(f"audience: unknown counter {name!r}")
        if n < 0:
            raise ValueError(f"audience: counter {name} must not go down ({n})")
    for steps in batch.item_marks.values():
        for name in steps:
            if name not in _ITEM_STEP_SET:
                raise ValueError(f"audience: unknown product step {name!r}")
    for counts in batch.item_counts.values():
        for name, n in counts.items():
            if name not in _ITEM_COUNTER_SET or n < 0:
                raise ValueError(f"audience: bad product counter {name!r} ({n})")


# -- the per-tick accumulator ----------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    marks: dict[str, set[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    item_marks: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    item_counts: dict[str, dict[str, int]] = field(default_factory=dict)


class AudienceRecorder:
    """Collects marks and counts in memory (no I/O, no await: the hot paths call it) until
    ``take`` hands them over as one ``Batch`` per room and minute."""

    __slots__ = ("_clock", "_pending")

    def __init__(self, clock: Callable[[], int] = now_ms) -> None:
        self._clock = clock
        self._pending: dict[tuple[str, int], _Tally] = {}

    def _tally(self, room_id: str, at_ms: int | None) -> _Tally:
        key = (room_id, minute_of(self._clock() if at_ms is None else at_ms))
        tally = self._pending.get(key)
        if tally is None:
            tally = self._pending[key] = _Tally()
        return tally

    def mark(self, room_id: str, set_name: str, uid: str, *, at_ms: int | None = None) -> None:
        if set_name not in _SET_INDEX:
            raise ValueError(f"audience: unknown set {set_name!r}")
        self._tally(room_id, at_ms).marks.setdefault(set_name, set()).add(uid)

    def add(self, room_id: str, counter: str, n: int = 1, *, at_ms: int | None = None) -> None:
        if counter not in _COUNTER_SET:
            raise ValueError(f"audience: unknown counter {counter!r}")
        if n < 0:
            raise ValueError(f"audience: counter {counter} must not go down ({n})")
        if n:
            counts = self._tally(room_id, at_ms).counts
            counts[counter] = counts.get(counter, 0) + n

    def item(
        self, room_id: str, item: str, step: str, uid: str, fen: int = 0, *,
        at_ms: int | None = None,
    ) -> None:  # fmt: skip
        """One step of a product (sale id): ``uid`` joins the step's set, its counter
        adds one, and an order or a payment adds ``fen`` to ``order_fen`` / ``gmv_fen``."""
        if step not in _ITEM_STEP_SET:
            raise ValueError(f"audience: unknown product step {step!r}")
        if fen < 0:
            raise ValueError(f"audience: product money must not go down ({fen})")
        tally = self._tally(room_id, at_ms)
        tally.item_marks.setdefault(item, {}).setdefault(step, set()).add(uid)
        counts = tally.item_counts.setdefault(item, {})
        counts[step] = counts.get(step, 0) + 1
        money = _ITEM_FEN.get(step)
        if money is not None and fen:
            counts[money] = counts.get(money, 0) + fen

    def take(self) -> list[Batch]:
        pending, self._pending = self._pending, {}
        return [
            Batch(
                room_id,
                minute,
                {s: tuple(u) for s, u in t.marks.items()},
                dict(t.counts),
                {i: {s: tuple(u) for s, u in m.items()} for i, m in t.item_marks.items()},
                {i: dict(c) for i, c in t.item_counts.items()},
            )
            for (room_id, minute), t in pending.items()
            if t.marks or t.counts or t.item_marks
        ]

    def __len__(self) -> int:
        return len(self._pending)


# -- the formulas (docs/analytics.md) -----------------------------------------------------


def ratio(part: int, whole: int) -> float:
    """``part / whole`` to 4 decimals; 0.0 when there is nothing to divide by."""
    return round(part / whole, 4) if whole else 0.0


def div_round(a: int, b: int) -> int:
    """``a / b`` rounded half up, in integers (money stays integer fen); 0 for ``b == 0``."""
    return (2 * a + b) // (2 * b) if b > 0 else 0


def change(current: int, previous: int) -> float | None:
    """Relative change of a window against the one before; None when that one was 0."""
    return round((current - previous) / previous, 4) if previous else None


def window_ranges(now_minute: int, size: int = WINDOW_MINUTES) -> tuple[range, range]:
    """The last ``size`` minutes (this one included) and the ``size`` before them."""
    current = range(now_minute - size + 1, now_minute + 1)
    return current, range(now_minute - 2 * size + 1, now_minute - size + 1)


WINDOW_FIELDS: tuple[str, ...] = (
    *COUNTERS,
    *(new_key(s) for s in SETS),
)


def window_sum(minutes: Mapping[int, Mapping[str, int]], span: range) -> dict[str, int]:
    """Every per-minute counter summed over ``span``."""
    out = dict.fromkeys(WINDOW_FIELDS, 0)
    for m in span:
        for name, n in minutes.get(m, {}).items():
            if name in out:
                out[name] += n
    return out


def _window_view(w: Mapping[str, int]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "watch_pv": w["watch_pv"],
        "new_watch_uv": w[new_key("watch")],
        "entries": w["watch_pv"],
        "exits": w["exits"],
        "watch_seconds": w["watch_ms"] // 1000,
        "comments": w["comments"],
        "new_comment_uv": w[new_key("comment")],
        "likes": w["likes"],
        "new_like_uv": w[new_key("like")],
        "grabs": w["grabs"],
        "lottery_entries": w["lottery_entries"],
        "orders": w["orders"],
        "paid_orders": w["paid_orders"],
        "new_buyer_uv": w[new_key("buyer")],
        "gmv_fen": w["gmv_fen"],
        "refund_fen": w["refund_fen"],
        "exposure_pv": w["exposure_pv"],
        "new_exposure_uv": w[new_key("exposure")],
        "new_stay_uv": w[new_key("stay")],
        "product_click_pv": w["product_click_pv"],
        "gpm_fen": div_round(w["gmv_fen"] * 1000, w["watch_pv"]),
    }
    return view


def product_view(item: str, p: ItemSnapshot) -> dict[str, Any]:
    """One product's funnel (docs/analytics.md, "Products"): each rate is the next
    step's UV over this step's UV, as WeChat's product exposure -> click -> pay."""
    n = {name: int(p.counts.get(name, 0)) for name in ITEM_COUNTERS}
    uv = {step: int(p.uv.get(step, 0)) for step in ITEM_STEPS}
    return {
        "item": item,
        "view_pv": n["view"],
        "view_uv": uv["view"],
        "click_pv": n["click"],
        "click_uv": uv["click"],
        "click_rate": ratio(uv["click"], uv["view"]),
        "orders": n["order"],
        "order_uv": uv["order"],
        "order_fen": n["order_fen"],
        "click_order_rate": ratio(uv["order"], uv["click"]),
        "paid_orders": n["paid"],
        "buyer_uv": uv["paid"],
        "gmv_fen": n["gmv_fen"],
        "order_pay_rate": ratio(uv["paid"], uv["order"]),
    }


def products_view(products: Mapping[str, ItemSnapshot]) -> list[dict[str, Any]]:
    """Every product's funnel, the largest GMV first (then by id: a stable order)."""
    views = [product_view(item, p) for item, p in products.items()]
    return sorted(views, key=lambda v: (-v["gmv_fen"], v["item"]))


def analytics(
    snap: Snapshot, *, online: int, pcu: int, now_minute: int,
    products: Mapping[str, ItemSnapshot] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The dashboard's figures from a snapshot (names and formulas of docs/analytics.md)."""
    t = {name: int(snap.totals.get(name, 0)) for name in COUNTERS}
    uv = {name: int(snap.uv.get(name, 0)) for name in SETS}
    pair = {pair_key(a, b): int(snap.pairs.get(pair_key(a, b), 0)) for a, b in PAIRS}
    watch_uv = uv["watch"]
    watch_pv = t["watch_pv"]
    gmv = t["gmv_fen"]
    enter_uv = pair[pair_key("exposure", "watch")]
    viewed_clicked = pair[pair_key("product_view", "product_click")]
    clicked_ordered = pair[pair_key("product_click", "order")]
    ordered_paid = pair[pair_key("order", "buyer")]
    current, previous = window_ranges(now_minute)
    cur = _window_view(window_sum(snap.minutes, current))
    prev = _window_view(window_sum(snap.minutes, previous))
    return {
        "watch_pv": watch_pv,
        "watch_uv": watch_uv,
        "online": online,
        "pcu": pcu,
        "exits": t["exits"],
        "total_watch_seconds": t["watch_ms"] // 1000,
        "avg_watch_seconds": round(t["watch_ms"] / 1000 / watch_uv, 1) if watch_uv else 0.0,
        "comments": t["comments"],
        "comment_uv": uv["comment"],
        "comment_rate": ratio(uv["comment"], watch_uv),
        "likes": t["likes"],
        "like_uv": uv["like"],
        "like_rate": ratio(uv["like"], watch_uv),
        "grabs": t["grabs"],
        "grab_fen": t["grab_fen"],
        "grab_uv": uv["grab"],
        "grab_rate": ratio(uv["grab"], watch_uv),
        "lottery_entries": t["lottery_entries"],
        "lottery_uv": uv["lottery"],
        "lottery_rate": ratio(uv["lottery"], watch_uv),
        "exposure_pv": t["exposure_pv"],
        "exposure_uv": uv["exposure"],
        "exposure_enter_uv": enter_uv,
        "exposure_enter_rate": ratio(enter_uv, uv["exposure"]),
        "stay_uv": uv["stay"],
        "stay_rate": ratio(uv["stay"], watch_uv),
        "product_view_pv": t["product_view_pv"],
        "product_view_uv": uv["product_view"],
        "product_click_pv": t["product_click_pv"],
        "product_click_uv": uv["product_click"],
        "product_click_rate": ratio(viewed_clicked, uv["product_view"]),
        "orders": t["orders"],
        "order_fen": t["order_fen"],
        "order_uv": uv["order"],
        "click_order_rate": ratio(clicked_ordered, uv["product_click"]),
        "paid_orders": t["paid_orders"],
        "buyer_uv": uv["buyer"],
        "order_pay_rate": ratio(ordered_paid, uv["order"]),
        "pay_rate": ratio(uv["buyer"], watch_uv),
        "gmv_fen": gmv,
        "refunds": t["refunds"],
        "refund_fen": t["refund_fen"],
        "gpm_fen": div_round(gmv * 1000, watch_pv),
        "uv_value_fen": div_round(gmv, watch_uv),
        "share_open_pv": t["share_open_pv"],
        "share_open_uv": uv["share_open"],
        "funnel": [
            {"step": "exposure", "uv": uv["exposure"]},
            {"step": "enter", "uv": enter_uv},
            {"step": "stay", "uv": uv["stay"]},
            {"step": "product_view", "uv": uv["product_view"]},
            {"step": "product_click", "uv": viewed_clicked},
            {"step": "order", "uv": clicked_ordered},
            {"step": "pay", "uv": uv["buyer"]},
        ],
        "products": products_view(products or {}),
        "last_10_min": {
            "from_minute": current.start,
            "to_minute": current.stop - 1,
            "current": cur,
            "previous": prev,
            "change": {k: change(cur[k], prev[k]) for k in cur if isinstance(cur[k], int)},
        },
    }
