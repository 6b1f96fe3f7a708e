"""The provably fair lottery draw of DESIGN.md §6: commit, rank, draw, verify (pure)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

SECRET_BYTES = 32
_HEX_SECRET = re.compile(rf"[0-9a-fA-F]{{{2 * SECRET_BYTES}}}")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class DrawError(ValueError):
    """The draw's inputs break its rules (a server-side bug, never a viewer's doing)."""


@dataclass(frozen=True, slots=True)
class DrawResult:
    """Who won, the proof to publish with them, and prizes nobody was left to win."""

    winners: list[str]
    proof: dict[str, str | int]
    unused: int


def new_secret() -> bytes:
    """A fresh 32-byte lottery secret from the OS CSPRNG."""
    return secrets.token_bytes(SECRET_BYTES)


def commitment(secret: bytes) -> str:
    """The commit published when the lottery opens: hex ``sha256(secret)``."""
    return hashlib.sha256(secret).hexdigest()


def rank_key(secret: bytes, lottery_id: str, uid: str) -> str:
    """An entrant's rank: hex ``HMAC-SHA256(key=secret, msg=f"{lottery_id}:{uid}")``."""
    return hmac.new(secret, f"{lottery_id}:{uid}".encode(), hashlib.sha256).hexdigest()


def list_sha256(uids: Iterable[str]) -> str:
    """Hex sha256 of the distinct uids, sorted by code point, joined by "\\n", in UTF-8."""
    # Code-point order equals UTF-8 byte order, so a verifier in any language can sort the
    # encoded bytes and get the same list (JavaScript's default UTF-16 sort would not).
    return hashlib.sha256("\n".join(sorted(set(uids))).encode()).hexdigest()


def ranked(keys: Mapping[str, str]) -> list[str]:
    """Uids in draw order: rank key ascending, equal keys by uid."""
    # Every key is 64 lowercase hex digits, so string order is the MAC's numeric order.
    return sorted(keys, key=lambda uid: (keys[uid], uid))


def _check_uid(uid: object) -> str:
    if not isinstance(uid, str):
        raise DrawError(f"entrant uid must be a string, not {type(uid).__name__}")
    # A newline would make the "\n"-joined entry list ambiguous (["a\nb"] vs ["a", "b"]),
    # so the published entries_sha256 would no longer pin down one entry list.
    if not uid or "\n" in uid:
        raise DrawError(f"entrant uid must be non-empty and free of newlines: {uid!r}")
    try:
        uid.encode()
    except UnicodeEncodeError as exc:
        raise DrawError(f"entrant uid is not valid Unicode: {uid!r}") from exc
    return uid


def _check_secret(secret: bytes) -> bytes:
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise DrawError(f"secret must be {SECRET_BYTES} bytes")
    return secret


def _check_inputs(lottery_id: str, entrants: Iterable[str], winners: int) -> frozenset[str]:
    if not isinstance(lottery_id, str) or not lottery_id:
        raise DrawError("lottery_id must be a non-empty string")
    if not isinstance(winners, int) or isinstance(winners, bool) or winners < 1:
        raise DrawError(f"winners must be a positive integer, not {winners!r}")
    return frozenset(_check_uid(uid) for uid in entrants)


def _order(
    secret: bytes, lottery_id: str, unique: frozenset[str], prior: frozenset[str] | None
) -> list[str]:
    keys = {uid: rank_key(secret, lottery_id, uid) for uid in unique}
    if prior is None:
        return ranked(keys)
    # "Viewers who have not won yet first": two tiers, each in plain draw order. Ranking the
    # tiers with the same keys keeps each tier's order exactly what a plain draw would give.
    fresh = {uid: key for uid, key in keys.items() if uid not in prior}
    again = {uid: key for uid, key in keys.items() if uid in prior}
    return ranked(fresh) + ranked(again)


def draw(
    secret: bytes,
    lottery_id: str,
    entrants: Iterable[str],
    winners: int,
    *,
    exclude_first: Collection[str] | None = None,
) -> DrawResult:
    """Draw ``winners`` uids among ``entrants``; a uid entered twice counts once.

    With ``exclude_first`` (uids who already won in this room), entrants not in it are
    ranked ahead of those in it; the proof then records ``prior_winners_sha256`` over the
    entrants that are in it.
    """
    _check_secret(secret)
    unique = _check_inputs(lottery_id, entrants, winners)
    prior = None if exclude_first is None else unique & frozenset(exclude_first)
    order = _order(secret, lottery_id, unique, prior)
    proof: dict[str, str | int] = {
        "secret": secret.hex(),
        "entries_sha256": list_sha256(unique),
        "entries": len(unique),
    }
    if prior is not None:
        # Only the prior winners who entered change the order, and only they are hashed:
        # past winners who stayed away are no one's business.
        proof["prior_winners_sha256"] = list_sha256(prior)
    return DrawResult(winners=order[:winners], proof=proof, unused=max(0, winners - len(unique)))


