"""Reading a stored archive: gzip chunks in, lines out (no store, no network)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterable, Iterator

GZIP_MAGIC = b"\x1f\x8b"
# A line longer than this is not one the writer made (comments are short; ledger events
# and orders are flat maps): reading stops instead of buffering without end.
MAX_LINE = 1024 * 1024


class ArchiveFormatError(ValueError):
    pass


class LineSplitter:
    """Bytes of a gzip (or plain) archive in, complete lines (without newline) out."""

    def __init__(self) -> None:
        self._inflate: zlib._Decompress | None = None
        self._started = False
        self._head = b""
        self._rest = b""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        if not self._started:
            # The first two bytes decide gzip or plain, whatever the chunking.
            chunk = self._head + chunk
            if len(chunk) < len(GZIP_MAGIC):
                self._head = chunk
                return
            self._started = True
            self._head = b""
            if chunk[:2] == GZIP_MAGIC:
                self._inflate = zlib.decompressobj(wbits=31)
        inflate = self._inflate
        if inflate is None:
            yield from self._split(chunk)
            return
        try:
            # At most MAX_LINE bytes out per step, split before the next: a small gzip
            # bomb never sits in memory whole.
            data = inflate.decompress(chunk, MAX_LINE)
            while True:
                yield from self._split(data)
                if not inflate.unconsumed_tail:
                    break
                data = inflate.decompress(inflate.unconsumed_tail, MAX_LINE)
        except zlib.error as exc:
            raise ArchiveFormatError(f"not a valid gzip stream: {exc}") from None
        if inflate.eof and inflate.unused_data:
            raise ArchiveFormatError("data after the end of the gzip stream")

    def _split(self, data: bytes) -> list[bytes]:
        buf = self._rest + data
        *lines, self._rest = buf.split(b"\n")
        if len(self._rest) > MAX_LINE:
            raise ArchiveFormatError(f"a line longer than {MAX_LINE} bytes")
        return lines

    def close(self) -> None:
        """At the end of input: an unterminated last line or gzip stream is an error."""
        if self._head:
            raise ArchiveFormatError("the archive is cut short")
        if self._inflate is not None and not self._inflate.eof:
            raise ArchiveFormatError("the gzip stream is cut short")
        if self._rest:
            raise ArchiveFormatError("the archive does not end with a newline (cut short?)")


def lines_of(chunks: Iterable[bytes]) -> Iterator[bytes]:
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)
    splitter.close()


async def alines_of(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    splitter = LineSplitter()
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line
    splitter.close()
