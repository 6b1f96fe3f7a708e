"""Standard Webhooks 1.0 signing: ``whsec_`` secrets and the three headers.

The signature is ``v1,`` + base64 of HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``
with the secret's bytes; several secrets (during a rotation) give several signatures,
space-separated. Pure: the caller passes the time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
NEW_SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_`` secret; ``ValueError`` when malformed or of a bad size."""
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ and base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def headers(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The ``webhook-*`` headers, signed with every secret given (newest first)."""
    sigs = " ".join(signature(s, msg_id, timestamp, body) for s in secrets_)
    if not sigs:
        raise ValueError("at least one secret is needed to sign")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sigs,
    }
