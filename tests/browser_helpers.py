"""The browser the page tests drive: Debian's Chromium through Playwright, headless, with software WebGL.

Skipped with the reason when playwright or chromium is missing, unless LAYERLAPSE_REQUIRE_BROWSER=1 (CI sets it),
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REQUIRED = os.environ.get("LAYERLAPSE_REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("LAYERLAPSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# a closed network makes Chromium's own background requests fail noisily; these turn them off
QUIET = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-default-apps", "--disable-extensions"]
SOFTWARE_WEBGL = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
NO_WEBGL = ["--disable-webgl", "--disable-3d-apis"]


def browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; the dev extras have it)"
    if not Path(CHROMIUM).is_file():
        return f"no chromium at {CHROMIUM} (apt-get install chromium, or set LAYERLAPSE_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        if REQUIRED:
            pytest.fail(f"LAYERLAPSE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


def launch(playwright: Any, flags: list[str]) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*QUIET, *flags])


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    browser = launch(playwright, SOFTWARE_WEBGL)
    yield browser
    browser.close()


@dataclass
class Opened:
    """A page with the report, and what it did: console errors, blocked requests, dialogs."""

    page: Any
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def state(self) -> dict:
        return self.js("window.layerlapse.state()")

    def assert_clean(self) -> None:
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.blocked == [], f"the page asked the network for {self.blocked}"
        assert self.dialogs == [], f"the page opened dialogs: {self.dialogs}"


def open_report(browser: Any, path: Path, *, fragment: str = "", viewport: tuple[int, int] = (1200, 1000),
                **page_options: Any) -> Opened:
    """The report at `path` (its address ending in `fragment`, a "#..." view), in a page of its own: its own
    browser context (storage, permissions), `page_options` as Playwright's `new_page` takes them (color_scheme,
    permissions, is_mobile, ...)."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}, **page_options)
    opened = Opened(page)
    page.on("console", lambda message: message.type == "error" and opened.errors.append(message.text))
    page.on("pageerror", lambda error: opened.errors.append(str(error)))

    def on_dialog(dialog: Any) -> None:
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    def only_the_report(route: Any) -> None:
        if route.request.url == path.as_uri():
            route.continue_()
        else:
            opened.blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_report)
    page.goto(path.as_uri() + fragment)
    page.wait_for_function("window.layerlapseReady === true", timeout=30_000)
    return opened
