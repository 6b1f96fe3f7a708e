"""The webhook settings' bounds, as ``interact.config`` checks them at start."""

from __future__ import annotations

import pytest

from interact.config import load


@pytest.mark.parametrize(
    ("lease", "timeout"), [("15", "15"), ("29.9", "15"), ("10", "15"), ("1", "1")]
)
def test_a_lease_shorter_than_twice_the_timeout_is_refused(lease: str, timeout: str) -> None:
    # A lease ending while its attempt still waits for an answer lets a second process
    # send the same attempt again.
    environ = {"INTERACT_WEBHOOK_LEASE": lease, "INTERACT_WEBHOOK_TIMEOUT": timeout}
    with pytest.raises(ValueError, match=r"webhook_lease .* at least twice webhook_timeout"):
        load(environ=environ)


def test_defaults_and_twice_the_timeout_are_accepted() -> None:
    config = load(environ={})
    assert config.webhook_lease >= 2 * config.webhook_timeout
    config = load(environ={"INTERACT_WEBHOOK_LEASE": "2", "INTERACT_WEBHOOK_TIMEOUT": "1"})
    assert (config.webhook_lease, config.webhook_timeout) == (2.0, 1.0)
