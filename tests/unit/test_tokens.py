"""interact.tokens: HS256 access tokens, issued and verified."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from interact import tokens
from interact.floor.errors import Code, Unauthorized
from interact.tokens import Role, User, issue, verify

SECRET = "k" * 64 + "-test-signing-key"  # long enough for HS512 too
OTHER_SECRET = "o" * 32 + "-another-signing-key"
USER = User(uid="u-42", nick="小明", role=Role.ANCHOR)


def b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {"sub": "u1", "nick": "n", "role": "viewer", "iat": now, "exp": now + 60}
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def assert_unauthorized(token: str, message: str = "invalid token") -> None:
    with pytest.raises(Unauthorized) as info:
        verify(SECRET, token)
    assert info.value.code is Code.UNAUTHORIZED
    assert info.value.status == 401
    assert info.value.message == message


@pytest.mark.parametrize("role", list(Role))
def test_roundtrip(role: Role) -> None:
    user = User(uid="u-1", nick="Nick", role=role)
    assert verify(SECRET, issue(SECRET, user, ttl=60)) == user


def test_roundtrip_keeps_unicode_nick() -> None:
    assert verify(SECRET, issue(SECRET, USER, ttl=60)) == USER


def test_claims_carry_expiry() -> None:
    token = issue(SECRET, USER, ttl=100, now=1_700_000_000.9)
    body = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert body == {
        "sub": "u-42",
        "nick": "小明",
        "role": "anchor",
        "iat": 1_700_000_000,
        "exp": 1_700_000_100,
    }


def test_user_to_dict() -> None:
    assert USER.to_dict() == {"uid": "u-42", "nick": "小明", "role": "anchor"}


def test_expired() -> None:
    token = issue(SECRET, USER, ttl=10, now=time.time() - 1000)
    assert_unauthorized(token, "token expired")


def test_wrong_secret() -> None:
    assert_unauthorized(issue(OTHER_SECRET, USER, ttl=60))


def test_tampered_payload() -> None:
    header, _, signature = issue(SECRET, USER, ttl=60).split(".")
    forged = b64url(claims(sub="u-42", role="operator"))
    assert_unauthorized(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9", "x" * 5000, "é.é.é"]
)
def test_garbage(token: str) -> None:
    assert_unauthorized(token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none(alg: str) -> None:
    header = b64url({"alg": alg, "typ": "JWT"})
    body = b64url(claims(role="operator"))
    assert_unauthorized(f"{header}.{body}.")


def test_other_hmac_algorithm_with_the_same_secret() -> None:
    assert_unauthorized(jwt.encode(claims(), SECRET, algorithm="HS512"))


@pytest.mark.parametrize("missing", ["role", "sub", "exp"])
def test_required_claim_missing(missing: str) -> None:
    assert_unauthorized(jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256"))


@pytest.mark.parametrize("role", ["admin", "", "Viewer", 1, None, ["viewer"]])
def test_unknown_role(role: Any) -> None:
    body = claims()
    body["role"] = role
    assert_unauthorized(jwt.encode(body, SECRET, algorithm="HS256"))


def test_missing_nick_is_empty() -> None:
    token = jwt.encode(claims(nick=None), SECRET, algorithm="HS256")
    assert verify(SECRET, token) == User(uid="u1", nick="", role=Role.VIEWER)


def test_token_is_not_verified_with_the_wrong_secret_even_when_fresh() -> None:
    token = issue(SECRET, USER, ttl=3600)
    with pytest.raises(Unauthorized):
        verify(OTHER_SECRET, token)
    assert verify(SECRET, token) == USER


def test_a_cached_token_still_expires() -> None:
    user = User("cache-me", "c", Role.VIEWER)
    token = issue(SECRET, user, ttl=1)
    assert verify(SECRET, token) == user
    assert verify(SECRET, token) == user  # from the cache
    time.sleep(1.1)
    with pytest.raises(Unauthorized):
        verify(SECRET, token)
    with pytest.raises(Unauthorized):  # a token cached under one key proves nothing for another
        verify(SECRET + "x", issue(SECRET, user, ttl=60))


def test_the_cache_tells_secrets_apart_however_long() -> None:
    long_a, long_b = "k" * 80 + "a", "k" * 80 + "b"  # equal for their first 80 bytes
    token = issue(long_a, User("u-long", "n", Role.VIEWER), 600)
    assert verify(long_a, token).uid == "u-long"
    with pytest.raises(Unauthorized):
        verify(long_b, token)


# --- found by mutation testing (docs/testing.md) ---------------------------------------


@pytest.mark.parametrize(
    ("sub", "nick"),
    [("bad uid", "ok"), ("bad\nuid", None), ("u1", "\u202eevil"), ("u1", " padded ")],
)
def test_a_signed_token_breaking_the_identity_rules_is_refused(sub: str, nick: Any) -> None:
    # Signed with the right secret: the uid or the nick alone is enough to refuse it.
    assert_unauthorized(jwt.encode(claims(sub=sub, nick=nick), SECRET, algorithm="HS256"))


def test_an_empty_nick_claim_is_an_empty_nick() -> None:
    token = jwt.encode(claims(nick=""), SECRET, algorithm="HS256")
    assert verify(SECRET, token) == User(uid="u1", nick="", role=Role.VIEWER)


def test_issue_refuses_what_verify_would_refuse() -> None:
    with pytest.raises(ValueError, match=r"^uid must be 1-64 letters, digits or _\.:@-$"):
        issue(SECRET, User("bad uid", "ok", Role.VIEWER), ttl=60)
    with pytest.raises(ValueError, match=r"^nick must not start or end with spaces$"):
        issue(SECRET, User("u1", " padded", Role.VIEWER), ttl=60)
    # No nick at all is fine: the token carries an empty one.
    assert verify(SECRET, issue(SECRET, User("u1", "", Role.VIEWER), ttl=60)).nick == ""


def test_a_verified_token_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cache is why a viewer's every request does not pay for HMAC and JSON again.
    decoded: list[str] = []
    real = tokens._decode

    def counting(secret: str, token: str) -> tuple[User, int]:
        decoded.append(token)
        return real(secret, token)

    monkeypatch.setattr(tokens, "_decode", counting)
    token = issue(SECRET, User("cached-once", "c", Role.VIEWER), ttl=600)
    assert verify(SECRET, token).uid == "cached-once"
    assert verify(SECRET, token).uid == "cached-once"
    assert decoded == [token]


def test_the_cache_stays_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_VERIFIED_MAX", 2)
    monkeypatch.setattr(tokens, "_VERIFIED", {})
    for i in range(5):
        user = User(f"bound-{i}", "b", Role.VIEWER)
        assert verify(SECRET, issue(SECRET, user, ttl=600)) == user
        assert len(tokens._VERIFIED) <= 2


# -- the plain-token path, against PyJWT as the referee ------------------------------


def pyjwt_claims(token: str, secret: str = SECRET) -> dict[str, Any] | None:
    """What PyJWT makes of a token with the options verify uses (None: refused)."""
    try:
        return jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]}
        )
    except jwt.InvalidTokenError:
        return None


def test_issued_tokens_take_the_plain_path() -> None:
    token = issue(SECRET, USER, ttl=60)
    got = tokens._plain_claims(SECRET, token)
    assert got is not None and got == pyjwt_claims(token)
    assert got["sub"] == USER.uid and got["nick"] == USER.nick


@pytest.mark.parametrize(
    "token",
    [
        # Each is signed with SECRET and refused by the plain path; PyJWT judges it.
        jwt.encode(claims(aud="x"), SECRET, algorithm="HS256"),
        jwt.encode(claims(exp=int(time.time()) - 1), SECRET, algorithm="HS256"),
        jwt.encode(claims(iat=int(time.time()) + 3600), SECRET, algorithm="HS256"),
        jwt.encode(claims(exp=time.time() + 60.5), SECRET, algorithm="HS256"),
        jwt.encode(claims(exp=True), SECRET, algorithm="HS256"),
        jwt.encode(claims(sub=7), SECRET, algorithm="HS256"),
        jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "k1"}),
        jwt.encode(claims(), SECRET, algorithm="HS384"),
        jwt.encode(claims(), OTHER_SECRET, algorithm="HS256"),
    ],
)
def test_other_tokens_are_left_to_pyjwt(token: str) -> None:
    assert tokens._plain_claims(SECRET, token) is None


def test_a_key_pyjwt_refuses_never_takes_the_plain_path() -> None:
    pem = (
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    )
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    body = b64url(claims())
    mac = hmac.new(pem.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert tokens._plain_claims(pem, token) is None
    assert_unauthorized_with(pem, token)


def assert_unauthorized_with(secret: str, token: str) -> None:
    with pytest.raises(Unauthorized):
        verify(secret, token)


CLAIM_VALUES = st.one_of(
    st.integers(-(2**40), 2**41),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=8),
    st.none(),
)


@st.composite
def signed_tokens(draw: st.DrawFn) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": draw(st.sampled_from(["u1", "a.b@c", 7, ""])),
        "role": draw(st.sampled_from(["viewer", "anchor", "boss", 1])),
        "exp": draw(st.sampled_from([now + 600, now - 1, now, float(now + 600), True])),
    }
    if draw(st.booleans()):
        body["iat"] = draw(st.sampled_from([now, now - 5, now + 600, float(now), False]))
    if draw(st.booleans()):
        body["nick"] = draw(st.text(max_size=6))
    for name in draw(st.lists(st.sampled_from(["aud", "nbf", "iss", "jti", "x"]), max_size=2)):
        body[name] = draw(CLAIM_VALUES)
    for name in draw(st.lists(st.sampled_from(["sub", "role", "exp"]), max_size=1)):
        body.pop(name, None)
    headers = draw(st.sampled_from([None, {"typ": None}, {"kid": "k"}, {"typ": "at+jwt"}]))
    secret = draw(st.sampled_from([SECRET, SECRET, OTHER_SECRET]))
    try:
        token = jwt.encode(body, secret, algorithm="HS256", headers=headers)
    except TypeError:  # PyJWT will not sign such a claim (an iss that is no string)
        reject()
    # A mutation: a character changed, one added or removed, or none.
    how = draw(st.sampled_from(["none", "swap", "add", "drop"]))
    if how == "none" or not token:
        return token
    i = draw(st.integers(0, len(token) - 1))
    c = draw(st.sampled_from(list("AaBb019-_.=+/ ")))
    if how == "swap":
        return token[:i] + c + token[i + 1 :]
    if how == "add":
        return token[:i] + c + token[i:]
    return token[:i] + token[i + 1 :]


@settings(max_examples=600)
@given(signed_tokens())
def test_the_plain_path_accepts_nothing_pyjwt_refuses(token: str) -> None:
    fast = tokens._plain_claims(SECRET, token)
    if fast is not None:
        assert fast == pyjwt_claims(token)
