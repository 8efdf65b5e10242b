"""The README's picture of the report: `python docs/screenshot_report.py runs/mnist docs/images/mnist_report.png`.

Opens the run's report.html in Debian's chromium (headless, software WebGL, every network request refused), goes to
the last epoch, pins one point so its trail shows, and saves a screenshot of the page.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

QUIET = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-default-apps", "--disable-extensions", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader"]


def main(run: Path, out: Path, point: int = 123) -> None:
    page_url = (run / "report.html").resolve().as_uri()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=QUIET)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.route("**/*", lambda route: route.continue_() if route.request.url == page_url else route.abort())
        page.goto(page_url)
        page.wait_for_function("window.layerlapseReady === true", timeout=60_000)
        epochs = page.evaluate("window.layerlapse.state().epochs ?? null")
        last = page.evaluate("Bokeh.documents[0].get_model_by_name('layerlapse-epoch').end")
        page.evaluate(f"window.layerlapse.setEpoch({last})")
        page.evaluate(f"window.layerlapse.pin({point})")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(f"wrote {out} (epoch {last}, point {point} pinned{'' if epochs is None else ''})")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
