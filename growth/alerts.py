"""The alert hook: growth raises, whoever subscribed hears (the alerting system when
it lands; a log line until then)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Alert:
    """``kind``: ``reminder_config`` (WeChat refused our template setup: ``errcode``
    47003 data, 41030 page, 40037 template id)."""

    kind: str
    room_id: str
    message: str
    errcode: int | None = None
    detail: dict[str, str] = field(default_factory=dict)


AlertListener = Callable[[Alert], None]


class Alerts:
    def __init__(self) -> None:
        self._listeners: list[AlertListener] = []

    def subscribe(self, listener: AlertListener) -> Callable[[], None]:
        """Call ``listener`` with every alert from now on; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, alert: Alert) -> None:
        log.error("alert %s in room %s: %s", alert.kind, alert.room_id, alert.message)
        for listener in list(self._listeners):
            try:
                listener(alert)
            except Exception:  # a listener's bug must not stop the reminders
                log.exception("alert listener failed")
