"""Signed access tokens (JWT, HS256) carrying uid, nick, role and expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jwt
import orjson

from interact.floor.errors import Unauthorized
from interact.identity import UID_RULE, nick_problem, valid_nick, valid_uid

ALGORITHM = "HS256"


class Role(StrEnum):
    VIEWER = "viewer"
    ANCHOR = "anchor"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class User:
    uid: str
    nick: str
    role: Role

    def to_dict(self) -> dict[str, str]:
        return {"uid": self.uid, "nick": self.nick, "role": self.role.value}


def issue(secret: str, user: User, ttl: int, now: float | None = None) -> str:
    """A signed token for ``user``; ValueError when its uid or nick breaks the rules
    (``interact.identity``): ``verify`` would refuse such a token anyway."""
    if not valid_uid(user.uid):
        raise ValueError(f"uid must be {UID_RULE}")
    problem = nick_problem(user.nick) if user.nick else None
    if problem is not None:
        raise ValueError(f"nick {problem}")
    now = time.time() if now is None else now
    claims = {
        "sub": user.uid,
        "nick": user.nick,
        "role": user.role.value,
        "iat": int(now),
        "exp": int(now) + ttl,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


# Verified tokens, so a client's every request does not pay for HMAC and JSON again:
# digest of (secret, token) -> (user, exp). A 16-byte digest, not the token itself: every
# connected viewer leaves an entry, and a token is ~200 characters. Bounded; an entry is
# used only until its token expires.
_VERIFIED: dict[bytes, tuple[User, int]] = {}
_VERIFIED_MAX = 50_000


def _cache_key(secret: str, token: str) -> bytes:
    # The whole token is hashed (a key of its signature alone would let a forged payload
    # borrow a verified signature); the secret too, so a new secret verifies afresh.
    raw = secret.encode()
    h = hashlib.blake2b(len(raw).to_bytes(4, "big") + raw, digest_size=16)
    h.update(token.encode())
    return h.digest()


def verify(secret: str, token: str) -> User:
    """The token's user, or ``Unauthorized`` for a forged, expired or malformed token."""
    key = _cache_key(secret, token)
    cached = _VERIFIED.get(key)
    if cached is not None:
        if cached[1] > time.time():
            return cached[0]
        del _VERIFIED[key]
    user, exp = _decode(secret, token)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = (user, exp)
    return user


class _Decoder(jwt.PyJWT):
    """PyJWT reading the payload with orjson (the hook PyJWT offers for it): a handshake
    verifies a token, and stdlib json was a fifth of that."""

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        try:
            payload = orjson.loads(decoded["payload"])
        except orjson.JSONDecodeError as exc:
            raise jwt.DecodeError(f"Invalid payload string: {exc}") from None
        if not isinstance(payload, dict):
            raise jwt.DecodeError("Invalid payload string: must be a json object")
        return payload


_DECODER = _Decoder()
_REQUIRED = {"require": ["exp", "sub", "role"]}


@lru_cache(maxsize=8)
def _key(secret: str) -> jwt.PyJWK:
    # A PyJWK is a prepared key: a str key is examined again (PEM? DER?) on every decode.
    k = base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode()
    return jwt.PyJWK({"kty": "oct", "k": k, "alg": ALGORITHM})


# The header every token ``issue`` signs carries, as PyJWT writes it.
_PLAIN_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_PLAIN_CLAIMS = frozenset({"sub", "nick", "role", "iat", "exp"})


def _segment(seg: bytes) -> bytes | None:
    """A base64url segment's bytes, None unless it is canonical (what PyJWT insists on:
    the alphabet only, no padding, no stray bits)."""
    try:
        raw = base64.urlsafe_b64decode(seg + b"=" * (-len(seg) % 4))
    except ValueError:
        return None
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=") == seg else None


@lru_cache(maxsize=8)
def _plain_key(secret: str) -> bytes | None:
    """The secret's bytes when PyJWT takes it as an HMAC key (it refuses a PEM- or
    SSH-looking one): only then may ``_plain_claims`` stand in for it."""
    try:
        probe = jwt.encode({"sub": "probe", "role": "viewer", "exp": 2**40}, secret, ALGORITHM)
        _DECODER.decode(probe, _key(secret), algorithms=[ALGORITHM], options=_REQUIRED)
    except jwt.PyJWTError:
        return None
    return secret.encode()


def _plain_claims(secret: str, token: str) -> dict[str, Any] | None:
    """The claims of a token of exactly the shape ``issue`` makes (the plain HS256
    header; sub, nick, role, iat, exp and nothing else; valid now), or None for any other
    token, which PyJWT then judges. PyJWT 2.15 spends ~33 us on a token (it re-prepares
    the key and checks the base64 a character at a time in Python), a sixth of a
    WebSocket handshake; this is ~4 us. It accepts no token PyJWT would refuse
    (tests/unit/test_tokens.py checks it against PyJWT on random and mutated tokens)."""
    key = _plain_key(secret)
    try:
        data = token.encode("ascii")
    except UnicodeEncodeError:
        return None
    parts = data.split(b".")
    if key is None or len(parts) != 3 or parts[0] != _PLAIN_HEADER:
        return None
    body, sig = _segment(parts[1]), _segment(parts[2])
    if body is None or sig is None:
        return None
    mac = hmac.new(key, data[: len(parts[0]) + 1 + len(parts[1])], hashlib.sha256).digest()
    if not hmac.compare_digest(mac, sig):
        return None
    try:
        claims = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(claims, dict) or not claims.keys() <= _PLAIN_CLAIMS:
        return None
    exp, iat, now = claims.get("exp"), claims.get("iat", 0), time.time()
    if type(exp) is not int or type(iat) is not int or not iat <= now < exp:
        return None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("role"), str):
        return None
    return claims


def _decode(secret: str, token: str) -> tuple[User, int]:
    try:
        claims = _plain_claims(secret, token)
        if claims is None:
            claims = _DECODER.decode(token, _key(secret), algorithms=[ALGORITHM], options=_REQUIRED)
        uid, nick = claims["sub"], claims.get("nick")
        # Whoever signed it, a token names a user the logins would accept: no uid with a
        # newline, no nick with a bidi override (interact.identity).
        if not valid_uid(uid) or (nick not in (None, "") and not valid_nick(nick)):
            raise ValueError("the token's uid or nick breaks the identity rules")
        user = User(uid=uid, nick=nick or "", role=Role(claims["role"]))
        return user, int(claims["exp"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        raise Unauthorized("invalid token") from None
