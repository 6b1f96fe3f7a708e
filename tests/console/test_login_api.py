"""``POST /api/v1/auth/console``: accounts from the users file, bounds and attempt limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interact import tokens
from tests.console.conftest import PASSWORD, users_file
from tests.e2e.harness import SECRET, ServerProcess, start_server


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own: the attempt limits are per process and this test spends them."""
    proc = start_server(tmp_path, env={"INTERACT_CONSOLE_USERS_FILE": str(users_file(tmp_path))})
    yield proc
    assert proc.stop() == 0, proc.log()


def login(server: ServerProcess, body: object) -> httpx.Response:
    return httpx.post(server.base + "/api/v1/auth/console", json=body, timeout=10)


def test_sign_in_bounds_and_limits(fresh: ServerProcess) -> None:
    options = httpx.get(fresh.base + "/api/v1/auth/console").json()
    assert options == {"dev_login": True, "password_login": True}

    ok = login(fresh, {"username": "anchor1", "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    user = tokens.verify(SECRET, ok.json()["token"])
    assert (user.uid, user.role) == ("anchor1", tokens.Role.ANCHOR)
    assert ok.json()["user"] == {"uid": "anchor1", "nick": "anchor1", "role": "anchor"}

    # Bad bodies are refused before any attempt is counted or any hash checked.
    for body, message in (
        ({}, "'username' is required"),
        ({"username": "boss"}, "'password' is required"),
        ({"username": "boss", "password": ""}, "'username' and 'password' must not be empty"),
        ({"username": "boss", "password": "x" * 257}, "at most 256 characters"),
        ({"username": "b" * 65, "password": "x"}, "at most 64 characters"),
        ({"username": 5, "password": "x"}, "'username' must be a string"),
    ):
        r = login(fresh, body)
        assert r.status_code == 400 and message in r.json()["error"]["message"], (body, r.text)
    big = httpx.post(
        fresh.base + "/api/v1/auth/console", content=b'{"username":"' + b"a" * 5000 + b'"}'
    )
    assert big.status_code == 400 and big.json()["error"]["message"] == "request body too large"

    # A wrong password and an unknown user read the same.
    wrong = login(fresh, {"username": "boss", "password": "nope"})
    unknown = login(fresh, {"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"error": {"code": "unauthorized", "message": "wrong username or password"}}
    )

    # Five failures for one username close it for a while, even to the right password.
    for _ in range(5):
        assert login(fresh, {"username": "anchor2", "password": "guess"}).status_code == 401
    held = login(fresh, {"username": "anchor2", "password": PASSWORD})
    assert held.status_code == 429
    error = held.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"].startswith("too many sign-in attempts; try again in ")
    assert 290_000 < error["retry_after_ms"] <= 300_000
    assert 290 <= int(held.headers["Retry-After"]) <= 300
    # Another username from the same address still signs in ...
    assert login(fresh, {"username": "boss", "password": PASSWORD}).status_code == 200
    # ... until the address has made ten attempts in the minute (this is the eleventh).
    attempts = 1 + 2 + 5 + 1  # anchor1, wrong and unknown, anchor2's failures, boss
    assert attempts == 9
    assert login(fresh, {"username": "boss", "password": "nope"}).status_code == 401
    closed = login(fresh, {"username": "boss", "password": PASSWORD})
    assert closed.status_code == 429
    assert 50_000 < closed.json()["error"]["retry_after_ms"] <= 60_000


def test_ticket_is_short_and_for_staff(fresh: ServerProcess) -> None:
    def ticket(token: str) -> httpx.Response:
        return httpx.post(
            fresh.base + "/api/v1/auth/ticket", headers={"Authorization": f"Bearer {token}"}
        )

    answer = ticket(fresh.token("ops", "operator"))
    assert answer.status_code == 200 and answer.json()["expires_in"] == 60
    claims = tokens.verify(SECRET, answer.json()["ticket"])
    assert claims.uid == "ops" and claims.role is tokens.Role.OPERATOR
    viewer = ticket(fresh.token("v", "viewer"))
    assert viewer.status_code == 403
    assert viewer.json()["error"]["message"] == "needs role operator or anchor"
    assert httpx.post(fresh.base + "/api/v1/auth/ticket").status_code == 401


def test_no_users_file_means_no_password_sign_in(tmp_path: Path) -> None:
    proc = start_server(tmp_path)
    try:
        assert httpx.get(proc.base + "/api/v1/auth/console").json()["password_login"] is False
        r = login(proc, {"username": "boss", "password": PASSWORD})
        assert r.status_code == 401
    finally:
        assert proc.stop() == 0


def test_a_malformed_users_file_stops_the_server(tmp_path: Path) -> None:
    bad = tmp_path / "users"
    bad.write_text("boss operator plaintext-password\n")
    with pytest.raises(AssertionError, match="must be an Argon2 hash"):
        start_server(tmp_path, env={"INTERACT_CONSOLE_USERS_FILE": str(bad)})