class Status(StrEnum):
    """The outcome of one verification check."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    """One verification step: its name, outcome and a message saying exactly why."""

    name: str
    status: Status
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Every check of one verification, and the winners recomputed from the inputs."""

    checks: tuple[Check, ...]
    winners: list[str]

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(check.status is not Status.FAIL for check in self.checks)

    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [check for check in self.checks if check.status is Status.FAIL]

    def lines(self) -> list[str]:
        """One human-readable line per check, for the CLI."""
        return [
            f"{check.status.value.upper():4}  {check.name}: {check.message}"
            for check in self.checks
        ]


def _hash_check(name: str, what: str, computed: str, published: str | None) -> Check:
    if published is None:
        return Check(name, Status.SKIP, f"no published {name} given")
    if not _HEX_DIGEST.fullmatch(published):
        return Check(name, Status.FAIL, f"published {name} is not 64 hex digits: {published!r}")
    if published.lower() != computed:
        return Check(
            name, Status.FAIL, f"mismatch: {what} hashes to {computed}, published {published}"
        )
    return Check(name, Status.PASS, f"{what} hashes to {computed}")


def _winners_check(computed: list[str], expected: list[str] | None) -> Check:
    if expected is None:
        return Check("winners", Status.SKIP, "no published winners given")
    if len(set(expected)) != len(expected):
        dupes = sorted({uid for uid in expected if expected.count(uid) > 1})
        return Check("winners", Status.FAIL, f"published winners repeat {dupes}")
    published, drawn = set(expected), set(computed)
    missing = [uid for uid in computed if uid not in published]
    extra = [uid for uid in expected if uid not in drawn]
    if missing or extra:
        return Check(
            "winners",
            Status.FAIL,
            f"mismatch: the draw gives {computed}; published {expected}; "
            f"should have won but not published {missing}; published but did not win {extra}",
        )
    # Every prize of one lottery is the same, so only who won matters, not the listed order.
    order = "" if computed == expected else " (published in a different order)"
    return Check("winners", Status.PASS, f"{len(computed)} winners match the draw{order}")


def verify(
    commit: str,
    secret_hex: str,
    lottery_id: str,
    entrants: list[str],
    winners: int,
    expected_winners: list[str] | None = None,
    entries_sha256: str | None = None,
    *,
    prior_winners: Collection[str] | None = None,
    prior_winners_sha256: str | None = None,
) -> VerifyReport:
    """Re-run a published draw from its revealed secret and report every check."""
    checks: list[Check] = []

    secret: bytes | None = None
    if not _HEX_SECRET.fullmatch(secret_hex):
        checks.append(
            Check(
                "secret",
                Status.FAIL,
                f"secret must be {2 * SECRET_BYTES} hex digits ({SECRET_BYTES} bytes), "
                f"got {len(secret_hex)} characters",
            )
        )
    else:
        secret = bytes.fromhex(secret_hex)
        checks.append(Check("secret", Status.PASS, f"{SECRET_BYTES} bytes"))

    if secret is None:
        checks.append(Check("commit", Status.SKIP, "not checked: no usable secret"))
    else:
        computed = commitment(secret)
        if not _HEX_DIGEST.fullmatch(commit):
            checks.append(Check("commit", Status.FAIL, f"commit is not 64 hex digits: {commit!r}"))
        elif commit.lower() != computed:
            checks.append(
                Check(
                    "commit",
                    Status.FAIL,
                    f"mismatch: sha256(secret) is {computed}, the published commit is "
                    f"{commit.lower()}; this secret is not the one committed to",
                )
            )
        else:
            checks.append(Check("commit", Status.PASS, f"sha256(secret) = {computed}"))

    try:
        unique = _check_inputs(lottery_id, entrants, winners)
    except DrawError as exc:
        checks.append(Check("inputs", Status.FAIL, str(exc)))
        return VerifyReport(checks=tuple(checks), winners=[])

    checks.append(
        _hash_check(
            "entries_sha256",
            f"the entry list ({len(unique)} distinct uids)",
            list_sha256(unique),
            entries_sha256,
        )
    )

    prior: frozenset[str] | None = None
    if prior_winners is not None:
        prior = unique & frozenset(prior_winners)
        checks.append(
            _hash_check(
                "prior_winners_sha256",
                f"the prior winners who entered ({len(prior)})",
                list_sha256(prior),
                prior_winners_sha256,
            )
        )
    elif prior_winners_sha256 is not None:
        checks.append(
            Check(
                "prior_winners_sha256",
                Status.FAIL,
                "the proof records an exclude-first draw but no prior-winner list was given, "
                "so the winners cannot be recomputed",
            )
        )
        return VerifyReport(checks=tuple(checks), winners=[])

    if secret is None:
        checks.append(Check("winners", Status.SKIP, "not checked: no usable secret"))
        return VerifyReport(checks=tuple(checks), winners=[])
    computed_winners = _order(secret, lottery_id, unique, prior)[:winners]
    checks.append(_winners_check(computed_winners, expected_winners))
    return VerifyReport(checks=tuple(checks), winners=computed_winners)
