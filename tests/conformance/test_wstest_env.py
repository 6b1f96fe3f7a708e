"""Finding Python 2.7 for wstest: a machine without it gets told what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance import wstest_env


def test_without_python_27_the_error_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_27 = tmp_path / "python"
    not_27.write_text("#!/bin/sh\necho 3.11\n")
    not_27.chmod(0o755)
    monkeypatch.setenv(wstest_env.PY27_ENV, str(not_27))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(wstest_env.Py27Missing) as raised:
        wstest_env.find_python27()
    message = str(raised.value)
    assert "pyenv install 2.7.18" in message and wstest_env.PY27_ENV in message
    assert str(not_27) in message  # what was tried, and refused for not being 2.7


def test_the_cache_lives_outside_the_repository_and_follows_the_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    here = wstest_env.cache_dir(Path("/usr/bin/python2.7"))
    there = wstest_env.cache_dir(Path("/opt/python2.7"))
    assert here.parent == tmp_path / "interact" and here.name.startswith("autobahn-py27-")
    assert here != there
