"""In-process Ledger (see ``commerce.ledger`` for the contract)."""

from __future__ import annotations

from commerce.ledger import LEDGER_MAXLEN
from interact.floor.event_log_memory import MemoryEventLog


class MemoryLedger(MemoryEventLog):
    def __init__(self, *, maxlen: int = LEDGER_MAXLEN) -> None:
        super().__init__(maxlen=maxlen)
