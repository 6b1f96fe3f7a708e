"""``/rooms/{id}/events`` (client events for the dashboard), ``/rooms/{id}/analytics``
(figures and per-minute series, JSON or CSV) and ``/rooms/{id}/alerts`` (alerts and the
room's rule overrides).

Definitions and formulas: docs/analytics.md; the counting itself is ``rooms.audience``.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from interact.api.access import staff_room
from interact.api.common import body, caller, ctx, json_response, query_int
from interact.floor.errors import BadRequest, Conflict, RateLimited
from interact.floor.numbers import ascii_int
from rooms.alerts import AlertRules, check_overrides
from rooms.audience import (
    CLIENT_EVENTS,
    MAX_ITEMS,
    MINUTE_MS,
    WINDOW_MINUTES,
    analytics,
    minute_of,
)

routes = web.RouteTableDef()

MAX_EVENTS = 100  # per request
MAX_EVENTS_BODY_BYTES = 32 * 1024
MAX_EVENT_ID_LEN = 64
MAX_ITEM_LEN = 64
MAX_SHARE_TOKEN_LEN = 128
# Per user and room, over every process (the moderation GCRA on the engine): a client
# flushing a batch every few seconds stays far below it.
EVENTS_PER_S = 20.0
EVENTS_BURST = 200
# A retried batch within this long is recognised by its event ids and counted once.
DEDUPE_TTL_MS = 10 * 60 * 1000
_EVENT_FIELDS = frozenset({"id", "type", "item", "share_token"})
# Client events that name a product (``item``: a sale id of the room) and its step.
ITEM_STEP_OF = {"product_view": "view", "product_click": "click"}
# Invite figures (growth) copied into the analytics answer.
INVITE_FIELDS = ("invited_uv", "inviters", "k_factor", "invited_buyers", "invited_gmv_fen")


def _token_ok(value: object, max_len: int) -> bool:
    """A non-empty string of printable ASCII without spaces, at most ``max_len`` long."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= max_len
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def parse_events(data: dict[str, Any]) -> list[tuple[str, str]]:
    """``(id, type)`` of every event, or ``BadRequest`` naming the first bad field."""
    events = data.get("events")
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        raise BadRequest(f"'events' must be a list of 1 to {MAX_EVENTS} events")
    extra = set(data) - {"events"}
    if extra:
        raise BadRequest(f"unknown field '{sorted(extra)[0][:40]}'")
    out = []
    for i, event in enumerate(events):
        where = f"events[{i}]"
        if not isinstance(event, dict):
            raise BadRequest(f"'{where}' must be an object")
        unknown = set(event) - _EVENT_FIELDS
        if unknown:
            raise BadRequest(f"unknown field '{where}.{sorted(unknown)[0][:40]}'")
        if not _token_ok(event.get("id"), MAX_EVENT_ID_LEN):
            raise BadRequest(
                f"'{where}.id' must be 1 to {MAX_EVENT_ID_LEN} printable ASCII characters"
            )
        kind = event.get("type")
        if kind not in CLIENT_EVENTS:
            raise BadRequest(f"'{where}.type' must be one of {', '.join(CLIENT_EVENTS)}")
        if "item" in event and not _token_ok(event["item"], MAX_ITEM_LEN):
            raise BadRequest(
                f"'{where}.item' must be 1 to {MAX_ITEM_LEN} printable ASCII characters"
            )
        if "item" in event and kind not in ITEM_STEP_OF:
            raise BadRequest(f"'{where}.item' belongs to {' and '.join(ITEM_STEP_OF)} only")
        token = event.get("share_token")
        if kind == "share_open" and not _token_ok(token, MAX_SHARE_TOKEN_LEN):
            raise BadRequest(
                f"'{where}.share_token' is required for share_open: 1 to "
                f"{MAX_SHARE_TOKEN_LEN} printable ASCII characters"
            )
        if kind != "share_open" and token is not None:
            raise BadRequest(f"'{where}.share_token' belongs to share_open events only")
        out.append((event["id"], kind))
    return out


