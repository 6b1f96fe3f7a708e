"""Alert rules for a live room, as pure functions: no I/O, the time comes in the signals.

One evaluation takes the room's rules (the deployment's defaults with the room's
overrides), its state from the last evaluation and what was measured now (``Signals``),
and answers the new state and the alerts raised or cleared. The caller (the process that
holds the room's lease, ``interact/alerts_setup.py``) reads the signals and stores both.

Every rule yields, per subject, a reading: *hot* (raise), *calm* (may clear) or neither
(the band between the two thresholds). A track per rule and subject then applies the
same discipline to all of them (docs/analytics.md, "Alerts"):

- raised once: a hot reading raises only when no alert of that track is up, and not
  within ``cooldown_s`` of the track's previous raise (so a flapping signal raises at
  most once per cooldown: never a storm);
- cleared with hysteresis: only after ``hold_s`` of calm readings in a row (the calm
  threshold is below the raise threshold); a reading in the band restarts the hold;
- event alerts (``packet_emptied``) are hot once, then calm: they clear after
  ``notice_s``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rooms.audience import MINUTE_MS, WINDOW_MINUTES, minute_of, new_key

RULES: tuple[str, ...] = (
    "uv_drop",  # new-watch UV of the last 10 minutes down against the 10 before
    "online_drop",  # online down within a minute
    "refused_spike",  # refused comments (moderation) far above the room's baseline
    "pay_failures",  # payment attempts failing
    "pay_unavailable",  # WeChat Pay unreachable (breaker open, timeouts, 5xx)
    "sold_out",  # a sale on the shelf has no stock left (one alert per sale)
    "packet_emptied",  # a red packet's last share was grabbed (one alert per packet)
    # Raised from outside the rules (growth: WeChat refused a reminder's template setup,
    # one alert per errcode), stored by ``AlertStore.notice``; not cleared by a rule.
    "reminder_config",
)
SEVERITY: dict[str, str] = {
    "uv_drop": "warning",
    "online_drop": "critical",
    "refused_spike": "warning",
    "pay_failures": "critical",
    "pay_unavailable": "critical",
    "sold_out": "info",
    "packet_emptied": "info",
    "reminder_config": "warning",
}
# Tracks (rule and subject) a room keeps at once; past it new subjects are not raised.
MAX_TRACKS = 200
# Signals older than this are not kept for the online rule.
ONLINE_WINDOW_MS = 60_000
# Minutes of per-minute counters an evaluation needs (both 10-minute windows, whole).
MINUTES_NEEDED = 2 * WINDOW_MINUTES + 1


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Thresholds; every field may be overridden per room (``with_overrides``)."""

    uv_drop: float = 0.10  # raise at this fall of new-watch UV, window against window
    uv_clear: float = 0.05  # calm below this fall
    uv_min: int = 20  # new-watch UV the earlier window needs before the rule speaks
    online_drop: float = 0.20  # raise at this fall against the minute's peak
    online_clear: float = 0.10
    online_min: int = 20  # the minute's peak needed before the rule speaks
    refused_min: int = 10  # refused comments in a minute before it can be a spike
    refused_factor: float = 3.0  # ... and at least this many times the room's baseline
    pay_failures: int = 3  # failed payment attempts in two minutes before raising
    pay_share: float = 0.2  # ... and at least this share of the attempts
    hold_s: int = 60  # calm this long before an alert clears
    cooldown_s: int = 300  # a track raises at most once per this
    notice_s: int = 300  # an event alert (packet emptied) stays raised this long
    disabled: tuple[str, ...] = ()

    def with_overrides(self, overrides: Mapping[str, Any]) -> AlertRules:
        """These rules with ``overrides`` applied (``ValueError`` naming a bad field)."""
        return dataclasses.replace(self, **check_overrides(overrides)).checked()

    def checked(self) -> AlertRules:
        for lo, hi in (("uv_clear", "uv_drop"), ("online_clear", "online_drop")):
            if not getattr(self, lo) < getattr(self, hi):
                raise ValueError(f"{lo} must be below {hi} (the hysteresis band)")
        return self

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["disabled"] = list(self.disabled)
        return out


