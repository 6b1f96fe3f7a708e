"""A pytest plugin for mutation runs (``-p tests.mutation.plugin``; tests/mutation/run.py).

- Hypothesis derandomized, without deadlines or example database: a module's score is the
  same on every run (the examples are a function of the test), a mutant is never "killed"
  by a slow, loaded machine, and one mutant's failing example does not leak into the next.
- Module caches emptied before every test. mutmut forks each mutant's run from a process
  that has run the whole selection unmutated, so a cache filled then (the fold table of
  ``moderation.normalize``, the verified tokens of ``interact.tokens``) would answer with
  unmutated results and hide the mutant from the tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None)
settings.load_profile("mutation")

# module -> its caches: dicts (cleared) and functools caches (cache_clear).
CACHES: dict[str, tuple[str, ...]] = {
    "moderation.normalize": ("_TABLE", "_simplified"),
    "interact.tokens": ("_VERIFIED", "_key"),
}


@pytest.fixture(autouse=True)
def _empty_module_caches() -> Iterator[None]:
    for module_name, names in CACHES.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for name in names:
            cache = getattr(module, name)
            if hasattr(cache, "cache_clear"):
                cache.cache_clear()
            else:
                cache.clear()
    yield
