"""The README's pictures of the report, as a window of a given size shows it:

    python docs/screenshot_report.py runs/mnist docs/images/mnist_report.png --size 1500x950 --full-page
    python docs/screenshot_report.py runs/mnist60k docs/images/report_1024x700.png --size 1024x700
    python docs/screenshot_report.py runs/mnist60k docs/images/report_1920x1080.png --size 1920x1080

Opens the run's report.html in Debian's chromium (headless, software WebGL, every network request refused), goes to
the last epoch, pins one point so its trail shows (and optionally colours the map by a measure), and saves what the
window shows (or the whole page with --full-page).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

QUIET = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-default-apps", "--disable-extensions", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="1500x950", help="the window, WIDTHxHEIGHT in CSS pixels")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not only the window")
    parser.add_argument("--point", type=int, default=123, help="the probe point to pin")
    parser.add_argument("--color-by", default="class", help="class, confidence, correctness, ...")
    args = parser.parse_args()
    width, height = (int(value) for value in args.size.split("x"))
    page_url = (args.run / "report.html").resolve().as_uri()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=QUIET)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.route("**/*", lambda route: route.continue_() if route.request.url == page_url else route.abort())
        page.goto(page_url)
        page.wait_for_function("window.layerlapseReady === true", timeout=120_000)
        last = page.evaluate("Bokeh.documents[0].get_model_by_name('layerlapse-epoch').end")
        page.evaluate(f"window.layerlapse.setEpoch({last})")
        page.evaluate(f"window.layerlapse.setColorBy({args.color_by!r})")
        page.evaluate(f"window.layerlapse.pin({args.point})")
        page.wait_for_timeout(2500)  # the panels follow once the slider rests, the thumbnails once decoded
        page.screenshot(path=str(args.out), full_page=args.full_page)
        browser.close()
    print(f"wrote {args.out} ({args.size}, epoch {last}, point {args.point} pinned)")


if __name__ == "__main__":
    main()
