"""Real-browser tests of the operator console: Debian's Chromium driven by Playwright
against a real ``interact serve`` process.

Playwright never downloads a browser here: it launches /usr/bin/chromium (``.ci/run``
installs it with apt when missing).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import argon2
import pytest

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.console.helpers import Rest
from tests.e2e.harness import ServerProcess, start_server

CHROMIUM = os.environ.get("INTERACT_TEST_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery"
# Cheap parameters: the server verifies with whatever the hash names.
HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
_FAILED_LOAD = re.compile(r"status of (\d{3})")
# The review queue and the moderation log are polled every 3 s: room for two rounds.
expect.set_options(timeout=10_000)


# Package scope, not session: Playwright's sync API keeps its own event loop running in this
# thread while it is started, and every pytest-asyncio test after it would fail with
# "Runner.run() cannot be called from a running event loop". Closed when tests/console ends.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the console tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


# build/ is ignored by git: the screenshots stay out of commits.
DEFAULT_SHOTS = Path(__file__).resolve().parents[2] / "build" / "console-shots"


@pytest.fixture(scope="session")
def shots() -> Path:
    """Where the tests leave a screenshot of each view: build/console-shots, or the
    directory INTERACT_CONSOLE_SHOTS names."""
    chosen = os.environ.get("INTERACT_CONSOLE_SHOTS")
    path = Path(chosen) if chosen else DEFAULT_SHOTS
    path.mkdir(parents=True, exist_ok=True)
    return path


def users_file(directory: Path) -> Path:
    path = directory / "console-users"
    lines = ["# test accounts"] + [
        f"{name} {role} {HASHER.hash(PASSWORD)}"
        for name, role in (("boss", "operator"), ("anchor1", "anchor"), ("anchor2", "anchor"))
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One memory-engine server for a module's tests (each test makes its own rooms)."""
    directory = tmp_path_factory.mktemp("console")
    proc = start_server(
        directory,
        env={
            "INTERACT_CONSOLE_USERS_FILE": str(users_file(directory)),
            "INTERACT_ONLINE_INTERVAL": "0.3",
        },
    )
    yield proc
    assert proc.stop() == 0, proc.log()


@dataclass
class Console:
    """A page on the console, with every page error and console error it logged."""

    page: Page
    base: str
    shots: Path
    errors: list[str] = field(default_factory=list)
    # API refusals a test provokes on purpose: Chromium logs each failed fetch as an error.
    expected_statuses: set[int] = field(default_factory=set)

    def open(self, fragment: str = "") -> None:
        self.page.goto(self.base + "/console" + fragment)

    def dev_login(self, uid: str, role: str = "operator") -> None:
        self.open()
        form = self.page.get_by_role("form", name=re.compile("开发登录|Dev login"))
        form.get_by_label(re.compile("用户 ID|User id")).fill(uid)
        form.get_by_label(re.compile("角色|Role")).select_option(role)
        form.get_by_role("button", name=re.compile("开发登录|Dev login")).click()
        expect(
            self.page.get_by_role("heading", name=re.compile("^(直播间|Rooms)$"))
        ).to_be_visible()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def unexpected_errors(self) -> list[str]:
        out = []
        for text in self.errors:
            found = _FAILED_LOAD.search(text)
            if found and int(found.group(1)) in self.expected_statuses:
                continue
            out.append(text)
        return out


@contextmanager
def console_on(browser: Browser, base: str, shots: Path) -> Iterator[Console]:
    """A fresh browser context on the console at ``base``; at the end, no page error and no
    console error may have been logged (but the API refusals the test expected)."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(10_000)
    found = Console(page, base, shots)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            found.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: found.errors.append(f"page error: {exc}"))
    yield found
    context.close()
    assert found.unexpected_errors() == [], found.errors


@pytest.fixture
def console(browser: Browser, server: ServerProcess, shots: Path) -> Iterator[Console]:
    with console_on(browser, server.base, shots) as found:
        yield found


@pytest.fixture
def operator(server: ServerProcess) -> Rest:
    return Rest(server.base, server.token("ops", "operator"))