@routes.post("/rooms/{room_id}/events")
async def post_events(request: web.Request) -> web.Response:
    user = caller(request)
    c = ctx(request)
    room = await c.service.get(request.match_info["room_id"])
    data = await body(request, MAX_EVENTS_BODY_BYTES)
    events = parse_events(data)
    now = int(time.time() * 1000)
    decision = await c.engine.limiter.rate_limit(
        room.id, f"events:{user.uid}", now, EVENTS_PER_S, EVENTS_BURST, cost=len(events)
    )
    if not decision.allowed:
        raise RateLimited(
            f"too many client events: at most {EVENTS_PER_S:g} a second per user "
            f"(bursts of {EVENTS_BURST})",
            retry_after_ms=decision.retry_after_ms,
        )
    items = await _check_items(request, room.id, data["events"])
    fresh = await c.engine.audience.claim_events(
        room.id, user.uid, [event_id for event_id, _ in events], DEDUPE_TTL_MS
    )
    recorder = c.hub.recorder
    accepted = 0
    for (_, kind), item, new in zip(events, items, fresh, strict=True):
        if new:
            set_name, counter = CLIENT_EVENTS[kind]
            recorder.mark(room.id, set_name, user.uid, at_ms=now)
            recorder.add(room.id, counter, at_ms=now)
            if item is not None:
                recorder.item(room.id, item, ITEM_STEP_OF[kind], user.uid, at_ms=now)
            accepted += 1
    if c.growth is not None:
        # Invite attribution (docs/growth.md): a share_open names the inviter's token.
        for raw, (_, kind), new in zip(data["events"], events, fresh, strict=True):
            if new and kind == "share_open":
                await c.growth.invites.open(room.id, user.uid, raw["share_token"])
    return json_response({"accepted": accepted, "duplicates": len(events) - accepted}, 202)


async def _check_items(
    request: web.Request, room_id: str, raw: list[dict[str, Any]]
) -> list[str | None]:
    """Each event's product, checked: a sale of this room, and within the products a room
    counts (``MAX_ITEMS``): ``BadRequest`` / ``Conflict`` naming the first that is not."""
    items: list[str | None] = [e.get("item") if e["type"] in ITEM_STEP_OF else None for e in raw]
    named = set(filter(None, items))
    if not named:
        return items
    c = ctx(request)
    known = set(await c.engine.audience.items(room_id))
    for item in sorted(named - known):
        view = await c.engine.sales.get(item)
        if view is None or view.sale.room_id != room_id:
            raise BadRequest(f"'item' {item!r} is not a sale of this room")
    if len(known | named) > MAX_ITEMS:
        raise Conflict(f"at most {MAX_ITEMS} products are counted per room")
    return items


