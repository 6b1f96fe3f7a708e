"""Where an HTTP/1.1 connection stands between requests, read from its bytes alone (no I/O).

``interact.guard`` feeds it every byte a connection served by aiohttp receives, to time
each stage: a request head, its body, the idle time between requests, and the point an
upgrade turns the connection into something that is no longer HTTP. It frames messages
as RFC 9112 §6 does (and as aiohttp's parser, llhttp, does): ``Transfer-Encoding`` ending
in ``chunked``, else ``Content-Length``, else no body. It validates nothing: aiohttp
refuses (and closes) what is malformed; here such a request only gets a stage whose
deadline closes the connection if aiohttp did not.
"""

from __future__ import annotations

from enum import Enum

# aiohttp refuses a head with more than 128 header lines of up to 8,190 bytes each long
# before this; past it the bytes are not kept (the head's deadline ends the connection).
MAX_HEAD_BYTES = 130 * 8192
# A chunk-size line (hex size and extensions) longer than this is not kept either.
MAX_CHUNK_LINE = 4096


class Stage(Enum):
    HEAD = "head"  # a request head is awaited or arriving (from the accept, for the first)
    BODY = "body"  # a head is in; its body is arriving
    IDLE = "idle"  # between requests: no byte of the next head yet
    UPGRADED = "upgraded"  # an upgrade request is in: the rest is not HTTP


class _Chunk(Enum):
    SIZE = 0
    DATA = 1
    TRAILER = 2


class RequestStages:
    """Feed it a connection's bytes in order; ``stage`` is where it stands, ``moves``
    counts the stages entered (a deadline is set again only when it changes)."""

    __slots__ = ("_buf", "_chunk", "_left", "_upgrade", "moves", "stage")

    def __init__(self) -> None:
        self.stage = Stage.HEAD
        self.moves = 0
        self._buf = bytearray()  # the head, or a chunk-size/trailer line, so far
        self._left = 0  # body bytes to come (Content-Length), or of the chunk and its CRLF
        self._chunk: _Chunk | None = None  # None: a Content-Length body
        self._upgrade = False  # the request in hand upgrades once its body is in

    def feed(self, data: bytes) -> Stage:
        pos, end = 0, len(data)
        while pos < end and self.stage is not Stage.UPGRADED:
            if self.stage is Stage.BODY:
                pos = self._body(data, pos)
            else:
                pos = self._head(data, pos)
        return self.stage

    def _enter(self, stage: Stage) -> None:
        self.stage = stage
        self.moves += 1

    def _head(self, data: bytes, pos: int) -> int:
        if self.stage is Stage.IDLE:
            self._enter(Stage.HEAD)
        buf = self._buf
        if not buf:
            # Empty lines before a request line are allowed (RFC 9112 §2.2).
            while pos < len(data) and data[pos] in b"\r\n":
                pos += 1
            found = data.find(b"\r\n\r\n", pos)
            if found >= 0:
                self._begin(data[pos:found])
                return found + 4
            buf += data[pos : pos + MAX_HEAD_BYTES]
            return len(data)
        start = max(len(buf) - 3, 0)  # the terminator may straddle two reads
        before = len(buf)
        buf += data[pos : pos + MAX_HEAD_BYTES]
        found = buf.find(b"\r\n\r\n", start)
        if found < 0:
            del buf[MAX_HEAD_BYTES:]
            return len(data)
        head = bytes(buf[:found])
        buf.clear()
        self._begin(head)
        # Only the bytes up to the terminator were this head's; the rest is read next.
        return pos + found + 4 - before

    def _begin(self, head: bytes) -> None:
        """The head is in: what follows it."""
        method = head.split(b" ", 1)[0].upper()
        length = b"0"
        chunked = False
        upgrade_header = False
        connection_upgrade = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = value.strip()
            elif name == b"transfer-encoding":
                chunked = value.split(b",")[-1].strip().lower() == b"chunked"
                length = b"" if not chunked else length
            elif name == b"upgrade":
                upgrade_header = True
            elif name == b"connection":
                tokens = [t.strip().lower() for t in value.split(b",")]
                connection_upgrade = connection_upgrade or b"upgrade" in tokens
        self._upgrade = method == b"CONNECT" or (upgrade_header and connection_upgrade)
        if chunked:
            self._chunk = _Chunk.SIZE
            self._enter(Stage.BODY)
            return
        self._chunk = None
        if length.isdigit():
            self._left = int(length)
        else:
            # Not a length aiohttp accepts: it answers 400 and closes; until then the
            # connection is held to the body's deadline.
            self._left = -1
        if self._left == 0:
            self._complete()
        else:
            self._enter(Stage.BODY)

    def _complete(self) -> None:
        self._enter(Stage.UPGRADED if self._upgrade else Stage.IDLE)

    def _body(self, data: bytes, pos: int) -> int:
        if self._chunk is None:
            if self._left < 0:
                return len(data)
            take = min(self._left, len(data) - pos)
            self._left -= take
            if not self._left:
                self._complete()
            return pos + take
        if self._chunk is _Chunk.DATA:
            take = min(self._left, len(data) - pos)
            self._left -= take
            if not self._left:
                self._chunk = _Chunk.SIZE
            return pos + take
        return self._chunk_line(data, pos)

    def _chunk_line(self, data: bytes, pos: int) -> int:
        """A chunk-size line or a trailer line: up to its CRLF."""
        buf = self._buf
        nl = data.find(b"\n", pos)
        if nl < 0:
            if len(buf) < MAX_CHUNK_LINE:
                buf += data[pos : pos + MAX_CHUNK_LINE]
            return len(data)
        if len(buf) < MAX_CHUNK_LINE:
            buf += data[pos:nl]
        line = bytes(buf).rstrip(b"\r")
        buf.clear()
        if self._chunk is _Chunk.TRAILER:
            if not line:
                self._complete()
            return nl + 1
        size = line.split(b";", 1)[0].strip()
        try:
            n = int(size, 16) if size else -1
        except ValueError:
            n = -1
        if n < 0:
            # A size aiohttp refuses: hold to the deadline, as for a bad length.
            self._chunk, self._left = None, -1
        elif n == 0:
            self._chunk = _Chunk.TRAILER
        else:
            self._chunk, self._left = _Chunk.DATA, n + 2
        return nl + 1