_FRACTIONS = frozenset({"uv_drop", "uv_clear", "online_drop", "online_clear", "pay_share"})
_COUNTS = frozenset({"uv_min", "online_min", "refused_min", "pay_failures"})
_SECONDS = frozenset({"hold_s", "cooldown_s", "notice_s"})
MAX_COUNT = 1_000_000
MAX_SECONDS = 7 * 24 * 3600


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides as typed values, or ``ValueError`` naming the first bad one."""
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        if name in _FRACTIONS:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not 0 < value < 1:
                raise ValueError(f"{name} must be a fraction between 0 and 1 (exclusive)")
            out[name] = float(value)
        elif name == "refused_factor":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not 1 <= value <= 1000:
                raise ValueError("refused_factor must be a number from 1 to 1000")
            out[name] = float(value)
        elif name in _COUNTS:
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COUNT:
                raise ValueError(f"{name} must be an integer from 1 to {MAX_COUNT}")
            out[name] = value
        elif name in _SECONDS:
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 0 <= value <= MAX_SECONDS
            ):
                raise ValueError(f"{name} must be whole seconds from 0 to {MAX_SECONDS}")
            out[name] = value
        elif name == "disabled":
            if not isinstance(value, list | tuple) or not all(v in RULES for v in value):
                raise ValueError(f"disabled must be a list of rules among {', '.join(RULES)}")
            out[name] = tuple(sorted(set(value)))
        else:
            raise ValueError(f"unknown alert setting {str(name)[:40]!r}")
    return out


def parse_overrides(text: str) -> dict[str, Any]:
    """``name=value,…`` (the config's ``alert_rules``; ``disabled=a+b``) as overrides."""
    out: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, eq, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not eq:
            raise ValueError(f"alert_rules: {item!r} is not name=value")
        if name == "disabled":
            out[name] = [r for r in raw.split("+") if r]
        elif name in _COUNTS or name in _SECONDS:
            out[name] = int(raw) if raw.isdigit() else raw
        else:
            try:
                out[name] = float(raw)
            except ValueError:
                out[name] = raw
    check_overrides(out)
    return out


@dataclass(frozen=True, slots=True)
class Signals:
    """What the evaluating process measured for the room at ``now_ms``."""

    now_ms: int
    online: int
    # Per-minute counters (rooms.audience) of at least the last ``MINUTES_NEEDED`` minutes.
    minutes: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    sold_out: frozenset[str] = frozenset()  # sales on the shelf with nothing left
    emptied: tuple[str, ...] = ()  # packets emptied since the last evaluation


@dataclass(frozen=True, slots=True)
class Reading:
    hot: bool
    calm: bool
    value: float = 0.0
    threshold: float = 0.0
    message: str = ""


CALM = Reading(hot=False, calm=True)


@dataclass(slots=True)
class Track:
    alert: str = ""  # id of the alert up now; "" when none is
    raised_at: int = 0  # ms of the last raise (0: never)
    calm_since: int = -1  # ms since when the readings are calm (-1: they are not)


@dataclass(slots=True)
class AlertState:
    """A room's rule state between evaluations (kept by the store, fenced by the lease)."""

    tracks: dict[str, Track] = field(default_factory=dict)
    online: list[tuple[int, int]] = field(default_factory=list)  # (ms, online) samples
    ledger_after: str = ""  # the last ledger entry read for emptied packets
    seq: int = 0  # alerts raised so far in the room: the next id

    def to_json(self) -> dict[str, Any]:
        return {
            "tracks": {k: [t.alert, t.raised_at, t.calm_since] for k, t in self.tracks.items()},
            "online": [list(s) for s in self.online],
            "ledger_after": self.ledger_after,
            "seq": self.seq,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertState:
        return cls(
            tracks={k: Track(str(a), int(r), int(c)) for k, (a, r, c) in data["tracks"].items()},
            online=[(int(ms), int(n)) for ms, n in data["online"]],
            ledger_after=str(data.get("ledger_after", "")),
            seq=int(data["seq"]),
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as stored and sent: raised, then (the same id) cleared."""

    id: str
    room: str
    rule: str
    subject: str
    state: str  # raised | cleared
    severity: str
    message: str
    value: float
    threshold: float
    raised_at: int
    cleared_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


# -- the readings ------------------------------------------------------------------


def _sum(minutes: Mapping[int, Mapping[str, int]], name: str, span: Iterable[int]) -> int:
    return sum(int(minutes.get(m, {}).get(name, 0)) for m in span)


def _pct(x: float) -> str:
    return f"{round(x * 100)}%"


def uv_drop(rules: AlertRules, s: Signals) -> Reading:
    """New-watch UV of the last 10 whole minutes against the 10 before (the minute under
    way is left out: half a minute would always look like a drop)."""
    m = minute_of(s.now_ms)
    cur = _sum(s.minutes, new_key("watch"), range(m - WINDOW_MINUTES, m))
    prev = _sum(s.minutes, new_key("watch"), range(m - 2 * WINDOW_MINUTES, m - WINDOW_MINUTES))
    if prev < rules.uv_min:
        return CALM
    fall = (prev - cur) / prev
    return Reading(
        fall >= rules.uv_drop, fall < rules.uv_clear, round(fall, 4), rules.uv_drop,
        f"new-watch UV of the last {WINDOW_MINUTES} minutes fell {_pct(fall)} against the "
        f"{WINDOW_MINUTES} before ({cur} against {prev})",
    )  # fmt: skip


def online_drop(rules: AlertRules, s: Signals, samples: list[tuple[int, int]]) -> Reading:
    """Online now against its peak over the last minute (the samples kept in the state)."""
    earlier = [n for ms, n in samples if s.now_ms - ONLINE_WINDOW_MS <= ms < s.now_ms]
    peak = max(earlier, default=0)
    if peak < rules.online_min:
        return CALM
    fall = max(0.0, (peak - s.online) / peak)
    return Reading(
        fall >= rules.online_drop, fall < rules.online_clear, round(fall, 4), rules.online_drop,
        f"online fell {_pct(fall)} within a minute ({peak} to {s.online})",
    )  # fmt: skip


def refused_spike(rules: AlertRules, s: Signals) -> Reading:
    """Refused comments in the last whole minute or the one under way (the larger),
    against the mean minute of the ten before them."""
    m = minute_of(s.now_ms)
    name = "refused_comments"
    recent = max(_sum(s.minutes, name, [m]), _sum(s.minutes, name, [m - 1]))
    baseline = _sum(s.minutes, name, range(m - 11, m - 1)) / 10
    bar = max(float(rules.refused_min), rules.refused_factor * baseline)
    return Reading(
        recent >= bar, recent < bar / 2, float(recent), bar,
        f"{recent} comments refused in a minute (the room's usual: {baseline:g} a minute)",
    )  # fmt: skip


def pay_failures(rules: AlertRules, s: Signals) -> Reading:
    """Failed payment attempts over the minute under way and the one before."""
    span = [minute_of(s.now_ms) - 1, minute_of(s.now_ms)]
    failed = _sum(s.minutes, "pay_failures", span)
    tried = _sum(s.minutes, "pay_attempts", span)
    share = failed / tried if tried else 0.0
    hot = failed >= rules.pay_failures and share >= rules.pay_share
    return Reading(
        hot, failed == 0, round(share, 4), rules.pay_share,
        f"{failed} of {tried} payment attempts failed in the last two minutes",
    )  # fmt: skip


def pay_unavailable(rules: AlertRules, s: Signals) -> Reading:
    span = [minute_of(s.now_ms) - 1, minute_of(s.now_ms)]
    n = _sum(s.minutes, "pay_unavailable", span)
    return Reading(
        n > 0, n == 0, float(n), 1.0,
        f"WeChat Pay unavailable: {n} payment attempts could not reach it in two minutes",
    )  # fmt: skip


def readings(
    rules: AlertRules, s: Signals, samples: list[tuple[int, int]]
) -> dict[tuple[str, str], Reading]:
    """Every reading of this evaluation, by (rule, subject); disabled rules read calm."""
    out: dict[tuple[str, str], Reading] = {
        ("uv_drop", ""): uv_drop(rules, s),
        ("online_drop", ""): online_drop(rules, s, samples),
        ("refused_spike", ""): refused_spike(rules, s),
        ("pay_failures", ""): pay_failures(rules, s),
        ("pay_unavailable", ""): pay_unavailable(rules, s),
    }
    for sale in sorted(s.sold_out):
        out[("sold_out", sale)] = Reading(True, False, 0.0, 0.0, f"sale {sale} is sold out")
    for packet in s.emptied:
        out[("packet_emptied", packet)] = Reading(
            True, False, 0.0, 0.0, f"red packet {packet} was emptied"
        )
    return {k: (CALM if k[0] in rules.disabled else r) for k, r in out.items()}


# -- one evaluation ----------------------------------------------------------------------


def track_key(rule: str, subject: str) -> str:
    return f"{rule}:{subject}" if subject else rule


def _split(key: str) -> tuple[str, str]:
    rule, _, subject = key.partition(":")
    return rule, subject


def evaluate(
    room_id: str, rules: AlertRules, state: AlertState, s: Signals
) -> tuple[AlertState, list[Alert]]:
    """The room's new state and the alerts raised or cleared at ``s.now_ms``."""
    now = s.now_ms
    samples = [(ms, n) for ms, n in state.online if now - ONLINE_WINDOW_MS <= ms < now]
    found = readings(rules, s, samples)
    tracks = {k: Track(t.alert, t.raised_at, t.calm_since) for k, t in state.tracks.items()}
    seq = state.seq
    out: list[Alert] = []
    keys = {track_key(r, sub): (r, sub) for r, sub in found}
    for key in tracks:
        keys.setdefault(key, _split(key))
    for key, (rule, subject) in sorted(keys.items()):
        reading = found.get((rule, subject), CALM)
        if rule == "packet_emptied" and (rule, subject) not in found:
            reading = CALM  # an event is hot once, then calm for ``notice_s``
        t = tracks.get(key)
        if t is None:
            if not reading.hot or len(tracks) >= MAX_TRACKS:
                continue
            t = tracks[key] = Track()
        if t.alert:
            if reading.calm:
                t.calm_since = now if t.calm_since < 0 else t.calm_since
                # An event alert stays up notice_s from its raise; a level one clears
                # after hold_s of calm in a row.
                if (
                    now - t.raised_at >= rules.notice_s * 1000
                    if rule == "packet_emptied"
                    else now - t.calm_since >= rules.hold_s * 1000
                ):
                    out.append(_alert(room_id, rule, subject, t.alert, "cleared", reading,
                                      t.raised_at, now))  # fmt: skip
                    t.alert, t.calm_since = "", -1
            else:
                t.calm_since = -1
        elif reading.hot and (t.raised_at == 0 or now - t.raised_at >= rules.cooldown_s * 1000):
            seq += 1
            t.alert, t.raised_at, t.calm_since = f"{room_id}.{seq}", now, -1
            out.append(_alert(room_id, rule, subject, t.alert, "raised", reading, now, None))
    # A calm track past its cooldown remembers nothing worth keeping.
    cooled = now - rules.cooldown_s * 1000
    for key in [k for k, t in tracks.items() if not t.alert and t.raised_at <= cooled]:
        del tracks[key]
    samples.append((now, s.online))
    return AlertState(tracks, samples, state.ledger_after, seq), out


def close_all(room_id: str, state: AlertState, now_ms: int) -> tuple[AlertState, list[Alert]]:
    """The room ended: every alert still up clears now (nothing is left to watch)."""
    tracks = {k: Track(t.alert, t.raised_at, t.calm_since) for k, t in state.tracks.items()}
    out = []
    for key, t in sorted(tracks.items()):
        if t.alert:
            rule, subject = _split(key)
            ended = Reading(False, True, message="")
            cleared = _alert(room_id, rule, subject, t.alert, "cleared", ended, t.raised_at, now_ms)
            out.append(dataclasses.replace(cleared, message=f"{cleared.message}: the room ended"))
            t.alert, t.calm_since = "", -1
    return AlertState(tracks, [], state.ledger_after, state.seq), out


def _alert(
    room_id: str, rule: str, subject: str, alert_id: str, state: str, r: Reading,
    raised_at: int, cleared_at: int | None,
) -> Alert:  # fmt: skip
    value = r.value if math.isfinite(r.value) else 0.0
    message = r.message
    if state == "cleared":
        message = f"{rule} cleared" + (f" ({subject})" if subject else "")
    return Alert(
        id=alert_id, room=room_id, rule=rule, subject=subject, state=state,
        severity=SEVERITY[rule], message=message, value=value, threshold=r.threshold,
        raised_at=raised_at, cleared_at=cleared_at,
    )  # fmt: skip


def notice_alert(
    room_id: str, rule: str, subject: str, message: str, now_ms: int, nonce: str,
    value: float = 0.0,
) -> Alert:  # fmt: skip
    """An event alert raised outside the rules (``AlertStore.notice``). Its id cannot
    take the room's fenced sequence (no lease is held): the rule, the subject and a nonce
    from the caller keep it apart from every other."""
    return Alert(
        id=f"{room_id}.{rule}.{subject or '-'}.{nonce}", room=room_id, rule=rule, subject=subject,
        state="raised", severity=SEVERITY[rule], message=message, value=value, threshold=0.0,
        raised_at=now_ms,
    )  # fmt: skip


def staff_message(alert: Alert) -> dict[str, Any]:
    """The ``alert`` WebSocket message (docs/protocol.md): staff roles only."""
    return {"t": "alert", **alert.to_dict()}


__all__ = [
    "MINUTES_NEEDED",
    "MINUTE_MS",
    "RULES",
    "Alert",
    "AlertRules",
    "AlertState",
    "Signals",
    "Track",
    "check_overrides",
    "close_all",
    "evaluate",
    "notice_alert",
    "parse_overrides",
    "readings",
    "staff_message",
    "track_key",
]
