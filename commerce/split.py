"""Splitting a red packet into shares of whole fen, and the limits a packet must respect (pure)."""

from __future__ import annotations

import random
import secrets
from enum import StrEnum
from typing import TypeGuard

from interact.floor.errors import BadRequest, Code

# Platform limits (DOMAIN.md "Red packets"): up to 20,000 yuan and 2,000 shares. Defaults
# only; the deployment's config passes its own.
MAX_TOTAL_FEN = 2_000_000
MAX_COUNT = 2000

# One process-wide CSPRNG: shares are money, so they must not be predictable from earlier
# packets the way Mersenne Twister output is.
_SYSTEM_RANDOM = secrets.SystemRandom()


class SplitReason(StrEnum):
    """Why a packet was refused; travels as ``reason`` beside the wire code ``bad_request``."""

    NOT_INT = "not_int"
    TOTAL_TOO_SMALL = "total_too_small"
    COUNT_TOO_SMALL = "count_too_small"
    COUNT_TOO_LARGE = "count_too_large"
    TOTAL_TOO_LARGE = "total_too_large"
    TOTAL_BELOW_COUNT = "total_below_count"


class SplitError(BadRequest, ValueError):
    """A red packet's total or count is not allowed (wire code ``bad_request``)."""

    def __init__(self, reason: SplitReason, message: str) -> None:
        super().__init__(message, Code.BAD_REQUEST, reason=reason.value)
        self.reason = reason


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass, but `true` fen in a JSON body is a client bug, not one fen.
    return isinstance(value, int) and not isinstance(value, bool)


def validate_packet(
    total_fen: object,
    count: object,
    *,
    max_total_fen: int = MAX_TOTAL_FEN,
    max_count: int = MAX_COUNT,
) -> None:
    """Raise ``SplitError`` unless ``total_fen`` fen can be split into ``count`` shares."""
    if not _is_int(total_fen):
        raise SplitError(
            SplitReason.NOT_INT, f"total_fen must be an integer, not {type(total_fen).__name__}"
        )
    if not _is_int(count):
        raise SplitError(
            SplitReason.NOT_INT, f"count must be an integer, not {type(count).__name__}"
        )
    if total_fen < 1:
        raise SplitError(SplitReason.TOTAL_TOO_SMALL, "total_fen must be at least 1")
    if count < 1:
        raise SplitError(SplitReason.COUNT_TOO_SMALL, "count must be at least 1")
    if count > max_count:
        raise SplitError(SplitReason.COUNT_TOO_LARGE, f"count must be at most {max_count}")
    if total_fen > max_total_fen:
        raise SplitError(SplitReason.TOTAL_TOO_LARGE, f"total_fen must be at most {max_total_fen}")
    if total_fen < count:
        raise SplitError(
            SplitReason.TOTAL_BELOW_COUNT,
            f"total_fen {total_fen} cannot give {count} shares at least 1 fen each",
        )


def double_mean_bound(remaining_fen: int, remaining_count: int) -> int:
    """The largest share allowed when ``remaining_fen`` is left for ``remaining_count`` shares."""
    # 2 × mean, floored to whole fen, but never so much that a later share would get < 1 fen.
    return min(2 * remaining_fen // remaining_count, remaining_fen - (remaining_count - 1))


def split_random(
    total_fen: int,
    count: int,
    rng: random.Random | None = None,
    *,
    max_total_fen: int = MAX_TOTAL_FEN,
    max_count: int = MAX_COUNT,
) -> list[int]:
    """WeChat's "double mean" split: shares in the order drawn, summing exactly to ``total_fen``."""
    validate_packet(total_fen, count, max_total_fen=max_total_fen, max_count=max_count)
    rng = rng or _SYSTEM_RANDOM
    shares: list[int] = []
    remaining = total_fen
    # Invariant: remaining >= shares still to draw, so every bound below is >= 1.
    for left in range(count, 1, -1):
        share = rng.randint(1, double_mean_bound(remaining, left))
        shares.append(share)
        remaining -= share
    shares.append(remaining)
    return shares


def split_equal(
    total_fen: int,
    count: int,
    *,
    max_total_fen: int = MAX_TOTAL_FEN,
    max_count: int = MAX_COUNT,
) -> list[int]:
    """Equal shares: ``total // count`` each, the first ``total % count`` shares 1 fen more."""
    # The leftover fen go to the front rather than to random places: the split stays
    # deterministic (replayable from the request alone), and no two shares differ by more
    # than 1 fen, so who grabs first gains at most 1 fen.
    validate_packet(total_fen, count, max_total_fen=max_total_fen, max_count=max_count)
    base, extra = divmod(total_fen, count)
    return [base + 1] * extra + [base] * (count - extra)
