"""WordListStore: the operators' word list, shared by every process.

Contract:
- ``save(data)`` stores the list (JSON text) and returns its new version, one higher
  than the last; ``load()`` returns ``(version, data)`` or None when none was saved;
  ``version()`` is the current version alone (0 when none), cheap enough to poll.
- Processes poll or are told of a new version and rebuild their filter from ``load()``.
"""

from __future__ import annotations

from typing import Protocol


class WordListStore(Protocol):
    async def save(self, data: str) -> int: ...

    async def load(self) -> tuple[int, str] | None: ...

    async def version(self) -> int: ...


class MemoryWordListStore:
    def __init__(self) -> None:
        self._saved: tuple[int, str] | None = None

    async def save(self, data: str) -> int:
        version = (self._saved[0] if self._saved else 0) + 1
        self._saved = (version, data)
        return version

    async def load(self) -> tuple[int, str] | None:
        return self._saved

    async def version(self) -> int:
        return self._saved[0] if self._saved else 0
