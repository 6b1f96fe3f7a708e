"""The WebSocket opening handshake's rules (RFC 6455 §4, RFC 7692 §7), with no I/O.

Both upgrade paths apply them — ``interact.upgrade`` (below aiohttp) to decide whether a
request is a plain upgrade it may answer itself, ``interact.ws.SharedFrameResponse``
(through aiohttp) to refuse — so a request gets the same answer on either path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping

# The one protocol version spoken; a 426 names it (RFC 6455 §4.4).
VERSION = "13"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# zlib cannot deflate with an 8-bit window (it silently uses 9), so an offer that limits
# the server's window to 8 bits is declined rather than broken.
_MIN_SERVER_BITS = 9


def header_tokens(value: str) -> list[str]:
    """The comma-separated tokens of a header value, trimmed and lower-cased."""
    return [t.strip().lower() for t in value.split(",")]


def refusal(http11: bool, headers: Mapping[str, str]) -> tuple[int, str] | None:
    """Why a ``GET /ws`` request may not be upgraded — (HTTP status, text) — or None.

    ``headers`` is looked up by lower-case name (aiohttp's are case-insensitive). The
    first rule broken decides: 400 for a request that is not a well-formed upgrade,
    426 (with ``Sec-WebSocket-Version: 13``) for a version other than 13.
    """
    if headers.get("upgrade", "").strip().lower() != "websocket":
        return 400, 'not a WebSocket upgrade: "Upgrade: websocket" is required'
    connection = headers.get("connection", "")
    # "Upgrade" alone is the usual value: no list of tokens built for it.
    if connection.lower() != "upgrade" and "upgrade" not in header_tokens(connection):
        return 400, 'not a WebSocket upgrade: "Connection: Upgrade" is required'
    if not http11:
        return 400, "a WebSocket upgrade needs HTTP/1.1"
    if "host" not in headers:
        return 400, "Host is required"
    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        return 400, "a WebSocket upgrade has no body"
    if headers.get("sec-websocket-version") != VERSION:
        return 426, f"Sec-WebSocket-Version must be {VERSION}"
    if not valid_key(headers.get("sec-websocket-key", "")):
        return 400, "Sec-WebSocket-Key must be 16 bytes in base64"
    return None


def valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def accept_value(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a client's key."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def deflate_answer(offers: str | None) -> tuple[int, str] | None:
    """(window bits, ``Sec-WebSocket-Extensions`` answer) for the first acceptable
    ``permessage-deflate`` offer, or None when there is none to accept.

    The answer always carries ``server_no_context_takeover`` (the hub deflates each batch
    once, with a fresh context, for every viewer), and ``server_max_window_bits=N`` when
    the offer had that parameter: RFC 7692 §7.1.2.1 requires it back, and clients
    (``websockets``) refuse an answer without it. An offer with an unknown, repeated or
    malformed parameter is declined (§5.1), and the next one is tried.
    """
    if not offers:
        return None
    for offer in offers.split(","):
        name, *params = offer.split(";")
        if name.strip().lower() != "permessage-deflate":
            continue
        bits = _offer_bits(params)
        if bits is None:
            continue
        wbits, asked = bits
        answer = "permessage-deflate"
        if asked:
            answer += f"; server_max_window_bits={wbits}"
        return wbits, answer + "; server_no_context_takeover"
    return None


def _offer_bits(params: list[str]) -> tuple[int, bool] | None:
    """(server window bits, whether the offer set them) of one offer, None to decline it."""
    seen: set[str] = set()
    wbits, asked = 15, False
    for param in params:
        key, eq, raw = param.partition("=")
        key = key.strip().lower()
        value = raw.strip().strip('"')
        if key in seen:
            return None
        seen.add(key)
        if key == "server_max_window_bits":
            bits = _window_bits(value)
            if bits is None or bits < _MIN_SERVER_BITS:
                return None
            wbits, asked = bits, True
        elif key == "client_max_window_bits":
            # Without a value: the client lets the server pick. Client frames are
            # inflated with the largest window, which reads any smaller one.
            if eq and _window_bits(value) is None:
                return None
        elif key in ("server_no_context_takeover", "client_no_context_takeover"):
            if eq:
                return None
        else:
            return None
    return wbits, asked


def _window_bits(value: str) -> int | None:
    if not (value.isascii() and value.isdigit() and len(value) <= 2):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None
