"""The floors as drawn in docs/architecture.md, held by reading every import in the tree.

    interact (application: app, server, ws, hub, api, ...)
        │
    commerce    moderation        (neither imports the other)
        │            │
        └──── rooms ─┘             (imports neither)
               │
         interact.floor            (imports no domain and no other interact module)

Every ``.py`` file is parsed with ``ast``, so imports inside functions, under ``if
TYPE_CHECKING:`` and in ``try`` blocks count, relative imports are resolved against the
file's package, ``from pkg import mod`` counts as an import of ``pkg.mod``, and
``importlib.import_module("...")`` with a literal name counts too. A failure names the
file, the line and the arrow.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOOR = "interact.floor"
DOMAINS = ("rooms", "commerce", "moderation", "webhooks", "growth", "archive")
# Directories never holding project code: the venv, caches, build output.
_SKIP_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules"})


@dataclass(frozen=True, slots=True)
class Arrow:
    path: str  # relative to the root, with "/"
    line: int
    source: str  # the importing module, dotted
    target: str  # the imported module, dotted

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} -> {self.target}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _top(module: str) -> str:
    return module.partition(".")[0]


def forbidden(source: str, target: str) -> str | None:
    """Why the arrow ``source -> target`` breaks the floors, or None when it may stand."""
    # interact/__init__.py runs on every import of interact.floor, so it keeps the floor's rule.
    on_floor = _within(source, FLOOR) or source == "interact"
    if on_floor:
        if _top(target) in DOMAINS:
            return "the floor imports no domain package"
        if _top(target) == "interact" and not _within(target, FLOOR):
            return "the floor imports no interact module outside interact.floor"
        if _top(target) in ("bench", "tests"):
            return "the floor imports neither bench nor tests"
        if _top(target) == "aiohttp":
            return "the floor does not import the web framework"
        return None
    top = _top(source)
    if top not in DOMAINS:
        return None
    if _top(target) == "interact" and not _within(target, FLOOR):
        return "domain packages import from interact only interact.floor"
    if _top(target) in ("bench", "tests"):
        return "domain packages import neither bench nor tests"
    if _top(target) == "aiohttp":
        return "domain packages do not import the web framework (DESIGN.md §1)"
    if top == "rooms" and _top(target) in ("commerce", "moderation"):
        return "rooms imports neither commerce nor moderation"
    if top == "commerce" and _top(target) == "moderation":
        return "commerce and moderation do not import each other"
    if top == "moderation" and _top(target) == "commerce":
        return "commerce and moderation do not import each other"
    if top == "growth" and _top(target) in DOMAINS and _top(target) != "growth":
        return "growth imports no other domain package (the application hands data in)"
    if top == "archive" and _top(target) in DOMAINS and _top(target) != "archive":
        return "archive imports no other domain package (the application hands data in)"
    return None


def python_files(root: Path) -> Iterator[Path]:
    """Every .py file under ``root``, skipping hidden directories (.venv, .git) and caches."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d not in _SKIP_DIRS and not d.endswith(".egg-info")
        )  # fmt: skip
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath) / name


def module_of(path: Path, root: Path) -> tuple[str, str]:
    """The dotted name of the module at ``path`` and of the package it lives in."""
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    return ".".join(parts), ".".join(parts[:-1])