@routes.get("/rooms/{room_id}/analytics")
async def get_analytics(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    c = ctx(request)
    now = int(time.time() * 1000)
    minute = minute_of(now)
    snap = await c.engine.audience.read(room.id, minute - 2 * WINDOW_MINUTES + 1, minute)
    products = await c.engine.audience.products(room.id)
    online = await c.engine.presence.total(room.id)
    peak = (await c.engine.stats.get(room.id))["peak_online"]
    figures = analytics(
        snap, online=online, pcu=max(peak, online), now_minute=minute, products=products
    )
    # Invite figures come from growth (docs/growth.md); rooms does not know growth, so
    # the application layer adds them here. Zero when growth is off.
    invites: dict[str, Any] = dict.fromkeys(INVITE_FIELDS, 0)
    invites["k_factor"] = 0.0
    if c.growth is not None:
        report = await c.growth.invites.report(room.id)
        invites = {name: report[name] for name in INVITE_FIELDS}
    return json_response(
        {"room": room.id, "status": room.status.value, "at": now, **figures, **invites}
    )


# -- per-minute series ------------------------------------------------------------------

# Metric -> the per-minute field it reads (rooms.audience). Gauges (online) are None for
# a minute nobody sampled; counters are 0.
SERIES: dict[str, str] = {
    "online": "online",
    "online_peak": "online_peak",
    "entries": "watch_pv",
    "exits": "exits",
    "new_watch_uv": "new:watch",
    "comments": "comments",
    "likes": "likes",
    "grabs": "grabs",
    "orders": "orders",
    "paid_orders": "paid_orders",
    "gmv_fen": "gmv_fen",
    "refund_fen": "refund_fen",
    "refused_comments": "refused_comments",
}
_GAUGES = frozenset({"online", "online_peak"})
MAX_SERIES_MINUTES = 1440  # one day of minutes per request: page longer rooms
DEFAULT_SERIES_MINUTES = 60
MAX_MS = 2**53  # JSON-safe


def _series_range(request: web.Request, now: int) -> tuple[int, int]:
    """``from``/``to`` (Unix ms, inclusive, both optional) as a range of minutes."""
    try:
        to_ms = ascii_int(request.query.get("to"), hi=MAX_MS) if "to" in request.query else now
        from_ms = (
            ascii_int(request.query.get("from"), hi=MAX_MS)
            if "from" in request.query
            else to_ms - (DEFAULT_SERIES_MINUTES - 1) * MINUTE_MS
        )
    except ValueError:
        raise BadRequest("'from' and 'to' must be Unix milliseconds") from None
    first, last = minute_of(max(0, from_ms)), minute_of(to_ms)
    if first > last:
        raise BadRequest("'from' must not be after 'to'")
    if last - first + 1 > MAX_SERIES_MINUTES:
        raise BadRequest(
            f"at most {MAX_SERIES_MINUTES} minutes per request (ask again for the next ones)"
        )
    return first, last


def _metrics(request: web.Request) -> list[str]:
    raw = request.query.get("metric")
    if raw is None:
        return list(SERIES)
    names = [n.strip() for n in raw.split(",")]
    if not raw or len(names) > len(SERIES) or any(n not in SERIES for n in names):
        raise BadRequest(f"'metric' must be one or more of {', '.join(SERIES)} (comma-separated)")
    return list(dict.fromkeys(names))


def _wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt is not None and fmt not in ("json", "csv"):
        raise BadRequest("'format' must be json or csv")
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("Accept", "")


@routes.get("/rooms/{room_id}/analytics/series")
async def get_series(request: web.Request) -> web.StreamResponse:
    _, room = await staff_room(request)
    c = ctx(request)
    metrics = _metrics(request)
    as_csv = _wants_csv(request)
    first, last = _series_range(request, int(time.time() * 1000))
    found = await c.engine.audience.minutes(room.id, first, last)
    rows = []
    for m in range(first, last + 1):
        counters = found.get(m, {})
        row: dict[str, Any] = {"minute": m, "at": m * MINUTE_MS}
        for name in metrics:
            value = counters.get(SERIES[name])
            row[name] = value if value is not None or name in _GAUGES else 0
        rows.append(row)
    if not as_csv:
        return json_response(
            {"room": room.id, "from_minute": first, "to_minute": last, "metrics": metrics,
             "points": rows}
        )  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["minute", "time", *metrics])
    for row in rows:
        at = datetime.fromtimestamp(row["at"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        writer.writerow([row["minute"], at, *("" if row[n] is None else row[n] for n in metrics)])
    name = f"{room.id}-series-{first}-{last}.csv"  # room ids are [A-Za-z0-9_-]
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- alerts -------------------------------------------------------------------------------

MAX_ALERTS_LISTED = 500
MAX_RULES_BODY_BYTES = 4 * 1024


@routes.get("/rooms/{room_id}/alerts")
async def get_alerts(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    c = ctx(request)
    limit = query_int(request, "limit", lo=1, hi=MAX_ALERTS_LISTED, default=100)
    active = request.query.get("active", "0")
    if active not in ("0", "1"):
        raise BadRequest("'active' must be 0 or 1")
    found = await c.engine.alerts.alerts(room.id, limit, active_only=active == "1")
    return json_response({"room": room.id, "alerts": [a.to_dict() for a in found]})


async def _rules_view(request: web.Request, room_id: str) -> dict[str, Any]:
    c = ctx(request)
    defaults = c.alerts.defaults if c.alerts is not None else AlertRules()
    overrides = await c.engine.alerts.rules(room_id)
    try:
        effective = defaults.with_overrides(overrides)
    except ValueError:
        effective = defaults
    return {"room": room_id, "overrides": overrides, "rules": effective.to_dict()}


@routes.get("/rooms/{room_id}/alerts/rules")
async def get_alert_rules(request: web.Request) -> web.Response:
    _, room = await staff_room(request)
    return json_response(await _rules_view(request, room.id))


@routes.put("/rooms/{room_id}/alerts/rules")
async def put_alert_rules(request: web.Request) -> web.Response:
    """Replace the room's overrides (``{}`` returns to the deployment's defaults)."""
    _, room = await staff_room(request)
    c = ctx(request)
    data = await body(request, MAX_RULES_BODY_BYTES)
    defaults = c.alerts.defaults if c.alerts is not None else AlertRules()
    try:
        overrides = check_overrides(data)
        defaults.with_overrides(overrides)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    stored = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    await c.engine.alerts.set_rules(room.id, stored)
    return json_response(await _rules_view(request, room.id))
