"""The ``interact`` command: ``serve``, ``token``, ``verify-lottery``, ``verify-archive``,
``bench``."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import secrets
import sys
from typing import Any

from interact import identity, logs, tokens
from interact.config import HELP, Config, field_names, load

log = logging.getLogger("interact")

# Short, stable names of the most used settings (DESIGN.md §7).
ALIASES = {"redis_url": ["--redis"], "redis_prefix": ["--prefix"]}


def _bool(raw: str) -> bool:
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {raw!r}")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    defaults = Config()
    parser.add_argument("--config", metavar="FILE", help="TOML file ([interact] table)")
    for field in dataclasses.fields(Config):
        name = field.name
        flags = [*ALIASES.get(name, []), "--" + name.replace("_", "-")]
        kind = field.type
        conv: Any = (
            _bool
            if "bool" in kind
            else int
            if kind == "int"
            else (float if kind == "float" else str)
        )
        default = getattr(defaults, name)
        shown = "***" if name in ("secret", "wechat_secret") else default
        parser.add_argument(
            *flags,
            dest=name,
            type=conv,
            default=None,
            metavar=name.split("_")[-1].upper(),
            help=f"{HELP.get(name, '')} [env INTERACT_{name.upper()}; default {shown!r}]",
        )


def _flags(ns: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(ns, name, None) for name in field_names()}


def cmd_serve(ns: argparse.Namespace) -> int:
    from interact.server import run

    try:
        config = load(ns.config, _flags(ns))
    except (ValueError, OSError) as exc:
        # A malformed URL is quoted back: without its password.
        print(f"interact serve: {logs.redact(str(exc))}", file=sys.stderr)
        return 2
    if config.words_file:
        from moderation.rules import WordListError
        from moderation.wordfilter import WordFilter

        try:
            WordFilter.from_file(config.words_file)
        except (WordListError, OSError) as exc:
            print(f"interact serve: words_file {config.words_file}: {exc}", file=sys.stderr)
            return 2
    if config.payment == "wechat":
        from interact.orders_setup import merchant_config

        try:
            merchant_config(config)
        except (ValueError, OSError) as exc:
            print(f"interact serve: WeChat Pay settings: {exc}", file=sys.stderr)
            return 2
    logs.setup(config.log_level, config.log_format)
    if config.content_security and not (config.wechat_appid and config.wechat_secret):
        log.warning("content_security is on but WeChat is not configured: it stays off")
    if not config.secret:
        config.secret = secrets.token_urlsafe(32)
        log.warning("no INTERACT_SECRET set: tokens are signed with a random key for this run")
    for line in start_warnings(config):
        log.warning(line)
    if not config.pay_provider:
        log.info(
            "pay provider: %s (the default with the %s engine%s; set pay_provider to choose)",
            config.payment,
            config.engine,
            " and WeChat Pay settings" if config.payment == "wechat" else "",
        )
    log.info("configuration", extra={"config": config.redacted()})
    return run(config)


def loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def start_warnings(config: Config) -> list[str]:
    """Settings that are fine for a laptop and dangerous on a network, one line each."""
    out = []
    if config.dev_login_enabled and not loopback(config.host):
        out.append(
            f"dev login is on and the server listens on {config.host}: anyone who reaches "
            "it can get an operator token; set dev_login off or host to 127.0.0.1"
        )
    return out


def cmd_token(ns: argparse.Namespace) -> int:
    try:
        config = load(ns.config, {"secret": ns.secret})
    except (ValueError, OSError) as exc:
        print(f"interact token: {exc}", file=sys.stderr)
        return 2
    if not config.secret:
        print(
            "interact token: set INTERACT_SECRET (or --secret) to the server's key", file=sys.stderr
        )
        return 2
    nick = ns.nick or ns.uid[: identity.NICK_MAX_LEN]
    user = tokens.User(uid=ns.uid, nick=nick, role=tokens.Role(ns.role))
    try:
        print(tokens.issue(config.secret, user, ns.ttl))
    except ValueError as exc:  # a uid or nick the server would refuse
        print(f"interact token: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_verify_lottery(ns: argparse.Namespace) -> int:
    from commerce.draw import verify

    def read_uids(path: str) -> list[str]:
        with open(path, encoding="utf-8") as fh:
            return [line.rstrip("\r\n") for line in fh if line.strip()]

    try:
        entrants = read_uids(ns.entries)
        prior = read_uids(ns.prior_winners) if ns.prior_winners else None
    except OSError as exc:
        print(f"interact verify-lottery: {exc}", file=sys.stderr)
        return 2
    expected = [u for u in ns.expected_winners.split(",") if u] if ns.expected_winners else None
    report = verify(
        ns.commit,
        ns.secret,
        ns.lottery_id,
        entrants,
        ns.winners,
        expected_winners=expected,
        entries_sha256=ns.entries_sha256,
        prior_winners=prior,
        prior_winners_sha256=ns.prior_winners_sha256,
    )
    for line in report.lines():
        print(line)
    print("winners: " + ",".join(report.winners))
    print("VERIFIED" if report.ok else "NOT VERIFIED")
    return 0 if report.ok else 1


def cmd_verify_archive(ns: argparse.Namespace) -> int:
    from archive.reading import ArchiveFormatError, LineSplitter
    from archive.records import Verifier

    verifier = Verifier()
    splitter = LineSplitter()
    try:
        with open(ns.file, "rb") as fh:
            while chunk := fh.read(64 * 1024):
                for line in splitter.feed(chunk):
                    verifier.feed(line)
        splitter.close()
    except OSError as exc:
        print(f"interact verify-archive: {exc}", file=sys.stderr)
        return 2
    except ArchiveFormatError as exc:
        # A cut or corrupt file: the chain cannot be followed to its seal.
        verifier.cut(str(exc))
    report = verifier.finish(ns.head)
    for line in report.lines():
        print(line)
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.counts.items()))
    print(f"records: {report.records} ({counts or 'none'})")
    if report.head is not None:
        print(f"head: {report.head}")
    print("VERIFIED" if report.ok else "NOT VERIFIED")
    return 0 if report.ok else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="interact", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run the server",
        description="Run the server. Settings come from flags, INTERACT_* variables and a "
        "TOML file, in that order of precedence.",
    )
    _add_config_flags(serve)
    serve.set_defaults(func=cmd_serve)
    token = sub.add_parser("token", help="print a signed token for scripts and operators")
    token.add_argument("--uid", required=True)
    token.add_argument("--role", choices=[r.value for r in tokens.Role], default="operator")
    token.add_argument("--nick")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="seconds (default a day)")
    token.add_argument("--secret", help="signing key [env INTERACT_SECRET]")
    token.add_argument("--config", metavar="FILE")
    token.set_defaults(func=cmd_token)
    check = sub.add_parser(
        "verify-lottery",
        help="re-run a lottery draw from its published commit and proof",
        description="Recompute a lottery's winners from its revealed secret and entry list "
        "and check them against the commit published when it opened.",
    )
    check.add_argument("--commit", required=True, help="hex sha256 published in the lot message")
    check.add_argument("--secret", required=True, help="hex secret revealed in the proof")
    check.add_argument("--lottery-id", required=True)
    check.add_argument("--entries", required=True, metavar="FILE", help="entrant uids, one a line")
    check.add_argument("--winners", required=True, type=int, help="number of prizes")
    check.add_argument("--expected-winners", help="published winners, comma-separated")
    check.add_argument("--entries-sha256", help="the proof's entries_sha256")
    check.add_argument("--prior-winners", metavar="FILE", help="for new_first lotteries")
    check.add_argument("--prior-winners-sha256", help="the proof's prior_winners_sha256")
    check.set_defaults(func=cmd_verify_lottery)
    archive = sub.add_parser(
        "verify-archive",
        help="re-check a room archive's hash chain and head",
        description="Follow a room archive's SHA-256 chain from its header to its seal "
        "(gzip or plain JSON Lines) and compare the head with the archive_sealed ledger "
        "entry's. Exit status: 0 verified, 1 not verified, 2 the file cannot be read.",
    )
    archive.add_argument("file", metavar="FILE", help="the archive (<room>.jsonl.gz)")
    archive.add_argument("--head", help="the head of the archive_sealed ledger entry (hex)")
    archive.set_defaults(func=cmd_verify_archive)
    sub.add_parser(
        "bench",
        help="load tests: interact bench SCENARIO --help (the same as python -m bench)",
        add_help=False,
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["bench"]:
        # The load harness has its own parser (``python -m bench``): hand it the rest.
        from bench.__main__ import main as bench_main

        return bench_main(args[1:], prog="interact bench")
    ns = parser().parse_args(args)
    return int(ns.func(ns))


if __name__ == "__main__":
    sys.exit(main())
