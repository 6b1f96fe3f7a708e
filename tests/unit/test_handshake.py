"""The WebSocket handshake's rules (interact.handshake), without sockets."""

from __future__ import annotations

import pytest

from interact.handshake import deflate_answer, refusal

GOOD = {
    "host": "x",
    "upgrade": "websocket",
    "connection": "Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": "AAAAAAAAAAAAAAAAAAAAAA==",
}


def with_(**changes: str | None) -> dict[str, str]:
    headers = {**GOOD, **{k.replace("_", "-"): v for k, v in changes.items()}}
    return {k: v for k, v in headers.items() if v is not None}


def test_a_plain_upgrade_passes_and_tokens_are_matched_whole_and_case_blind() -> None:
    assert refusal(True, GOOD) is None
    assert refusal(True, with_(upgrade=" WebSocket ", connection="keep-alive, UPGRADE")) is None
    assert refusal(True, with_(content_length="0")) is None


@pytest.mark.parametrize(
    ("http11", "changes", "status"),
    [
        (True, {"upgrade": "xwebsocketx"}, 400),
        (True, {"upgrade": "websocket, h2c"}, 400),  # aiohttp wants websocket alone
        (True, {"connection": "xupgradex"}, 400),
        (True, {"connection": None}, 400),
        (False, {}, 400),
        (True, {"host": None}, 400),
        (True, {"content_length": "5"}, 400),
        (True, {"transfer_encoding": "chunked"}, 400),
        (True, {"sec_websocket_version": "8"}, 426),
        (True, {"sec_websocket_version": "7"}, 426),
        (True, {"sec_websocket_version": None}, 426),
        (True, {"sec_websocket_key": "short"}, 400),
        (True, {"sec_websocket_key": "AAAAAAAAAAAAAAAAAAAA"}, 400),  # 15 bytes
    ],
)
def test_refusals(http11: bool, changes: dict[str, str | None], status: int) -> None:
    refused = refusal(http11, with_(**changes))
    assert refused is not None and refused[0] == status, refused


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        (None, None),
        ("x-webkit-deflate-frame", None),
        ("permessage-deflate", (15, "permessage-deflate; server_no_context_takeover")),
        (
            "permessage-deflate; client_max_window_bits",
            (15, "permessage-deflate; server_no_context_takeover"),
        ),
        (
            "permessage-deflate; server_max_window_bits=15",
            (15, "permessage-deflate; server_max_window_bits=15; server_no_context_takeover"),
        ),
        (
            'permessage-deflate; server_max_window_bits="10"; client_no_context_takeover',
            (10, "permessage-deflate; server_max_window_bits=10; server_no_context_takeover"),
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
            (15, "permessage-deflate; server_no_context_takeover"),
        ),
        # zlib cannot honour 8 bits: that offer is declined, the next one taken
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate",
            (15, "permessage-deflate; server_no_context_takeover"),
        ),
        ("permessage-deflate; server_max_window_bits", None),  # needs a value
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; client_max_window_bits=99", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
        ("permessage-deflate; unknown", None),
    ],
)
def test_deflate_answers(offer: str | None, answer: tuple[int, str] | None) -> None:
    assert deflate_answer(offer) == answer
