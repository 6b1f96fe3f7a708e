"""What one Autobahn case shows at the protocol level, and what is correct: pure, no I/O.

Interact is not an echo server (it welcomes a viewer and answers ``error`` to anything
that is not its JSON), so the suite's own per-case verdict is always FAILED. What is
judged here is only the WebSocket protocol: which side sent the first close frame, the
close code each side sent, whether the close was clean, whether pings were answered
with their payload, whether anything came after the server's close frame, and whether
something timed out.

The suite's reports (one JSON per case) hold those facts: ``closedByMe``,
``localCloseCode``/``remoteCloseCode``, ``wasClean``, the ``*Timeout`` flags, frame
counts per opcode, and a wire log of frames (``TF`` sent, ``RF`` received; a payload
appears as text or ``0x``-hex, cut after 60 bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10

# A close frame's body, as far as the protocol cares: a status code, an empty body, a
# body of one byte (which RFC 6455 §5.5.1 forbids: a body starts with a 2-byte code), or
# no close frame at all (None).
EMPTY = "empty"
MALFORMED = "malformed"
CloseCode = int | str | None

CLIENT = "client"
SERVER = "server"
NOBODY = "nobody"

# Case groups whose case answers the first message it gets by closing (it expects its
# own echo). Interact's first message is its welcome, which races the server's own
# refusal of what the case sent: who sends the first close frame is then a matter of
# timing, so it is reported but not compared. The close codes are not racy: the server
# reads the client's bytes in order and decides on the case's message before it sees
# the client's close.
FIRST_MESSAGE_CLOSES = frozenset({9, 10, 12, 13})


@dataclass(frozen=True, slots=True)
class Outcome:
    """One case on one server, at the protocol level."""

    closed_by: str  # who sent the first close frame: CLIENT, SERVER or NOBODY
    client_close: CloseCode  # the client's close frame
    server_close: CloseCode  # the server's close frame
    clean: bool  # both close frames crossed and the TCP connection then closed
    pings: int  # pings the client sent
    pongs: int  # pongs that answered them, in order, with the same payload
    stray_pongs: int  # pongs that answered nothing the client sent
    after_close: int  # frames the server sent after its close frame
    hung: str | None  # which handshake timed out, if one did

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(**data)


def group(case_id: str) -> int:
    """The case's top-level group: 7 for ``7.9.5``."""
    return int(case_id.split(".", 1)[0])


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort key: ``9.10`` after ``9.2``."""
    return tuple(int(part) for part in case_id.split("."))


def valid_close_code(code: int) -> bool:
    """May a peer send this status code (RFC 6455 §7.4.1 and the IANA registry)?

    1004–1006 and 1015 are reserved and never sent; other codes below 3000 are
    reserved for the protocol and undefined; 3000–4999 belong to libraries and apps.
    """
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_body(length: int, code: int | None) -> CloseCode:
    if length == 0:
        return EMPTY
    if length == 1:
        return MALFORMED
    return code


def outcome(report: Mapping[str, Any]) -> Outcome:
    """The protocol-level outcome of one case, from its JSON report."""
    client_close: CloseCode = report.get("localCloseCode")
    server_close: CloseCode = report.get("remoteCloseCode")
    first_close: str | None = None
    seen_client_close = seen_server_close = False
    pending_pings: list[tuple[int, str]] = []
    pongs = stray = after = 0
    for entry in report.get("wirelog") or ():
        kind = entry[0]
        if kind not in ("TF", "RF"):
            continue
        (length, payload), opcode = entry[1], entry[2]
        if kind == "TF":
            if opcode == OP_PING:
                pending_pings.append((length, payload))
            elif opcode == OP_CLOSE and not seen_client_close:
                seen_client_close = True
                first_close = first_close or CLIENT
                client_close = _close_body(length, report.get("localCloseCode"))
            continue
        if seen_server_close:
            after += 1
        elif opcode == OP_CLOSE:
            seen_server_close = True
            first_close = first_close or SERVER
            server_close = _close_body(length, report.get("remoteCloseCode"))
        elif opcode == OP_PONG:
            if pending_pings and pending_pings[0] == (length, payload):
                pending_pings.pop(0)
                pongs += 1
            else:
                stray += 1
    received = report.get("rxFrameStats") or {}
    if not seen_server_close and server_close is None and received.get(str(OP_CLOSE)):
        server_close = EMPTY  # a close frame went by while the wire log was off
    closed_by = _closed_by(report, first_close, server_close)
    hung = next(
        (
            name
            for name, flag in (
                ("opening handshake", "wasOpenHandshakeTimeout"),
                ("closing handshake", "wasCloseHandshakeTimeout"),
                ("server drop", "wasServerConnectionDropTimeout"),
            )
            if report.get(flag)
        ),
        None,
    )
    return Outcome(
        closed_by=closed_by,
        client_close=client_close,
        server_close=server_close,
        clean=bool(report.get("wasClean")),
        pings=int((report.get("txFrameStats") or {}).get(str(OP_PING), 0)),
        pongs=pongs,
        stray_pongs=stray,
        after_close=after,
        hung=hung,
    )


def _closed_by(report: Mapping[str, Any], first: str | None, server_close: CloseCode) -> str:
    # The wire log is off during the long cases (9.*, 12.*, 13.*); closedByMe is not.
    if report.get("closedByMe"):
        return CLIENT
    if first is not None:
        return first
    return SERVER if server_close is not None else NOBODY


def reply_codes(client_close: CloseCode) -> frozenset[CloseCode]:
    """What a server may answer to the client's close frame (RFC 6455 §5.5.1, §7.4).

    A valid code is "typically" echoed; 1000 is right too. An empty close may be answered
    empty or with 1000. An invalid code or a one-byte body fails the connection: 1002.
    """
    if client_close == EMPTY:
        return frozenset({EMPTY, 1000})
    if isinstance(client_close, int) and valid_close_code(client_close):
        return frozenset({client_close, 1000})
    if client_close == MALFORMED or isinstance(client_close, int):
        return frozenset({1002})
    return frozenset()  # the client sent no close: the server had to close first


def reference_usable(reference: Outcome) -> bool:
    """Did the reference close cleanly, so that its outcome can serve as the verdict?

    aiohttp sometimes closes the socket right after its close frame while the client is
    still sending a large message: the unread bytes make the kernel answer with a reset,
    and the client's kernel drops the close frame it had not read yet (9.3.2, 9.5.3).
    """
    return reference.clean and reference.hung is None and reference.closed_by != NOBODY


# What a server may close with on its own when the client broke the protocol:
# protocol error, not UTF-8, too big (RFC 6455 §7.4.1).
VIOLATION_CODES = frozenset({1002, 1007, 1009})


def allowed_server_close(reference: Outcome, got: Outcome) -> frozenset[CloseCode]:
    """The close codes a correct server sends in this case.

    Where the reference server failed the connection itself (1002, 1007, 1009), that
    code; where it answered the client's close, what the RFC allows in answer to the
    close ``got`` received, unless the reference found the close frame itself wrong
    (a reason that is not UTF-8: 1007, a body over 125 bytes: 1002). An invalid status
    code is the RFC's to judge, not the reference's: aiohttp answers 1000 to 1006, 5000
    and 65535 where §7.4 makes them a protocol error. Where the reference did not close
    cleanly, any code the RFC allows a server here.
    """
    answers = reply_codes(got.client_close) if got.closed_by == CLIENT else frozenset()
    if not reference_usable(reference):
        return VIOLATION_CODES | answers
    if reference.closed_by == SERVER:
        return frozenset({reference.server_close})
    if got.client_close == MALFORMED or (
        isinstance(got.client_close, int) and not valid_close_code(got.client_close)
    ):
        return reply_codes(got.client_close)
    if reference.server_close not in reply_codes(reference.client_close):
        return frozenset({reference.server_close})
    return reply_codes(got.client_close)


def violations(case_id: str, reference: Outcome, got: Outcome) -> list[str]:
    """How ``got`` falls short of a correct server in this case; empty when it is correct."""
    found: list[str] = []
    if not got.clean:
        found.append("unclean close")
    if got.hung is not None:
        found.append(f"{got.hung} timed out")
    if got.after_close:
        found.append(f"{got.after_close} frame(s) after its close frame")
    if got.stray_pongs:
        found.append(f"{got.stray_pongs} pong(s) that answer no ping")
    usable = reference_usable(reference)
    if usable and got.pongs != reference.pongs:
        found.append(f"answered {got.pongs} of {got.pings} pings (reference {reference.pongs})")
    if (
        usable
        and got.closed_by != reference.closed_by
        and group(case_id) not in FIRST_MESSAGE_CLOSES
    ):
        found.append(f"first close by {got.closed_by} (correct: {reference.closed_by})")
    allowed = allowed_server_close(reference, got)
    if got.server_close not in allowed:
        found.append(
            f"server close {show(got.server_close)} to client close {show(got.client_close)}"
            f" (correct: {' or '.join(sorted(map(show, allowed)))})"
        )
    return found


def answer(o: Outcome, *, strict: bool = True) -> frozenset[str]:
    """The server's close, as kinds that can be compared across clients.

    When the client closed first with a valid code, ``echo`` and/or ``1000`` (both when
    the client sent 1000); not ``strict``, any answer the RFC allows is ``reply``.
    """
    kinds = set()
    if o.closed_by == CLIENT and valid_close_code_or_empty(o.client_close):
        if o.server_close == o.client_close:
            kinds.add("echo")
        if o.server_close == 1000:
            kinds.add("1000")
        if kinds and not strict:
            return frozenset({"reply"})
    return frozenset(kinds or {show(o.server_close)})


def valid_close_code_or_empty(code: CloseCode) -> bool:
    return code == EMPTY or (isinstance(code, int) and valid_close_code(code))


def differences(case_id: str, a: Outcome, b: Outcome, *, strict: bool = True) -> list[str]:
    """Where two servers' outcomes of one case differ at the protocol level.

    ``strict``: an echoed close code and 1000 in answer to the client's close differ
    (the RFC allows both; two upgrade paths of one server should still agree). The
    client's own close code is not compared: a case closes with 1000 when it saw what
    it waited for and 1001 when it gave up, which says nothing about the server.
    """
    found: list[str] = []
    if a.closed_by != b.closed_by and group(case_id) not in FIRST_MESSAGE_CLOSES:
        found.append(f"first close {a.closed_by} / {b.closed_by}")
    if not answer(a, strict=strict) & answer(b, strict=strict):
        found.append(
            f"close {show(a.client_close)}→{show(a.server_close)}"
            f" / {show(b.client_close)}→{show(b.server_close)}"
        )
    for name in ("clean", "pongs", "stray_pongs", "after_close", "hung"):
        if getattr(a, name) != getattr(b, name):
            found.append(f"{name} {getattr(a, name)} / {getattr(b, name)}")
    return found


def show(code: CloseCode) -> str:
    """A close code for people: ``1002``, ``empty``, ``none``."""
    return "none" if code is None else str(code)


def count_codes(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How often each server close code occurs, most frequent first."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[show(o.server_close)] = counts.get(show(o.server_close), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
