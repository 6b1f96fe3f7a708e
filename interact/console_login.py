"""The console's password sign-in: the users file, the hash check and the attempt limits.

The users file (``console_users_file``) holds one account a line,
``username role hash``: a uid, ``operator`` or ``anchor``, and an Argon2id hash made with
argon2-cffi (``python -c "import argon2; print(argon2.PasswordHasher().hash('…'))"``).
Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import argon2

from interact.identity import UID_RULE, valid_uid
from interact.tokens import Role

# Sign-in attempts one address may make in ADDRESS_WINDOW seconds, and failed attempts
# one username may take in USERNAME_WINDOW: enough for a person who mistypes, far too
# few to guess a password.
ADDRESS_ATTEMPTS = 10
ADDRESS_WINDOW = 60.0
USERNAME_FAILURES = 5
USERNAME_WINDOW = 300.0
# Keys remembered per table; past it the stalest go (an attacker cycling addresses or
# usernames cannot grow the process).
MAX_TRACKED = 10_000
MAX_PASSWORD_LEN = 256
MAX_USERS = 1000
# Argon2 with argon2-cffi's defaults costs ~64 MiB and tens of ms per check: at most this
# many run at once, off the event loop.
MAX_CONCURRENT_CHECKS = 2


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: Role
    hash: str


def parse_users(text: str, source: str = "console users") -> dict[str, Account]:
    """The accounts in a users file; ValueError naming the line for anything malformed."""
    accounts: dict[str, Account] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        where = f"{source} line {number}"
        if len(parts) != 3:
            raise ValueError(f"{where}: expected 'username role hash'")
        name, role_name, hashed = parts
        if not valid_uid(name):
            raise ValueError(f"{where}: the username must be {UID_RULE}")
        if role_name not in (Role.OPERATOR.value, Role.ANCHOR.value):
            raise ValueError(f"{where}: the role must be operator or anchor")
        if not hashed.startswith("$argon2"):
            raise ValueError(f"{where}: the hash must be an Argon2 hash (argon2-cffi)")
        if name in accounts:
            raise ValueError(f"{where}: {name} is listed twice")
        accounts[name] = Account(name, Role(role_name), hashed)
        if len(accounts) > MAX_USERS:
            raise ValueError(f"{source}: more than {MAX_USERS} accounts")
    return accounts


def load_users(path: str) -> dict[str, Account]:
    return parse_users(Path(path).read_text(encoding="utf-8"), path) if path else {}


class SlidingLimit:
    """At most ``limit`` events per key within ``window`` seconds (a log of times per key)."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._log: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may act again; 0 when it may now."""
        times = self._log.get(key)
        if times is None:
            return 0.0
        now = self.clock()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._log[key]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window - now

    def hit(self, key: str) -> None:
        times = self._log.get(key)
        if times is None:
            times = self._log[key] = deque(maxlen=self.limit)
        times.append(self.clock())
        self._log.move_to_end(key)
        while len(self._log) > self.max_keys:
            self._log.popitem(last=False)


class ConsoleLogin:
    """Checks a username and password; the caller asks ``retry_after`` first."""

    def __init__(
        self, accounts: dict[str, Account], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.accounts = accounts
        self.by_address = SlidingLimit(ADDRESS_ATTEMPTS, ADDRESS_WINDOW, clock=clock)
        self.by_username = SlidingLimit(USERNAME_FAILURES, USERNAME_WINDOW, clock=clock)
        self._hasher = argon2.PasswordHasher()
        self._checks = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)
        self._dummy: str | None = None

    def retry_after(self, address: str, username: str) -> float:
        return max(self.by_address.retry_after(address), self.by_username.retry_after(username))

    async def check(self, address: str, username: str, password: str) -> Account | None:
        """The account when the password is right, else None; every call counts
        against the address, every failure against the username."""
        self.by_address.hit(address)
        account = self.accounts.get(username)
        # An unknown name costs the same hash check as a known one: the answer's timing
        # does not tell which usernames exist. argon2 compares digests in constant time.
        hashed = account.hash if account is not None else self._dummy_hash()
        async with self._checks:
            ok = await asyncio.to_thread(self._verify, hashed, password)
        if ok and account is not None:
            return account
        self.by_username.hit(username)
        return None

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash("no such user: a hash to spend the same time on")
        return self._dummy
