"""Headless Debian chromium driven by playwright, against a real gunicorn (harness/server.py).

Playwright's own browser builds are never downloaded: the tests launch /usr/bin/chromium, which `make setup`
installs (mk/browser.mk). Screenshots land in .e2e-artifacts/browser/ (gitignored) for people and CI to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from harness.server import ROOT, Server, running_server

CHROMIUM = Path(os.environ.get("FLASK_SVC_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / ".e2e-artifacts" / "browser"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Collects CSP violations in the page itself: Chrome also logs them to the console, this makes them explicit.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@dataclass
class Watched:
    """A page with every console error, uncaught exception and failed request it produced."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__cspViolations || []"))

    def assert_clean(self) -> None:
        assert not self.problems, self.problems
        assert not self.csp_violations()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page_server() -> Iterator[Server]:
    """The service with the debug endpoints on, so the page shows its drill buttons."""
    with running_server({"FLASK_SVC_DEBUG_ENDPOINTS": "true", "LOG_LEVEL": "info"}) as srv:
        yield srv


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def open_page(browser: Browser, *, width: int = 1000, height: int = 800, javascript: bool = True) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=javascript)
    page = context.new_page()
    watched = Watched(page)
    page.add_init_script(WATCH_CSP)
    page.on("console", lambda msg: msg.type == "error" and watched.problems.append(f"console: {msg.text}"))
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: watched.problems.append(f"request failed: {request.url}"))
    return watched
