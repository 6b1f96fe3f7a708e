"""In-process ModerationLog (see ``moderation.moderation_log`` for the contract)."""

from __future__ import annotations

from interact.floor.event_log_memory import MemoryEventLog
from moderation.moderation_log import MODLOG_MAXLEN


class MemoryModerationLog(MemoryEventLog):
    def __init__(self, *, maxlen: int = MODLOG_MAXLEN) -> None:
        super().__init__(maxlen=maxlen)
