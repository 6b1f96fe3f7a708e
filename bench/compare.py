"""``--target all``: the same scenario against Interact and each peer in turn, with the
same options, and one table of the figures side by side with their ratios."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.server import TARGETS

# One run: the document and the exit status.
RunOne = Callable[[argparse.Namespace], tuple[dict[str, Any], int]]
# (label, path of the figure in a run's document)
Figure = tuple[str, tuple[str, ...]]


def main(ns: argparse.Namespace, run_one: RunOne, figures: tuple[Figure, ...]) -> int:
    """Run ``run_one`` once for ``ns.target``, or for every target with ``all``."""
    if getattr(ns, "target", "interact") != "all":
        return run_one(ns)[1]
    if ns.url:
        print("--target all starts each server itself: it does not go with --url")
        return 2
    docs: dict[str, dict[str, Any]] = {}
    status = 0
    for target in TARGETS:
        one = copy.copy(ns)
        one.target = target
        if ns.json:
            p = Path(ns.json)
            one.json = str(p.with_name(f"{p.stem}-{target}{p.suffix}"))
        if ns.server_log:
            p = Path(ns.server_log)
            one.server_log = str(p.with_name(f"{p.stem}-{target}{p.suffix}"))
        print(f"\n===== target {target} =====", flush=True)
        doc, code = run_one(one)
        docs[target] = doc
        status = max(status, code)
        if code == 2:
            return code
    table = side_by_side(docs, figures)
    print_table(table)
    if ns.json:
        first = next(iter(docs.values()), {})
        report.write_json(ns.json, {
            "scenario": first.get("scenario"),
            "target": "all",
            "command": report.command_line(),
            "machine": first.get("machine"),
            "versions": first.get("versions"),
            "params": first.get("params"),
            "comparison": table,
            "runs": docs,
        })  # fmt: skip
        print(f"\nwrote {ns.json}")
    return status


def figure(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def side_by_side(
    docs: dict[str, dict[str, Any]], figures: tuple[Figure, ...]
) -> list[dict[str, Any]]:
    """Per figure, each target's value and its ratio to Interact's (peer ÷ Interact)."""
    rows = []
    for label, path in figures:
        values = {t: figure(d, path) for t, d in docs.items()}
        base = values.get("interact")
        ratios = {
            t: (v / base if isinstance(v, int | float) and isinstance(base, int | float) and base
                else None)
            for t, v in values.items() if t != "interact"
        }  # fmt: skip
        rows.append({"figure": label, "values": values, "ratio_to_interact": ratios})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    targets = list(rows[0]["values"]) if rows else []
    peers = [t for t in targets if t != "interact"]
    head = ["figure", *targets, *(f"{t}/interact" for t in peers)]
    body = [
        [r["figure"], *(report.fmt(r["values"][t]) for t in targets),
         *(_ratio(r["ratio_to_interact"].get(t)) for t in peers)]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    print("\nside by side (same options, same pinning; ratio = peer ÷ interact)")
    for row in [head, *body]:
        print("  " + "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ))  # fmt: skip


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