def _is_module(dotted: str, root: Path) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _literal_import(node: ast.Call) -> str | None:
    """The name in ``importlib.import_module("x")`` or ``__import__("x")``, if literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def imports_of(path: Path, root: Path) -> Iterator[Arrow]:
    """Every module ``path`` imports, wherever in the file the import stands."""
    source, package = module_of(path, root)
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_bytes(), filename=rel)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Arrow(rel, node.lineno, source, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    raise ValueError(f"{rel}:{node.lineno}: relative import beyond the root")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                # ``from interact import hub`` imports the module interact.hub;
                # ``from interact import __version__`` runs interact/__init__.py.
                candidate = f"{base}.{alias.name}" if base else alias.name
                target = candidate if _is_module(candidate, root) else base
                yield Arrow(rel, node.lineno, source, target)
        elif isinstance(node, ast.Call):
            name = _literal_import(node)
            if name is not None:
                yield Arrow(rel, node.lineno, source, name)


def violations(root: Path) -> list[tuple[Arrow, str]]:
    """Each forbidden arrow once (``from m import a, b`` is one arrow), in file order."""
    found: dict[Arrow, str] = {}
    for path in python_files(root):
        for arrow in imports_of(path, root):
            reason = forbidden(arrow.source, arrow.target)
            if reason is not None:
                found.setdefault(arrow, reason)
    return list(found.items())


def test_the_tree_keeps_its_floors() -> None:
    found = violations(ROOT)
    assert not found, "forbidden imports:\n" + "\n".join(f"{a}  ({why})" for a, why in found)


def test_the_walk_sees_the_arrows_it_judges() -> None:
    # A walk that read nothing would pass the test above: check it sees known arrows,
    # one from a function body among them.
    arrows = {
        (a.source, a.target)
        for path in python_files(ROOT)
        if path.parts[-2] in ("rooms", "floor", "interact")
        for a in imports_of(path, ROOT)
    }
    assert ("rooms.service", "interact.floor.moderation_policy") in arrows
    assert ("interact.floor.scripts", "interact.floor.redis_pipe") in arrows
    assert ("interact.engine", "interact.floor.redis_pipe") in arrows  # inside a function


_SYNTHETIC = {
    "interact/__init__.py": "",
    "interact/hub.py": "",
    "interact/app.py": "",
    "interact/api/__init__.py": "",
    "interact/api/rooms.py": "",
    "interact/floor/__init__.py": "",
    "interact/floor/errors.py": "import enum\n",
    "interact/floor/event_log.py": (
        "from . import errors\n"  # allowed: the floor itself
        "from .errors import Code\n"  # allowed
        "from .. import hub\n"  # 3: relative, up into the application
        "from ..api import rooms\n"  # 4: relative, into a subpackage of the application
        "import rooms.models\n"  # 5: the floor importing a domain
    ),
    "rooms/__init__.py": "",
    "rooms/models.py": "from interact.floor.errors import Code\n",  # allowed
    "rooms/service.py": (
        "from typing import TYPE_CHECKING\n"
        "from interact.floor import errors\n"  # allowed
        "if TYPE_CHECKING:\n"
        "    from interact.app import App\n"  # 4: only for types, still an arrow
        "def f():\n"
        "    import moderation.service as s\n"  # 6: in a function, rooms -> moderation
        "    return s\n"
        "try:\n"
        "    from interact import hub\n"  # 9: from-package form names the module
        "except ImportError:\n"
        "    pass\n"
        "from . import models\n"  # allowed: relative within rooms
    ),
    "commerce/__init__.py": "",
    "commerce/orders.py": (
        "from rooms.models import Code\n"  # allowed: commerce may stand on rooms
        "from moderation import service\n"  # 2
        "import importlib\n"
        "importlib.import_module('interact.api.rooms')\n"  # 4: a literal dynamic import
    ),
    "moderation/__init__.py": "",
    "moderation/service.py": (
        "from commerce.orders import x\n"  # 1
        "from interact import __version__\n"  # 2: runs interact/__init__, not the floor
    ),
}


def test_the_walk_catches_every_form_of_a_forbidden_arrow(tmp_path: Path) -> None:
    for rel, text in _SYNTHETIC.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    found = {(a.path, a.line, a.target) for a, _ in violations(tmp_path)}
    assert found == {
        ("interact/floor/event_log.py", 3, "interact.hub"),
        ("interact/floor/event_log.py", 4, "interact.api.rooms"),
        ("interact/floor/event_log.py", 5, "rooms.models"),
        ("rooms/service.py", 4, "interact.app"),
        ("rooms/service.py", 6, "moderation.service"),
        ("rooms/service.py", 9, "interact.hub"),
        ("commerce/orders.py", 2, "moderation.service"),
        ("commerce/orders.py", 4, "interact.api.rooms"),
        ("moderation/service.py", 1, "commerce.orders"),
        ("moderation/service.py", 2, "interact"),
    }


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("rooms.service", "interact.floor.errors", True),
        ("rooms.service", "interact.floorboard", False),  # a prefix is not the package
        ("rooms.service", "interact", False),
        ("rooms.service", "commerce.models", False),
        ("commerce.orders", "rooms.broker", True),
        ("moderation.service", "rooms.broker", True),
        ("commerce.orders", "moderation.service", False),
        ("moderation.service", "commerce.split", False),
        ("moderation.service", "tests.fakes", False),
        ("rooms.service", "aiohttp.web", False),
        ("interact.floor.errors", "aiohttp", False),
        ("interact.ws", "aiohttp.web", True),
        ("interact.floor.scripts", "interact.floor.redis_pipe", True),
        ("interact.floor.scripts", "interact.config", False),
        ("interact.floor.scripts", "rooms.keys", False),
        ("interact", "interact.hub", False),
        ("interact.hub", "rooms.service", True),  # the application may import anything
        ("tests.unit.test_x", "interact.hub", True),
        ("roomsy.thing", "interact.hub", True),  # not the rooms package
        ("growth.service", "interact.floor.breaker", True),
        ("growth.service", "growth.invites", True),
        ("growth.service", "rooms.models", False),  # the application hands room data in
        ("growth.service", "commerce.ledger", False),
        ("growth.service", "interact.app", False),
        ("interact.growth_setup", "growth.service", True),
        ("archive.writer", "interact.floor.scripts", True),
        ("archive.writer", "archive.records", True),
        ("archive.writer", "rooms.models", False),  # the application hands the data in
        ("archive.writer", "commerce.ledger", False),
        ("archive.reader", "interact.api", False),
        ("interact.archive_setup", "archive.writer", True),
    ],
)
def test_rule(source: str, target: str, allowed: bool) -> None:
    assert (forbidden(source, target) is None) is allowed
