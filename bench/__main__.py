"""``python -m bench SCENARIO [options]`` or ``interact bench``; ``SCENARIO --help``: options."""

from __future__ import annotations

import argparse
import sys

from bench import audience, events, fanout, idle, join, retention, sale, storm, webhooks

SCENARIOS = {
    "fanout": fanout,
    "join": join,
    "idle": idle,
    "storm": storm,
    "sale": sale,
    "webhooks": webhooks,
    "audience": audience,
    "events": events,
    "retention": retention,
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    top = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = top.add_subparsers(dest="scenario", required=True)
    for name, module in SCENARIOS.items():
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=_Formatter,
        )
        module.add_arguments(p)
        p.set_defaults(run=module.main)
    ns = top.parse_args(argv)
    return int(ns.run(ns))


if __name__ == "__main__":
    sys.exit(main())
