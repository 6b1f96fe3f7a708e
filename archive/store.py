"""ArchiveStore: where sealed archives are kept, one object per room.

Contract:
- ``begin(room_id)`` starts an upload; ``write`` appends bytes to it; ``commit`` makes the
  whole object visible under the room at once (and replaces one already there); ``abort``
  drops it. Before ``commit`` nothing is visible: a reader sees the previous object or
  none, never part of one, even when the writing process dies mid-upload.
- ``exists(room_id)``: whether a committed object is there.
- ``read(room_id)``: the committed object's bytes in chunks, ``None`` when there is none.
- Objects are the gzip-compressed JSON Lines of ``archive.records``.
- A room id outside ``[A-Za-z0-9_-]{1,64}`` (the rooms' own alphabet) is ``ValueError``:
  ids become file names and object keys.

Engines: ``store_local`` (a directory; write to a temporary file, then rename) and
``store_s3`` (S3-compatible object storage; a multipart upload completed on commit).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Protocol

_ROOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
READ_CHUNK = 64 * 1024


def check_room_id(room_id: str) -> str:
    if not isinstance(room_id, str) or not _ROOM_ID.fullmatch(room_id):
        raise ValueError(f"not a room id: {room_id!r:.80}")
    return room_id


class Upload(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class ArchiveStore(Protocol):
    async def begin(self, room_id: str) -> Upload: ...

    async def exists(self, room_id: str) -> bool: ...

    async def read(self, room_id: str) -> AsyncIterator[bytes] | None: ...
