"""ArchiveStore in a local directory (see ``archive.store`` for the contract).

An upload writes ``.<room>.<token>.part`` in the same directory and commits with
``os.replace`` to ``<room>.jsonl.gz`` after an fsync, then fsyncs the directory: the rename
is atomic on one filesystem, so a reader (or a crash) sees the old file or the whole new
one. Several processes on one machine may share the directory; across machines it needs a
shared filesystem with atomic rename (or the S3 engine, ``store_s3``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from archive.store import READ_CHUNK, check_room_id

SUFFIX = ".jsonl.gz"


class LocalUpload:
    def __init__(self, directory: Path, room_id: str) -> None:
        self._dir = directory
        self._room = room_id
        self.part = directory / f".{room_id}.{secrets.token_hex(6)}.part"
        # O_EXCL: a name collision is a bug, never a shared file.
        fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self._fh: BinaryIO | None = os.fdopen(fd, "wb")

    async def write(self, data: bytes) -> None:
        if self._fh is None:
            raise ValueError("upload already finished")
        await asyncio.to_thread(self._fh.write, data)

    def _commit(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        os.replace(self.part, self._dir / f"{self._room}{SUFFIX}")
        dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
        # Parts of this room left by writers that died: the archive is whole now.
        for stale in self._dir.glob(f".{self._room}.*.part"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    async def commit(self) -> None:
        if self._fh is None:
            raise ValueError("upload already finished")
        await asyncio.to_thread(self._commit)

    async def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        with contextlib.suppress(FileNotFoundError):
            self.part.unlink()


class LocalArchiveStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, room_id: str) -> Path:
        return self.directory / f"{check_room_id(room_id)}{SUFFIX}"

    async def begin(self, room_id: str) -> LocalUpload:
        check_room_id(room_id)
        return await asyncio.to_thread(LocalUpload, self.directory, room_id)

    async def exists(self, room_id: str) -> bool:
        return await asyncio.to_thread(self.path(room_id).is_file)

    async def read(self, room_id: str) -> AsyncIterator[bytes] | None:
        try:
            fh = await asyncio.to_thread(open, self.path(room_id), "rb")
        except FileNotFoundError:
            return None
        return _chunks(fh)


async def _chunks(fh: BinaryIO) -> AsyncIterator[bytes]:
    # The open file is the object as committed: a rename meanwhile does not change it.
    try:
        while chunk := await asyncio.to_thread(fh.read, READ_CHUNK):
            yield chunk
    finally:
        fh.close()
