"""The README's pictures of the report, as a window of a given size shows it:

    python docs/screenshot_report.py runs/mnist docs/images/mnist_report.png --size 1500x950 --full-page
    python docs/screenshot_report.py runs/mnist60k docs/images/report_1024x700.png --size 1024x700
    python docs/screenshot_report.py runs/mnist60k docs/images/report_1920x1080.png --size 1920x1080
    python docs/screenshot_report.py runs/mnist10k docs/images/report_390x844.png --size 390x844 --phone
    python docs/screenshot_report.py runs/mnist10k docs/images/report_dark.png --size 1366x768 --dark \
        --palette colorblind --find "true:4 predicted:9"

Opens the run's report.html in Debian's chromium (headless, software WebGL, every network request refused), goes to
the last epoch, pins one point so its trail shows (and optionally colours the map by a measure, finds items as the
find box does, and shows the colour-blind-safe class colours), and saves what the window shows (or the whole page
with --full-page); --dark asks for the system's dark scheme, --phone for a phone's touch screen at scale 1.
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
    parser.add_argument("--find", default="", help="a query for the find box (its matches selected)")
    parser.add_argument("--palette", default="tab10", help="tab10 or colorblind")
    parser.add_argument("--dark", action="store_true", help="the system's colour scheme dark")
    parser.add_argument("--phone", action="store_true", help="a phone: touch, mobile layout, scale 1")
    args = parser.parse_args()
    width, height = (int(value) for value in args.size.split("x"))
    page_url = (args.run / "report.html").resolve().as_uri()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=QUIET)
        page = browser.new_page(viewport={"width": width, "height": height}, is_mobile=args.phone,
                                has_touch=args.phone, color_scheme="dark" if args.dark else "light")
        page.route("**/*", lambda route: route.continue_() if route.request.url == page_url else route.abort())
        page.goto(page_url)
        page.wait_for_function("window.layerlapseReady === true", timeout=120_000)
        last = page.evaluate("Bokeh.documents[0].get_model_by_name('layerlapse-epoch').end")
        page.evaluate(f"window.layerlapse.setEpoch({last})")
        page.evaluate(f"window.layerlapse.setColorBy({args.color_by!r})")
        page.evaluate(f"window.layerlapse.setPalette({args.palette!r})")
        if args.find:
            page.evaluate(f"window.layerlapse.find({args.find!r}, {{pin: false}})")
            page.wait_for_timeout(300)
        page.evaluate(f"window.layerlapse.pin({args.point})")
        page.wait_for_timeout(2500)  # the panels follow once the slider rests, the thumbnails once decoded
        page.screenshot(path=str(args.out), full_page=args.full_page)
        browser.close()
    print(f"wrote {args.out} ({args.size}, epoch {last}, point {args.point} pinned)")


if __name__ == "__main__":
    main()
