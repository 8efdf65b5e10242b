"""The browser the page tests drive: Debian's Chromium through Playwright, headless, with software WebGL.

Skipped with the reason when playwright or chromium is missing, unless LAYERLAPSE_REQUIRE_BROWSER=1 (CI sets it),
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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
